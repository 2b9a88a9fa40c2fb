/**
 * The client parses every response example of the spec (the golden answers in test/fixtures/spec/,
 * served byte for byte by a small local HTTP server; only tokeninfo's api_domain is pointed at that
 * server): md5s in either form come out as the same hex, the tokeninfo example without
 * upload_domain sends uploads to api_domain, the list example's array is found (and the table's
 * `info` name too), the create example's renamed path is passed on, big request ids do not break.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { TeraboxClient } from '../../src/terabox/client.js';
import { MemoryTokenStore } from '../../src/terabox/auth/token-store.js';
import { isHexMd5 } from '../../src/terabox/md5.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/spec');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

/** Which example answers which path (the first of a list unless a test picks another). */
const ANSWERS: Record<string, string> = {
  '/oauth/gettoken': 'gettoken.json',
  '/oauth/tokeninfo': 'tokeninfo.json',
  '/oauth/refreshtoken': 'refreshtoken.json',
  '/oauth/devicecode': 'devicecode.json',
  '/openapi/uinfo': 'uinfo.json',
  '/openapi/active': 'active.json',
  '/openapi/api/quota': 'quota.json',
  '/openapi/api/precreate': 'precreate.one-shard.json',
  '/rest/2.0/pcs/superfile2': 'superfile2.json',
  '/openapi/api/create': 'create.json',
  '/openapi/api/filemanager': 'filemanager.sync.json',
  '/openapi/api/list': 'list.json',
  '/openapi/api/filemetas': 'filemetas.json',
  '/openapi/api/search': 'search.json',
  '/openapi/api/download': 'download.json',
  '/openapi/share/list': 'share-list.json',
  '/openapi/share/transfer': 'share-transfer.json',
  '/openapi/share/download': 'share-download.json',
  '/openapi/api/shorturlinfo': 'shorturlinfo.json',
  '/openapi/share/mediameta': 'share-mediameta.json',
};

let server: Server;
let host = '';
const pick: Record<string, string> = {};
const seen: { path: string; host: string }[] = [];
let transform: ((path: string, text: string) => string) | undefined;

