/**
 * The emulator is never more lenient than the spec (issue 9, protocol-notes "What the emulator
 * refuses"): one test per rule. Each was run against the lenient emulator before the rule and
 * failed there. The share routes' rules are in shares.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { type Emu, type Json, api, getJson, md5, oauth, sign, startEmu, superfile2, upload, verifyShare } from './emu-helpers.js';

function creds(e: Emu, extra: Record<string, string>): Record<string, string> {
  const ts = String(Math.floor(Date.now() / 1000));
  return { client_id: e.emu.credentials.clientId, client_secret: e.emu.credentials.clientSecret, timestamp: ts, sign: sign(e.emu, ts), ...extra };
}

/** POST with the given query and form body (urlencoded), token in the query. */
async function post(e: Emu, path: string, query: Record<string, string>, form: Record<string, string>): Promise<Json> {
  const q = new URLSearchParams({ ...query, access_tokens: e.token });
  return (await getJson(`http://${e.emu.apiDomain}${path}?${q}`, { method: 'POST', body: new URLSearchParams(form), headers: { 'content-type': 'application/x-www-form-urlencoded' } })).body;
}

/** A raw POST (node:http: no Content-Type unless given). */
function rawPost(url: string, body: string, headers: Record<string, string> = {}): Promise<Json> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve(JSON.parse(text) as Json));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** superfile2 with the given query and extra multipart fields before the file. */
async function superfile2Raw(e: Emu, query: Record<string, string>, fields: Record<string, string>, data: Buffer): Promise<Json> {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  fd.append('file', new Blob([data]), 'blob');
  const q = new URLSearchParams({ ...query, access_tokens: e.token });
  return (await getJson(`http://${e.emu.uploadDomain}/rest/2.0/pcs/superfile2?${q}`, { method: 'POST', body: fd })).body;
}

async function withEmu(fn: (e: Emu) => Promise<void>): Promise<void> {
  const e = await startEmu();
  try {
    await fn(e);
  } finally {
    await e.stop();
  }
}

const data = Buffer.from('strict');
const blockList = JSON.stringify([md5(data)]);

test('strict: precreate takes its parameters in the body only (3.4.1); one in the query is refused (errno 2)', () =>
  withEmu(async (e) => {
    const path = `${e.root}/p.txt`;
    const form = { path, autoinit: '1', block_list: blockList, rtype: '1' };
    assert.equal((await post(e, '/openapi/api/precreate', {}, form)).errno, 0);
    assert.equal((await post(e, '/openapi/api/precreate', { path }, { autoinit: '1', block_list: blockList })).errno, 2, 'path in the query');
    assert.equal((await post(e, '/openapi/api/precreate', { block_list: blockList }, form)).errno, 2, 'block_list in the query too');
  }));

test('strict: create takes its parameters in the body only (3.4.3); one in the query is refused (errno 2)', () =>
  withEmu(async (e) => {
    const path = `${e.root}/c.txt`;
    const pre = await post(e, '/openapi/api/precreate', {}, { path, autoinit: '1', block_list: blockList, rtype: '1' });
    await superfile2(e, { path, uploadid: pre.uploadid, partseq: 0 }, data);
    const form = { path, size: String(data.length), uploadid: pre.uploadid, block_list: blockList, rtype: '1' };
    const { rtype: _r, ...noRtype } = form;
    assert.equal((await post(e, '/openapi/api/create', { rtype: '1' }, noRtype)).errno, 2, 'rtype in the query');
    assert.equal((await post(e, '/openapi/api/create', { uploadid: pre.uploadid }, form)).errno, 2, 'uploadid in the query too');
    assert.equal((await post(e, '/openapi/api/create', {}, form)).errno, 0);
  }));

test('strict: filemanager takes opera and async in the query, filelist in the body (3.4.4); elsewhere refused (errno 2)', () =>
  withEmu(async (e) => {
    await upload(e, `${e.root}/f1.txt`, data);
    const filelist = JSON.stringify([`${e.root}/f1.txt`]);
    assert.equal((await post(e, '/openapi/api/filemanager', { opera: 'delete' }, { filelist, async: '0' })).errno, 2, 'async in the body');
    assert.equal((await post(e, '/openapi/api/filemanager', {}, { opera: 'delete', filelist })).errno, 2, 'opera in the body');
    assert.equal((await post(e, '/openapi/api/filemanager', { opera: 'delete', filelist }, {})).errno, 2, 'filelist in the query');
    assert.equal((await post(e, '/openapi/api/filemanager', { opera: 'delete', async: '0' }, { filelist })).errno, 0);
  }));

