/** Vfs semantics over MemoryRemote with temp state/cache dirs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { TbdavError, isTbdavError, type ErrorCode } from '../../src/shared/errors.js';
import { removeSpool, spoolBody } from '../../src/vfs/spool.js';
import { body, readAll, withFixture } from './fixture.js';

const md5 = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

function code(c: ErrorCode) {
  return (e: unknown): boolean => {
    assert.ok(isTbdavError(e), `expected a TbdavError, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    return true;
  };
}

// ------------------------------------------------------------------ put

test('put: created for a new path, replaced (created false) for an existing one', async () => {
  await withFixture(async (f) => {
    const r1 = await f.put('/a.txt', 'one');
    assert.equal(r1.created, true);
    assert.equal(r1.entry.size, 3);
    assert.equal(r1.entry.contentMd5, md5('one'));
    const r2 = await f.put('/a.txt', 'second');
    assert.equal(r2.created, false);
    assert.equal(r2.entry.size, 6);
    assert.equal((await f.read('/a.txt')).toString(), 'second');
    assert.equal((await f.remote.stat('/a.txt')).size, 6);
    await assert.rejects(f.put('/a.txt', 'third', false), code('TBDAV_EXISTS'));
    assert.equal((await f.read('/a.txt')).toString(), 'second');
    assert.deepEqual(await f.spoolFiles(), [], 'spool files are removed after upload');
  });
});

test('put: missing parent or a file as parent -> CONFLICT; onto a folder -> CONFLICT; nothing uploaded', async () => {
  await withFixture(async (f) => {
    await f.put('/file', 'x');
    await f.vfs.mkdir('/dir');
    f.remote.resetCalls();
    await assert.rejects(f.put('/missing/a', 'x'), code('TBDAV_CONFLICT'));
    await assert.rejects(f.put('/file/a', 'x'), code('TBDAV_CONFLICT'));
    await assert.rejects(f.put('/dir', 'x'), code('TBDAV_CONFLICT'));
    await assert.rejects(f.put('/', 'x'), code('TBDAV_CONFLICT'));
    assert.equal(f.remote.calls.write, undefined);
  });
});

test('put: expectedSize mismatch -> BAD_REQUEST and nothing uploaded, no spool file left', async () => {
  await withFixture(async (f) => {
    await assert.rejects(f.vfs.put('/a', body('12345'), { overwrite: true, expectedSize: 6 }), code('TBDAV_BAD_REQUEST'));
    await assert.rejects(f.vfs.put('/a', body('12345'), { overwrite: true, expectedSize: 4 }), code('TBDAV_BAD_REQUEST'));
    assert.equal(f.remote.calls.write, undefined);
    await assert.rejects(f.vfs.stat('/a'), code('TBDAV_NOT_FOUND'));
    assert.deepEqual(await f.spoolFiles(), []);
    const ok = await f.vfs.put('/a', body('12345'), { overwrite: true, expectedSize: 5 });
    assert.equal(ok.entry.size, 5);
  });
});

test('put: a client that disconnects mid-body (real HTTP) uploads nothing and leaves no spool file', async () => {
  await withFixture(async (f) => {
    let settle!: (v: unknown) => void;
    const outcome = new Promise((r) => (settle = r));
    let started!: () => void;
    const serverHasRequest = new Promise<void>((r) => (started = r));
    const server = createServer((req, res) => {
      started();
      f.vfs.put('/upload.bin', req, { overwrite: true, expectedSize: Number(req.headers['content-length']) }).then(
        (v) => {
          settle(v);
          res.end();
        },
        (err: unknown) => {
          settle(err);
          res.destroy();
        },
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const req = request({ port, host: '127.0.0.1', method: 'PUT', path: '/upload.bin', headers: { 'content-length': 1_000_000 } });
      req.on('error', () => {}); // the socket is destroyed on purpose
      req.write(randomBytes(100_000));
      // disconnect only once the server has the request
      await serverHasRequest;
      req.destroy();
      const err = await outcome;
      assert.ok(isTbdavError(err), `expected a TbdavError, got ${String(err)}`);
      assert.equal(err.code, 'TBDAV_ABORTED');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
    assert.equal(f.remote.calls.write, undefined);
    await assert.rejects(f.vfs.stat('/upload.bin'), code('TBDAV_NOT_FOUND'));
    assert.deepEqual(await f.spoolFiles(), []);
  });
});

test('put: two PUTs to the same path are serialised and the later request wins', async () => {
  await withFixture(async (f) => {
    const slow = new PassThrough();
    const first = f.vfs.put('/race', slow, { overwrite: true });
    const second = f.vfs.put('/race', body('second'), { overwrite: true });
    // the first body finishes after the second one was fully received
    setTimeout(() => slow.end('first'), 20);
    const [r1, r2] = await Promise.all([first, second]);
    assert.equal(r1.created, true);
    assert.equal(r2.created, false);
    assert.equal((await f.read('/race')).toString(), 'second');
    assert.equal((await f.remote.stat('/race')).size, 'second'.length);
  });
});

test('put: X-OC-Mtime is recorded and reported, and survives a restart', async () => {
  await withFixture(async (f) => {
    const mtime = Date.UTC(2020, 0, 2, 3, 4, 5);
    const r = await f.vfs.put('/m.txt', body('m'), { overwrite: true, mtime });
    assert.equal(r.entry.mtime, mtime);
    assert.equal((await f.vfs.stat('/m.txt')).mtime, mtime);
    const vfs = await f.reopen();
    assert.equal((await vfs.stat('/m.txt')).mtime, mtime);
    assert.equal((await vfs.list('/')).find((e) => e.name === 'm.txt')?.mtime, mtime);
  });
});

// ------------------------------------------------------------------ 0-byte placeholders

test('0-byte file: stored remotely when the remote accepts it', async () => {
  await withFixture(async (f) => {
    const r = await f.put('/empty', '');
    assert.equal(r.created, true);
    assert.equal(r.entry.local, undefined);
    assert.equal((await f.remote.stat('/empty')).size, 0);
  });
});

test('0-byte file with refuseZeroByte: a local placeholder lists and reads as empty, survives restart, and real content replaces it', async () => {
  await withFixture(
    async (f) => {
      await f.vfs.mkdir('/d');
      const r = await f.put('/d/new.txt', '');
      assert.equal(r.created, true);
      assert.equal(r.entry.local, true);
      assert.equal(r.entry.size, 0);
      await assert.rejects(f.remote.stat('/d/new.txt'), code('TBDAV_NOT_FOUND'));
      assert.deepEqual(await f.names('/d'), ['new.txt']);
      assert.equal((await f.vfs.stat('/d/new.txt')).size, 0);
      assert.equal((await f.read('/d/new.txt')).length, 0);
      const writes = f.remote.calls.write;
      await f.put('/d/second', '');
      assert.equal(f.remote.calls.write, writes, 'after one refusal, empty files do not go to the remote again');
      assert.equal((await f.vfs.stat('/d/second')).local, true);
      const vfs = await f.reopen();
      assert.equal((await vfs.stat('/d/new.txt')).local, true);
      const r2 = await f.put('/d/new.txt', 'real content');
      assert.equal(r2.created, false);
      assert.equal(r2.entry.local, undefined);
      assert.equal((await f.remote.stat('/d/new.txt')).size, 12);
      assert.equal((await f.read('/d/new.txt')).toString(), 'real content');
      const listed = (await vfs.list('/d')).filter((e) => e.name === 'new.txt');
      assert.deepEqual((await vfs.list('/d')).map((e) => [e.name, e.local ?? false]), [['new.txt', false], ['second', true]]);
      assert.equal(listed.length, 1);
      assert.equal(listed[0]!.local, undefined);
    },
    { refuseZeroByte: true },
  );
});

test('0-byte PUT over an existing remote file (refuseZeroByte): the file becomes empty', async () => {
  await withFixture(
    async (f) => {
      await f.put('/f', 'old content');
      const r = await f.put('/f', '');
      assert.equal(r.created, false);
      assert.equal((await f.vfs.stat('/f')).size, 0);
      assert.equal((await f.read('/f')).length, 0);
      await assert.rejects(f.remote.stat('/f'), code('TBDAV_NOT_FOUND'));
      await f.vfs.remove('/f');
      await assert.rejects(f.vfs.stat('/f'), code('TBDAV_NOT_FOUND'));
    },
    { refuseZeroByte: true },
  );
});

// ------------------------------------------------------------------ ignore list

test('ignored names are kept locally: never uploaded, yet list, stat and read like files', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    f.remote.resetCalls();
    const r = await f.put('/d/._photo.jpg', 'appledouble');
    assert.equal(r.created, true);
    assert.equal(r.entry.local, true);
    await f.put('/d/.DS_Store', 'ds');
    await f.put('/d/Thumbs.db', 'th');
    await f.put('/d/desktop.ini', '');
    assert.equal(f.remote.calls.write, undefined);
    assert.deepEqual(await f.names('/d'), ['.DS_Store', '._photo.jpg', 'Thumbs.db', 'desktop.ini']);
    assert.deepEqual((await f.remote.list('/d')).map((e) => e.name), []);
    assert.equal((await f.read('/d/._photo.jpg')).toString(), 'appledouble');
    assert.equal((await f.read('/d/._photo.jpg', { start: 5, end: 6 })).toString(), 'do');
    assert.equal((await f.vfs.stat('/d/.DS_Store')).size, 2);
    const vfs = await f.reopen();
    assert.equal((await f.read('/d/.DS_Store')).toString(), 'ds');
    await vfs.remove('/d/.DS_Store');
    await assert.rejects(vfs.stat('/d/.DS_Store'), code('TBDAV_NOT_FOUND'));
    assert.equal(vfs.ignores('._x'), true);
    assert.equal(vfs.ignores('x._'), false);
  });
});

test('a custom ignore list replaces the default', async () => {
  await withFixture(
    async (f) => {
      await f.put('/a.tmp', 'local');
      await f.put('/.DS_Store', 'uploaded');
      assert.deepEqual((await f.remote.list('/')).map((e) => e.name), ['.DS_Store']);
      assert.equal((await f.vfs.stat('/a.tmp')).local, true);
    },
    {},
    { ignore: ['*.tmp'] },
  );
});

// ------------------------------------------------------------------ reads

test('openRead: ranges give exactly the bytes asked, pulled from the remote with that range', async () => {
  await withFixture(async (f) => {
    const data = randomBytes(100_000);
    await f.put('/r.bin', data);
    assert.deepEqual(await f.read('/r.bin'), data);
    assert.deepEqual(await f.read('/r.bin', { start: 10, end: 19 }), data.subarray(10, 20));
    assert.deepEqual(await f.read('/r.bin', { start: 99_990 }), data.subarray(99_990));
    assert.deepEqual(await f.read('/r.bin', { start: 99_990, end: 1_000_000 }), data.subarray(99_990));
    await assert.rejects(f.vfs.openRead('/r.bin', { start: 100_000 }), code('TBDAV_RANGE'));
    await assert.rejects(f.vfs.openRead('/r.bin', { start: 5, end: 4 }), code('TBDAV_RANGE'));
    await assert.rejects(f.vfs.openRead('/missing'), code('TBDAV_NOT_FOUND'));
    await f.vfs.mkdir('/d');
    await assert.rejects(f.vfs.openRead('/d'), code('TBDAV_CONFLICT'));
    const { entry, stream } = await f.vfs.openRead('/r.bin', { start: 0, end: 0 });
    assert.equal(entry.size, 100_000);
    assert.equal((await readAll(stream)).length, 1);
  });
});

test('openRead of an empty file gives an empty stream, with or without a range', async () => {
  await withFixture(async (f) => {
    await f.put('/e', '');
    assert.equal((await f.read('/e')).length, 0);
    assert.equal((await f.read('/e', { start: 0 })).length, 0);
  });
});

// ------------------------------------------------------------------ mkdir / remove

test('mkdir: EXISTS on anything there, CONFLICT without parent', async () => {
  await withFixture(async (f) => {
    const e = await f.vfs.mkdir('/a/');
    assert.equal(e.path, '/a');
    assert.equal(e.isDir, true);
    await assert.rejects(f.vfs.mkdir('/a'), code('TBDAV_EXISTS'));
    await assert.rejects(f.vfs.mkdir('/'), code('TBDAV_EXISTS'));
    await f.put('/a/f', 'x');
    await assert.rejects(f.vfs.mkdir('/a/f'), code('TBDAV_EXISTS'));
    await assert.rejects(f.vfs.mkdir('/b/c'), code('TBDAV_CONFLICT'));
    await assert.rejects(f.vfs.mkdir('/a/f/g'), code('TBDAV_CONFLICT'));
  });
});

test('remove: files and folders with local files and props inside; NOT_FOUND when absent; root refused', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    await f.put('/d/a', 'a');
    await f.put('/d/.DS_Store', 'x');
    await f.vfs.patchProps('/d/a', { '{urn:x}p': 'v' });
    await f.vfs.remove('/d');
    await assert.rejects(f.vfs.stat('/d'), code('TBDAV_NOT_FOUND'));
    await assert.rejects(f.vfs.stat('/d/.DS_Store'), code('TBDAV_NOT_FOUND'));
    assert.deepEqual(await f.vfs.getProps('/d/a'), {});
    await assert.rejects(f.vfs.remove('/d'), code('TBDAV_NOT_FOUND'));
    await assert.rejects(f.vfs.remove('/'), code('TBDAV_BAD_REQUEST'));
    // the same name again starts clean
    await f.vfs.mkdir('/d');
    assert.deepEqual(await f.names('/d'), []);
  });
});

// ------------------------------------------------------------------ move / copy

test('move: overwrite rules, missing source/parent, onto itself or its own subtree', async () => {
  await withFixture(async (f) => {
    await f.put('/a', 'A');
    await f.put('/b', 'BB');
    await assert.rejects(f.vfs.move('/a', '/b', { overwrite: false }), code('TBDAV_PRECONDITION'));
    const r = await f.vfs.move('/a', '/b', { overwrite: true });
    assert.equal(r.created, false);
    assert.equal((await f.read('/b')).toString(), 'A');
    await assert.rejects(f.vfs.stat('/a'), code('TBDAV_NOT_FOUND'));
    assert.equal((await f.vfs.move('/b', '/c', { overwrite: false })).created, true);
    await assert.rejects(f.vfs.move('/nope', '/x', { overwrite: true }), code('TBDAV_NOT_FOUND'));
    await assert.rejects(f.vfs.move('/c', '/no/c', { overwrite: true }), code('TBDAV_CONFLICT'));
    await f.vfs.mkdir('/d');
    await assert.rejects(f.vfs.move('/d', '/d', { overwrite: true }), code('TBDAV_BAD_REQUEST'));
    await assert.rejects(f.vfs.move('/d', '/d/e', { overwrite: true }), code('TBDAV_BAD_REQUEST'));
    await assert.rejects(f.vfs.move('/', '/x', { overwrite: true }), code('TBDAV_BAD_REQUEST'));
  });
});

test('move/copy onto an existing folder with overwrite replaces it whole', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/src');
    await f.put('/src/new', 'n');
    await f.vfs.mkdir('/dst');
    await f.put('/dst/old', 'o');
    await f.vfs.patchProps('/dst/old', { '{urn:x}p': 'old' });
    const r = await f.vfs.copy('/src', '/dst', { overwrite: true, depth: 'infinity' });
    assert.equal(r.created, false);
    assert.deepEqual(await f.names('/dst'), ['new']);
    assert.deepEqual(await f.vfs.getProps('/dst/old'), {});
    await f.put('/file', 'f');
    const m = await f.vfs.move('/file', '/dst', { overwrite: true });
    assert.equal(m.created, false);
    assert.equal((await f.vfs.stat('/dst')).isDir, false);
    assert.equal((await f.read('/dst')).toString(), 'f');
    assert.deepEqual((await f.remote.list('/')).map((e) => e.name), ['dst', 'src']);
  });
});

test('copy: file and folder; depth 0 of a folder creates an empty folder; rules as for move', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/s');
    await f.put('/s/x', 'xx');
    await f.vfs.mkdir('/s/in');
    assert.equal((await f.vfs.copy('/s', '/t', { overwrite: false, depth: 'infinity' })).created, true);
    assert.deepEqual(await f.names('/t'), ['in', 'x']);
    assert.equal((await f.read('/t/x')).toString(), 'xx');
    assert.deepEqual(await f.names('/s'), ['in', 'x']);
    assert.equal((await f.vfs.copy('/s', '/u', { overwrite: false, depth: 0 })).created, true);
    assert.equal((await f.vfs.stat('/u')).isDir, true);
    assert.deepEqual(await f.names('/u'), []);
    assert.deepEqual((await f.remote.list('/u')).map((e) => e.name), []);
    await assert.rejects(f.vfs.copy('/s/x', '/t/x', { overwrite: false, depth: 'infinity' }), code('TBDAV_PRECONDITION'));
    await assert.rejects(f.vfs.copy('/s', '/s/in/deeper', { overwrite: false, depth: 'infinity' }), code('TBDAV_BAD_REQUEST'));
    await assert.rejects(f.vfs.copy('/zz', '/yy', { overwrite: false, depth: 'infinity' }), code('TBDAV_NOT_FOUND'));
    await assert.rejects(f.vfs.copy('/s', '/no/s', { overwrite: false, depth: 'infinity' }), code('TBDAV_CONFLICT'));
  });
});

// ------------------------------------------------------------------ dead properties and local files follow

test('dead props persist across re-open and follow move, copy and delete (prefix-aware)', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    await f.put('/d/a', 'a');
    await f.vfs.mkdir('/dd');
    await f.put('/dd/a', 'other');
    await f.vfs.patchProps('/d', { '{DAV:}displayname-x': 'folder', '{urn:schemas-microsoft-com:}Win32FileAttributes': '00000020' });
    await f.vfs.patchProps('/d/a', { '{urn:x}color': '<x:red xmlns:x="urn:x"/>' });
    await f.vfs.patchProps('/dd/a', { '{urn:x}color': 'blue' });
    let vfs = await f.reopen();
    assert.deepEqual(await vfs.getProps('/d/a'), { '{urn:x}color': '<x:red xmlns:x="urn:x"/>' });
    assert.equal((await vfs.getProps('/d'))['{urn:schemas-microsoft-com:}Win32FileAttributes'], '00000020');
    // patch: remove one, set another, atomically
    await vfs.patchProps('/d', { '{DAV:}displayname-x': null, '{urn:x}n': '1' });
    assert.deepEqual(await vfs.getProps('/d'), { '{urn:schemas-microsoft-com:}Win32FileAttributes': '00000020', '{urn:x}n': '1' });
    await vfs.move('/d', '/m', { overwrite: false });
    assert.deepEqual(await vfs.getProps('/d/a'), {});
    assert.deepEqual(await vfs.getProps('/m/a'), { '{urn:x}color': '<x:red xmlns:x="urn:x"/>' });
    assert.deepEqual(await vfs.getProps('/dd/a'), { '{urn:x}color': 'blue' }, '/dd is not inside /d');
    await vfs.copy('/m', '/c', { overwrite: false, depth: 'infinity' });
    assert.deepEqual(await vfs.getProps('/c/a'), { '{urn:x}color': '<x:red xmlns:x="urn:x"/>' });
    assert.deepEqual(await vfs.getProps('/m/a'), { '{urn:x}color': '<x:red xmlns:x="urn:x"/>' });
    await vfs.copy('/m', '/c0', { overwrite: false, depth: 0 });
    assert.equal((await vfs.getProps('/c0'))['{urn:x}n'], '1');
    assert.deepEqual(await vfs.getProps('/c0/a'), {});
    vfs = await f.reopen();
    assert.deepEqual(await vfs.getProps('/m/a'), { '{urn:x}color': '<x:red xmlns:x="urn:x"/>' });
    await vfs.remove('/m');
    assert.deepEqual(await vfs.getProps('/m/a'), {});
    assert.deepEqual(await vfs.getProps('/m'), {});
    vfs = await f.reopen();
    assert.deepEqual(await vfs.getProps('/m/a'), {});
    assert.deepEqual(await vfs.getProps('/c/a'), { '{urn:x}color': '<x:red xmlns:x="urn:x"/>' });
  });
});

test('local files (placeholders, ignored names) follow moves and copies of their folder', async () => {
  await withFixture(
    async (f) => {
      await f.vfs.mkdir('/d');
      await f.put('/d/.DS_Store', 'ds');
      await f.put('/d/empty', '');
      await f.put('/d/real', 'r');
      await f.vfs.move('/d', '/e', { overwrite: false });
      assert.deepEqual(await f.names('/e'), ['.DS_Store', 'empty', 'real']);
      assert.deepEqual(await f.names('/'), ['e']);
      await f.vfs.copy('/e', '/c', { overwrite: false, depth: 'infinity' });
      assert.deepEqual(await f.names('/c'), ['.DS_Store', 'empty', 'real']);
      assert.equal((await f.read('/c/.DS_Store')).toString(), 'ds');
      // copies are independent
      await f.put('/c/.DS_Store', 'changed');
      assert.equal((await f.read('/e/.DS_Store')).toString(), 'ds');
      // a local file itself can be moved and copied
      await f.vfs.move('/e/empty', '/e/renamed', { overwrite: false });
      await f.vfs.copy('/e/.DS_Store', '/c/ds-copy', { overwrite: false, depth: 'infinity' });
      assert.deepEqual(await f.names('/e'), ['.DS_Store', 'real', 'renamed']);
      assert.equal((await f.read('/c/ds-copy')).toString(), 'ds');
      assert.equal(f.remote.calls.move, 1, 'only the folder move went to the remote');
    },
    { refuseZeroByte: true },
  );
});

test('patchProps and getProps refuse bad paths; stat/list normalise paths', async () => {
  await withFixture(async (f) => {
    await assert.rejects(f.vfs.getProps('/a/../b'), code('TBDAV_BAD_REQUEST'));
    await assert.rejects(f.vfs.stat('/a\0'), code('TBDAV_INVALID_NAME'));
    await f.vfs.mkdir('/Caf\u00e9');
    assert.equal((await f.vfs.stat('/Cafe\u0301/')).path, '/Caf\u00e9');
    await f.put('/f', 'x');
    await assert.rejects(f.vfs.list('/f'), code('TBDAV_CONFLICT'));
    await assert.rejects(f.vfs.list('/nope'), code('TBDAV_NOT_FOUND'));
  });
});

// ------------------------------------------------------------------ quota

test('quota is cached for quotaTtlMs', async () => {
  let t = 0;
  await withFixture(
    async (f) => {
      const q1 = await f.vfs.quota();
      assert.equal(q1.used, 0);
      assert.ok(q1.total > 0);
      await f.put('/a', 'abc');
      assert.equal((await f.vfs.quota()).used, 0, 'cached');
      assert.equal(f.remote.calls.quota, 1);
      t += 1001;
      assert.equal((await f.vfs.quota()).used, 3);
      assert.equal(f.remote.calls.quota, 2);
    },
    {},
    { quotaTtlMs: 1000, now: () => t },
  );
});

// ------------------------------------------------------------------ start-up clean-up and resilience

test('open removes spool files of an earlier run and orphan local blobs, keeps referenced ones', async () => {
  await withFixture(async (f) => {
    await f.put('/.DS_Store', 'keep me');
    const spoolDir = join(f.cacheDir, 'spool');
    await mkdir(spoolDir, { recursive: true });
    const old = join(spoolDir, 'old.part');
    const fresh = join(spoolDir, 'fresh.part');
    await writeFile(old, 'x');
    await writeFile(fresh, 'y');
    await utimes(old, new Date(Date.now() - 86_400_000), new Date(Date.now() - 86_400_000));
    await writeFile(join(f.stateDir, 'local', 'orphan'), 'z');
    const vfs = await f.reopen();
    assert.deepEqual((await readdir(spoolDir)).sort(), ['fresh.part']);
    const blobs = await readdir(join(f.stateDir, 'local'));
    assert.equal(blobs.length, 1);
    assert.ok(!blobs.includes('orphan'));
    assert.equal((await readAll((await vfs.openRead('/.DS_Store')).stream)).toString(), 'keep me');
  });
});

test('quota: a failing remote after a first answer gives the last known value', async () => {
  let t = 0;
  await withFixture(
    async (f) => {
      assert.equal((await f.vfs.quota()).used, 0);
      t += 10;
      const orig = f.remote.quota.bind(f.remote);
      f.remote.quota = async () => {
        throw new TbdavError('TBDAV_RETRYABLE', 'quota: rate limited');
      };
      try {
        assert.equal((await f.vfs.quota()).used, 0);
      } finally {
        f.remote.quota = orig;
      }
    },
    {},
    { quotaTtlMs: 5, now: () => t },
  );
});

test('quota without a first answer propagates the error; a remote without quota reports a large total', async () => {
  await withFixture(async (f) => {
    f.remote.quota = async () => {
      throw new TbdavError('TBDAV_AUTH', 'quota: not logged in');
    };
    await assert.rejects(f.vfs.quota(), code('TBDAV_AUTH'));
    (f.remote as { quota?: unknown }).quota = undefined;
    const q = await f.vfs.quota();
    assert.ok(q.total >= 2 ** 40);
    assert.equal(q.used, 0);
  });
});

test('move and copy record an X-OC-Mtime for the destination', async () => {
  await withFixture(async (f) => {
    await f.put('/a', 'a');
    const t1 = Date.UTC(2019, 5, 1);
    const t2 = Date.UTC(2018, 1, 1);
    await f.vfs.copy('/a', '/b', { overwrite: false, depth: 'infinity', mtime: t1 });
    await f.vfs.move('/a', '/c', { overwrite: false, mtime: t2 });
    const vfs = await f.reopen();
    assert.equal((await vfs.stat('/b')).mtime, t1);
    assert.equal((await vfs.stat('/c')).mtime, t2);
  });
});

test('openRead passes the clamped range down to the remote (only those bytes are pulled)', async () => {
  await withFixture(async (f) => {
    const data = randomBytes(50_000);
    await f.put('/r.bin', data);
    const seen: unknown[] = [];
    const orig = f.remote.openRead.bind(f.remote);
    f.remote.openRead = (path, range, opts) => {
      seen.push(range);
      return orig(path, range, opts);
    };
    assert.deepEqual(await f.read('/r.bin', { start: 100, end: 199 }), data.subarray(100, 200));
    assert.deepEqual(await f.read('/r.bin', { start: 49_000, end: 99_999 }), data.subarray(49_000));
    assert.deepEqual(await f.read('/r.bin', { start: 7 }), data.subarray(7));
    assert.deepEqual(await f.read('/r.bin'), data);
    assert.deepEqual(seen, [{ start: 100, end: 199 }, { start: 49_000, end: 49_999 }, { start: 7, end: 49_999 }, undefined]);
  });
});

test('a failed upload leaves no spool file and no entry', async () => {
  await withFixture(async (f) => {
    f.remote.write = async () => {
      throw new TbdavError('TBDAV_RETRYABLE', 'write: service busy');
    };
    await assert.rejects(f.put('/x', randomBytes(10_000)), code('TBDAV_RETRYABLE'));
    assert.deepEqual(await f.spoolFiles(), []);
    await assert.rejects(f.vfs.stat('/x'), code('TBDAV_NOT_FOUND'));
    assert.deepEqual(await f.names('/'), []);
    // a transient failure of an empty file is not a refusal: no placeholder
    await assert.rejects(f.put('/y', ''), code('TBDAV_RETRYABLE'));
    await assert.rejects(f.vfs.stat('/y'), code('TBDAV_NOT_FOUND'));
  });
});

test('a file uploaded elsewhere at a placeholder path replaces the placeholder once the listing shows it', async () => {
  const t = { now: 0 };
  await withFixture(
    async (f) => {
      await f.vfs.mkdir('/d');
      await f.put('/d/doc', '');
      assert.equal((await f.vfs.stat('/d/doc')).local, true);
      // another client of the same drive stores real content there (straight through the remote)
      const spooled = await spoolBody(body('from elsewhere'), { cacheDir: f.cacheDir });
      await f.remote.write('/d/doc', spooled, { overwrite: true });
      await removeSpool(spooled);
      t.now += 10_000;
      assert.deepEqual((await f.vfs.list('/d')).map((e) => [e.name, e.size, e.local ?? false]), [['doc', 14, false]]);
      assert.equal((await f.read('/d/doc')).toString(), 'from elsewhere');
    },
    { refuseZeroByte: true },
    { now: () => t.now, cacheTtlMs: 5_000 },
  );
});
