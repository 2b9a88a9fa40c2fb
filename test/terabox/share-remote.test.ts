import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { isTbdavError } from '../../src/shared/errors.js';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { ShareRemote } from '../../src/terabox/share-remote.js';
import { ShareStore, type ShareRecord } from '../../src/terabox/share-store.js';
import { addShare } from '../../src/terabox/shares.js';
import { isTransferStaging } from '../../src/terabox/share-transfer.js';
import { makeSpool, readAll, startRig, type Rig } from './setup.js';

let rig: Rig;
let drive: TeraboxRemote;
let n = 0;

before(async () => {
  rig = await startRig({ shareTransferAsyncMs: 200 });
  drive = new TeraboxRemote(rig.client, { root: rig.emu.appRoot });
});
after(async () => {
  await rig.close();
});

function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}

/** Store `data` at a drive path (relative to the app folder), making folders on the way. */
async function put(path: string, data: Buffer): Promise<void> {
  const parts = path.split('/').filter(Boolean);
  for (let i = 1; i < parts.length; i++) {
    const dir = '/' + parts.slice(0, i).join('/');
    try {
      await drive.mkdir(dir);
    } catch (err) {
      if (!isTbdavError(err, 'TBDAV_EXISTS')) throw err;
    }
  }
  await drive.write(path, await makeSpool(rig.dir, `spool-${n++}`, data.length, undefined, data), { overwrite: true });
}

/** A share of drive paths, added through addShare (verify + shorturlinfo), as a ShareRemote. */
async function shareOf(paths: string[], pwd: string, name?: string): Promise<{ remote: ShareRemote; record: ShareRecord; shareid: number; saved: string[] }> {
  const created = rig.emu.createShare(
    paths.map((p) => rig.emu.appRoot + p),
    pwd,
  );
  const store = new ShareStore(`${rig.dir}/shares-${n++}`);
  const record = await addShare(rig.client, store, { link: `https://www.terabox.com/s/${created.shorturl}`, pwd, ...(name ? { name } : {}) });
  const saved: string[] = [];
  const remote = new ShareRemote(rig.client, record, {
    driveRoot: rig.emu.appRoot,
    logger: rig.logger,
    listPageSize: 2,
    onSekey: async (k) => {
      saved.push(k);
    },
    transfer: { pollBaseMs: 20, pollMaxMs: 100 },
  });
  return { remote, record, shareid: created.shareid, saved };
}

