import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Emu, api, getJson, startEmu, upload } from './emu-helpers.js';

async function mkdir(e: Emu, path: string): Promise<void> {
  const r = await api(e, '/openapi/api/create', { form: { path, isdir: '1', rtype: '0' } });
  assert.equal(r.body.errno, 0, `mkdir ${path}`);
}

test('wrong host: each listener answers only its own family (404)', async () => {
  const e = await startEmu();
  try {
    assert.equal((await api(e, '/openapi/api/list', { host: e.emu.uploadDomain, query: { page: '1', num: '1000', dir: e.root } })).status, 404);
    assert.equal((await api(e, '/openapi/api/list', { host: e.emu.downloadDomain, query: { page: '1', num: '1000', dir: e.root } })).status, 404);
    assert.equal((await api(e, '/openapi/api/list', { host: new URL(e.emu.authUrl).host, query: { page: '1', num: '1000', dir: e.root } })).status, 404);
    assert.equal((await getJson(`http://${e.emu.apiDomain}/oauth/tokeninfo`, { method: 'POST', body: new URLSearchParams({ access_token: e.token }) })).status, 404);
    assert.equal((await api(e, '/openapi/api/nope')).status, 404);
    assert.equal((await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: e.root } })).status, 200);
    assert.equal(e.emu.counters.requests['/openapi/api/list'], 1);
    assert.equal(e.emu.counters.requests['404 /openapi/api/list'], 3);
  } finally {
    await e.stop();
  }
});

test('fixed ports: a taken port fails the start cleanly', async () => {
  const e = await startEmu();
  try {
    const taken = Number(e.emu.apiDomain.split(':')[1]);
    const dir = await mkdtemp(join(tmpdir(), 'tbdav-emu-port-'));
    try {
      await assert.rejects(startEmu({ ports: { api: taken } }, dir), (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    assert.equal((await api(e, '/openapi/api/quota')).body.errno, 0);
  } finally {
    await e.stop();
  }
});

test('api auth: the token as each table spells it (access_tokens; both where table and example disagree); missing/unknown -6; expired 111 (HTTP 200)', async () => {
  const e = await startEmu();
  try {
    // quota's table and example say access_tokens: the singular is not looked at
    const viaSingular = await getJson(`http://${e.emu.apiDomain}/openapi/api/quota?access_token=${encodeURIComponent(e.token)}`);
    assert.equal(viaSingular.body.errno, -6);
    // active's address says access_tokens, its curl example access_token: both
    assert.equal((await getJson(`http://${e.emu.apiDomain}/openapi/active?access_token=${encodeURIComponent(e.token)}`)).body.errno, 0);
    assert.equal((await api(e, '/openapi/active')).body.errno, 0);
    const none = await api(e, '/openapi/api/quota', { token: null });
    assert.equal(none.status, 200);
    assert.equal(none.body.errno, -6);
    assert.equal((await api(e, '/openapi/api/quota', { token: 'forged' })).body.errno, -6);
    e.emu.expireAccessTokens();
    const exp = await api(e, '/openapi/api/quota');
    assert.equal(exp.status, 200);
    assert.equal(exp.body.errno, 111);
  } finally {
    await e.stop();
  }
});

test('paths: outside the app folder and invalid names are -7; the app folder exists at start', async () => {
  const e = await startEmu({ appName: 'my-app' });
  try {
    assert.equal(e.root, '/From: Other Applications/my-app');
    const l = await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: e.root } });
    assert.equal(l.body.errno, 0);
    assert.deepEqual(l.body.list, []);
    assert.equal((await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: '/' } })).body.errno, -7);
    assert.equal((await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: '/From: Other Applications/other' } })).body.errno, -7);
    for (const bad of ['a?b', 'a|b', 'a"b', 'a<b', 'a>b', 'a:b', 'a*b', 'a\\b', 'a\u0001b', '..', '...', 'x'.repeat(256), 'é'.repeat(128)]) {
      const r = await api(e, '/openapi/api/create', { form: { path: `${e.root}/${bad}`, isdir: '1' } });
      assert.equal(r.body.errno, -7, JSON.stringify(bad));
    }
    // 'a, b': the spec's share/transfer example (3.5.4) holds "Gia Itzel & BOYFRIEND, LADYBOY.mp4".
    for (const good of ['a b', 'ünïcødé', '.hidden', 'x'.repeat(255), 'a;b=c&d', 'a, b & c #8 - they\'re']) {
      const r = await api(e, '/openapi/api/create', { form: { path: `${e.root}/${good}`, isdir: '1', rtype: '0' } });
      assert.equal(r.body.errno, 0, good);
    }
    assert.equal((await api(e, '/openapi/api/create', { form: { path: `${e.root}/../escape`, isdir: '1' } })).body.errno, -7);
  } finally {
    await e.stop();
  }
});

