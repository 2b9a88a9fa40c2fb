/**
 * TeraboxRemote against the Remote contract (src/remote/types.ts, MemoryRemote's behaviour) over
 * the emulator on port 0: list/stat/openRead with ranges/write/mkdir/remove/move/copy/quota.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { serviceMd5 } from '../../src/terabox/shards.js';
import { startRig, makeSpool, readAll, type Rig } from './setup.js';

const MiB = 1024 * 1024;
let rig: Rig;
let remote: TeraboxRemote;
let n = 0;
const spool = (data: Buffer | string) => makeSpool(rig.dir, `spool-${++n}`, 0, 4 * MiB, Buffer.from(data));

before(async () => {
  rig = await startRig();
  remote = new TeraboxRemote(rig.client, { root: rig.emu.appRoot, logger: rig.logger });
});
after(async () => {
  await rig?.close();
});

test('root: stat and list work before anything was written; a missing root folder is NOT_FOUND', async () => {
  const r = await remote.stat('/');
  assert.equal(r.isDir, true);
  assert.equal(r.path, '/');
  assert.equal(r.name, '');
  assert.deepEqual(await remote.list('/'), []);
  const elsewhere = new TeraboxRemote(rig.client, { root: `${rig.emu.appRoot}/not-yet/` });
  await assert.rejects(elsewhere.list('/'), { code: 'TBDAV_NOT_FOUND' });
  await assert.rejects(elsewhere.stat('/'), { code: 'TBDAV_NOT_FOUND' });
  await rig.client.createDir(`${rig.emu.appRoot}/not-yet`);
  assert.equal((await elsewhere.stat('/')).isDir, true);
  assert.deepEqual(await elsewhere.list('/'), []);
  await rig.client.filemanager('delete', [`${rig.emu.appRoot}/not-yet`]);
});

test('mkdir, stat, list and their errors', async () => {
  const d = await remote.mkdir('/docs');
  assert.equal(d.isDir, true);
  assert.equal(d.name, 'docs');
  assert.ok(d.id);
  await assert.rejects(remote.mkdir('/docs'), { code: 'TBDAV_EXISTS' });
  await assert.rejects(remote.mkdir('/missing/child'), { code: 'TBDAV_CONFLICT' });
  await assert.rejects(remote.mkdir('/'), { code: 'TBDAV_EXISTS' });
  await assert.rejects(remote.stat('/nope'), { code: 'TBDAV_NOT_FOUND' });
  await assert.rejects(remote.list('/nope'), { code: 'TBDAV_NOT_FOUND' });
  assert.deepEqual(await remote.list('/docs'), []);
  const s = await remote.stat('/docs');
  assert.equal(s.isDir, true);
  assert.ok(s.mtime > 1_000_000_000_000, 'mtime in ms');
});

test('write, stat, list, read back, ranges', async () => {
  const text = 'The quick brown fox jumps over the lazy dog';
  const f = await spool(text);
  const w = await remote.write('/docs/fox.txt', f, { overwrite: false });
  assert.equal(w.rapid, false);
  assert.equal(w.entry.path, '/docs/fox.txt');
  assert.equal(w.entry.size, text.length);
  assert.equal(w.entry.hash, f.contentMd5, 'one shard: the content md5');
  const s = await remote.stat('/docs/fox.txt');
  assert.equal(s.isDir, false);
  assert.equal(s.size, text.length);
  assert.equal(s.id, w.entry.id);
  assert.equal(s.hash, f.contentMd5);
  const l = await remote.list('/docs');
  assert.deepEqual(l.map((e) => [e.name, e.path, e.size]), [['fox.txt', '/docs/fox.txt', text.length]]);
  await assert.rejects(remote.list('/docs/fox.txt'), { code: 'TBDAV_CONFLICT' });

  assert.equal((await readAll(await remote.openRead('/docs/fox.txt'))).toString(), text);
  assert.equal((await readAll(await remote.openRead('/docs/fox.txt', { start: 4, end: 8 }))).toString(), 'quick');
  assert.equal((await readAll(await remote.openRead('/docs/fox.txt', { start: 0, end: 0 }))).toString(), 'T');
  assert.equal((await readAll(await remote.openRead('/docs/fox.txt', { start: text.length - 3 }))).toString(), 'dog');
  assert.equal((await readAll(await remote.openRead('/docs/fox.txt', { start: 40, end: 1000 }))).toString(), 'dog');
  assert.equal((await readAll(await remote.openRead('/docs/fox.txt', { start: 4, end: 8 }, { entry: s }))).toString(), 'quick');
  await assert.rejects(remote.openRead('/docs/fox.txt', { start: text.length }), { code: 'TBDAV_RANGE' });
  await assert.rejects(remote.openRead('/docs'), { code: 'TBDAV_CONFLICT' });
  await assert.rejects(remote.openRead('/docs/none.txt'), { code: 'TBDAV_NOT_FOUND' });
});

test('write: exists without overwrite, replaced with it, conflict without parent or onto a folder', async () => {
  const a = await spool('version one');
  const b = await spool('version two, longer');
  await remote.write('/docs/v.txt', a, { overwrite: false });
  await assert.rejects(remote.write('/docs/v.txt', b, { overwrite: false }), { code: 'TBDAV_EXISTS' });
  const w = await remote.write('/docs/v.txt', b, { overwrite: true });
  assert.equal(w.entry.size, b.size);
  assert.equal((await readAll(await remote.openRead('/docs/v.txt'))).toString(), 'version two, longer');
  await assert.rejects(remote.write('/nowhere/v.txt', a, { overwrite: true }), { code: 'TBDAV_CONFLICT' });
  await assert.rejects(remote.write('/docs', a, { overwrite: true }), { code: 'TBDAV_CONFLICT' });
  assert.deepEqual((await remote.list('/docs')).map((e) => e.name), ['fox.txt', 'v.txt'], 'no renamed copies left behind');
});

test('rapid upload onto an existing file with overwrite replaces it in place', async () => {
  const a = await spool('rapid content A');
  const b = await spool('other content B');
  await remote.write('/docs/ra.txt', a, { overwrite: false });
  await remote.write('/docs/rb.txt', b, { overwrite: false });
  const sf = rig.count('/rest/2.0/pcs/superfile2');
  const w = await remote.write('/docs/rb.txt', a, { overwrite: true });
  assert.equal(w.rapid, true);
  assert.equal(rig.count('/rest/2.0/pcs/superfile2'), sf);
  assert.equal((await readAll(await remote.openRead('/docs/rb.txt'))).toString(), 'rapid content A');
  await assert.rejects(remote.write('/docs/ra.txt', b, { overwrite: false }), { code: 'TBDAV_EXISTS' });
  assert.deepEqual((await remote.list('/docs')).map((e) => e.name), ['fox.txt', 'ra.txt', 'rb.txt', 'v.txt']);
});

test('multi-shard file: hash is md5 of the shard list, ranges across shard borders', async () => {
  const f = await makeSpool(rig.dir, 'multi.bin', 5 * MiB);
  const w = await remote.write('/multi.bin', f, { overwrite: false });
  assert.equal(w.entry.hash, serviceMd5(f.blockMd5s));
  assert.notEqual(w.entry.hash, f.contentMd5);
  const start = 4 * MiB - 10;
  const got = await readAll(await remote.openRead('/multi.bin', { start, end: start + 19 }));
  assert.deepEqual(got, f.data.subarray(start, start + 20));
});

test('destroying a read stops the transfer upstream', async () => {
  const f = await makeSpool(rig.dir, 'slow.bin', 8 * MiB);
  await remote.write('/slow.bin', f, { overwrite: false });
  rig.emu.setOptions({ throughputBytesPerSec: 512 * 1024 });
  try {
    const servedBefore = rig.emu.counters.bytesServed;
    const s = await remote.openRead('/slow.bin');
    const first: Buffer = await new Promise((resolve, reject) => {
      s.once('data', resolve);
      s.once('error', reject);
    });
    assert.ok(first.length > 0);
    s.destroy();
    await sleep(500);
    assert.ok(rig.emu.counters.bytesServed - servedBefore < 8 * MiB, 'the emulator did not serve the whole file');
  } finally {
    rig.emu.setOptions({ throughputBytesPerSec: 0 });
  }
});

test('an expired dlink is fetched again', async () => {
  const f = await spool('dlink expiry test');
  await remote.write('/dl.txt', f, { overwrite: false });
  rig.emu.setOptions({ dlinkTtlSec: 1 });
  try {
    assert.equal((await readAll(await remote.openRead('/dl.txt'))).toString(), 'dlink expiry test');
    const downloads = rig.count('/openapi/api/download');
    await sleep(2100);
    assert.equal((await readAll(await remote.openRead('/dl.txt'))).toString(), 'dlink expiry test');
    assert.equal(rig.count('/openapi/api/download') - downloads, 1, 'one fresh dlink after the 403');
  } finally {
    rig.emu.setOptions({ dlinkTtlSec: 3600 });
  }
});

test('a cached dlink with a server-side expired access token: one refresh, then the bytes', async () => {
  const f = await spool('token expiry while reading');
  await remote.write('/tok.txt', f, { overwrite: false });
  assert.equal((await readAll(await remote.openRead('/tok.txt'))).toString(), 'token expiry while reading'); // dlink cached
  const entry = await remote.stat('/tok.txt');
  rig.emu.expireAccessTokens();
  const refreshes = rig.count('/oauth/refreshtoken');
  const downloads = rig.count('/openapi/api/download');
  assert.equal((await readAll(await remote.openRead('/tok.txt', undefined, { entry }))).toString(), 'token expiry while reading');
  assert.equal(rig.count('/oauth/refreshtoken') - refreshes, 1);
  assert.equal(rig.count('/openapi/api/download') - downloads, 0, 'the cached dlink was still good: only the token was refreshed');
});

test('openRead with a stale entry (file replaced since) reads the new file', async () => {
  await remote.write('/stale.txt', await spool('old bytes'), { overwrite: false });
  const old = await remote.stat('/stale.txt');
  assert.equal((await readAll(await remote.openRead('/stale.txt', undefined, { entry: old }))).toString(), 'old bytes'); // dlink cached
  await remote.write('/stale.txt', await spool('new bytes, longer'), { overwrite: true });
  assert.notEqual((await remote.stat('/stale.txt')).id, old.id);
  assert.equal((await readAll(await remote.openRead('/stale.txt', undefined, { entry: old }))).toString(), 'new bytes, longer');
});

test('concurrent range reads of one file share one download-link call', async () => {
  const f = await makeSpool(rig.dir, 'par.bin', 256 * 1024);
  await remote.write('/par.bin', f, { overwrite: false });
  const entry = await remote.stat('/par.bin');
  const fresh = new TeraboxRemote(rig.client, { root: rig.emu.appRoot }); // empty dlink cache
  const d0 = rig.count('/openapi/api/download');
  const ranges = [0, 1, 2, 3, 4].map((i) => ({ start: i * 50_000, end: i * 50_000 + 999 }));
  const parts = await Promise.all(ranges.map(async (r) => readAll(await fresh.openRead('/par.bin', r, { entry }))));
  parts.forEach((p, i) => assert.deepEqual(p, f.data.subarray(ranges[i]!.start, ranges[i]!.end + 1)));
  assert.equal(rig.count('/openapi/api/download') - d0, 1);
});

test('move and copy: files and folders, overwrite, errors', async () => {
  await remote.mkdir('/m');
  await remote.mkdir('/m/sub');
  await remote.write('/m/sub/x.txt', await spool('x content'), { overwrite: false });
  await remote.write('/m/y.txt', await spool('y content'), { overwrite: false });

  await remote.move('/m/y.txt', '/m/y2.txt', { overwrite: false }); // rename
  await assert.rejects(remote.stat('/m/y.txt'), { code: 'TBDAV_NOT_FOUND' });
  await remote.move('/m/y2.txt', '/m/sub/y.txt', { overwrite: false }); // move to another folder
  assert.deepEqual((await remote.list('/m/sub')).map((e) => e.name), ['x.txt', 'y.txt']);

  await remote.copy('/m/sub', '/m/copy', { overwrite: false }); // folder with content
  assert.deepEqual((await remote.list('/m/copy')).map((e) => e.name), ['x.txt', 'y.txt']);
  assert.equal((await readAll(await remote.openRead('/m/copy/x.txt'))).toString(), 'x content');

  await assert.rejects(remote.copy('/m/sub/x.txt', '/m/sub/y.txt', { overwrite: false }), { code: 'TBDAV_EXISTS' });
  await remote.copy('/m/sub/x.txt', '/m/sub/y.txt', { overwrite: true });
  assert.equal((await readAll(await remote.openRead('/m/sub/y.txt'))).toString(), 'x content');

  await assert.rejects(remote.move('/m/copy', '/m/sub', { overwrite: false }), { code: 'TBDAV_EXISTS' });
  await remote.move('/m/copy', '/m/sub', { overwrite: true }); // folder replaces folder
  assert.deepEqual((await remote.list('/m')).map((e) => e.name), ['sub']);

  await assert.rejects(remote.move('/m/none', '/m/z', { overwrite: false }), { code: 'TBDAV_NOT_FOUND' });
  await assert.rejects(remote.move('/m/sub', '/nowhere/sub', { overwrite: false }), { code: 'TBDAV_CONFLICT' });
  await assert.rejects(remote.copy('/m/sub', '/m/sub/inner', { overwrite: false }), { code: 'TBDAV_BAD_REQUEST' });
  await assert.rejects(remote.move('/m/sub', '/m/sub', { overwrite: true }), { code: 'TBDAV_BAD_REQUEST' });
});

test('remove files and folders; errors', async () => {
  await remote.mkdir('/r');
  await remote.write('/r/a.txt', await spool('a'), { overwrite: false });
  await remote.remove('/r/a.txt');
  await assert.rejects(remote.stat('/r/a.txt'), { code: 'TBDAV_NOT_FOUND' });
  await remote.write('/r/b.txt', await spool('b'), { overwrite: false });
  await remote.remove('/r');
  await assert.rejects(remote.stat('/r'), { code: 'TBDAV_NOT_FOUND' });
  await assert.rejects(remote.remove('/r'), { code: 'TBDAV_NOT_FOUND' });
  await assert.rejects(remote.remove('/'), { code: 'TBDAV_BAD_REQUEST' });
});

test('names with spaces, unicode, # % & + survive every call; refused names are TBDAV_INVALID_NAME', async () => {
  const dir = '/Ünïcødé & friends #1';
  const name = `${dir}/50% off + more; ok=yes.txt`;
  await remote.mkdir(dir);
  await remote.write(name, await spool('odd names'), { overwrite: false });
  assert.deepEqual((await remote.list(dir)).map((e) => e.name), ['50% off + more; ok=yes.txt']);
  assert.equal((await remote.stat(name)).size, 9);
  assert.equal((await readAll(await remote.openRead(name, { start: 4 }))).toString(), 'names');
  await remote.move(name, `${dir}/renamed ✓.txt`, { overwrite: false });
  assert.equal((await readAll(await remote.openRead(`${dir}/renamed ✓.txt`))).toString(), 'odd names');
  await assert.rejects(remote.mkdir('/bad:name'), { code: 'TBDAV_INVALID_NAME' });
  await assert.rejects(remote.write('/what?.txt', await spool('x'), { overwrite: false }), { code: 'TBDAV_INVALID_NAME' });
  await remote.remove(dir);
});

test('quota', async () => {
  const q = await remote.quota();
  assert.ok(q.total > 0);
  assert.ok(q.used > 0 && q.used <= q.total);
});

test('an aborted signal stops a call', async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(remote.list('/', { signal: ac.signal }), { code: 'TBDAV_ABORTED' });
});

test('mkdir whose answer was lost: found after the retry and flagged maybeNotEmpty; a clean one is not', async () => {
  await remote.mkdir('/lost-answers');
  rig.emu.setOptions({ faults: { rate: 0.5, seed: 11, kinds: ['reset'], endpoints: ['/openapi/api/create'], phase: 'after' } });
  const flags: (boolean | undefined)[] = [];
  try {
    for (let i = 0; i < 12; i++) flags.push((await remote.mkdir(`/lost-answers/d${i}`)).maybeNotEmpty);
  } finally {
    rig.emu.setOptions({ faults: undefined });
  }
  assert.ok(flags.includes(true), `some creations were inferred after a lost answer: ${JSON.stringify(flags)}`);
  assert.ok(flags.includes(undefined), `some were answered directly: ${JSON.stringify(flags)}`);
  assert.equal((await remote.list('/lost-answers')).length, 12);
});

test('a filemetas item failing with an errno other than -9 is an error of the stat, not "absent"', async () => {
  await remote.mkdir('/item-errno');
  rig.emu.setOptions({ faults: { rate: 1, seed: 1, kinds: ['itemErrno'], endpoints: ['/openapi/api/filemetas'] } });
  try {
    await assert.rejects(remote.stat('/item-errno'), (err: unknown) => {
      const code = (err as { code?: string }).code;
      return typeof code === 'string' && code !== 'TBDAV_NOT_FOUND';
    });
  } finally {
    rig.emu.setOptions({ faults: undefined });
  }
  assert.equal((await remote.stat('/item-errno')).isDir, true);
});
