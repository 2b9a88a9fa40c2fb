/**
 * What other real clients rely on (see /work/shared/clients.md), over the emulator stack:
 * davfs2's conditional GETs and its need for a 200 (never 206) without Range; media players'
 * `bytes=0-` and suffix ranges; old Kodi's PROPFIND without Depth (never a whole-tree walk);
 * cadaver's LOCK with an empty owner.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
const body = randomBytes(70_000);
before(async () => {
  stack = await startTestStack();
  for (const p of ['/q', '/q/sub', '/q/sub/deeper']) {
    const r = await fetch(stack.url + p, { method: 'MKCOL' });
    await r.arrayBuffer();
    assert.equal(r.status, 201, `MKCOL ${p}`);
  }
  for (const p of ['/q/movie.mkv', '/q/sub/deeper/hidden.txt']) {
    const r = await fetch(stack.url + p, { method: 'PUT', body });
    await r.arrayBuffer();
    assert.equal(r.status, 201, `PUT ${p}`);
  }
});
after(async () => {
  await stack.close();
});

test('davfs2: GET without Range is 200 with validators; If-None-Match / If-Modified-Since give 304', async () => {
  const r = await fetch(stack.url + '/q/movie.mkv');
  assert.equal(r.status, 200);
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(body));
  const etag = r.headers.get('etag');
  const lastModified = r.headers.get('last-modified');
  assert.ok(etag, 'ETag');
  assert.ok(lastModified, 'Last-Modified');
  const inm = await fetch(stack.url + '/q/movie.mkv', { headers: { 'if-none-match': etag } });
  await inm.arrayBuffer();
  assert.equal(inm.status, 304);
  const ims = await fetch(stack.url + '/q/movie.mkv', { headers: { 'if-modified-since': lastModified } });
  await ims.arrayBuffer();
  assert.equal(ims.status, 304);
  const stale = await fetch(stack.url + '/q/movie.mkv', { headers: { 'if-none-match': '"not-it"' } });
  assert.equal(stale.status, 200);
  assert.equal(Buffer.from(await stale.arrayBuffer()).length, body.length);
});

test('media players: bytes=0- and suffix ranges give 206 with exact Content-Range; unsatisfiable gives 416', async () => {
  const all = await fetch(stack.url + '/q/movie.mkv', { headers: { range: 'bytes=0-' } });
  assert.equal(all.status, 206);
  assert.equal(all.headers.get('content-range'), `bytes 0-${body.length - 1}/${body.length}`);
  assert.ok(Buffer.from(await all.arrayBuffer()).equals(body));
  const tail = await fetch(stack.url + '/q/movie.mkv', { headers: { range: 'bytes=-1000' } });
  assert.equal(tail.status, 206);
  assert.equal(tail.headers.get('content-range'), `bytes ${body.length - 1000}-${body.length - 1}/${body.length}`);
  assert.ok(Buffer.from(await tail.arrayBuffer()).equals(body.subarray(body.length - 1000)));
  const probe = await fetch(stack.url + '/q/movie.mkv', { headers: { range: 'bytes=0-511' } });
  assert.equal(probe.headers.get('content-range'), `bytes 0-511/${body.length}`);
  assert.equal(Buffer.from(await probe.arrayBuffer()).length, 512);
  const bad = await fetch(stack.url + '/q/movie.mkv', { headers: { range: `bytes=${body.length + 10}-` } });
  await bad.arrayBuffer();
  assert.equal(bad.status, 416);
});

test('old Kodi: PROPFIND without Depth never walks the whole tree', async () => {
  const r = await fetch(stack.url + '/q/', { method: 'PROPFIND' });
  const text = await r.text();
  assert.ok(r.status === 207 || r.status === 403, `PROPFIND without Depth: ${r.status}`);
  assert.ok(!text.includes('hidden.txt') && !text.includes('/deeper'), 'no grandchildren in the answer');
  const inf = await fetch(stack.url + '/q/', { method: 'PROPFIND', headers: { depth: 'infinity' } });
  const infText = await inf.text();
  assert.ok(inf.status === 207 || inf.status === 403, `Depth: infinity: ${inf.status}`);
  assert.ok(!infText.includes('hidden.txt'), 'no whole-tree walk for Depth: infinity');
});

test('cadaver: LOCK with an empty owner, lockdiscovery in PROPFIND, UNLOCK', async () => {
  const lock = await fetch(stack.url + '/q/movie.mkv', {
    method: 'LOCK',
    headers: { 'content-type': 'application/xml' },
    body: '<?xml version="1.0" encoding="utf-8"?><lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype><owner></owner></lockinfo>',
  });
  await lock.text();
  assert.equal(lock.status, 200);
  const token = (lock.headers.get('lock-token') ?? '').replace(/^<|>$/g, '');
  const pf = await fetch(stack.url + '/q/movie.mkv', {
    method: 'PROPFIND',
    headers: { depth: '0', 'content-type': 'application/xml' },
    body: '<?xml version="1.0"?><propfind xmlns="DAV:"><prop><lockdiscovery/><supportedlock/></prop></propfind>',
  });
  const xml = await pf.text();
  assert.equal(pf.status, 207);
  assert.ok(xml.includes(token), 'lockdiscovery names the token');
  assert.match(xml, /exclusive/);
  assert.match(xml, /shared/, 'supportedlock offers shared locks too');
  const un = await fetch(stack.url + '/q/movie.mkv', { method: 'UNLOCK', headers: { 'lock-token': `<${token}>` } });
  await un.arrayBuffer();
  assert.equal(un.status, 204);
  const after = await (await fetch(stack.url + '/q/movie.mkv', { method: 'PROPFIND', headers: { depth: '0' }, body: '<?xml version="1.0"?><propfind xmlns="DAV:"><prop><lockdiscovery/></prop></propfind>' })).text();
  assert.ok(!after.includes(token), 'no lock after UNLOCK');
});
