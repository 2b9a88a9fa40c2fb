/**
 * The emulator acts out each service variant and knob (src/emulator/variants.ts, protocol-notes
 * "Service variants"): one test per variant field, plus the handle knobs expireUploadSessions,
 * rateLimit, the badLength/badRange download faults, counters.refreshTokenReuse, the md5
 * obfuscation, and the TBDAV_EMULATOR_VARIANT plumbing of the test helpers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import { DEFAULT_VARIANT, VARIANT_PRESETS, resolveVariant } from '../../src/emulator/index.js';
import { deobfuscateMd5, md5ForWire, obfuscateMd5 } from '../../src/emulator/variants.js';
import { envVariant, envVariantName, withEnvVariant } from '../helpers/emulator-variant.js';
import { type Emu, api, dlinkOf, getJson, md5, oauth, randomBuffer, sign, startEmu, superfile2, upload, verifyShare } from './emu-helpers.js';

const SMALL_SHARDS = { minShardBytes: 1024 };

function creds(e: Emu, extra: Record<string, string>): Record<string, string> {
  const ts = String(Math.floor(Date.now() / 1000));
  return { client_id: e.emu.credentials.clientId, client_secret: e.emu.credentials.clientSecret, timestamp: ts, sign: sign(e.emu, ts), ...extra };
}

/** GET with node:http, reading until the connection ends or is cut (fetch throws on a cut body). */
function rawGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      const done = (): void => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), complete: res.complete });
      res.on('end', done);
      res.on('aborted', done);
      res.on('error', done);
    });
    req.on('error', reject);
  });
}

test('md5 obfuscation: the spec example pair both ways, the share/list emd5 decodes to its md5, random md5s round-trip', () => {
  assert.equal(obfuscateMd5('84fd2e17018194c18b264048f851ba11'), '00a2d1a60t56e3f8f972ff76028d8da7');
  assert.equal(deobfuscateMd5('00a2d1a60t56e3f8f972ff76028d8da7'), '84fd2e17018194c18b264048f851ba11');
  // spec 3.5.3: "emd5" beside the plain "md5" of the same file
  assert.equal(deobfuscateMd5('cacdbeeb9vd70ff5acba3e4cd7f0acb3'), '167cc21acbeefb8c5e5b615cad997b2b');
  for (let i = 0; i < 2000; i++) {
    const h = md5(randomBytes(16));
    const o = obfuscateMd5(h);
    assert.match(o, /^[0-9a-f]{9}[g-v][0-9a-f]{22}$/);
    assert.equal(deobfuscateMd5(o), h);
    assert.equal(obfuscateMd5(h.toUpperCase()), o, 'one md5, one form');
  }
  assert.throws(() => obfuscateMd5('xyz'), RangeError);
  assert.throws(() => deobfuscateMd5('84fd2e17018194c18b264048f851ba11'), RangeError, 'plain hex is not the obfuscated form');
  // where each form obfuscates
  const plain = '84fd2e17018194c18b264048f851ba11';
  for (const place of ['create', 'precreate', 'search', 'transfer', 'list', 'filemetas', 'share'] as const) {
    assert.equal(md5ForWire({ md5Form: 'plain' }, plain, place), plain);
    assert.equal(md5ForWire({ md5Form: 'obfuscated' }, plain, place), obfuscateMd5(plain));
    const examples = ['create', 'search', 'transfer'].includes(place);
    assert.equal(md5ForWire({ md5Form: 'examples' }, plain, place), examples ? obfuscateMd5(plain) : plain, place);
  }
});

