/**
 * Golden answers: the spec's response examples, verbatim, in test/fixtures/spec/*.json (see the
 * README there). For every endpoint the emulator answers a real call, and every field of the
 * example must be in the answer with the same JSON type (number, string, boolean, object, array,
 * null), nested objects and array items included, unless the field is listed in OMITTED below
 * (fields the emulator deliberately does not send). Fields the emulator adds are allowed.
 * The client's tests parse the same files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_VARIANT } from '../../src/emulator/index.js';
import { deobfuscateMd5 } from '../../src/emulator/variants.js';
import { type Emu, type Json, api, getJson, md5, oauth, randomBuffer, sign, startEmu, superfile2, upload, verifyShare } from './emu-helpers.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/spec');

export function fixture(name: string): Json {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Json;
}

type JsonType = 'null' | 'array' | 'object' | 'string' | 'number' | 'boolean';
function jsonType(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v as JsonType;
}

/**
 * Differences between an example and an answer: fields of the example missing from the answer
 * (unless omitted) and fields whose JSON type differs. Paths: `a.b`, array items `a[]`.
 */
export function shapeDiff(example: unknown, actual: unknown, omitted: ReadonlySet<string>, path = ''): string[] {
  const out: string[] = [];
  const te = jsonType(example);
  const ta = jsonType(actual);
  if (te !== ta) return [`${path || '(root)'}: ${te} in the example, ${ta} in the answer`];
  if (te === 'array') {
    const ex = example as unknown[];
    let ac = actual as unknown[];
    if (ex.length > 0) {
      // file records: a folder example is held against the folders of the answer, a file against files
      const kind = (v: unknown): string | undefined => (jsonType(v) === 'object' && 'isdir' in (v as object) ? String((v as { isdir: unknown }).isdir) : undefined);
      const k = kind(ex[0]);
      if (k !== undefined) ac = ac.filter((v) => kind(v) === undefined || kind(v) === k);
      if (ac.length === 0) out.push(`${path}: the answer holds no item of the example's kind (the test must make it hold some)`);
      for (const item of ac) out.push(...shapeDiff(ex[0], item, omitted, `${path}[]`));
    }
    return [...new Set(out)];
  }
  if (te === 'object') {
    const ex = example as Record<string, unknown>;
    const ac = actual as Record<string, unknown>;
    for (const k of Object.keys(ex)) {
      const p = path ? `${path}.${k}` : k;
      if (omitted.has(p)) continue;
      if (!(k in ac)) out.push(`${p}: missing from the answer`);
      else out.push(...shapeDiff(ex[k], ac[k], omitted, p));
    }
  }
  return out;
}

/** Fields of the examples the emulator does not send, per fixture (with the reason in a comment). */
const OMITTED: Record<string, string[]> = {
  // bookkeeping fields of the service's file records that the emulator has no meaning for
  list: [
    'list[].tkbind_id',
    'list[].real_category',
    'list[].owner_type',
    'list[].oper_id',
    'list[].play_forbid',
    'list[].wpfile',
    'list[].extent_tinyint7',
    'list[].share',
    'list[].pl',
    'list[].from_type',
    'list[].empty',
    'list[].server_atime',
    'list[].owner_id',
    'list[].unlist',
    // the example's entry is a folder with thumbs; the table says folders have none, and the
    // emulator sends thumbs for images and videos only (web=1)
    'list[].thumbs',
  ],
  filemetas: [
    'info[].extent_tinyint4',
    'info[].extent_tinyint1',
    'info[].bitmap',
    'info[].videotag',
    'info[].metadata',
    'info[].oper_id',
    'info[].play_source',
    'info[].play_forbid',
    'info[].wpfile',
    'info[].path_md5',
    'info[].src_location',
    'info[].share',
    'info[].file_key',
    'info[].extent_tinyint5',
    // media fields (the emulator does not probe media)
    'info[].sample_rate',
    'info[].rotate',
    'info[].height',
    'info[].width',
    'info[].duration',
    'info[].channels',
    'info[].extra_info',
    'info[].use_segment',
    'info[].resolution',
    'info[].frame_rate',
    'info[].meta_info',
    'info[].from_type',
    'info[].id',
    'info[].privacy',
    'info[].real_category',
    'info[].file_size',
    'info[].upload_type',
    'info[].owner_id',
    'info[].tkbind_id',
    'info[].extent_tinyint3',
    'info[].owner_type',
    'info[].extent_int3',
    'info[].extent_tinyint2',
  ],
  search: ['list[].delete_type', 'list[].extent_tinyint1', 'list[].oper_id', 'list[].owner_id', 'list[].share', 'list[].wpfile'],
  // share routes (shares.ts): sharer/page decorations and thumbnails it does not make; the
  // emulator has no thumbnails (thumbs URLs would 404), no media probing (hasVideo/haszip), and
  // does not echo the transferred file's record (`meta`) nor the obfuscated `emd5`
  shorturlinfo: ['purchase_forbid_status', 'country', 'sign', 'timestamp', 'vipType', 'list[].thumbs'],
  'share-list': ['list[].emd5', 'list[].thumbs'],
  'share-download': ['dir', 'type', 'page', 'root', 'third', 'longurl', 'fid', 'share_username', 'randsk', 'country', 'ctime', 'expiredtype', 'fcount', 'vipType', 'list[].thumbs'],
  'share-transfer': ['extra.list[].hasVideo', 'extra.list[].haszip', 'extra.list[].meta', 'info[].hasVideo', 'info[].haszip'],
};

