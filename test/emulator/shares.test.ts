import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, fetchDlink, getJson, md5, startEmu, upload } from './emu-helpers.js';

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

    const verify = (surl: string, pwd: string): ReturnType<typeof getJson> =>
      getJson(`http://${e.emu.apiDomain}/openapi/share/verify?${new URLSearchParams({ surl, access_tokens: e.token })}`, {
        method: 'POST',
        body: new URLSearchParams({ pwd }),
      });
    assert.equal((await verify('nope', 'ab12')).body.errno, 105);
    assert.equal((await verify(sh.surl, 'zzzz')).body.errno, -12);
    const ok = await verify(sh.surl, 'ab12');
    assert.equal(ok.body.errno, 0);
    assert.equal(typeof ok.body.randsk, 'string');
    const cookie = ok.headers.get('set-cookie') ?? '';
    const sekey = decodeURIComponent(/BOXCLND=([^;]+)/.exec(cookie)?.[1] ?? '');
    assert.ok(sekey.length > 10);

    // shorturlinfo needs spd
    assert.equal((await api(e, '/openapi/api/shorturlinfo', { query: { shorturl: sh.shorturl, root: '1' } })).body.errno, -9);
    assert.equal((await api(e, '/openapi/api/shorturlinfo', { query: { shorturl: sh.shorturl, root: '1', spd: 'wrong' } })).body.errno, -9);
    assert.equal((await api(e, '/openapi/api/shorturlinfo', { query: { shorturl: '1unknown', root: '1', spd: sekey } })).body.errno, 105);
    const info = await api(e, '/openapi/api/shorturlinfo', { query: { shorturl: sh.shorturl, root: '1', spd: sekey } });
    assert.equal(info.body.errno, 0);
    assert.equal(info.body.shareid, sh.shareid);
    assert.equal(info.body.uk, sh.uk);
    assert.equal(info.body.list.length, 1);
    assert.equal(info.body.list[0].isdir, '1');
    assert.equal(typeof info.body.list[0].fs_id, 'string');

    const root = await api(e, '/openapi/share/list', { query: { shorturl: sh.surl, root: '1', page: '1', num: '100', sekey } });
    assert.equal(root.body.errno, 0);
    assert.equal(root.body.share_id, sh.shareid);
    assert.equal(root.body.list[0].path, `${R}/pub`);
    const inner = await api(e, '/openapi/share/list', { query: { shorturl: sh.surl, dir: `${R}/pub`, page: '1', num: '100', order: 'asc', by: 'name', sekey } });
    assert.deepEqual((inner.body.list as { server_filename: string }[]).map((x) => x.server_filename), ['sub', 'clip.mp4']);
    assert.equal((await api(e, '/openapi/share/list', { query: { shorturl: sh.surl, dir: R, page: '1', num: '100', sekey } })).body.errno, -9);
    assert.equal((await api(e, '/openapi/share/list', { query: { shorturl: sh.surl, root: '1', page: '1', num: '100' } })).body.errno, -9);

    const dl = await api(e, '/openapi/share/download', { query: { shareid: String(sh.shareid), uk: String(sh.uk), fid_list: JSON.stringify([v.fs_id]), sekey } });
    assert.equal(dl.body.errno, 0);
    const res = await fetchDlink(e, dl.body.list[0].dlink as string);
    assert.equal(md5(Buffer.from(await res.arrayBuffer())), md5(video));
    const privateId = (await api(e, '/openapi/api/filemetas', { query: { target: JSON.stringify([`${R}/private.txt`]) } })).body.info[0].fs_id as number;
    assert.equal((await api(e, '/openapi/share/download', { query: { shareid: String(sh.shareid), uk: String(sh.uk), fid_list: JSON.stringify([privateId]), sekey } })).body.errno, -9);

    const tr = await getJson(
      `http://${e.emu.apiDomain}/openapi/share/transfer?${new URLSearchParams({ shareid: String(sh.shareid), from: String(sh.uk), async: '0', sekey, access_tokens: e.token })}`,
      { method: 'POST', body: new URLSearchParams({ fsidlist: JSON.stringify([String(v.fs_id)]), path: `${R}/saved` }) },
    );
    assert.equal(tr.body.errno, 0);
    assert.equal(tr.body.extra.list[0].to, `${R}/saved/clip.mp4`);
    const again = await getJson(
      `http://${e.emu.apiDomain}/openapi/share/transfer?${new URLSearchParams({ shareid: String(sh.shareid), from: String(sh.uk), async: '0', sekey, access_tokens: e.token })}`,
      { method: 'POST', body: new URLSearchParams({ fsidlist: JSON.stringify([v.fs_id]), path: `${R}/saved` }) },
    );
    assert.equal(again.body.errno, 12);
    assert.equal(again.body.info[0].errno, -8);

    const stream = await fetch(
      `http://${e.emu.apiDomain}/openapi/share/streaming?${new URLSearchParams({ shareid: String(sh.shareid), uk: String(sh.uk), fid: String(v.fs_id), type: 'M3U8_AUTO_480', channel: 'dubox', clienttype: '0', sekey, access_token: e.token })}`,
    );
    assert.match(await stream.text(), /^#EXTM3U/);
    const mm = await api(e, '/openapi/share/mediameta', { query: { shareid: String(sh.shareid), uk: String(sh.uk), fid: String(v.fs_id), clienttype: '0', sekey } });
    assert.equal(mm.body.errno, 0);
    assert.ok(mm.body.duration > 0 && mm.body.width > 0 && mm.body.height > 0);

    // a share without pwd needs no sekey
    const open = e.emu.createShare([`${R}/private.txt`], '');
    assert.equal((await api(e, '/openapi/api/shorturlinfo', { query: { shorturl: open.shorturl, root: '1' } })).body.errno, 0);
  } finally {
    await e.stop();
  }
});