test('presets: the names of the interface, each a full valid variant; resolveVariant refuses bad values', () => {
  assert.deepEqual(Object.keys(VARIANT_PRESETS).sort(), [
    'content-md5',
    'default',
    'dlink-direct',
    'dlink-two-hops',
    'obfuscated',
    'revoke-family',
    'session-errno-2',
    'short-pages',
    'spec-examples',
  ]);
  for (const v of Object.values(VARIANT_PRESETS)) assert.deepEqual(resolveVariant(v), v);
  assert.deepEqual(VARIANT_PRESETS['spec-examples'], { ...DEFAULT_VARIANT, md5Form: 'examples', uploadDomain: 'absent', listArray: 'info' });
  assert.equal(VARIANT_PRESETS['session-errno-2'].sessionGoneErrno, 2);
  assert.equal(DEFAULT_VARIANT.sessionGoneErrno, 31190);
  assert.throws(() => resolveVariant({ dlinkHops: 3 as 0 }), RangeError);
  assert.throws(() => resolveVariant({ md5Form: 'hex' as 'plain' }), RangeError);
  assert.throws(() => resolveVariant({ sessionGoneErrno: 0 }), RangeError);
});

test('TBDAV_EMULATOR_VARIANT: the helpers apply the preset, explicit fields win, an unknown name is refused', async () => {
  assert.equal(envVariantName({}), 'default');
  assert.deepEqual(envVariant({ TBDAV_EMULATOR_VARIANT: 'spec-examples' }), VARIANT_PRESETS['spec-examples']);
  const o = withEnvVariant({ latencyMs: 1, variant: { listArray: 'list' } }, { TBDAV_EMULATOR_VARIANT: 'spec-examples' });
  assert.deepEqual(o.variant, { ...VARIANT_PRESETS['spec-examples'], listArray: 'list' });
  assert.equal(o.latencyMs, 1);
  assert.throws(() => envVariantName({ TBDAV_EMULATOR_VARIANT: 'nope' }), /no such emulator variant preset/);
  // the emulator helper of these tests starts under the process's preset (default here unless set)
  const e = await startEmu();
  try {
    assert.deepEqual(e.emu.variant, envVariant());
  } finally {
    await e.stop();
  }
});

test('setOptions({variant}) merges into the variant in force', async () => {
  const e = await startEmu({ variant: { ...DEFAULT_VARIANT } });
  try {
    e.emu.setOptions({ variant: { listArray: 'info' } });
    assert.deepEqual(e.emu.variant, { ...DEFAULT_VARIANT, listArray: 'info' });
    e.emu.setOptions({ variant: { dlinkHops: 0 } });
    assert.deepEqual(e.emu.variant, { ...DEFAULT_VARIANT, listArray: 'info', dlinkHops: 0 });
    assert.throws(() => e.emu.setOptions({ variant: { refreshReuse: 'maybe' as 'revoke' } }), RangeError);
  } finally {
    await e.stop();
  }
});

test('md5Rule: multi-shard files report md5(JSON(block_list)) by default, the content md5 under content (create, list, rapid upload)', async () => {
  const data = randomBuffer(5000, 11);
  const blocks = [0, 2048, 4096].map((o) => md5(data.subarray(o, o + 2048)));
  for (const rule of ['blocklist', 'content'] as const) {
    const e = await startEmu({ ...SMALL_SHARDS, variant: { md5Rule: rule } });
    try {
      const want = rule === 'content' ? md5(data) : md5(JSON.stringify(blocks));
      const c = await upload(e, `${e.root}/m.bin`, data, { shardSize: 2048 });
      assert.equal(c.errno, 0);
      assert.equal(c.md5, want, rule);
      const l = await api(e, '/openapi/api/list', { query: { dir: e.root, page: '1', num: '10' } });
      assert.equal(l.body.list[0].md5, want);
      // a rapid upload of the same content gets the same md5
      const rapid = await upload(e, `${e.root}/again.bin`, data, { shardSize: 2048 });
      assert.equal(rapid.rapid, true);
      assert.equal(rapid.md5, want);
      // one shard: the content md5 whatever the rule
      const one = await upload(e, `${e.root}/one.bin`, data.subarray(0, 100));
      assert.equal(one.md5, md5(data.subarray(0, 100)));
    } finally {
      await e.stop();
    }
  }
});