function omittedOf(name: string): Set<string> {
  return new Set(OMITTED[name] ?? []);
}

function creds(e: Emu, extra: Record<string, string>): Record<string, string> {
  const ts = String(Math.floor(Date.now() / 1000));
  return { client_id: e.emu.credentials.clientId, client_secret: e.emu.credentials.clientSecret, timestamp: ts, sign: sign(e.emu, ts), ...extra };
}

/** The emulator's answer to the call of each example (one emulator, the default variant). */
async function answers(e: Emu): Promise<Record<string, Json>> {
  const R = e.root;
  const out: Record<string, Json> = {};
  const code = e.emu.issueAuthorizationCode();
  out.gettoken = await oauth(e, '/oauth/gettoken', creds(e, { grant_type: 'authorization_code', code }));
  out.tokeninfo = await oauth(e, '/oauth/tokeninfo', { access_token: out.gettoken.data.access_token });
  out.refreshtoken = await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: out.gettoken.data.refresh_token }));
  out.devicecode = await oauth(e, '/oauth/devicecode', undefined, { client_id: e.emu.credentials.clientId });
  out.uinfo = (await api(e, '/openapi/uinfo')).body;
  out.active = (await api(e, '/openapi/active')).body;
  out.quota = (await api(e, '/openapi/api/quota')).body;

  // precreate: one shard, three shards, rapid upload; superfile2; create
  const one = Buffer.from('one shard');
  out['precreate.one-shard'] = (await api(e, '/openapi/api/precreate', { form: { path: `${R}/one.txt`, autoinit: '1', block_list: JSON.stringify([md5(one)]), rtype: '1' } })).body;
  const three = randomBuffer(2048 * 2 + 10, 21);
  const parts = [three.subarray(0, 2048), three.subarray(2048, 4096), three.subarray(4096)];
  const blocks = JSON.stringify(parts.map((p) => md5(p)));
  const pre3 = (await api(e, '/openapi/api/precreate', { form: { path: `${R}/three.bin`, autoinit: '1', block_list: blocks, rtype: '1' } })).body;
  out['precreate.three-shards'] = pre3;
  for (let i = 0; i < 3; i++) {
    const sf = await superfile2(e, { path: `${R}/three.bin`, uploadid: pre3.uploadid, partseq: i }, parts[i]!);
    if (i === 0) out.superfile2 = sf.body;
  }
  out.create = (await api(e, '/openapi/api/create', { form: { path: `${R}/three.bin`, size: String(three.length), uploadid: pre3.uploadid, block_list: blocks, rtype: '1' } })).body;
  out['precreate.rapid'] = (await api(e, '/openapi/api/precreate', { form: { path: `${R}/again.bin`, autoinit: '1', block_list: blocks, rtype: '1' } })).body;

  // a folder, an image and a video for list / filemetas / search
  await upload(e, `${R}/folder/inner.txt`, Buffer.from('inner'));
  await upload(e, `${R}/photo.png`, randomBuffer(3000, 22));
  const video = await upload(e, `${R}/clip.mp4`, randomBuffer(300_000, 23));
  out.list = (await api(e, '/openapi/api/list', { query: { dir: R, page: '1', num: '100', web: '1' } })).body;
  out.filemetas = (await api(e, '/openapi/api/filemetas', { query: { target: JSON.stringify([`${R}/clip.mp4`]), dlink: '1' } })).body;
  out.search = (await api(e, '/openapi/api/search', { query: { key: 'clip', recursion: '1' } })).body;
  out.download = (await api(e, '/openapi/api/download', { query: { fidlist: JSON.stringify([video.fs_id]), type: 'dlink' } })).body;
  out['filemanager.sync'] = (await api(e, '/openapi/api/filemanager', { query: { opera: 'copy', async: '0' }, form: { filelist: JSON.stringify([{ path: `${R}/three.bin`, dest: R, newname: 'x.bin' }]) } })).body;
  out['filemanager.async'] = (await api(e, '/openapi/api/filemanager', { query: { opera: 'copy', async: '2' }, form: { filelist: JSON.stringify([{ path: `${R}/photo.png`, dest: R, newname: 'y.png' }]) } })).body;

  // shares
  const sh = e.emu.createShare([`${R}/clip.mp4`], 'ab12');
  const verified = await verifyShare(e, sh.surl, 'ab12');
  out['share-verify'] = verified.body;
  const sekey = verified.sekey;
  out.shorturlinfo = (await api(e, '/openapi/api/shorturlinfo', { query: { shorturl: sh.shorturl, root: '1', spd: sekey } })).body;
  out['share-list'] = (await api(e, '/openapi/share/list', { query: { shorturl: sh.surl, root: '1', page: '1', num: '100', sekey } })).body;
  out['share-download'] = (await api(e, '/openapi/share/download', { query: { shareid: String(sh.shareid), uk: String(sh.uk), fid_list: JSON.stringify([video.fs_id]), sekey } })).body;
  const tq = new URLSearchParams({ shareid: String(sh.shareid), from: String(sh.uk), async: '0', sekey, access_tokens: e.token });
  out['share-transfer'] = (
    await getJson(`http://${e.emu.apiDomain}/openapi/share/transfer?${tq}`, { method: 'POST', body: new URLSearchParams({ fsidlist: JSON.stringify([String(video.fs_id)]), path: `${R}/saved` }) })
  ).body;
  out['share-mediameta'] = (await api(e, '/openapi/share/mediameta', { query: { shareid: String(sh.shareid), uk: String(sh.uk), fid: String(video.fs_id), clienttype: '0', sekey } })).body;
  return out;
}

