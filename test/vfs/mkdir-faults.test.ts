/**
 * vfs.mkdir when the remote call fails with an unknown outcome (a reset or 5xx after the service made
 * the folder): the cache must not keep what it knew before (a "known absent" from an earlier PROPFIND),
 * else the client's retried MKCOL answers "exists" while the PUT into the folder gets 409 "parent
 * missing" from the cache (test/long/faults-rclone).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TbdavError, isTbdavError } from '../../src/shared/errors.js';
import { withFixture } from './fixture.js';

test('mkdir: a failed remote mkdir that made the folder anyway does not leave a cached "absent"', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    // PROPFIND before MKCOL: the cache learns /d/e is absent.
    await assert.rejects(f.vfs.stat('/d/e'), (err: unknown) => isTbdavError(err, 'TBDAV_NOT_FOUND'));
    const mkdir = f.remote.mkdir.bind(f.remote);
    f.remote.mkdir = async (p, opts) => {
      await mkdir(p, opts);
      throw new TbdavError('TBDAV_RETRYABLE', `mkdir ${p}: connection reset after the folder was made`);
    };
    await assert.rejects(f.vfs.mkdir('/d/e'), (err: unknown) => isTbdavError(err, 'TBDAV_RETRYABLE'));
    f.remote.mkdir = mkdir;
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
    const mkdir = f.remote.mkdir.bind(f.remote);
    f.remote.mkdir = async (p, opts) => {
      await mkdir(p, opts);
      throw new TbdavError('TBDAV_RETRYABLE', `mkdir ${p}: 500 after the folder was made`);
    };
    await assert.rejects(f.vfs.mkdir('/d/e'), (err: unknown) => isTbdavError(err, 'TBDAV_RETRYABLE'));
    f.remote.mkdir = mkdir;
    await assert.rejects(f.vfs.mkdir('/d/e'), (err: unknown) => isTbdavError(err, 'TBDAV_EXISTS'));
    assert.equal((await f.vfs.stat('/d/e')).isDir, true);
    assert.deepEqual(await f.names('/d'), ['e']);
  });
});

test('mkdir: a folder whose creation was only inferred (found after a retry) is not cached as empty', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    const mkdir = f.remote.mkdir.bind(f.remote);
    f.remote.mkdir = async (p, opts) => {
      // Our first try made the folder, its answer was lost; meanwhile another client stored a file
      // in it (here: made a sub-folder); the retry found the folder and took it as created.
      const e = await mkdir(p, opts);
      await mkdir(`${p}/other`, opts);
      return { ...e, maybeNotEmpty: true };
    };
    await f.vfs.mkdir('/d/e');
    f.remote.mkdir = mkdir;
    assert.deepEqual(await f.names('/d/e'), ['other']);
  });
});

test('mkdir: a file stored in the folder while mkdir was in flight survives in the listing', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    const mkdir = f.remote.mkdir.bind(f.remote);
    f.remote.mkdir = async (p, opts) => {
      const e = await mkdir(p, opts);
      // A concurrent MKCOL answers "exists" and the client's PUT goes in before this answer arrives.
      await assert.rejects(f.vfs.mkdir(p), (err: unknown) => isTbdavError(err, 'TBDAV_EXISTS'));
      await f.put(`${p}/x.dat`, 'hello', false);
      return e;
    };
    await f.vfs.mkdir('/d/e');
    f.remote.mkdir = mkdir;
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
