/**
 * vfs.mkdir when the remote call fails with an unknown outcome (a reset or 5xx after the service made
 * the folder): the cache must not keep what it knew before (a "known absent" from an earlier PROPFIND),
 * else the client's retried MKCOL answers "exists" while the PUT into the folder gets 409 "parent
 * missing" from the cache (test/long/faults-rclone).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TbdavError, isTbdavError } from '../../src/shared/errors.js';
import type { CallOptions, MkdirResult } from '../../src/remote/types.js';
import { withFixture, type Fixture } from './fixture.js';

type Mkdir = (p: string, opts?: CallOptions) => Promise<MkdirResult>;

/** Run `body` with the remote's mkdir replaced by `around` (which gets the real one); restored after. */
async function withMkdir(f: Fixture, around: (real: Mkdir, p: string, opts?: CallOptions) => Promise<MkdirResult>, body: () => Promise<void>): Promise<void> {
  const real: Mkdir = f.remote.mkdir.bind(f.remote);
  f.remote.mkdir = (p, opts) => around(real, p, opts);
  try {
    await body();
  } finally {
    f.remote.mkdir = real;
  }
}

/** A remote mkdir that makes the folder and then fails as a reset or 5xx after the work would. */
const madeThenFails = (why: string) => async (real: Mkdir, p: string, opts?: CallOptions): Promise<MkdirResult> => {
  await real(p, opts);
  throw new TbdavError('TBDAV_RETRYABLE', `mkdir ${p}: ${why}`);
};

test('mkdir: a failed remote mkdir that made the folder anyway does not leave a cached "absent"', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    // PROPFIND before MKCOL: the cache learns /d/e is absent.
    await assert.rejects(f.vfs.stat('/d/e'), (err: unknown) => isTbdavError(err, 'TBDAV_NOT_FOUND'));
    await withMkdir(f, madeThenFails('connection reset after the folder was made'), () =>
      assert.rejects(f.vfs.mkdir('/d/e'), (err: unknown) => isTbdavError(err, 'TBDAV_RETRYABLE')),
    );
    // The client retries the MKCOL: the folder is there.
    await assert.rejects(f.vfs.mkdir('/d/e'), (err: unknown) => isTbdavError(err, 'TBDAV_EXISTS'));
    const e = await f.vfs.stat('/d/e');
    assert.equal(e.isDir, true);
    await f.put('/d/e/x.dat', 'hello', false);
    assert.deepEqual(await f.names('/d/e'), ['x.dat']);
  });
});

test('mkdir: a listing cached before a failed mkdir (parent listing without the folder) is dropped', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    assert.deepEqual(await f.names('/d'), []);
    await withMkdir(f, madeThenFails('500 after the folder was made'), () =>
      assert.rejects(f.vfs.mkdir('/d/e'), (err: unknown) => isTbdavError(err, 'TBDAV_RETRYABLE')),
    );
    await assert.rejects(f.vfs.mkdir('/d/e'), (err: unknown) => isTbdavError(err, 'TBDAV_EXISTS'));
    assert.equal((await f.vfs.stat('/d/e')).isDir, true);
    assert.deepEqual(await f.names('/d'), ['e']);
  });
});

test('mkdir: a folder whose creation was only inferred (found after a retry) is not cached as empty', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    const inferred = async (real: Mkdir, p: string, opts?: CallOptions): Promise<MkdirResult> => {
      // Our first try made the folder, its answer was lost; meanwhile another client stored a file
      // in it (here: made a sub-folder); the retry found the folder and took it as created.
      const e = await real(p, opts);
      await real(`${p}/other`, opts);
      return { ...e, maybeNotEmpty: true };
    };
    await withMkdir(f, inferred, async () => {
      await f.vfs.mkdir('/d/e');
    });
    assert.deepEqual(await f.names('/d/e'), ['other']);
  });
});

test('mkdir: a file stored in the folder while mkdir was in flight survives in the listing', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    const raced = async (real: Mkdir, p: string, opts?: CallOptions): Promise<MkdirResult> => {
      const e = await real(p, opts);
      // A concurrent MKCOL answers "exists" and the client's PUT goes in before this answer arrives.
      await assert.rejects(f.vfs.mkdir(p), (err: unknown) => isTbdavError(err, 'TBDAV_EXISTS'));
      await f.put(`${p}/x.dat`, 'hello', false);
      return e;
    };
    await withMkdir(f, raced, async () => {
      await f.vfs.mkdir('/d/e');
    });
    assert.deepEqual(await f.names('/d/e'), ['x.dat']);
  });
});

test('mkdir: a certainly new folder is cached as empty (no list call for it)', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    await f.vfs.mkdir('/d/e');
    const before = f.remote.calls.list ?? 0;
    assert.deepEqual(await f.names('/d/e'), []);
    assert.equal(f.remote.calls.list ?? 0, before);
  });
});