test('golden: every fixture is the spec example verbatim and valid JSON (share/verify as printed is not)', () => {
  const spec = readFileSync('/work/shared/spec/terabox-open-platform.txt', 'utf8');
  const names = readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
  assert.ok(names.length >= 24, names.join(' '));
  for (const f of names) {
    const text = readFileSync(join(FIXTURES, f), 'utf8');
    assert.doesNotThrow(() => JSON.parse(text), f);
    if (f !== 'share-verify.json') assert.ok(spec.includes(text.trimEnd()), `${f} is not verbatim in the spec`);
  }
  const printed = readFileSync(join(FIXTURES, 'share-verify.as-printed.txt'), 'utf8');
  assert.ok(spec.includes(printed.trimEnd()));
  assert.throws(() => JSON.parse(printed), SyntaxError, 'the spec prints share/verify with an object that has a value without a key');
  assert.equal(typeof fixture('share-verify').randsk, 'string', 'the fixed-up copy makes randsk the string its table says');
});

test('golden: the decoded md5s of the examples follow the md5 rules (create = its block_list; 97-shard transfer = md5 of the JSON block list)', () => {
  const create = fixture('create');
  assert.equal(deobfuscateMd5(create.md5), '84fd2e17018194c18b264048f851ba11', 'create 3.4.3 names block_list ["84fd2e17018194c18b264048f851ba11"]');
  const meta = fixture('share-transfer').extra.list[0].meta;
  assert.equal(meta.block_list.length, 97);
  assert.equal(deobfuscateMd5(meta.md5), md5(JSON.stringify(meta.block_list)));
  const sl = fixture('share-list').list[0];
  assert.equal(deobfuscateMd5(sl.emd5), sl.md5);
});

test('golden: the emulator answers every example with the same field names and JSON types', async () => {
  const e = await startEmu({ minShardBytes: 1024, variant: { ...DEFAULT_VARIANT } });
  try {
    const got = await answers(e);
    const problems: string[] = [];
    const names = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length));
    for (const name of names) {
      const answer = got[name];
      if (!answer) {
        problems.push(`${name}: no call of this endpoint in the test`);
        continue;
      }
      assert.equal(answer.errno, 0, `${name}: ${JSON.stringify(answer).slice(0, 300)}`);
      for (const d of shapeDiff(fixture(name), answer, omittedOf(name))) problems.push(`${name}: ${d}`);
    }
    assert.deepEqual(problems, []);
  } finally {
    await e.stop();
  }
});