test('md5Form: examples obfuscates create/search only (precreate plain, as its example); obfuscated every answer; plain none', async () => {
  const data = randomBuffer(3000, 12);
  const plain = md5(data);
  const o = obfuscateMd5(plain);
  const expect = {
    plain: { create: plain, rapid: plain, search: plain, list: plain, filemetas: plain, share: plain },
    examples: { create: o, rapid: plain, search: o, list: plain, filemetas: plain, share: plain },
    obfuscated: { create: o, rapid: o, search: o, list: o, filemetas: o, share: o },
  };
  for (const form of ['plain', 'examples', 'obfuscated'] as const) {
    const e = await startEmu({ variant: { md5Form: form } });
    try {
      const c = await upload(e, `${e.root}/f.txt`, data);
      const rapid = await upload(e, `${e.root}/g.txt`, data);
      assert.equal(rapid.rapid, true);
      const s = await api(e, '/openapi/api/search', { query: { key: 'f.txt', recursion: '1' } });
      const l = await api(e, '/openapi/api/list', { query: { dir: e.root, page: '1', num: '10' } });
      const m = await api(e, '/openapi/api/filemetas', { query: { target: JSON.stringify([`${e.root}/f.txt`]) } });
      const share = e.emu.createShare([`${e.root}/f.txt`], '');
      const { sekey } = await verifyShare(e, share.surl, '');
      const info = await api(e, '/openapi/api/shorturlinfo', { query: { shorturl: share.shorturl, root: '1', spd: sekey } });
      const got = { create: c.md5, rapid: rapid.md5, search: s.body.list[0].md5, list: l.body.list[0].md5, filemetas: m.body.info[0].md5, share: info.body.list[0].md5 };
      assert.deepEqual(got, expect[form], form);
      // the dlink names the plain md5 whatever the form
      assert.ok((await dlinkOf(e, c.fs_id)).includes(`/file/${plain}?`));
    } finally {
      await e.stop();
    }
  }
});

test('uploadDomain: absent = tokeninfo without upload_domain and api_domain serves superfile2; present = upload host only', async () => {
  for (const mode of ['present', 'absent'] as const) {
    const e = await startEmu({ variant: { uploadDomain: mode } });
    try {
      const ti = await oauth(e, '/oauth/tokeninfo', { access_token: e.token });
      assert.equal(ti.errno, 0);
      assert.equal(ti.data.api_domain, e.emu.apiDomain);
      assert.equal('upload_domain' in ti.data, mode === 'present');
      const path = `${e.root}/u.txt`;
      const data = Buffer.from('hello');
      const pre = await api(e, '/openapi/api/precreate', { form: { path, autoinit: '1', block_list: JSON.stringify([md5(data)]), rtype: '1' } });
      const viaApi = await superfile2(e, { path, uploadid: pre.body.uploadid, partseq: 0 }, data, e.emu.apiDomain);
      if (mode === 'present') {
        assert.equal(viaApi.status, 404);
      } else {
        assert.equal(viaApi.status, 200);
        assert.equal(viaApi.body.md5, md5(data));
      }
      // the upload host serves it in both cases
      const viaUpload = await superfile2(e, { path, uploadid: pre.body.uploadid, partseq: 0 }, data);
      assert.equal(viaUpload.body.md5, md5(data));
    } finally {
      await e.stop();
    }
  }
});

test('listArray: the list answer names its array list (default) or info', async () => {
  for (const name of ['list', 'info'] as const) {
    const e = await startEmu({ variant: { listArray: name } });
    try {
      await upload(e, `${e.root}/a.txt`, Buffer.from('a'));
      const l = await api(e, '/openapi/api/list', { query: { dir: e.root, page: '1', num: '10' } });
      assert.equal(l.body.errno, 0);
      assert.equal(l.body[name].length, 1);
      assert.equal(l.body[name === 'list' ? 'info' : 'list'], undefined);
    } finally {
      await e.stop();
    }
  }
});