test('strict: superfile2 takes method/app_id/path/uploadid/partseq in the query, only the file in the body (3.4.2); 31023 otherwise', () =>
  withEmu(async (e) => {
    const path = `${e.root}/s.txt`;
    const pre = await post(e, '/openapi/api/precreate', {}, { path, autoinit: '1', block_list: blockList, rtype: '1' });
    const q = { method: 'upload', app_id: '250528', path, uploadid: pre.uploadid, partseq: '0' };
    const { partseq: _p, ...noPartseq } = q;
    assert.equal((await superfile2Raw(e, noPartseq, { partseq: '0' }, data)).error_code, 31023, 'partseq in the body');
    assert.equal((await superfile2Raw(e, q, { path }, data)).error_code, 31023, 'path in the body too');
    assert.equal((await superfile2Raw(e, { ...q, file: 'x' }, {}, data)).error_code, 31023, 'file in the query');
    assert.equal((await superfile2Raw(e, q, {}, data)).md5, md5(data));
  }));

test('strict: OAuth POSTs take form fields only (1.4.2); the same fields in the query are refused (errno 2)', () =>
  withEmu(async (e) => {
    const code = e.emu.issueAuthorizationCode();
    const fields = creds(e, { grant_type: 'authorization_code', code });
    const asQuery = await getJson(`${e.emu.authUrl}/oauth/gettoken?${new URLSearchParams(fields)}`, { method: 'POST' });
    assert.equal(asQuery.body.errno, 2);
    const { code: c, ...rest } = fields;
    assert.equal((await getJson(`${e.emu.authUrl}/oauth/gettoken?code=${c}`, { method: 'POST', body: new URLSearchParams(rest) })).body.errno, 2, 'code in the query');
    const ti = await getJson(`${e.emu.authUrl}/oauth/tokeninfo?access_token=${e.token}`, { method: 'POST', body: new URLSearchParams({}) });
    assert.equal(ti.body.errno, 2);
    assert.equal((await oauth(e, '/oauth/gettoken', fields)).errno, 0, 'a refused request did not consume the code');
  }));

test('strict: list needs page and num (3.4.5, mandatory); errno 2 without either', () =>
  withEmu(async (e) => {
    assert.equal((await api(e, '/openapi/api/list', { query: { dir: e.root, num: '10' } })).body.errno, 2, 'no page');
    assert.equal((await api(e, '/openapi/api/list', { query: { dir: e.root, page: '1' } })).body.errno, 2, 'no num');
    assert.equal((await api(e, '/openapi/api/list', { query: { dir: e.root, page: '1', num: '10' } })).body.errno, 0);
  }));

test('strict: search needs recursion (3.4.7, mandatory); errno 2 without it', () =>
  withEmu(async (e) => {
    assert.equal((await api(e, '/openapi/api/search', { query: { key: 'x' } })).body.errno, 2);
    assert.equal((await api(e, '/openapi/api/search', { query: { key: 'x', recursion: 'yes' } })).body.errno, 2);
    assert.equal((await api(e, '/openapi/api/search', { query: { key: 'x', recursion: '1' } })).body.errno, 0);
  }));

test('strict: create needs rtype (3.4.3, mandatory), for files and folders; errno 2 without it', () =>
  withEmu(async (e) => {
    const path = `${e.root}/r.txt`;
    const pre = await post(e, '/openapi/api/precreate', {}, { path, autoinit: '1', block_list: blockList, rtype: '1' });
    await superfile2(e, { path, uploadid: pre.uploadid, partseq: 0 }, data);
    assert.equal((await post(e, '/openapi/api/create', {}, { path, size: String(data.length), uploadid: pre.uploadid, block_list: blockList })).errno, 2);
    assert.equal((await post(e, '/openapi/api/create', {}, { path: `${e.root}/dir`, isdir: '1' })).errno, 2);
    assert.equal((await post(e, '/openapi/api/create', {}, { path: `${e.root}/dir`, isdir: '1', rtype: '0' })).errno, 0);
  }));

test('strict: the token as each table spells it: access_tokens; access_token only where table and example disagree; dlinks access_tokens', () =>
  withEmu(async (e) => {
    const singular = (path: string, q: Record<string, string> = {}): Promise<Json> =>
      getJson(`http://${e.emu.apiDomain}${path}?${new URLSearchParams({ ...q, access_token: e.token })}`).then((r) => r.body);
    const f = await upload(e, `${e.root}/t.txt`, data);
    assert.equal((await singular('/openapi/api/quota')).errno, -6);
    assert.equal((await singular('/openapi/uinfo')).errno, -6);
    assert.equal((await singular('/openapi/api/list', { dir: e.root, page: '1', num: '10' })).errno, -6);
    assert.equal((await singular('/openapi/api/filemetas', { target: JSON.stringify([`${e.root}/t.txt`]) })).errno, -6);
    assert.equal((await singular('/openapi/api/download', { fidlist: JSON.stringify([f.fs_id]), type: 'dlink' })).errno, -6);
    const pre = await getJson(`http://${e.emu.apiDomain}/openapi/api/precreate?access_token=${e.token}`, { method: 'POST', body: new URLSearchParams({ path: `${e.root}/u.txt`, autoinit: '1', block_list: blockList }) });
    assert.equal(pre.body.errno, -6);
    // where the table says access_token and the example access_tokens, both work
    assert.equal((await singular('/openapi/active')).errno, 0);
    const sh = e.emu.createShare([`${e.root}/t.txt`], '');
    const { sekey } = await verifyShare(e, sh.surl, '');
    const dl = await singular('/openapi/share/download', { shareid: String(sh.shareid), uk: String(sh.uk), fid_list: JSON.stringify([f.fs_id]), sekey });
    assert.equal(dl.errno, 0);
    // a dlink: access_tokens (3.4.8)
    const dlink = (await api(e, '/openapi/api/download', { query: { fidlist: JSON.stringify([f.fs_id]), type: 'dlink' } })).body.dlink[0].dlink as string;
    assert.equal((await getJson(`${dlink}&access_token=${e.token}`)).status, 403);
    assert.equal((await fetch(`${dlink}&access_tokens=${e.token}`, { redirect: 'manual' })).status, 302);
  }));