test('list: paging, num cap 1000, order name|time|size, desc, folders first, -9 for missing or file', async () => {
  const e = await startEmu();
  try {
    await upload(e, `${e.root}/d/b.txt`, Buffer.from('22'));
    await upload(e, `${e.root}/d/a.txt`, Buffer.from('333'));
    await upload(e, `${e.root}/d/c.txt`, Buffer.from('1'));
    await mkdir(e, `${e.root}/d/zdir`);
    const names = async (q: Record<string, string>): Promise<string[]> => {
      const r = await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${e.root}/d`, ...q } });
      assert.equal(r.body.errno, 0);
      return (r.body.list as { server_filename: string }[]).map((x) => x.server_filename);
    };
    assert.deepEqual(await names({}), ['zdir', 'a.txt', 'b.txt', 'c.txt']);
    assert.deepEqual(await names({ desc: '1' }), ['zdir', 'c.txt', 'b.txt', 'a.txt']);
    assert.deepEqual(await names({ order: 'size' }), ['zdir', 'c.txt', 'b.txt', 'a.txt']);
    assert.deepEqual(await names({ page: '1', num: '2' }), ['zdir', 'a.txt']);
    assert.deepEqual(await names({ page: '2', num: '2' }), ['b.txt', 'c.txt']);
    assert.deepEqual(await names({ page: '3', num: '2' }), []);
    const full = await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${e.root}/d` } });
    const dir = full.body.list[0];
    assert.equal(dir.isdir, 1);
    assert.equal(dir.dir_empty, 1);
    assert.equal(dir.md5, undefined);
    const file = full.body.list[1];
    assert.equal(file.isdir, 0);
    assert.equal(file.size, 3);
    assert.equal(typeof file.fs_id, 'number');
    assert.ok(file.server_mtime > 0 && file.local_mtime > 0 && file.server_ctime > 0);
    assert.equal((await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${e.root}/nope` } })).body.errno, -9);
    assert.equal((await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${e.root}/d/a.txt` } })).body.errno, -9);
    assert.equal((await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${e.root}/d`, order: 'color' } })).body.errno, 2);
    assert.equal((await api(e, '/openapi/api/list', { query: { dir: `${e.root}/d`, page: 'x', num: '10' } })).body.errno, 2);
    assert.equal((await api(e, '/openapi/api/list', { query: {} })).body.errno, 2);
  } finally {
    await e.stop();
  }
});

test('a folder of 3000 entries lists in pages of at most 1000', async () => {
  const e = await startEmu();
  try {
    await mkdir(e, `${e.root}/many`);
    const batch = 100;
    for (let i = 0; i < 3000; i += batch) {
      await Promise.all(
        Array.from({ length: batch }, (_, j) => api(e, '/openapi/api/create', { form: { path: `${e.root}/many/f${String(i + j).padStart(5, '0')}`, isdir: '1', rtype: '0' } })),
      );
    }
    const seen = new Set<string>();
    for (let page = 1; page <= 4; page++) {
      const r = await api(e, '/openapi/api/list', { query: { dir: `${e.root}/many`, page: String(page), num: '5000' } });
      assert.equal(r.body.errno, 0);
      assert.equal(r.body.list.length, page <= 3 ? 1000 : 0);
      for (const x of r.body.list as { server_filename: string }[]) seen.add(x.server_filename);
    }
    assert.equal(seen.size, 3000);
  } finally {
    await e.stop();
  }
});

test('filemetas (dlink=1), search (recursion, paging, has_more), quota, uinfo, active', async () => {
  const e = await startEmu();
  try {
    const f = await upload(e, `${e.root}/s/movie.mp4`, Buffer.from('not really a movie'));
    await upload(e, `${e.root}/s/deep/Movie2.mkv`, Buffer.from('x'));
    await upload(e, `${e.root}/s/other.txt`, Buffer.from('y'));
    const m = await api(e, '/openapi/api/filemetas', { query: { target: JSON.stringify([`${e.root}/s/movie.mp4`, `${e.root}/s/missing`, `${e.root}/s`]), dlink: '1' } });
    assert.equal(m.body.errno, 0);
    assert.equal(m.body.info.length, 3);
    assert.equal(m.body.info[0].fs_id, f.fs_id);
    assert.equal(m.body.info[0].category, 1);
    assert.equal(m.body.info[0].filename, 'movie.mp4');
    assert.match(m.body.info[0].dlink as string, new RegExp(`^http://${e.emu.downloadDomain}/file/`));
    assert.equal(m.body.info[1].errno, -9);
    assert.equal(m.body.info[2].isdir, 1);
    assert.equal(m.body.info[2].dlink, undefined);
    assert.equal((await api(e, '/openapi/api/filemetas', { query: { target: 'not-json' } })).body.errno, 2);
    assert.equal((await api(e, '/openapi/api/filemetas', { query: { target: '[1,2]' } })).body.errno, 2);
    const s1 = await api(e, '/openapi/api/search', { query: { key: 'movie', recursion: '1', dir: `${e.root}/s` } });
    assert.equal(s1.body.errno, 0);
    assert.deepEqual((s1.body.list as { server_filename: string }[]).map((x) => x.server_filename).sort(), ['Movie2.mkv', 'movie.mp4']);
    assert.equal(s1.body.has_more, 0);
    const s2 = await api(e, '/openapi/api/search', { query: { key: 'movie', recursion: '0', dir: `${e.root}/s` } });
    assert.equal(s2.body.list.length, 1);
    const s3 = await api(e, '/openapi/api/search', { query: { key: 'o', recursion: '1', num: '1', page: '1' } });
    assert.equal(s3.body.list.length, 1);
    assert.equal(s3.body.has_more, 1);
    assert.equal((await api(e, '/openapi/api/search', { query: { recursion: '1' } })).body.errno, 2);
    const q = await api(e, '/openapi/api/quota');
    assert.equal(q.body.errno, 0);
    assert.equal(q.body.used, 'not really a movie'.length + 2);
    assert.ok(q.body.total > q.body.used);
    const u = await api(e, '/openapi/uinfo');
    assert.equal(u.body.use_type, 0);
    const a = await api(e, '/openapi/active');
    assert.equal(a.body.errno, 0);
    assert.match(a.body.order_id as string, /^\d+$/);
    assert.equal((await api(e, '/openapi/uinfo')).body.use_type, 1);
    // download: dlinks by fs_id; unknown -9; type must be dlink; bad JSON 2
    const d = await api(e, '/openapi/api/download', { query: { fidlist: JSON.stringify([f.fs_id]), type: 'dlink' } });
    assert.equal(d.body.dlink[0].fs_id, String(f.fs_id));
    assert.equal((await api(e, '/openapi/api/download', { query: { fidlist: '[1]', type: 'dlink' } })).body.errno, -9);
    assert.equal((await api(e, '/openapi/api/download', { query: { fidlist: `[${f.fs_id}]` } })).body.errno, 2);
    assert.equal((await api(e, '/openapi/api/download', { query: { fidlist: '[x', type: 'dlink' } })).body.errno, 2);
  } finally {
    await e.stop();
  }
});

