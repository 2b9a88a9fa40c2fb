/**
 * The defects measured in stock webdav-server 2.6.3, each replayed against the whole bridge
 * (emulator stack, port 0) so that none comes back:
 *  - a litmus-like PROPPATCH run killed the process (ERR_HTTP_HEADERS_SENT in Proppatch.js);
 *  - an untagged `If: (<token>)` (Windows after LOCK) killed the process;
 *  - a missing Overwrite header was treated as F;
 *  - locks were enforced per user, not per token;
 *  - the LOCK answer's Lock-Token lacked `<>` and its timeout was in milliseconds;
 *  - dead-property namespaces ending in '/' came back ending in ':';
 *  - creationdate was wrong unless TZ=UTC;
 *  - Basic credentials whose base64 holds '+' or '/' were refused.
 * Plus the Windows Explorer copy sequence (PUT 0 B, LOCK, PROPPATCH Win32*, PUT with an untagged If, UNLOCK).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../helpers/stack.js';

const USER = { username: 'win', password: 'a?>b:c~~>?' };
let stack: TestStack;

before(async () => {
  stack = await startTestStack({ users: [USER] });
});
after(async () => {
  await stack.close();
});

function req(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Response> {
  return fetch(stack.url + path, { method, headers: { ...stack.authHeaders(), ...headers }, body });
}
async function status(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<number> {
  const res = await req(method, path, headers, body);
  await res.arrayBuffer();
  return res.status;
}
async function alive(): Promise<void> {
  assert.equal(await status('PROPFIND', '/', { depth: '0' }), 207, 'the bridge still answers');
}
const LOCKINFO = (scope = 'exclusive', owner = '<D:href>me</D:href>'): string =>
  `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:${scope}/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>${owner}</D:owner></D:lockinfo>`;

async function lock(path: string, headers: Record<string, string> = {}, body = LOCKINFO()): Promise<{ res: Response; text: string; token: string }> {
  const res = await req('LOCK', path, { 'content-type': 'application/xml', ...headers }, body);
  const text = await res.text();
  const header = res.headers.get('lock-token') ?? '';
  return { res, text, token: header.replace(/^<|>$/g, '') };
}

test('Basic credentials with ":" in the password and "+" "/" in their base64 are accepted; wrong ones get 401', async () => {
  const b64 = Buffer.from(`${USER.username}:${USER.password}`).toString('base64');
  assert.ok(b64.includes('+') && b64.includes('/'));
  assert.equal(await status('PROPFIND', '/', { depth: '0' }), 207);
  const bad = 'Basic ' + Buffer.from(`${USER.username}:wrong+/`).toString('base64');
  assert.equal(await status('PROPFIND', '/', { depth: '0', authorization: bad }), 401);
});

test('LOCK answers Lock-Token in <> (an RFC 4918 state token: urn:uuid or opaquelocktoken) and a timeout in seconds', async () => {
  assert.equal(await status('PUT', '/lt.txt', {}, 'x'), 201);
  const { res, text, token } = await lock('/lt.txt', { timeout: 'Second-3600', depth: '0' });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('lock-token') ?? '', /^<(opaquelocktoken|urn:uuid):[0-9a-f-]{36}>$/);
  assert.match(text, /<D:timeout>Second-(3600|359\d)<\/D:timeout>/);
  assert.ok(text.includes(token), 'lockdiscovery carries the token');
  assert.equal(await status('UNLOCK', '/lt.txt', { 'lock-token': `<${token}>` }), 204);
});

test('Timeout: Infinite is capped to a finite number of seconds', async () => {
  const { res, text, token } = await lock('/lt-inf.txt', { timeout: 'Infinite' });
  assert.equal(res.status, 201, 'LOCK on an unmapped URL creates an empty resource');
  const m = /<D:timeout>Second-(\d+)<\/D:timeout>/.exec(text);
  assert.ok(m, `finite timeout in ${text}`);
  assert.ok(Number(m[1]) > 0 && Number(m[1]) <= 7 * 86400);
  assert.equal(await status('UNLOCK', '/lt-inf.txt', { 'lock-token': `<${token}>` }), 204);
  const head = await req('HEAD', '/lt-inf.txt');
  assert.equal(head.status, 200, 'the locked-empty resource stays after UNLOCK');
  assert.equal(head.headers.get('content-length'), '0');
});

test('locks are per token, not per user: the same user without the token gets 423', async () => {
  assert.equal(await status('PUT', '/tok.txt', {}, 'one'), 201);
  const { token } = await lock('/tok.txt');
  assert.equal(await status('PUT', '/tok.txt', {}, 'two'), 423, 'same user, no token');
  assert.equal(await status('DELETE', '/tok.txt'), 423);
  assert.equal(await status('PROPPATCH', '/tok.txt', { 'content-type': 'application/xml' }, `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:a xmlns:x="urn:x">1</x:a></D:prop></D:set></D:propertyupdate>`), 423);
  assert.equal(await status('PUT', '/tok.txt', { if: `(<${token}>)` }, 'three'), 204, 'with the token');
  assert.equal(await status('PUT', '/tok.txt', { if: '(<opaquelocktoken:00000000-0000-0000-0000-000000000000>)' }, 'four'), 412, 'an If naming an unknown token fails');
  assert.equal(await status('UNLOCK', '/tok.txt', { 'lock-token': `<${token}>` }), 204);
  assert.equal(await (await req('GET', '/tok.txt')).text(), 'three');
});

test('an untagged If: (<token>) on PUT does not kill the process; tagged and Not forms are evaluated', async () => {
  assert.equal(await status('PUT', '/if.txt', {}, 'a'), 201);
  // Unlocked resource, untagged list with a token that is no lock: 412, and the process lives.
  assert.equal(await status('PUT', '/if.txt', { if: '(<opaquelocktoken:abc>)' }, 'b'), 412);
  await alive();
  const { token } = await lock('/if.txt');
  assert.equal(await status('PUT', '/if.txt', { if: `<${stack.url}/if.txt> (<${token}>)` }, 'c'), 204, 'tagged');
  assert.equal(await status('PUT', '/if.txt', { if: `(Not <DAV:no-lock>) (<${token}>)` }, 'd'), 204, 'Not no-lock OR token');
  assert.equal(await status('PUT', '/if.txt', { if: '(<DAV:no-lock>)' }, 'e'), 412);
  assert.equal(await status('PUT', '/if.txt', { if: '(<garbage' }, 'f'), 400, 'a malformed If header is a 400, not a crash');
  await alive();
  assert.equal(await status('UNLOCK', '/if.txt', { 'lock-token': `<${token}>` }), 204);
});

test('COPY and MOVE without an Overwrite header overwrite (T is the default); Overwrite: F gives 412', async () => {
  assert.equal(await status('PUT', '/ow-a.txt', {}, 'A'), 201);
  assert.equal(await status('PUT', '/ow-b.txt', {}, 'B'), 201);
  assert.equal(await status('COPY', '/ow-a.txt', { destination: `${stack.url}/ow-b.txt`, overwrite: 'F' }), 412);
  assert.equal(await status('COPY', '/ow-a.txt', { destination: `${stack.url}/ow-b.txt` }), 204);
  assert.equal(await (await req('GET', '/ow-b.txt')).text(), 'A');
  assert.equal(await status('PUT', '/ow-c.txt', {}, 'C'), 201);
  assert.equal(await status('MOVE', '/ow-c.txt', { destination: `${stack.url}/ow-b.txt` }), 204);
  assert.equal(await (await req('GET', '/ow-b.txt')).text(), 'C');
});

test('dead-property namespaces ending in "/" come back exactly (cadaver custom properties)', async () => {
  const ns = 'http://webdav.org/cadaver/custom-properties/';
  assert.equal(await status('PUT', '/ns.txt', {}, 'n'), 201);
  const body = `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><C:color xmlns:C="${ns}">blue</C:color></D:prop></D:set></D:propertyupdate>`;
  assert.equal(await status('PROPPATCH', '/ns.txt', { 'content-type': 'application/xml' }, body), 207);
  const res = await req('PROPFIND', '/ns.txt', { depth: '0', 'content-type': 'application/xml' }, `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><C:color xmlns:C="${ns}"/></D:prop></D:propfind>`);
  const text = await res.text();
  assert.equal(res.status, 207);
  const m = /<([A-Za-z0-9_.-]+:)?color\b([^>]*)>blue</.exec(text);
  assert.ok(m, `color=blue in ${text}`);
  const prefix = m[1] ? m[1].slice(0, -1) : '';
  const declared = new RegExp(`xmlns${prefix ? ':' + prefix : ''}="([^"]*)"`).exec(text.slice(0, m.index + m[0].length));
  assert.ok(declared, 'namespace declared');
  const all = [...text.matchAll(new RegExp(`xmlns${prefix ? ':' + prefix : ''}="([^"]*)"`, 'g'))].map((x) => x[1]);
  assert.ok(all.includes(ns), `namespace ${ns} kept exactly; declared: ${all.join(', ')}`);
  assert.ok(!all.includes('http://webdav.org/cadaver/custom-properties:'), 'no trailing ":"');
});

test('a litmus-props-like PROPPATCH storm (DAV: live props, removes, bad XML) never crashes; all-or-nothing with 403/424', async () => {
  assert.equal(await status('PUT', '/pp.txt', {}, 'p'), 201);
  const ct = { 'content-type': 'application/xml' };
  const res = await req('PROPPATCH', '/pp.txt', ct, `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:getcontentlength>9</D:getcontentlength><z:ok xmlns:z="urn:z">v</z:ok></D:prop></D:set></D:propertyupdate>`);
  const text = await res.text();
  assert.equal(res.status, 207);
  assert.match(text, /403/);
  assert.match(text, /424/);
  const pf = await (await req('PROPFIND', '/pp.txt', { depth: '0', ...ct }, `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><z:ok xmlns:z="urn:z"/></D:prop></D:propfind>`)).text();
  assert.match(pf, /404/, 'the other property was not set (all or nothing)');
  for (const body of [
    '<not-xml',
    `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:remove><D:prop><z:nope xmlns:z="urn:z"/></D:prop></D:remove></D:propertyupdate>`,
    `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"></D:propertyupdate>`,
    `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><z:x xmlns:z="urn:z"><y:inner xmlns:y="urn:y">deep &amp; value</y:inner></z:x></D:prop></D:set></D:propertyupdate>`,
  ]) {
    const s = await status('PROPPATCH', '/pp.txt', ct, body);
    assert.ok([207, 400].includes(s), `PROPPATCH answered ${s}`);
  }
  assert.equal(await status('PROPPATCH', '/missing.txt', ct, `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><z:a xmlns:z="urn:z">1</z:a></D:prop></D:set></D:propertyupdate>`), 404);
  await alive();
});

test('creationdate is right whatever the process time zone', async () => {
  const saved = process.env.TZ;
  process.env.TZ = 'Asia/Kolkata';
  try {
    assert.equal(new Date(Date.UTC(2020, 0, 1)).getTimezoneOffset(), -330, 'TZ change took effect');
    const t0 = Date.now();
    assert.equal(await status('PUT', '/cd.txt', {}, 'c'), 201);
    const text = await (await req('PROPFIND', '/cd.txt', { depth: '0', 'content-type': 'application/xml' }, `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:creationdate/></D:prop></D:propfind>`)).text();
    const m = /creationdate>([^<]+)</.exec(text);
    assert.ok(m, `creationdate in ${text}`);
    const when = Date.parse(m[1]!);
    assert.ok(Number.isFinite(when), `parsable: ${m[1]}`);
    assert.ok(Math.abs(when - t0) < 10 * 60_000, `creationdate ${m[1]} is within minutes of ${new Date(t0).toISOString()}`);
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
});

test('Windows Explorer copy: PUT 0 B, LOCK (no Depth), PROPPATCH Win32*, HEAD, PUT with untagged If, PROPPATCH, UNLOCK', async () => {
  const p = '/Windows copy é.txt';
  const url = encodeURI(p);
  assert.equal(await status('PUT', url, {}, ''), 201);
  const { res, token } = await lock(url, { timeout: 'Second-3600' }, LOCKINFO('exclusive', '<D:href>DESKTOP\\user</D:href>'));
  assert.equal(res.status, 200);
  const win32 = `<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32CreationTime>Sat, 28 Nov 2026 10:00:00 GMT</Z:Win32CreationTime><Z:Win32LastAccessTime>Sat, 28 Nov 2026 10:00:00 GMT</Z:Win32LastAccessTime><Z:Win32LastModifiedTime>Sat, 28 Nov 2026 10:00:00 GMT</Z:Win32LastModifiedTime><Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>`;
  const pp = await req('PROPPATCH', url, { 'content-type': 'text/xml', if: `(<${token}>)` }, win32);
  const ppText = await pp.text();
  assert.equal(pp.status, 207);
  assert.ok(!/HTTP\/1\.1 (4|5)\d\d/.test(ppText), `every Win32 property accepted: ${ppText}`);
  assert.equal(await status('HEAD', url), 200);
  assert.equal(await status('PUT', url, { if: `(<${token}>)` }, 'windows body'), 204);
  assert.equal(await status('PROPPATCH', url, { 'content-type': 'text/xml', if: `(<${token}>)` }, win32), 207);
  assert.equal(await status('UNLOCK', url, { 'lock-token': `<${token}>` }), 204);
  assert.equal(await (await req('GET', url)).text(), 'windows body');
  await alive();
});
