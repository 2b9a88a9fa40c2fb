import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Emu, type Json, api, fetchDlink, getJson, md5, startEmu, upload, verifyShare } from './emu-helpers.js';

/** POST share/transfer with query and body as the spec's table puts them. */
async function transfer(e: Emu, query: Record<string, string>, body: Record<string, string>): Promise<Json> {
  const q = new URLSearchParams({ ...query, access_tokens: e.token });
  return (await getJson(`http://${e.emu.apiDomain}/openapi/share/transfer?${q}`, { method: 'POST', body: new URLSearchParams(body) })).body;
}

test('shares: verify (105, -12, BOXCLND), shorturlinfo, list, download, transfer, streaming, mediameta', async () => {
  const e = await startEmu();
  try {
    const R = e.root;
    const video = Buffer.alloc(200_000, 3);
    const v = await upload(e, `${R}/pub/clip.mp4`, video);
    await upload(e, `${R}/pub/sub/note.txt`, Buffer.from('note'));
    await upload(e, `${R}/private.txt`, Buffer.from('secret'));
    const sh = e.emu.createShare([`${R}/pub`], 'ab12');
    assert.equal(sh.shorturl, `1${sh.surl}`);
    assert.equal(typeof sh.shareid, 'number');
    assert.throws(() => e.emu.createShare([`${R}/missing`], 'ab12'));

    assert.equal((await verifyShare(e, 'nope', 'ab12')).body.errno, 105);
    assert.equal((await verifyShare(e, sh.surl, 'zzzz')).body.errno, -12);
    assert.equal((await verifyShare(e, sh.surl, '')).body.errno, -12, 'no code for a share with a code');
    const ok = await verifyShare(e, sh.surl, 'ab12');
    assert.equal(ok.body.errno, 0);
    assert.equal(typeof ok.body.randsk, 'string');
    const sekey = ok.sekey;
    assert.ok(sekey.length > 10);

    // shorturlinfo: spd is mandatory (2), a value verify did not issue for this share is -9
    const sui = (query: Record<string, string>) => api(e, '/openapi/api/shorturlinfo', { query });
    assert.equal((await sui({ shorturl: sh.shorturl, root: '1' })).body.errno, 2);
    assert.equal((await sui({ shorturl: sh.shorturl, spd: sekey })).body.errno, 2, 'root is mandatory');
    assert.equal((await sui({ shorturl: sh.shorturl, root: '1', spd: 'wrong' })).body.errno, -9);
    assert.equal((await sui({ shorturl: '1unknown', root: '1', spd: sekey })).body.errno, 105);
    const info = await sui({ shorturl: sh.shorturl, root: '1', spd: sekey });
    assert.equal(info.body.errno, 0);
    assert.equal(info.body.shareid, sh.shareid);
    assert.equal(info.body.uk, sh.uk);
    assert.equal(info.body.list.length, 1);
    assert.equal(info.body.list[0].isdir, '1');
    assert.equal(typeof info.body.list[0].fs_id, 'string');

    const list = (query: Record<string, string>) => api(e, '/openapi/share/list', { query });
    const root = await list({ shorturl: sh.surl, root: '1', page: '1', num: '100', sekey });
    assert.equal(root.body.errno, 0);
    assert.equal(root.body.share_id, sh.shareid);
    assert.equal(root.body.list[0].path, `${R}/pub`);
    assert.equal(typeof root.body.list[0].fs_id, 'number');
    const inner = await list({ shorturl: sh.surl, dir: `${R}/pub`, page: '1', num: '100', order: 'asc', by: 'name', sekey });
    assert.deepEqual((inner.body.list as { server_filename: string }[]).map((x) => x.server_filename), ['sub', 'clip.mp4']);
    const paged = await list({ shorturl: sh.surl, dir: `${R}/pub`, page: '2', num: '1', order: 'asc', by: 'name', sekey });
    assert.deepEqual((paged.body.list as { server_filename: string }[]).map((x) => x.server_filename), ['clip.mp4']);
    assert.equal((await list({ shorturl: sh.surl, dir: R, page: '1', num: '100', sekey })).body.errno, -9, 'a folder outside the share');
    assert.equal((await list({ shorturl: sh.surl, root: '1', page: '1', num: '100' })).body.errno, 2, 'sekey is mandatory');
    assert.equal((await list({ shorturl: sh.surl, root: '1', num: '100', sekey })).body.errno, 2, 'page is mandatory');
    assert.equal((await list({ shorturl: sh.surl, page: '1', num: '100', sekey })).body.errno, 2, 'root or dir');
    assert.equal((await list({ shorturl: sh.surl, root: '1', page: '1', num: '100', sekey: 'wrong' })).body.errno, -9);

    const download = (query: Record<string, string>) => api(e, '/openapi/share/download', { query });
    const dlq = { shareid: String(sh.shareid), uk: String(sh.uk), fid_list: JSON.stringify([v.fs_id]), sekey };
    const dl = await download(dlq);
    assert.equal(dl.body.errno, 0);
    assert.equal(typeof dl.body.list[0].fs_id, 'string');
    const res = await fetchDlink(e, dl.body.list[0].dlink as string);
    assert.equal(md5(Buffer.from(await res.arrayBuffer())), md5(video));
    const privateId = (await api(e, '/openapi/api/filemetas', { query: { target: JSON.stringify([`${R}/private.txt`]) } })).body.info[0].fs_id as number;
    assert.equal((await download({ ...dlq, fid_list: JSON.stringify([privateId]) })).body.errno, -9);
    const { uk: _uk, ...noUk } = dlq;
    assert.equal((await download(noUk)).body.errno, 2, 'uk is mandatory');
    assert.equal((await download({ ...dlq, uk: '1' })).body.errno, 105, 'not the sharer');

    // transfer: query shareid/from/async/sekey, body fsidlist|filelist and path
    const tq = { shareid: String(sh.shareid), from: String(sh.uk), async: '0', sekey };
    const tr = await transfer(e, tq, { fsidlist: JSON.stringify([String(v.fs_id)]), path: `${R}/saved` });
    assert.equal(tr.errno, 0);
    assert.equal(tr.task_id, 0);
    assert.equal(tr.extra.list[0].to, `${R}/saved/clip.mp4`);
    const again = await transfer(e, tq, { fsidlist: JSON.stringify([v.fs_id]), path: `${R}/saved` });
    assert.equal(again.errno, 12);
    assert.equal(again.info[0].errno, -8);
    const byPath = await transfer(e, { ...tq, ondup: 'newcopy' }, { filelist: JSON.stringify([`${R}/pub/clip.mp4`]), path: `${R}/saved` });
    assert.equal(byPath.errno, 0);
    assert.match(byPath.extra.list[0].to, /^.*\/saved\/clip_\d{8}_\d{6}\.mp4$/);
    const { async: _a, ...noAsync } = tq;
    assert.equal((await transfer(e, noAsync, { fsidlist: JSON.stringify([v.fs_id]), path: `${R}/saved2` })).errno, 2, 'async is mandatory');
    assert.equal((await transfer(e, tq, { path: `${R}/saved2` })).errno, 2, 'a list is mandatory');
    assert.equal(
      (await transfer(e, { ...tq, fsidlist: JSON.stringify([v.fs_id]) }, { path: `${R}/saved2` })).errno,
      2,
      'fsidlist belongs in the body, not the query',
    );
    assert.equal((await transfer(e, tq, { fsidlist: JSON.stringify([v.fs_id]), path: '/elsewhere' })).errno, -7);
    assert.equal((await transfer(e, { ...tq, sekey: 'wrong' }, { fsidlist: JSON.stringify([v.fs_id]), path: `${R}/saved2` })).errno, -9);

    const streamQ = { shareid: String(sh.shareid), uk: String(sh.uk), fid: String(v.fs_id), type: 'M3U8_AUTO_480', channel: 'dubox', clienttype: '0', sekey, access_token: e.token };
    const stream = await fetch(`http://${e.emu.apiDomain}/openapi/share/streaming?${new URLSearchParams(streamQ)}`);
    assert.match(stream.headers.get('content-type') ?? '', /mpegurl/);
    assert.match(await stream.text(), /^#EXTM3U/);
    const { channel: _c, ...noChannel } = streamQ;
    assert.equal((await getJson(`http://${e.emu.apiDomain}/openapi/share/streaming?${new URLSearchParams(noChannel)}`)).body.errno, 2);
    const mmq = { shareid: String(sh.shareid), uk: String(sh.uk), fid: String(v.fs_id), clienttype: '0', sekey };
    const mm = await api(e, '/openapi/share/mediameta', { query: mmq });
    assert.equal(mm.body.errno, 0);
    assert.ok(mm.body.duration > 0 && mm.body.width > 0 && mm.body.height > 0);
    const { sekey: _s, ...noSekey } = mmq;
    assert.equal((await api(e, '/openapi/share/mediameta', { query: noSekey })).body.errno, 2);

    // a share without extraction code: verify with an empty pwd, and the sekey is still required
    const open = e.emu.createShare([`${R}/private.txt`], '');
    assert.equal((await sui({ shorturl: open.shorturl, root: '1' })).body.errno, 2);
    assert.equal((await sui({ shorturl: open.shorturl, root: '1', spd: sekey })).body.errno, -9, 'a sekey of another share');
    const openKey = await verifyShare(e, open.surl, '');
    assert.equal(openKey.body.errno, 0);
    assert.equal((await sui({ shorturl: open.shorturl, root: '1', spd: openKey.sekey })).body.errno, 0);
    const noPwd = await getJson(`http://${e.emu.apiDomain}/openapi/share/verify?${new URLSearchParams({ surl: open.surl, access_tokens: e.token, pwd: '' })}`, { method: 'POST' });
    assert.equal(noPwd.body.errno, 2, 'pwd belongs in the body');
  } finally {
    await e.stop();
  }
});

test('shares: async transfer lands later; async=1 is asynchronous for folders only', async () => {
  const e = await startEmu({ shareTransferAsyncMs: 150 });
  try {
    const R = e.root;
    await upload(e, `${R}/pub/a.txt`, Buffer.from('aaa'));
    await upload(e, `${R}/pub/deep/b.txt`, Buffer.from('bbbb'));
    const sh = e.emu.createShare([`${R}/pub`], '');
    const { sekey } = await verifyShare(e, sh.surl, '');
    const ids = (await api(e, '/openapi/share/list', { query: { shorturl: sh.surl, root: '1', page: '1', num: '10', sekey } })).body.list as { fs_id: number }[];
    const folderId = ids[0]!.fs_id;
    const fileId = (await api(e, '/openapi/api/filemetas', { query: { target: JSON.stringify([`${R}/pub/a.txt`]) } })).body.info[0].fs_id as number;
    const base = { shareid: String(sh.shareid), from: String(sh.uk), sekey };

    const t2 = await transfer(e, { ...base, async: '2' }, { fsidlist: JSON.stringify([folderId]), path: `${R}/in2` });
    assert.equal(t2.errno, 0);
    assert.ok(Number(t2.task_id) > 0);
    assert.equal(String(t2.data.task_id), String(t2.task_id));
    assert.equal((await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${R}/in2` } })).body.errno, -9, 'not landed yet');
    await sleep(400);
    const landed = await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${R}/in2/pub/deep` } });
    assert.equal(landed.body.errno, 0);
    assert.equal(landed.body.list[0].server_filename, 'b.txt');

    const t1file = await transfer(e, { ...base, async: '1' }, { fsidlist: JSON.stringify([fileId]), path: `${R}/in1` });
    assert.equal(t1file.task_id, 0, 'a file is copied at once');
    assert.equal(t1file.extra.list[0].to, `${R}/in1/a.txt`);
    const t1dir = await transfer(e, { ...base, async: '1' }, { fsidlist: JSON.stringify([folderId]), path: `${R}/in1` });
    assert.ok(Number(t1dir.task_id) > 0, 'a folder goes asynchronous');
    await sleep(400);
    assert.equal((await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${R}/in1/pub` } })).body.errno, 0);
  } finally {
    await e.stop();
  }
});

test('shares: a removed share answers 105, a changed code -9 for old keys and -12 for the old code', async () => {
  const e = await startEmu();
  try {
    await upload(e, `${e.root}/x.txt`, Buffer.from('x'));
    const sh = e.emu.createShare([`${e.root}/x.txt`], 'ab12');
    const { sekey } = await verifyShare(e, sh.surl, 'ab12');
    const q = { shorturl: sh.shorturl, root: '1', spd: sekey };
    assert.equal((await api(e, '/openapi/api/shorturlinfo', { query: q })).body.errno, 0);
    e.emu.setSharePwd(sh.shareid, 'cd34');
    assert.equal((await api(e, '/openapi/api/shorturlinfo', { query: q })).body.errno, -9);
    assert.equal((await verifyShare(e, sh.surl, 'ab12')).body.errno, -12);
    const fresh = await verifyShare(e, sh.surl, 'cd34');
    assert.equal((await api(e, '/openapi/api/shorturlinfo', { query: { ...q, spd: fresh.sekey } })).body.errno, 0);
    e.emu.removeShare(sh.shareid);
    assert.equal((await api(e, '/openapi/api/shorturlinfo', { query: { ...q, spd: fresh.sekey } })).body.errno, 105);
    assert.equal((await verifyShare(e, sh.surl, 'cd34')).body.errno, 105);
    const sl = await api(e, '/openapi/share/download', { query: { shareid: String(sh.shareid), uk: String(sh.uk), fid_list: '[1]', sekey: fresh.sekey } });
    assert.equal(sl.body.errno, 105);
  } finally {
    await e.stop();
  }
});

test('streaming: segments are 188-byte aligned slices that add up to the file; durations sum to mediameta', async () => {
  const e = await startEmu();
  try {
    const data = Buffer.alloc(1_000_003, 9);
    const v = await upload(e, `${e.root}/m/v.ts`, data);
    const text = await (await fetch(`http://${e.emu.apiDomain}/openapi/api/streaming?${new URLSearchParams({ path: `${e.root}/m/v.ts`, type: 'M3U8_AUTO_720', access_tokens: e.token })}`)).text();
    const urls = text.split('\n').filter((l) => l.startsWith('http://'));
    const durations = text.split('\n').filter((l) => l.startsWith('#EXTINF:')).map((l) => Number(/#EXTINF:([\d.]+),/.exec(l)![1]));
    assert.equal(urls.length, durations.length);
    const target = Number(/#EXT-X-TARGETDURATION:(\d+)/.exec(text)![1]);
    for (const d of durations) assert.ok(d <= target);
    let total = 0;
    for (const u of urls) {
      const body = Buffer.from(await (await fetch(u)).arrayBuffer());
      if (u !== urls[urls.length - 1]) assert.equal(body.length % 188, 0);
      total += body.length;
    }
    assert.equal(total, data.length);
    // a Range inside one segment
    const part = await fetch(urls[0]!, { headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal((await part.arrayBuffer()).byteLength, 10);
    const sh = e.emu.createShare([`${e.root}/m`], '');
    const { sekey } = await verifyShare(e, sh.surl, '');
    const mm = await api(e, '/openapi/share/mediameta', { query: { shareid: String(sh.shareid), uk: String(sh.uk), fid: String(v.fs_id), clienttype: '0', sekey } });
    const sum = durations.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - data.length / 250_000) < 0.01 * urls.length, `EXTINF sum ${sum}`);
    assert.equal(mm.body.duration, Math.floor(data.length / 250_000));
    assert.equal((await api(e, '/openapi/api/streaming', { query: { type: 'M3U8_AUTO_720' } })).body.errno, 2, 'path is mandatory');
  } finally {
    await e.stop();
  }
});
