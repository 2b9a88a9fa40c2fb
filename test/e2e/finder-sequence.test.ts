/**
 * The macOS Finder (WebDAVFS) sequence replayed over HTTP against the whole bridge (emulator
 * stack, port 0): class 2 in OPTIONS, a 0-byte PUT, LOCK, the real PUT sent chunked with its size
 * in X-Expected-Entity-Length and the token in an If header, AppleDouble probes, a quota PROPFIND,
 * several concurrent Range GETs, UNLOCK. Finder mounts read-only unless all of this works.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
before(async () => {
  stack = await startTestStack({ users: [{ username: 'mac', password: 'finder' }] });
});
after(async () => {
  await stack.close();
});

function chunked(data: Buffer, pieces = 7): ReadableStream<Uint8Array> {
  const size = Math.ceil(data.length / pieces);
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i * size >= data.length) return controller.close();
      controller.enqueue(data.subarray(i * size, (i + 1) * size));
      i++;
    },
  });
}

test('Finder: OPTIONS class 2, PUT 0 B, LOCK, chunked PUT with If, ._ probes, quota, Range GETs, UNLOCK', async () => {
  const auth = stack.authHeaders();
  const opts = await fetch(stack.url + '/', { method: 'OPTIONS', headers: auth });
  await opts.arrayBuffer();
  assert.equal(opts.status, 200);
  assert.match(opts.headers.get('dav') ?? '', /(^|,)\s*2\s*(,|$)/, `DAV header: ${opts.headers.get('dav')}`);
  assert.match(opts.headers.get('allow') ?? '', /LOCK/);

  const url = stack.url + '/' + encodeURIComponent('Photo ñ 1.jpg');
  const body = randomBytes(5 * 1024 * 1024 + 123);
  const empty = await fetch(url, { method: 'PUT', headers: { ...auth, 'x-expected-entity-length': '0' }, body: chunked(Buffer.alloc(0)), duplex: 'half' } as RequestInit);
  await empty.arrayBuffer();
  assert.equal(empty.status, 201);

  const lockRes = await fetch(url, {
    method: 'LOCK',
    headers: { ...auth, depth: '0', timeout: 'Second-600', 'content-type': 'text/xml; charset="utf-8"' },
    body: '<?xml version="1.0" encoding="utf-8"?>\n<D:lockinfo xmlns:D="DAV:">\n<D:lockscope><D:exclusive/></D:lockscope>\n<D:locktype><D:write/></D:locktype>\n<D:owner><D:href>http://www.apple.com/webdav_fs/</D:href></D:owner>\n</D:lockinfo>',
  });
  const lockXml = await lockRes.text();
  assert.equal(lockRes.status, 200, lockXml);
  const token = (lockRes.headers.get('lock-token') ?? '').replace(/^<|>$/g, '');
  assert.ok(token.length > 0, 'Lock-Token header');
  assert.match(lockXml, /webdav_fs/, 'owner echoed');

  const noToken = await fetch(url, { method: 'PUT', headers: auth, body: 'intruder' });
  await noToken.arrayBuffer();
  assert.equal(noToken.status, 423, 'the locked file refuses a PUT without the token');

  const put = await fetch(url, {
    method: 'PUT',
    headers: { ...auth, 'x-expected-entity-length': String(body.length), if: `(<${token}>)`, 'content-type': 'application/octet-stream' },
    body: chunked(body),
    duplex: 'half',
  } as RequestInit);
  await put.arrayBuffer();
  assert.equal(put.status, 204);

  for (const probe of ['/._' + encodeURIComponent('Photo ñ 1.jpg'), '/.DS_Store', '/._.', '/.Spotlight-V100', '/.metadata_never_index']) {
    const r = await fetch(stack.url + probe, { method: 'PROPFIND', headers: { ...auth, depth: '0' } });
    await r.arrayBuffer();
    assert.equal(r.status, 404, `PROPFIND ${probe}`);
  }

  const quota = await fetch(stack.url + '/', {
    method: 'PROPFIND',
    headers: { ...auth, depth: '0', 'content-type': 'text/xml' },
    body: '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>',
  });
  const quotaXml = await quota.text();
  assert.equal(quota.status, 207);
  assert.match(quotaXml, /quota-available-bytes[^>]*>\d+</);
  assert.match(quotaXml, /quota-used-bytes[^>]*>\d+</);

  const ranges: [number, number][] = [
    [0, 511],
    [1_000_000, 2_000_000],
    [body.length - 4096, body.length - 1],
    [3_000_000, 3_000_000],
  ];
  await Promise.all(
    ranges.map(async ([start, end]) => {
      const r = await fetch(url, { headers: { ...auth, range: `bytes=${start}-${end}` } });
      const got = Buffer.from(await r.arrayBuffer());
      assert.equal(r.status, 206, `Range ${start}-${end}`);
      assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/${body.length}`);
      assert.ok(got.equals(body.subarray(start, end + 1)), `bytes ${start}-${end}`);
    }),
  );

  const unlock = await fetch(url, { method: 'UNLOCK', headers: { ...auth, 'lock-token': `<${token}>` } });
  await unlock.arrayBuffer();
  assert.equal(unlock.status, 204);
  const whole = await fetch(url, { headers: auth });
  assert.equal(whole.status, 200);
  assert.ok(Buffer.from(await whole.arrayBuffer()).equals(body), 'whole file after UNLOCK');
});
