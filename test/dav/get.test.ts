import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startHarness } from './harness.js';

const BODY = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

test('GET full: 200 with validators, Accept-Ranges, Content-Type; never 206 without Range', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/v.mp4', { body: BODY });
    const r = await h.req('GET', '/v.mp4');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, BODY);
    assert.equal(r.headers['content-length'], '1000');
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.equal(r.headers['content-type'], 'video/mp4');
    assert.match(r.headers['etag']!, /^"[^"]+"$/);
    assert.ok(!Number.isNaN(Date.parse(r.headers['last-modified']!)));
    assert.equal(r.headers['content-range'], undefined);
  } finally {
    await h.close();
  }
});

test('GET Range: 206 with exact bytes and Content-Range a-b/total; suffix and open ranges', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/f.bin', { body: BODY });
    const cases: [string, number, number][] = [
      ['bytes=0-511', 0, 511],
      ['bytes=100-199', 100, 199],
      ['bytes=990-', 990, 999],
      ['bytes=-10', 990, 999],
      ['bytes=500-5000', 500, 999],
    ];
    for (const [range, a, b] of cases) {
      const r = await h.req('GET', '/f.bin', { headers: { Range: range } });
      assert.equal(r.status, 206, range);
      assert.equal(r.headers['content-range'], `bytes ${a}-${b}/1000`, range);
      assert.equal(r.headers['content-length'], String(b - a + 1), range);
      assert.deepEqual(r.body, BODY.subarray(a, b + 1), range);
    }
    // multi-range: answered 200 with everything (documented)
    const multi = await h.req('GET', '/f.bin', { headers: { Range: 'bytes=0-1,5-6' } });
    assert.equal(multi.status, 200);
    assert.equal(multi.body.length, 1000);
  } finally {
    await h.close();
  }
});

test('GET Range unsatisfiable: 416 with bytes */total', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/f.bin', { body: BODY });
    const r = await h.req('GET', '/f.bin', { headers: { Range: 'bytes=1000-' } });
    assert.equal(r.status, 416);
    assert.equal(r.headers['content-range'], 'bytes */1000');
  } finally {
    await h.close();
  }
});

test('GET conditionals: If-None-Match/If-Modified-Since 304, If-Match/If-Unmodified-Since 412, If-Range', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/f.bin', { body: BODY });
    const first = await h.req('GET', '/f.bin');
    const etag = first.headers['etag']!;
    const lm = first.headers['last-modified']!;
    assert.equal((await h.req('GET', '/f.bin', { headers: { 'If-None-Match': etag } })).status, 304);
    assert.equal((await h.req('GET', '/f.bin', { headers: { 'If-None-Match': '"other"' } })).status, 200);
    assert.equal((await h.req('GET', '/f.bin', { headers: { 'If-Modified-Since': lm } })).status, 304);
    assert.equal((await h.req('GET', '/f.bin', { headers: { 'If-Modified-Since': 'Thu, 01 Jan 1998 00:00:00 GMT' } })).status, 200);
    assert.equal((await h.req('GET', '/f.bin', { headers: { 'If-Match': '"other"' } })).status, 412);
    assert.equal((await h.req('GET', '/f.bin', { headers: { 'If-Match': etag } })).status, 200);
    assert.equal((await h.req('GET', '/f.bin', { headers: { 'If-Unmodified-Since': 'Thu, 01 Jan 1998 00:00:00 GMT' } })).status, 412);
    const ok = await h.req('GET', '/f.bin', { headers: { Range: 'bytes=0-9', 'If-Range': etag } });
    assert.equal(ok.status, 206);
    const stale = await h.req('GET', '/f.bin', { headers: { Range: 'bytes=0-9', 'If-Range': '"stale"' } });
    assert.equal(stale.status, 200);
    assert.equal(stale.body.length, 1000);
    const byDate = await h.req('GET', '/f.bin', { headers: { Range: 'bytes=0-9', 'If-Range': lm } });
    assert.equal(byDate.status, 206);
  } finally {
    await h.close();
  }
});

test('HEAD: headers only, no upstream read', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/f.bin', { body: BODY });
    h.remote.resetCalls();
    const r = await h.req('HEAD', '/f.bin');
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers['content-length'], '1000');
    assert.equal(h.remote.calls['openRead'] ?? 0, 0);
    const rr = await h.req('HEAD', '/f.bin', { headers: { Range: 'bytes=0-511' } });
    assert.equal(rr.status, 206);
    assert.equal(rr.headers['content-range'], 'bytes 0-511/1000');
    assert.equal(h.remote.calls['openRead'] ?? 0, 0);
    assert.equal((await h.req('HEAD', '/absent')).status, 404);
  } finally {
    await h.close();
  }
});

test('GET on a folder: 200 HTML listing with encoded links', async () => {
  const h = await startHarness();
  try {
    await h.req('MKCOL', '/d');
    await h.req('PUT', '/d/a%20b.txt', { body: 'x' });
    const r = await h.req('GET', '/d/');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type']!, /^text\/html/);
    assert.match(r.text, /href="\/d\/a%20b.txt"/);
    assert.equal((await h.req('GET', '/missing.txt')).status, 404);
  } finally {
    await h.close();
  }
});

test('GET: client going away destroys the upstream stream', { timeout: 20_000 }, async () => {
  const h = await startHarness();
  try {
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    assert.equal((await h.req('PUT', '/big.bin', { body: big })).status, 201);
    // wrap openRead to observe the stream's fate
    const orig = h.vfs.openRead.bind(h.vfs);
    let destroyed: Promise<void> | undefined;
    h.vfs.openRead = async (...args: Parameters<typeof orig>) => {
      const res = await orig(...args);
      destroyed = new Promise((resolve) => res.stream.on('close', () => resolve()));
      return res;
    };
    const ac = new AbortController();
    const res = await request(h.url + '/big.bin', { signal: ac.signal, highWaterMark: 1024 } as never);
    assert.equal(res.statusCode, 200);
    ac.abort();
    await res.body.text().catch(() => undefined);
    assert.ok(destroyed, 'openRead was called');
    await destroyed;
  } finally {
    await h.close();
  }
});

test('GET: an upstream body shorter than announced cuts the connection (no hang)', { timeout: 20_000 }, async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/f.bin', { body: BODY });
    const { Readable } = await import('node:stream');
    const orig = h.vfs.openRead.bind(h.vfs);
    h.vfs.openRead = async (path, range, opts) => {
      const res = await orig(path, range, opts);
      res.stream.destroy();
      return { entry: res.entry, stream: Readable.from([BODY.subarray(0, 100)]) };
    };
    await assert.rejects(h.req('GET', '/f.bin'));
    h.vfs.openRead = orig;
    assert.equal((await h.req('GET', '/f.bin')).body.length, 1000);
  } finally {
    await h.close();
  }
});