test('strict: malformed paths are refused, not normalised: trailing slash, double slash, no leading slash, dot segments (-7; 31023 on superfile2)', () =>
  withEmu(async (e) => {
    const R = e.root;
    await upload(e, `${R}/d/x.txt`, data);
    const bad = [`${R}/d/`, `${R}//d`, `${R}/d//x.txt`, `${R.slice(1)}/d`, `${R}/./d`, `${R}/d/../d`, `${R}/`];
    for (const p of bad) {
      assert.equal((await api(e, '/openapi/api/list', { query: { dir: p, page: '1', num: '10' } })).body.errno, -7, `list ${p}`);
      assert.equal((await post(e, '/openapi/api/precreate', {}, { path: `${p}/y.txt`, autoinit: '1', block_list: blockList, rtype: '1' })).errno, -7, `precreate ${p}/y.txt`);
      assert.equal((await post(e, '/openapi/api/create', {}, { path: p, isdir: '1', rtype: '0' })).errno, -7, `create ${p}`);
      const fm = await post(e, '/openapi/api/filemanager', { opera: 'delete' }, { filelist: JSON.stringify([p]) });
      assert.equal(fm.info[0].errno, -7, `filemanager ${p}`);
      const meta = await api(e, '/openapi/api/filemetas', { query: { target: JSON.stringify([p]) } });
      assert.equal(meta.body.info[0].errno, -7, `filemetas ${p}`);
    }
    // precreate's own path with a trailing slash, and superfile2's path
    assert.equal((await post(e, '/openapi/api/precreate', {}, { path: `${R}/d/y.txt/`, autoinit: '1', block_list: blockList, rtype: '1' })).errno, -7);
    const other = Buffer.from('other content');
    const pre = await post(e, '/openapi/api/precreate', {}, { path: `${R}/d/y.txt`, autoinit: '1', block_list: JSON.stringify([md5(other)]), rtype: '1' });
    assert.equal(pre.return_type, 1);
    assert.equal((await superfile2(e, { path: `${R}//d/y.txt`, uploadid: pre.uploadid, partseq: 0 }, other)).body.error_code, 31023);
    assert.equal((await superfile2(e, { path: `${R}/d/y.txt/`, uploadid: pre.uploadid, partseq: 0 }, other)).body.error_code, 31023);
    // nothing was made at a repaired path
    const l = await api(e, '/openapi/api/list', { query: { dir: `${R}/d`, page: '1', num: '10' } });
    assert.deepEqual((l.body.list as { server_filename: string }[]).map((x) => x.server_filename), ['x.txt']);
  }));

test('strict: a POST body needs a Content-Type, and a form one (urlencoded or multipart): errno 2 otherwise', () =>
  withEmu(async (e) => {
    const url = `http://${e.emu.apiDomain}/openapi/api/precreate?access_tokens=${e.token}`;
    const body = new URLSearchParams({ path: `${e.root}/ct.txt`, autoinit: '1', block_list: blockList, rtype: '1' }).toString();
    // refused for the body's type (the message says so), not for parameters missing from a body read as empty
    const refused = async (res: Promise<Json>, why: string): Promise<void> => {
      const j = await res;
      assert.equal(j.errno, 2, why);
      assert.match(String(j.errmsg ?? j.show_msg), /Content-Type|must be a form/, `${why}: ${JSON.stringify(j)}`);
    };
    await refused(rawPost(url, body), 'no Content-Type');
    await refused(rawPost(url, body, { 'content-type': 'text/plain' }), 'text/plain');
    await refused(rawPost(url, JSON.stringify({ path: `${e.root}/ct.txt` }), { 'content-type': 'application/json' }), 'JSON');
    await refused(rawPost(`${e.emu.authUrl}/oauth/tokeninfo`, `access_token=${e.token}`), 'OAuth too');
    assert.equal((await rawPost(url, body, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' })).errno, 0);
  }));