test('listPageShort: pages of num-1 entries, shorter than asked before the end, nothing lost nor repeated', async () => {
  const e = await startEmu({ variant: { listPageShort: true } });
  try {
    for (let i = 0; i < 7; i++) await upload(e, `${e.root}/f${i}.txt`, Buffer.from(String(i)));
    const seen: string[] = [];
    const sizes: number[] = [];
    for (let page = 1; page < 10; page++) {
      const l = await api(e, '/openapi/api/list', { query: { dir: e.root, page: String(page), num: '3' } });
      sizes.push(l.body.list.length);
      if (l.body.list.length === 0) break;
      for (const it of l.body.list) seen.push(it.server_filename);
    }
    assert.deepEqual(sizes, [2, 2, 2, 1, 0]);
    assert.deepEqual(seen, ['f0.txt', 'f1.txt', 'f2.txt', 'f3.txt', 'f4.txt', 'f5.txt', 'f6.txt']);
    e.emu.setOptions({ variant: { listPageShort: false } });
    const full = await api(e, '/openapi/api/list', { query: { dir: e.root, page: '1', num: '3' } });
    assert.equal(full.body.list.length, 3);
  } finally {
    await e.stop();
  }
});

test('sessionGoneErrno + expireUploadSessions: every open uploadid forgotten; superfile2 and create answer the variant errno', async () => {
  for (const errno of [31190, 2]) {
    const e = await startEmu({ variant: { sessionGoneErrno: errno } });
    try {
      const path = `${e.root}/s.txt`;
      const data = Buffer.from('session');
      const blockList = JSON.stringify([md5(data)]);
      const pre = await api(e, '/openapi/api/precreate', { form: { path, autoinit: '1', block_list: blockList, rtype: '1' } });
      const id = pre.body.uploadid as string;
      assert.equal((await superfile2(e, { path, uploadid: id, partseq: 0 }, data)).body.md5, md5(data));
      // an uploadid never issued
      const forged = await superfile2(e, { path, uploadid: 'N1-forged', partseq: 0 }, data);
      assert.equal(forged.body.error_code, errno);
      assert.equal(forged.body.errno, errno);
      e.emu.expireUploadSessions();
      const sf = await superfile2(e, { path, uploadid: id, partseq: 0 }, data);
      assert.equal(sf.body.error_code, errno);
      const c = await api(e, '/openapi/api/create', { form: { path, size: String(data.length), uploadid: id, block_list: blockList, rtype: '1' } });
      assert.equal(c.body.errno, errno);
      // a new session works
      const again = await upload(e, path, data);
      assert.equal(again.errno, 0);
      assert.equal(again.path, path);
    } finally {
      await e.stop();
    }
  }
});

test('dlinkHops: 0 = the dlink answers the bytes, 1 = one 302 to /content, 2 = 302 to /hop then 302 to /content', async () => {
  const data = randomBuffer(50_000, 13);
  for (const hops of [0, 1, 2] as const) {
    const e = await startEmu({ variant: { dlinkHops: hops } });
    try {
      const f = await upload(e, `${e.root}/d.bin`, data);
      let url = `${await dlinkOf(e, f.fs_id)}&access_tokens=${encodeURIComponent(e.token)}`;
      const path: string[] = [];
      for (;;) {
        const r = await fetch(url, { redirect: 'manual', headers: { Range: 'bytes=100-199' } });
        path.push(new URL(url).pathname.split('/')[1]!);
        if (r.status !== 302) {
          assert.equal(r.status, 206);
          assert.equal(r.headers.get('content-range'), `bytes 100-199/${data.length}`);
          assert.deepEqual(Buffer.from(await r.arrayBuffer()), data.subarray(100, 200));
          break;
        }
        await r.arrayBuffer();
        url = new URL(r.headers.get('location')!, url).toString();
        assert.ok(path.length < 5);
      }
      assert.deepEqual(path, hops === 0 ? ['file'] : hops === 1 ? ['file', 'content'] : ['file', 'hop', 'content']);
      // a forged hop is refused
      if (hops === 2) assert.equal((await getJson(`http://${e.emu.downloadDomain}/hop/${f.fs_id}?expires=9999999999&sign=x`)).status, 403);
    } finally {
      await e.stop();
    }
  }
});