test('streaming: an m3u8 whose segments are on the download host and serve the bytes', async () => {
  const e = await startEmu();
  try {
    const data = Buffer.alloc(300 * 1024, 7);
    await upload(e, `${e.root}/v.mp4`, data);
    const r = await fetch(`http://${e.emu.apiDomain}/openapi/api/streaming?${new URLSearchParams({ path: `${e.root}/v.mp4`, type: 'M3U8_AUTO_720', access_tokens: e.token })}`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /mpegurl/);
    const text = await r.text();
    assert.match(text, /^#EXTM3U\n/);
    assert.match(text, /#EXT-X-ENDLIST/);
    const urls = text.split('\n').filter((l) => l.startsWith('http://'));
    assert.ok(urls.length >= 2);
    let total = 0;
    for (const u of urls) {
      assert.ok(u.startsWith(`http://${e.emu.downloadDomain}/`));
      const seg = await fetch(u);
      assert.equal(seg.status, 200);
      total += (await seg.arrayBuffer()).byteLength;
    }
    assert.equal(total, data.length);
    assert.equal((await api(e, '/openapi/api/streaming', { query: { path: `${e.root}/v.mp4`, type: 'M3U8_BOGUS' } })).body.errno, 2);
    await upload(e, `${e.root}/t.txt`, Buffer.from('x'));
    assert.equal((await api(e, '/openapi/api/streaming', { query: { path: `${e.root}/t.txt`, type: 'M3U8_AUTO_480' } })).body.errno, 31339);
  } finally {
    await e.stop();
  }
});

test('filemanager: copy, move, rename, delete; -7, -8, -9 per item with errno 12; overwrite; async=2', async () => {
  const e = await startEmu();
  try {
    const R = e.root;
    await upload(e, `${R}/a/one.txt`, Buffer.from('1'));
    await upload(e, `${R}/a/sub/two.txt`, Buffer.from('22'));
    await mkdir(e, `${R}/b`);
    const fm = (opera: string, filelist: unknown, extra: Record<string, string> = {}): ReturnType<typeof api> =>
      api(e, '/openapi/api/filemanager', { query: { opera, ...extra }, form: { filelist: JSON.stringify(filelist) } });
    const exists = async (p: string): Promise<boolean> =>
      (await api(e, '/openapi/api/filemetas', { query: { target: JSON.stringify([p]) } })).body.info[0].errno === 0;

    let r = await fm('copy', [{ path: `${R}/a`, dest: `${R}/b`, newname: 'a2' }]);
    assert.equal(r.body.errno, 0);
    assert.deepEqual(r.body.info, [{ errno: 0, path: `${R}/a` }]);
    assert.ok(await exists(`${R}/b/a2/sub/two.txt`));
    assert.ok(await exists(`${R}/a/sub/two.txt`));

    r = await fm('move', [{ path: `${R}/a/one.txt`, dest: `${R}/b`, newname: 'one.txt' }]);
    assert.equal(r.body.errno, 0);
    assert.ok(await exists(`${R}/b/one.txt`));
    assert.ok(!(await exists(`${R}/a/one.txt`)));

    r = await fm('rename', [{ path: `${R}/b/a2`, newname: 'renamed' }]);
    assert.equal(r.body.errno, 0);
    assert.ok(await exists(`${R}/b/renamed/sub/two.txt`));
    const l = await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${R}/b/renamed/sub` } });
    assert.equal(l.body.list[0].path, `${R}/b/renamed/sub/two.txt`);

    // refusals
    r = await fm('rename', [{ path: `${R}/b/one.txt`, newname: 'bad:name' }]);
    assert.equal(r.body.errno, 12);
    assert.equal(r.body.info[0].errno, -7);
    r = await fm('copy', [{ path: `${R}/b/one.txt`, dest: `${R}/b`, newname: 'one.txt' }]);
    assert.equal(r.body.info[0].errno, -8);
    r = await fm('move', [{ path: `${R}/b/missing.txt`, dest: `${R}/a`, newname: 'x' }]);
    assert.equal(r.body.info[0].errno, -9);
    r = await fm('move', [{ path: `${R}/b/one.txt`, dest: `${R}/nowhere`, newname: 'x' }]);
    assert.equal(r.body.info[0].errno, -9);
    r = await fm('move', [{ path: `${R}/b`, dest: `${R}/b/renamed`, newname: 'loop' }]);
    assert.equal(r.body.info[0].errno, -7);
    r = await fm('delete', [`${R}/nothing`]);
    assert.equal(r.body.errno, 12);
    assert.deepEqual(r.body.info, [{ errno: -9, path: `${R}/nothing` }]);
    // mixed batch: one ok, one failing
    await upload(e, `${R}/a/three.txt`, Buffer.from('333'));
    r = await fm('copy', [
      { path: `${R}/a/three.txt`, dest: `${R}/b`, newname: 'three.txt' },
      { path: `${R}/a/three.txt`, dest: `${R}/b`, newname: 'one.txt' },
    ]);
    assert.equal(r.body.errno, 12);
    assert.deepEqual(r.body.info.map((i: { errno: number }) => i.errno), [0, -8]);
    // overwrite
    r = await fm('copy', [{ path: `${R}/a/three.txt`, dest: `${R}/b`, newname: 'one.txt', ondup: 'overwrite' }]);
    assert.equal(r.body.errno, 0);
    const meta = await api(e, '/openapi/api/filemetas', { query: { target: JSON.stringify([`${R}/b/one.txt`]) } });
    assert.equal(meta.body.info[0].size, 3);
    // newcopy
    r = await fm('copy', [{ path: `${R}/a/three.txt`, dest: `${R}/b`, newname: 'one.txt' }], { ondup: 'newcopy' });
    assert.equal(r.body.errno, 0);
    const names = ((await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${R}/b` } })).body.list as { server_filename: string }[]).map((x) => x.server_filename);
    assert.equal(names.length, 4);
    assert.ok(names.some((n) => /^one_\d{8}_\d{6}\.txt$/.test(n)), names.join());
    // async=2: taskid, empty info, work done
    r = await fm('delete', [`${R}/b/renamed`], { async: '2' });
    assert.equal(r.body.errno, 0);
    assert.deepEqual(r.body.info, []);
    assert.equal(typeof r.body.taskid, 'number');
    assert.ok(!(await exists(`${R}/b/renamed/sub/two.txt`)));
    // malformed
    assert.equal((await api(e, '/openapi/api/filemanager', { query: { opera: 'delete' }, form: { filelist: '[oops' } })).body.errno, 2);
    assert.equal((await api(e, '/openapi/api/filemanager', { query: { opera: 'explode' }, form: { filelist: '[]' } })).body.errno, 2);
    assert.equal((await api(e, '/openapi/api/filemanager', { query: { opera: 'delete' }, form: {} })).body.errno, 2);
    assert.equal((await api(e, '/openapi/api/filemanager', { query: { opera: 'copy' }, form: { filelist: '[42]' } })).body.errno, 2);
    // GET is not the method of filemanager
    assert.equal((await api(e, '/openapi/api/filemanager', { query: { opera: 'delete' } })).status, 405);
  } finally {
    await e.stop();
  }
});

test('hardening: huge bodies and params answer errno 2; the emulator keeps serving', async () => {
  const e = await startEmu();
  try {
    const huge = 'x'.repeat(2 * 1024 * 1024);
    const r = await api(e, '/openapi/api/filemanager', { query: { opera: 'delete' }, form: { filelist: huge } });
    assert.equal(r.body.errno, 2);
    const deep = '['.repeat(100000);
    assert.equal((await api(e, '/openapi/api/filemanager', { query: { opera: 'delete' }, form: { filelist: deep } })).body.errno, 2);
    assert.equal((await api(e, '/openapi/api/create', { form: { path: `${e.root}/${'y'.repeat(5000)}`, isdir: '1' } })).body.errno, -7);
    const bad = await fetch(`http://${e.emu.apiDomain}/openapi/api/list?dir=%E0%A4%A&access_tokens=${encodeURIComponent(e.token)}`);
    assert.ok(bad.status === 200 || bad.status === 400);
    assert.equal((await api(e, '/openapi/api/quota')).body.errno, 0);
  } finally {
    await e.stop();
  }
});
