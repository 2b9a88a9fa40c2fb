/**
 * TeraboxClient against the emulator over real HTTP on port 0: every endpoint once, the device
 * code login, the 9 MiB sharded upload and its rapid re-upload, token refresh (single-flight,
 * single-use refresh tokens), injected faults, and no secret in the debug log.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { FileTokenStore, MemoryTokenStore } from '../../src/terabox/auth/token-store.js';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { serviceMd5 } from '../../src/terabox/shards.js';
import { isTeraboxApiError } from '../../src/terabox/errors.js';
import { startRig, makeSpool, readAll, type Rig } from './setup.js';

const MiB = 1024 * 1024;
let rig: Rig;
let root: string;

before(async () => {
  rig = await startRig();
  root = rig.emu.appRoot;
});
after(async () => {
  await rig?.close();
});

test('tokeninfo, uinfo, active, quota', async () => {
  const info = await rig.client.tokenInfo();
  assert.equal(info.client_id, rig.emu.credentials.clientId);
  assert.equal(info.api_domain, rig.emu.apiDomain);
  assert.equal(info.upload_domain, rig.emu.uploadDomain);
  const u = await rig.client.uinfo();
  assert.equal(typeof u.uk, 'number');
  const a = await rig.client.active();
  assert.match(String(a.order_id), /^\d+$/);
  const q = await rig.client.quota();
  assert.ok(q.total > 0);
  assert.ok(q.used >= 0);
});

test('folders, small upload, list, filemetas, search, download, dlink with range, filemanager', async () => {
  const dir = `${root}/ep`;
  const mk = await rig.client.createDir(dir);
  assert.equal(mk.isdir, 1);
  await assert.rejects(rig.client.createDir(dir), (e: unknown) => isTeraboxApiError(e) && e.code === 'TBDAV_EXISTS');

  const body = Buffer.from('hello terabox, this is a small file\n');
  const spool = await makeSpool(rig.dir, 'small.bin', 0, 4 * MiB, body);
  const pre = await rig.client.precreate(`${dir}/a.txt`, spool.blockMd5s, spool.size);
  assert.equal(pre.return_type, 1);
  assert.ok(pre.uploadid);
  const part = await rig.client.superfile2(`${dir}/a.txt`, pre.uploadid!, 0, { localPath: spool.localPath, start: 0, length: spool.size });
  assert.equal(part.md5, spool.blockMd5s[0]);
  const created = await rig.client.create(`${dir}/a.txt`, spool.size, pre.uploadid!, spool.blockMd5s, 0);
  assert.equal(created.md5, spool.contentMd5);
  assert.equal(created.size, body.length);

  const listed = await rig.client.list(dir);
  assert.deepEqual(listed.map((f) => f.server_filename), ['a.txt']);
  const all = await rig.client.listAll(dir, { num: 1 });
  assert.equal(all.length, 1);

  const metas = await rig.client.filemetas([`${dir}/a.txt`], { dlink: true });
  assert.equal(metas[0]!.fs_id, created.fs_id);
  assert.ok(metas[0]!.dlink);

  const found = await rig.client.search('a.txt', { dir });
  assert.ok(found.list.some((f) => f.fs_id === created.fs_id));

  const links = await rig.client.download([created.fs_id]);
  assert.equal(links[0]!.fs_id, String(created.fs_id));
  const res = await rig.client.openDlink(links[0]!.dlink, { start: 6, end: 12 });
  assert.equal(res.statusCode, 206);
  assert.equal((await readAll(res.body)).toString(), 'terabox');

  await rig.client.filemanager('copy', [{ path: `${dir}/a.txt`, dest: dir, newname: 'b.txt' }]);
  await rig.client.filemanager('rename', [{ path: `${dir}/b.txt`, newname: 'c.txt' }]);
  await rig.client.createDir(`${dir}/sub`);
  await rig.client.filemanager('move', [{ path: `${dir}/c.txt`, dest: `${dir}/sub`, newname: 'c.txt' }]);
  assert.deepEqual((await rig.client.listAll(`${dir}/sub`)).map((f) => f.server_filename), ['c.txt']);
  await assert.rejects(
    rig.client.filemanager('move', [{ path: `${dir}/nope.txt`, dest: dir, newname: 'x.txt' }]),
    (e: unknown) => isTeraboxApiError(e) && e.code === 'TBDAV_NOT_FOUND',
  );
  await rig.client.filemanager('delete', [`${dir}/sub`]);
  assert.deepEqual((await rig.client.listAll(dir)).map((f) => f.server_filename), ['a.txt']);
});

test('streaming gives an m3u8 for a video', async () => {
  const spool = await makeSpool(rig.dir, 'v.bin', 64 * 1024);
  const pre = await rig.client.precreate(`${root}/clip.mp4`, spool.blockMd5s, spool.size);
  if (pre.return_type === 1) {
    await rig.client.superfile2(`${root}/clip.mp4`, pre.uploadid!, 0, { localPath: spool.localPath, start: 0, length: spool.size });
    await rig.client.create(`${root}/clip.mp4`, spool.size, pre.uploadid!, spool.blockMd5s, 0);
  }
  const m3u8 = await rig.client.streaming(`${root}/clip.mp4`, 'M3U8_AUTO_720');
  assert.match(m3u8, /^#EXTM3U/);
});

test('share endpoints: verify, shorturlinfo, list, download, streaming, mediameta, transfer', async () => {
  await rig.client.createDir(`${root}/shared`);
  const spool = await makeSpool(rig.dir, 's.bin', 32 * 1024);
  const pre = await rig.client.precreate(`${root}/shared/song.mp3`, spool.blockMd5s, spool.size);
  await rig.client.superfile2(`${root}/shared/song.mp3`, pre.uploadid!, 0, { localPath: spool.localPath, start: 0, length: spool.size });
  await rig.client.create(`${root}/shared/song.mp3`, spool.size, pre.uploadid!, spool.blockMd5s, 0);
  const share = await rig.emu.createShare([`${root}/shared/song.mp3`], 'ab12');
  const surlPart = share.surl; // the part after /s/1
  const shortUrl = share.shorturl; // the part after /s/

  await assert.rejects(rig.client.shareVerify(surlPart, 'zzzz'), (e: unknown) => isTeraboxApiError(e) && e.errno === -12);
  const v = await rig.client.shareVerify(surlPart, 'ab12');
  assert.ok(v.sekey.length > 0, 'BOXCLND cookie kept');

  const info = await rig.client.shortUrlInfo(shortUrl, v.sekey);
  assert.equal(info.list.length, 1);
  const shareid = info.shareid;
  const uk = info.uk;
  const fid = info.list[0]!.fs_id;

  const sl = await rig.client.shareList(surlPart, v.sekey);
  assert.equal(sl.list[0]!.server_filename, 'song.mp3');

  const sd = await rig.client.shareDownload(shareid, uk, [fid], v.sekey);
  assert.ok(sd.list[0]!.dlink);
  const body = await readAll((await rig.client.openDlink(sd.list[0]!.dlink!)).body);
  assert.equal(createHash('md5').update(body).digest('hex'), spool.contentMd5);

  const m3u8 = await rig.client.shareStreaming(shareid, uk, fid, 'M3U8_MP3_128', v.sekey);
  assert.match(m3u8, /^#EXTM3U/);
  const mm = await rig.client.shareMediaMeta(shareid, uk, fid, v.sekey);
  assert.equal(typeof mm.duration, 'number');

  await rig.client.createDir(`${root}/transfer-in`);
  await rig.client.shareTransfer(shareid, uk, v.sekey, { fsIds: [fid], path: `${root}/transfer-in`, async: 0 });
  assert.deepEqual((await rig.client.listAll(`${root}/transfer-in`)).map((f) => f.server_filename), ['song.mp3']);
});

test('9 MiB upload goes as 4+4+1 MiB shards; the same content elsewhere is a rapid upload', async () => {
  const remote = new TeraboxRemote(rig.client, { root: `${root}/big` });
  await rig.client.createDir(`${root}/big`);
  const spool = await makeSpool(rig.dir, 'nine.bin', 9 * MiB);
  assert.equal(spool.blockMd5s.length, 3);
  const before = { pre: rig.count('/openapi/api/precreate'), sf: rig.count('/rest/2.0/pcs/superfile2'), cr: rig.count('/openapi/api/create') };
  const w = await remote.write('/nine.bin', spool, { overwrite: false });
  assert.equal(w.rapid, false);
  assert.equal(rig.count('/openapi/api/precreate') - before.pre, 1);
  assert.equal(rig.count('/rest/2.0/pcs/superfile2') - before.sf, 3);
  assert.equal(rig.count('/openapi/api/create') - before.cr, 1);
  assert.equal(w.entry.size, 9 * MiB);
  assert.equal(w.entry.hash, serviceMd5(spool.blockMd5s));
  // the entry reports what the service says; the content md5 is the caller's (the vfs's) to keep
  assert.equal('contentMd5' in w.entry, false);

  const back = await readAll(await remote.openRead('/nine.bin'));
  assert.equal(createHash('md5').update(back).digest('hex'), spool.contentMd5);

  const sf = rig.count('/rest/2.0/pcs/superfile2');
  const again = await remote.write('/copy-of-nine.bin', spool, { overwrite: false });
  assert.equal(again.rapid, true);
  assert.equal(rig.count('/rest/2.0/pcs/superfile2'), sf, 'no shard sent');
  assert.equal(again.entry.path, '/copy-of-nine.bin');
  assert.equal((await remote.stat('/copy-of-nine.bin')).size, 9 * MiB);
});

test('ten concurrent calls with expired tokens cause exactly one refresh', async () => {
  const r2 = await startRig();
  try {
    await r2.client.quota(); // domains cached, token in use
    r2.emu.expireAccessTokens();
    const refreshes = r2.count('/oauth/refreshtoken');
    const results = await Promise.all(Array.from({ length: 10 }, () => r2.client.quota()));
    assert.equal(results.length, 10);
    assert.equal(r2.count('/oauth/refreshtoken') - refreshes, 1);
    // the new pair was saved before use: a fresh client on the same store works without refreshing
    const c2 = r2.newClient();
    await c2.quota();
    assert.equal(r2.count('/oauth/refreshtoken') - refreshes, 1);
  } finally {
    await r2.close();
  }
});

test('a refresh token works once: reusing it fails with 200004', async () => {
  const store = new FileTokenStore(join(rig.dir, 'state'));
  const old = await store.load();
  assert.ok(old);
  await rig.client.refresh();
  const reuse = rig.newClient({ tokenStore: new MemoryTokenStore(old) });
  await assert.rejects(reuse.refresh(), (e: unknown) => isTeraboxApiError(e) && e.errno === 200004 && e.code === 'TBDAV_AUTH');
  // the client that refreshed keeps working with its new pair
  await rig.client.quota();
});

test('device-code login: poll until approved', async () => {
  const c = rig.newClient({ tokenStore: new MemoryTokenStore() });
  let shown = '';
  let ticks = 0;
  const tokens = await c.loginWithDeviceCode({
    intervalMs: 50,
    onCode: (code) => {
      shown = code.device_code;
      rig.emu.approveDevice();
    },
    onTick: () => ticks++,
  });
  assert.ok(shown.length > 0);
  assert.ok(ticks >= 1);
  assert.ok(tokens.accessToken.length > 0);
  await c.uinfo();
});

test('device-code login is abortable', async () => {
  const c = rig.newClient({ tokenStore: new MemoryTokenStore() });
  const ac = new AbortController();
  const p = c.loginWithDeviceCode({ intervalMs: 20, signal: ac.signal, onTick: (left) => left > 0 && ac.abort() });
  await assert.rejects(p, { code: 'TBDAV_ABORTED' });
});

test('20% injected faults: every call of a batch eventually succeeds', async () => {
  const r3 = await startRig();
  try {
    await r3.client.createDir(`${r3.emu.appRoot}/f`);
    r3.emu.setOptions({ faults: { rate: 0.2, seed: 42 } });
    const faultsBefore = r3.emu.counters.faultsInjected;
    const spool = await makeSpool(r3.dir, 'faults.bin', 1024);
    const jobs: Promise<unknown>[] = Array.from({ length: 40 }, (_, i) =>
      i % 4 === 0
        ? r3.client.quota()
        : i % 4 === 1
          ? r3.client.listAll(`${r3.emu.appRoot}/f`)
          : i % 4 === 2
            ? r3.client.uinfo()
            : r3.client.precreate(`${r3.emu.appRoot}/f/p${i}.bin`, spool.blockMd5s, spool.size),
    );
    const results = await Promise.allSettled(jobs);
    const failed = results.filter((r) => r.status === 'rejected');
    assert.deepEqual(failed, []);
    assert.ok(r3.emu.counters.faultsInjected - faultsBefore >= 3, `faults were injected (${r3.emu.counters.faultsInjected - faultsBefore})`);
    r3.emu.setOptions({ faults: { rate: 0 } });
  } finally {
    await r3.close();
  }
});

test('no secret reaches the debug log', async () => {
  const joined = rig.logs.join('');
  assert.ok(joined.length > 0, 'something was logged');
  assert.match(joined, /superfile2|precreate/, 'debug lines of API calls are there');
  assert.ok(rig.seenTokens.size >= 4, 'tokens of the login and of the refresh were seen');
  const secrets = [...rig.seenTokens, rig.emu.credentials.clientSecret, rig.emu.credentials.privateSecret];
  for (const s of secrets) assert.ok(!joined.includes(s), `a secret (${s.slice(0, 3)}...) leaked into the log`);
  assert.doesNotMatch(joined, /[?&]sign=[^[&"\s]/, 'no dlink signature');
});

test('retry policy: a 5xx is retried for create rtype 3, not for create rtype 0', async () => {
  const r4 = await startRig({}, { maxRetries: 2 });
  try {
    const root4 = r4.emu.appRoot;
    const spool = await makeSpool(r4.dir, 'p.bin', 100);
    const pre = await r4.client.precreate(`${root4}/p.bin`, spool.blockMd5s, spool.size);
    await r4.client.superfile2(`${root4}/p.bin`, pre.uploadid!, 0, { localPath: spool.localPath, start: 0, length: spool.size });
    r4.emu.setOptions({ faults: { rate: 1, kinds: ['http5xx'], endpoints: ['/openapi/api/create'] } });
    let n0 = r4.count('/openapi/api/create');
    await assert.rejects(r4.client.create(`${root4}/p.bin`, spool.size, pre.uploadid!, spool.blockMd5s, 0), { code: 'TBDAV_RETRYABLE' });
    assert.equal(r4.count('/openapi/api/create') - n0, 1, 'unsafe: one attempt only');
    n0 = r4.count('/openapi/api/create');
    await assert.rejects(r4.client.create(`${root4}/p.bin`, spool.size, pre.uploadid!, spool.blockMd5s, 3), { code: 'TBDAV_RETRYABLE' });
    assert.equal(r4.count('/openapi/api/create') - n0, 3, 'idempotent: 1 + maxRetries attempts');
    r4.emu.setOptions({ faults: { rate: 1, kinds: ['errno31034'], endpoints: ['/openapi/api/create'] } });
    n0 = r4.count('/openapi/api/create');
    await assert.rejects(r4.client.create(`${root4}/p.bin`, spool.size, pre.uploadid!, spool.blockMd5s, 0), { code: 'TBDAV_RETRYABLE' });
    assert.equal(r4.count('/openapi/api/create') - n0, 3, 'rate limit: refused before acting, retried even when unsafe');
    r4.emu.setOptions({ faults: { rate: 0 } });
    const done = await r4.client.create(`${root4}/p.bin`, spool.size, pre.uploadid!, spool.blockMd5s, 0);
    assert.equal(done.md5, spool.contentMd5);
  } finally {
    await r4.close();
  }
});

test('an aborted call is not retried and rejects with TBDAV_ABORTED', async () => {
  rig.emu.setOptions({ latencyMs: 300 });
  try {
    const ac = new AbortController();
    const n0 = rig.count('/openapi/api/quota');
    const p = rig.client.quota({ signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(p, { code: 'TBDAV_ABORTED' });
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(rig.count('/openapi/api/quota') - n0 <= 1);
  } finally {
    rig.emu.setOptions({ latencyMs: 0 });
  }
});

test('tokeninfo is asked once and its domains persist with their fetch time', async () => {
  const r5 = await startRig();
  try {
    await r5.client.quota();
    await r5.client.uinfo();
    await r5.client.listAll(r5.emu.appRoot);
    assert.equal(r5.count('/oauth/tokeninfo'), 1);
    const saved = await new FileTokenStore(join(r5.dir, 'state')).load();
    assert.equal(saved?.domains?.apiDomain, r5.emu.apiDomain);
    assert.equal(saved?.domains?.uploadDomain, r5.emu.uploadDomain);
    assert.ok(saved!.domains!.fetchedAt > Date.now() - 60_000);
    await r5.newClient().quota(); // a new process on the same state dir
    assert.equal(r5.count('/oauth/tokeninfo'), 1);
  } finally {
    await r5.close();
  }
});

test('refresh ahead of expiry (margin) without a refused call; logout deletes the token file', async () => {
  const r6 = await startRig({ accessTokenTtlSec: 120 }, { refreshMarginSec: 600 });
  try {
    // the margin is at most half the token's life: a pair obtained long ago (life 1120 s, 120 s left)
    const store = new FileTokenStore(join(r6.dir, 'state'));
    const t = (await store.load())!;
    await store.save({ ...t, obtainedAt: t.obtainedAt - 1000_000 });
    const q0 = r6.count('/openapi/api/quota');
    await r6.newClient({ refreshMarginSec: 600 }).quota();
    assert.equal(r6.count('/oauth/refreshtoken'), 1, 'refreshed because the token expires within the margin');
    assert.equal(r6.count('/openapi/api/quota') - q0, 1, 'no refused attempt');
    await r6.client.quota(); // its own (young) pair is outside its margin and within the refresh grace: no refresh
    assert.equal(r6.count('/oauth/refreshtoken'), 1);
    const calm = r6.newClient({ refreshMarginSec: 30 });
    await calm.quota();
    assert.equal(r6.count('/oauth/refreshtoken'), 1, 'outside the margin: no refresh');
    await calm.logout();
    assert.equal(await new FileTokenStore(join(r6.dir, 'state')).load(), null);
    await assert.rejects(calm.quota(), { code: 'TBDAV_NOT_LOGGED_IN' });
  } finally {
    await r6.close();
  }
});

test('two processes on one state dir: the second adopts the pair the first refreshed', async () => {
  const r7 = await startRig();
  try {
    const a = r7.client;
    const b = r7.newClient(); // same FileTokenStore dir, its own memory
    await b.quota(); // b has loaded the first pair
    await a.refresh(); // a uses the refresh token and saves the new pair
    const n0 = r7.count('/oauth/refreshtoken');
    const got = await b.refresh(); // b re-reads the store under the lock: a's pair, nothing sent
    assert.equal(r7.count('/oauth/refreshtoken') - n0, 0, 'no refresh token sent twice');
    assert.equal(r7.emu.counters.refreshTokenReuse, 0);
    assert.equal(got.accessToken, (await a.auth.tokens())!.accessToken);
    await b.quota();
  } finally {
    await r7.close();
  }
});