test('refreshReuse: refuse keeps the family alive; revoke kills every access and refresh token of the login; both count the reuse', async () => {
  for (const mode of ['refuse', 'revoke'] as const) {
    const e = await startEmu({ variant: { refreshReuse: mode } });
    try {
      const other = e.emu.issueTokens(); // another login: never touched
      const login = e.emu.issueTokens();
      const r1 = await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: login.refresh_token }));
      assert.equal(r1.errno, 0);
      assert.equal(e.emu.counters.refreshTokenReuse, 0);
      const reuse = await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: login.refresh_token }));
      assert.equal(reuse.errno, 200004);
      assert.equal(e.emu.counters.refreshTokenReuse, 1);
      const newAccess = await api(e, '/openapi/api/quota', { token: r1.data.access_token });
      const oldAccess = await api(e, '/openapi/api/quota', { token: login.access_token }); // in its grace period
      const info = await oauth(e, '/oauth/tokeninfo', { access_token: r1.data.access_token });
      if (mode === 'refuse') {
        assert.equal(newAccess.body.errno, 0);
        assert.equal(oldAccess.body.errno, 0);
        assert.equal(info.errno, 0);
        assert.equal((await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: r1.data.refresh_token }))).errno, 0);
      } else {
        assert.equal(newAccess.body.errno, -6);
        assert.equal(oldAccess.body.errno, -6);
        assert.equal(info.errno, 200002);
        assert.equal((await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: r1.data.refresh_token }))).errno, 200004);
      }
      // a third presentation counts again; unknown tokens are not "reuse"
      await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: login.refresh_token }));
      await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: 'never-issued' }));
      assert.equal(e.emu.counters.refreshTokenReuse, 2);
      assert.equal((await api(e, '/openapi/api/quota', { token: other.access_token })).body.errno, 0);
      assert.equal((await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: other.refresh_token }))).errno, 0);
      e.emu.counters.reset();
      assert.equal(e.emu.counters.refreshTokenReuse, 0);
    } finally {
      await e.stop();
    }
  }
});

test('rateLimit: API calls beyond callsPerSecond in a sliding second answer 31034 (superfile2 too); OAuth and downloads are not counted', async () => {
  const e = await startEmu({ rateLimit: { callsPerSecond: 2 } });
  try {
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: 8 }, () => api(e, '/openapi/api/quota')));
    const elapsed = performance.now() - t0;
    const ok = answers.filter((a) => a.body.errno === 0).length;
    const limited = answers.filter((a) => a.body.errno === 31034).length;
    assert.equal(ok + limited, 8);
    assert.equal(e.emu.counters.rateLimited, limited);
    // at most 2 per started second of the batch (a slow machine may see the window move)
    assert.ok(ok >= 2 && ok <= 2 * Math.ceil((elapsed + 1) / 1000), `${ok} accepted in ${elapsed} ms`);
    if (elapsed < 1000) assert.equal(ok, 2);
    // OAuth is not an API call
    for (let i = 0; i < 4; i++) assert.equal((await oauth(e, '/oauth/tokeninfo', { access_token: e.token })).errno, 0);
    // superfile2 answers in the PCS shape
    e.emu.setOptions({ rateLimit: { callsPerSecond: 1 } });
    const burst = await Promise.all(Array.from({ length: 3 }, () => superfile2(e, { path: `${e.root}/x`, uploadid: 'N1-x', partseq: 0 }, Buffer.from('x'))));
    assert.ok(burst.some((b) => b.body.error_code === 31034), JSON.stringify(burst.map((b) => b.body)));
    // removing the limit
    e.emu.setOptions({ rateLimit: undefined });
    const free = await Promise.all(Array.from({ length: 6 }, () => api(e, '/openapi/api/quota')));
    assert.ok(free.every((a) => a.body.errno === 0));
  } finally {
    await e.stop();
  }
});