before(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    seen.push({ path, host: req.headers.host ?? '' });
    req.resume();
    const name = pick[path] ?? ANSWERS[path];
    if (!name) {
      res.writeHead(404).end('no example');
      return;
    }
    let text = fixture(name);
    if (path === '/oauth/tokeninfo') text = text.replace('"www.terabox.com"', JSON.stringify(host));
    if (transform) text = transform(path, text);
    res.writeHead(200, { 'content-type': 'application/json' }).end(text);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

function client(): TeraboxClient {
  const far = Date.now() + 3600_000;
  return new TeraboxClient({
    authUrl: `http://${host}`,
    clientId: 'WjY6kfSKwKBa3OwQZ7jlGmB',
    clientSecret: 'secret',
    privateSecret: 'private',
    tokenStore: new MemoryTokenStore({ accessToken: 'access-token-example', refreshToken: 'refresh-token-example', expiresAt: far, obtainedAt: Date.now() }),
    maxRetries: 0,
  });
}

test('oauth examples: gettoken, refreshtoken, devicecode, and tokeninfo without upload_domain', async () => {
  const c = client();
  try {
    const t = await c.exchangeCode('57mYYcfS9f');
    assert.equal(t.refreshToken.slice(0, 8), 'sPI60hiS');
    const r = await c.refresh();
    assert.notEqual(r.accessToken, '');
    const d = await c.deviceCode();
    assert.equal(d.device_code, '580uZ7Svrm');
    const s = await c.auth.session();
    assert.equal(s.apiBase, `http://${host}`);
    assert.equal(s.uploadBase, s.apiBase, 'no upload_domain in the example: api_domain serves superfile2');
    const saved = await c.auth.tokens();
    assert.equal(saved?.domains?.uploadDomain, host, 'no undefined domain saved');
  } finally {
    await c.close();
  }
});

test('user, quota, list (array `list`, and `info` as the table names it), filemetas, download examples', async () => {
  const c = client();
  try {
    assert.equal((await c.uinfo()).uname, 'hjy01@t.com');
    assert.equal((await c.active()).order_id, '77736131208677901');
    assert.equal((await c.quota()).total, 2205465706496);
    const listed = await c.list('/');
    assert.deepEqual(listed.map((f) => [f.path, Number(f.isdir)]), [['/youai_tempDownload_VbMGrjKkFb', 1]]);
    transform = (path, text) => (path === '/openapi/api/list' ? text.replace('"list":', '"info":') : text);
    assert.deepEqual((await c.list('/')).map((f) => f.path), ['/youai_tempDownload_VbMGrjKkFb']);
    transform = undefined;
    const [meta] = await c.filemetas(['/SVID_20230815_145833_1.mp4']);
    assert.equal(meta!.md5, 'cc06043bb48c0ecd38e063e449ebc729');
    const links = await c.download([934526256472844]);
    assert.equal(links[0]!.fs_id, '934526256472844');
  } finally {
    transform = undefined;
    await c.close();
  }
});

test('upload examples: precreate (1 and 3 shards, rapid), superfile2 on api_domain, create (obfuscated md5, renamed path)', async () => {
  const c = client();
  try {
    assert.deepEqual((await c.precreate('/test/test.zip', ['73b4f756c1a2f2ed407e4783966e9189'])).block_list, [0]);
    pick['/openapi/api/precreate'] = 'precreate.three-shards.json';
    assert.deepEqual((await c.precreate('/test/test.zip', ['a', 'b', 'c'].map((x) => createHash('md5').update(x).digest('hex')))).block_list, [0, 1, 2]);
    pick['/openapi/api/precreate'] = 'precreate.rapid.json';
    const rapid = await c.precreate('/test/test.zip', ['73b4f756c1a2f2ed407e4783966e9189']);
    assert.equal(rapid.return_type, 2);
    assert.equal(rapid.info?.md5, '60bac7b6464d84fed842955e6126826a');
    delete pick['/openapi/api/precreate'];

    const from = seen.length;
    const part = await c.superfile2('/From: Other Device/xxx/a.txt', 'N1-x', 0, { localPath: fileURLToPath(import.meta.url), start: 0, length: 10 });
    assert.equal(part.md5, '73b4f756c1a2f2ed407e4783966e9189');
    assert.equal(Number(part.partseq), 0);
    assert.ok(seen.slice(from).some((s) => s.path === '/rest/2.0/pcs/superfile2' && s.host === host));

    const made = await c.create('/CloudFile.png', 72990, 'N1-x', ['84fd2e17018194c18b264048f851ba11'], 0);
    assert.equal(made.md5, '84fd2e17018194c18b264048f851ba11', 'the obfuscated md5 decodes to the block list sent');
    assert.equal(made.path, '/CloudFile_20231215_173800.png', 'the renamed path is passed on (TeraboxRemote compares it)');
  } finally {
    await c.close();
  }
});

test('filemanager (sync and async), search examples', async () => {
  const c = client();
  try {
    const sync = await c.filemanager('delete', ['/test.mp4']);
    assert.deepEqual(sync.info, [{ errno: 0, path: '/CloudFile_20231215_173800.png' }]);
    pick['/openapi/api/filemanager'] = 'filemanager.async.json';
    const asyncAnswer = await c.filemanager('delete', ['/test.mp4'], { async: 2 });
    assert.deepEqual(asyncAnswer.info, []);
    assert.ok(asyncAnswer.taskid);
    delete pick['/openapi/api/filemanager'];
    const found = await c.search('obj_w5zDlMODwrDDiGjCn8K');
    assert.equal(found.list.length, 1);
    assert.ok(isHexMd5(found.list[0]!.md5), `search md5 decoded: ${found.list[0]!.md5}`);
  } finally {
    await c.close();
  }
});

test("share examples: share/list's emd5 decodes to its md5; share/transfer's md5 is md5 of its 97-shard block list", async () => {
  const c = client();
  try {
    const listed = await c.shareList('-CZRMUjNHP5obASqTLTf8w', 'sekey');
    const item = listed.list[0] as { md5?: string; emd5?: string };
    assert.equal(item.md5, '167cc21acbeefb8c5e5b615cad997b2b');
    assert.equal(item.emd5, item.md5, 'the obfuscated emd5 names the same content');
    const moved = await c.shareTransfer(561062645, 4402034215677, 'sekey', { fsIds: ['234678677993557'], path: '/', async: 1 });
    const meta = (moved.extra?.list[0] as unknown as { meta: { md5: string; block_list: string[] } }).meta;
    assert.equal(meta.block_list.length, 97);
    assert.equal(meta.md5, createHash('md5').update(JSON.stringify(meta.block_list)).digest('hex'), 'decoded: the block-list rule');
    const dl = await c.shareDownload(4017857486, 4400423421256, [752300820925768], 'sekey');
    assert.equal(dl.list[0]!.md5, '8967b0cb6f0ce55656829d0983dc5fca');
  } finally {
    await c.close();
  }
});
