/**
 * webdav-server is the request front (src/dav/host.ts): every request goes through
 * v2.WebDAVServer.executeRequest and its beforeRequest hooks, and is answered by our handlers.
 * The counters below stay at 0 if the bridge ever bypasses the library again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { v2 } from 'webdav-server';
import { startHarness } from './harness.js';

function basic(user: string, pass: string): string {
  return 'Basic ' + Buffer.from(`${user}:${pass}`, 'utf8').toString('base64');
}

/** Raw request line (undici would normalise the target); returns the status line's code. */
function rawStatus(port: number, requestLine: string, auth: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () =>
      s.write(`${requestLine}\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${auth}\r\nConnection: close\r\n\r\n`),
    );
    let data = '';
    s.on('data', (d) => (data += d.toString('latin1')));
    s.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
    s.on('error', reject);
  });
}

/** Count library dispatches (beforeRequest runs) and the URLs its contexts were built for. */
function spyOnLibrary(): { count: () => number; uris: string[]; restore: () => void } {
  const proto = v2.WebDAVServer.prototype;
  const original = proto.invokeBeforeRequest;
  let n = 0;
  const uris: string[] = [];
  proto.invokeBeforeRequest = function (this: v2.WebDAVServer, base: v2.HTTPRequestContext, callback: () => void) {
    n++;
    uris.push(base.requested.uri);
    return original.call(this, base, callback);
  };
  return { count: () => n, uris, restore: () => (proto.invokeBeforeRequest = original) };
}

test('every request, answered or refused, is dispatched by webdav-server to our handlers', async () => {
  const spy = spyOnLibrary();
  const h = await startHarness({ users: [{ username: 'bob', password: 'pw' }] });
  try {
    const auth = { Authorization: basic('bob', 'pw') };
    const statuses = [
      (await h.req('OPTIONS', '/', { headers: auth })).status,
      (await h.req('PUT', '/a%20b.txt', { headers: auth, body: 'hello' })).status,
      (await h.req('GET', '/a%20b.txt', { headers: auth })).status,
      (await h.req('PROPFIND', '/', { headers: { ...auth, Depth: '1' } })).status,
      (await h.req('GET', '/a%20b.txt')).status, // no credentials: 401 from our hook
      (await h.req('POST', '/a%20b.txt', { headers: auth })).status, // the library's own POST is gone: 405
      await rawStatus(h.bridge.port, 'GET /bad%zz HTTP/1.1', auth.Authorization), // the library would throw on this escape
      await rawStatus(h.bridge.port, 'GET /../etc/passwd HTTP/1.1', auth.Authorization), // and answer a bare 403 here
    ];
    assert.deepEqual(statuses, [200, 201, 200, 207, 401, 405, 400, 400]);
    assert.equal(spy.count(), statuses.length, 'each request went through executeRequest and beforeRequest');
    // The library builds its context from our decoded, re-encoded path; refused targets become '/'.
    assert.deepEqual(spy.uris, ['/', '/a%20b.txt', '/a%20b.txt', '/', '/a%20b.txt', '/a%20b.txt', '/', '/']);
  } finally {
    spy.restore();
    await h.close();
  }
});

test('answers carry our headers only: no CORS, Server, Digest challenge or library Allow', async () => {
  const h = await startHarness({ users: [{ username: 'bob', password: 'pw' }], realm: 'r' });
  try {
    const auth = { Authorization: basic('bob', 'pw') };
    await h.req('PUT', '/f.txt', { headers: auth, body: 'x' });
    for (const r of [
      await h.req('GET', '/f.txt', { headers: auth }),
      await h.req('PROPFIND', '/', { headers: { ...auth, Depth: '0' } }),
      await h.req('GET', '/f.txt'),
    ]) {
      for (const k of ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers', 'server', 'allow']) {
        assert.equal(r.headers[k], undefined, `${k} on a ${r.status}`);
      }
      assert.equal(r.headers['dav'], '1, 2');
      assert.ok(r.headers['x-request-id']);
    }
    const unauth = await h.req('GET', '/f.txt');
    assert.equal(unauth.headers['www-authenticate'], 'Basic realm="r", charset="UTF-8"');
    const post = await h.req('POST', '/f.txt', { headers: auth });
    assert.equal(post.status, 405);
    assert.equal(post.headers['allow'], 'OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK');
  } finally {
    await h.close();
  }
});

test('afterRequest hooks see every request end, including refused ones', async () => {
  const h = await startHarness({ users: [{ username: 'bob', password: 'pw' }] });
  const spy = { after: 0 };
  const proto = v2.WebDAVServer.prototype;
  const original = proto.invokeAfterRequest;
  proto.invokeAfterRequest = function (this: v2.WebDAVServer, base: v2.HTTPRequestContext, callback: () => void) {
    spy.after++;
    return original.call(this, base, callback);
  };
  try {
    const auth = { Authorization: basic('bob', 'pw') };
    await h.req('PUT', '/g.txt', { headers: auth, body: 'abc' });
    await h.req('GET', '/g.txt', { headers: auth });
    await h.req('GET', '/g.txt');
    await h.req('POST', '/g.txt', { headers: auth });
    await new Promise((r) => setImmediate(r));
    assert.equal(spy.after, 4);
  } finally {
    proto.invokeAfterRequest = original;
    await h.close();
  }
});