test('rateLimit: once the window has moved, calls are accepted again', async () => {
  const e = await startEmu({ rateLimit: { callsPerSecond: 1 } });
  try {
    assert.equal((await api(e, '/openapi/api/quota')).body.errno, 0);
    let r = await api(e, '/openapi/api/quota');
    for (let i = 0; i < 50 && r.body.errno === 31034; i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await api(e, '/openapi/api/quota');
    }
    assert.equal(r.body.errno, 0);
  } finally {
    await e.stop();
  }
});

test('download faults badLength / badRange: a wrong Content-Length or Content-Range and a cut body, only where bytes are served', async () => {
  const data = randomBuffer(100_000, 14);
  for (const hops of [1, 0] as const) {
    const bytesAt = hops === 0 ? '/file' : '/content';
    const e = await startEmu({ variant: { dlinkHops: hops } });
    try {
      const f = await upload(e, `${e.root}/b.bin`, data);
      const dlink = `${await dlinkOf(e, f.fs_id)}&access_tokens=${encodeURIComponent(e.token)}`;
      const bytesUrl = async (): Promise<string> => {
        if (hops === 0) return dlink;
        const r = await fetch(dlink, { redirect: 'manual' });
        await r.arrayBuffer();
        return r.headers.get('location')!;
      };
      // kinds drawn for every endpoint: API calls and redirecting hops never get a byte fault
      e.emu.setOptions({ faults: { rate: 1, kinds: ['badLength'] } });
      assert.equal((await api(e, '/openapi/api/quota')).body.errno, 0);
      const url = await bytesUrl();
      const bl = await rawGet(url);
      assert.equal(bl.status, 200);
      assert.notEqual(Number(bl.headers['content-length']), data.length);
      assert.ok(bl.body.length < Number(bl.headers['content-length']), 'body cut short of what it claims');
      assert.equal(bl.complete, false);
      assert.deepEqual(bl.body, data.subarray(0, bl.body.length));
      const blr = await rawGet(url, { Range: 'bytes=1000-1999' });
      assert.equal(blr.status, 200, 'badLength answers 200 even to a Range');

      e.emu.setOptions({ faults: { rate: 1, kinds: ['badRange'], endpoints: [bytesAt] } });
      const br = await rawGet(await bytesUrl(), { Range: 'bytes=1000-1999' });
      assert.equal(br.status, 206);
      assert.notEqual(br.headers['content-range'], `bytes 1000-1999/${data.length}`);
      assert.ok(br.body.length < Number(br.headers['content-length']));
      assert.equal(br.complete, false);
      const one = await rawGet(await bytesUrl(), { Range: 'bytes=5-5' });
      assert.equal(one.status, 206);
      assert.notEqual(one.headers['content-range'], `bytes 5-5/${data.length}`);

      // not in the default set: default kinds never answer a wrong length
      e.emu.setOptions({ faults: { rate: 1, endpoints: [bytesAt], seed: 7 } });
      for (let i = 0; i < 12; i++) {
        const r = await rawGet(await bytesUrl()).catch(() => undefined);
        if (r && r.status === 200) assert.equal(Number(r.headers['content-length']), data.length);
      }
      e.emu.setOptions({ faults: undefined });
      const good = await rawGet(await bytesUrl());
      assert.equal(good.status, 200);
      assert.deepEqual(good.body, data);
    } finally {
      await e.stop();
    }
  }
});