test('a share as a read-only remote: root, paged folders, stat, ranged reads, writes refused', async () => {
  const big = Buffer.alloc(300_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
  await put('/srA/movie.mp4', big);
  for (const name of ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt']) await put(`/srA/docs/${name}`, Buffer.from(`text ${name}`));
  const { remote, record } = await shareOf(['/srA'], 'ab12');
  assert.equal(record.name, 'srA');
  const root = await remote.list('/');
  assert.deepEqual(root.map((e) => [e.name, e.isDir]), [['srA', true]]);
  assert.deepEqual((await remote.list('/srA')).map((e) => e.name), ['docs', 'movie.mp4']);
  const before = rig.count('/openapi/share/list');
  const docs = await remote.list('/srA/docs');
  assert.deepEqual(docs.map((e) => e.name), ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt']);
  assert.equal(rig.count('/openapi/share/list') - before, 3, 'pages of 2: 2 + 2 + 1');
  const st = await remote.stat('/srA/movie.mp4');
  assert.equal(st.size, big.length);
  assert.ok(st.id);
  const part = await readAll(await remote.openRead('/srA/movie.mp4', { start: 1000, end: 1999 }, { entry: st }));
  assert.equal(md5(part), md5(big.subarray(1000, 2000)));
  assert.equal(md5(await readAll(await remote.openRead('/srA/movie.mp4'))), md5(big));
  await assert.rejects(remote.stat('/srA/nope'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
  await assert.rejects(remote.stat('/other'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
  await assert.rejects(remote.mkdir('/srA/x'), (e: unknown) => isTbdavError(e, 'TBDAV_FORBIDDEN') && /read-only/.test((e as Error).message));
  await assert.rejects(remote.remove('/srA/docs'), (e: unknown) => isTbdavError(e, 'TBDAV_FORBIDDEN'));
});

test('-9: verify again once with the stored code, keep the new key; -12 after a code change; 105 when the link is gone', async () => {
  await put('/srB/f.txt', Buffer.from('hello'));
  const { remote, shareid, saved } = await shareOf(['/srB'], 'cd34');
  assert.equal((await remote.list('/srB')).length, 1);
  rig.emu.setSharePwd(shareid, 'cd34'); // same code, every issued key forgotten: -9 on the next call
  const verifies = rig.count('/openapi/share/verify');
  assert.deepEqual((await remote.list('/srB')).map((e) => e.name), ['f.txt']);
  assert.equal(rig.count('/openapi/share/verify') - verifies, 1);
  assert.equal(saved.length, 1, 'the new key is handed to the store');
  rig.emu.setSharePwd(shareid, 'zz99');
  await assert.rejects(remote.list('/srB'), (e: unknown) => isTbdavError(e, 'TBDAV_FORBIDDEN') && /extraction code is no longer accepted/.test((e as Error).message));
  rig.emu.removeShare(shareid);
  await assert.rejects(remote.stat('/'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND') && /invalid or has expired/.test((e as Error).message));
});

test('copyOut: a file (synchronous, same name), a file under another name (staging), a folder (asynchronous); no download bytes', async () => {
  const data = Buffer.from('x'.repeat(50_000));
  await put('/srC/pic.jpg', data);
  await put('/srC/album/one.txt', Buffer.from('one'));
  await put('/srC/album/deeper/two.txt', Buffer.from('two two'));
  const { remote } = await shareOf(['/srC'], '');
  await drive.mkdir('/inbox');
  const served = rig.emu.counters.bytesServed;

  const h1 = await remote.copyOut('/srC/pic.jpg', '/inbox/pic.jpg');
  await h1.done;
  assert.equal((await drive.stat('/inbox/pic.jpg')).size, data.length);

  const h2 = await remote.copyOut('/srC/pic.jpg', '/inbox/renamed.jpg');
  await h2.done;
  const names = (await drive.list('/inbox')).map((e) => e.name);
  assert.deepEqual(names, ['pic.jpg', 'renamed.jpg'], 'the staging folder is gone');
  assert.ok(!names.some(isTransferStaging));

  // replacing (through a staging folder, the old entry kept until the copy is there); without overwrite: EXISTS
  await put('/inbox/old.jpg', Buffer.from('old content'));
  const h2b = await remote.copyOut('/srC/pic.jpg', '/inbox/old.jpg', { overwrite: true });
  await h2b.done;
  assert.equal((await drive.stat('/inbox/old.jpg')).size, data.length);
  await drive.mkdir('/inbox/afolder');
  const h2c = await remote.copyOut('/srC/pic.jpg', '/inbox/afolder', {});
  await assert.rejects(h2c.done, (e: unknown) => isTbdavError(e, 'TBDAV_EXISTS'));
  assert.equal((await drive.stat('/inbox/afolder')).isDir, true, 'kept');
  assert.ok(!(await drive.list('/inbox')).some((e) => isTransferStaging(e.name)), 'no staging folder left after a failure');

  const h3 = await remote.copyOut('/srC/album', '/inbox/album');
  assert.equal((await drive.list('/inbox')).some((e) => e.name === 'album'), false, 'asynchronous: not there when accepted');
  await h3.done;
  assert.deepEqual((await drive.list('/inbox/album/deeper')).map((e) => e.name), ['two.txt']);
  assert.equal(md5(await readAll(await drive.openRead('/inbox/album/deeper/two.txt'))), md5(Buffer.from('two two')));
  assert.equal(rig.emu.counters.bytesServed - served, Buffer.from('two two').length, 'only the check read above moved bytes');
  assert.deepEqual((await drive.list('/inbox')).map((e) => e.name), ['afolder', 'album', 'old.jpg', 'pic.jpg', 'renamed.jpg']);
});

test('playlist and media info of a shared video', async () => {
  await put('/srD/v.mp4', Buffer.alloc(600_000, 1));
  const { remote } = await shareOf(['/srD/v.mp4'], '');
  assert.deepEqual((await remote.list('/')).map((e) => e.name), ['v.mp4']);
  const m3u8 = await remote.playlist('/v.mp4', 'M3U8_AUTO_720');
  assert.match(m3u8, /^#EXTM3U/);
  const urls = m3u8.split('\n').filter((l) => l.startsWith('http'));
  const seg = await remote.openSegment(urls[0]!, { start: 0, end: 9 });
  assert.equal(seg.status, 206);
  assert.equal((await readAll(seg.body)).length, 10);
  const info = await remote.mediaInfo('/v.mp4');
  assert.ok(info && info.durationSec > 0 && info.width === 1280);
});
