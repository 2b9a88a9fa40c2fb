import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { TbdavError, type ErrorCode } from '../../src/shared/errors.js';
import { hashPassword } from '../../src/shared/password.js';
import { startBridge } from '../../src/dav/server.js';
import type { FileSystem } from '../../src/vfs/types.js';
import { startHarness } from './harness.js';

function basic(user: string, pass: string): string {
  return 'Basic ' + Buffer.from(`${user}:${pass}`, 'utf8').toString('base64');
}

/** Send raw bytes (a request line undici would normalise) and read the status. */
function rawStatus(port: number, requestLine: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(`${requestLine}\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
    let data = '';
    s.on('data', (d) => (data += d.toString('latin1')));
    s.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
    s.on('error', reject);
  });
}

test('OPTIONS: DAV 1, 2, Allow, MS-Author-Via', async () => {
  const h = await startHarness();
  try {
    const r = await h.req('OPTIONS', '/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['dav'], '1, 2');
    assert.equal(r.headers['ms-author-via'], 'DAV');
    for (const m of ['PROPFIND', 'LOCK', 'UNLOCK', 'PUT', 'MOVE', 'COPY']) assert.match(r.headers['allow']!, new RegExp(m));
    assert.ok(r.headers['x-request-id']);
    const given = await h.req('OPTIONS', '/', { headers: { 'X-Request-Id': 'abc-123' } });
    assert.equal(given.headers['x-request-id'], 'abc-123');
  } finally {
    await h.close();
  }
});

test('methods we do not implement answer 405 with Allow', async () => {
  const h = await startHarness();
  try {
    for (const m of ['POST', 'REPORT', 'SEARCH', 'PATCH']) {
      const r = await h.req(m, '/', { body: m === 'REPORT' ? '<x/>' : undefined });
      assert.equal(r.status, 405, m);
      assert.match(r.headers['allow']!, /PROPFIND/);
    }
  } finally {
    await h.close();
  }
});

test('paths: traversal, NUL, bad percent-encoding and encoded slash are 400', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/a.txt', { body: 'x' });
    const port = h.bridge.port;
    assert.equal(await rawStatus(port, 'GET /../etc/passwd HTTP/1.1'), 400);
    assert.equal(await rawStatus(port, 'GET /x/%2e%2e/a.txt HTTP/1.1'), 400);
    assert.equal(await rawStatus(port, 'GET /a%00.txt HTTP/1.1'), 400);
    assert.equal(await rawStatus(port, 'GET /%E0%A4%A HTTP/1.1'), 400);
    assert.equal(await rawStatus(port, 'GET /a%2Fb HTTP/1.1'), 400);
    assert.equal(await rawStatus(port, 'GET //a.txt HTTP/1.1'), 200);
    assert.equal(await rawStatus(port, 'GET /a.txt?x=1 HTTP/1.1'), 200);
    // a raw '#' (litmus delete_fragment): refused, nothing deleted
    assert.equal(await rawStatus(port, 'DELETE /a.txt#frag HTTP/1.1'), 400);
    assert.equal(await rawStatus(port, 'GET /a.txt HTTP/1.1'), 200);
  } finally {
    await h.close();
  }
});

test('auth: plain and scrypt users, wrong password 401 with realm, base64 containing + and /', async () => {
  // a password whose "user:password" base64 contains both '+' and '/'
  const chars = ['>', '?', '~', 'ÿ', 'û', 'é', 'a', '1'];
  let pass = '';
  for (let i = 0; i < 100_000; i++) {
    const cand = `p${i.toString(8).split('').map((d) => chars[Number(d)]).join('')}`;
    const b = Buffer.from(`bob:${cand}`).toString('base64');
    if (b.includes('+') && b.includes('/')) {
      pass = cand;
      break;
    }
  }
  assert.ok(pass, 'found a password whose base64 has + and /');
  const hashed = await hashPassword('s3cret pass');
  const h = await startHarness({ users: [{ username: 'bob', password: pass }, { username: 'alice', password: hashed }], realm: 'my realm' });
  try {
    const none = await h.req('PROPFIND', '/', { headers: { Depth: '0' } });
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Basic realm="my realm", charset="UTF-8"');
    assert.equal((await h.req('PROPFIND', '/', { headers: { Depth: '0', Authorization: basic('bob', 'wrong') } })).status, 401);
    assert.equal((await h.req('PROPFIND', '/', { headers: { Depth: '0', Authorization: basic('nobody', pass) } })).status, 401);
    assert.equal((await h.req('PROPFIND', '/', { headers: { Depth: '0', Authorization: basic('bob', pass) } })).status, 207);
    assert.equal((await h.req('PROPFIND', '/', { headers: { Depth: '0', Authorization: basic('alice', 's3cret pass') } })).status, 207);
    // twice (verification cache) and wrong after a success
    assert.equal((await h.req('PROPFIND', '/', { headers: { Depth: '0', Authorization: basic('alice', 's3cret pass') } })).status, 207);
    assert.equal((await h.req('PROPFIND', '/', { headers: { Depth: '0', Authorization: basic('alice', 's3cret pasS') } })).status, 401);
    assert.equal((await h.req('GET', '/', { headers: { Authorization: 'Basic !!!' } })).status, 401);
    assert.equal((await h.req('GET', '/', { headers: { Authorization: 'Bearer x' } })).status, 401);
  } finally {
    await h.close();
  }
});

test('no users: refuses to bind a non-loopback host; loopback is fine', async () => {
  const fs = {} as FileSystem;
  await assert.rejects(startBridge({ fs, host: '0.0.0.0', port: 0 }), (e: unknown) => e instanceof TbdavError && e.code === 'TBDAV_CONFIG');
  await assert.rejects(startBridge({ fs, host: '::', port: 0, users: [] }), (e: unknown) => e instanceof TbdavError && e.code === 'TBDAV_CONFIG');
  const b = await startBridge({ fs, host: '127.0.0.1', port: 0 });
  assert.match(b.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  await b.close();
  const withUsers = await startBridge({ fs, host: '0.0.0.0', port: 0, users: [{ username: 'u', password: 'p' }] });
  await withUsers.close();
});

/** A FileSystem whose every call fails with the given error. */
function failingFs(err: () => unknown): FileSystem {
  const fail = async (): Promise<never> => {
    throw err();
  };
  return {
    stat: fail, list: fail, openRead: fail, put: fail, mkdir: fail, remove: fail, move: fail, copy: fail,
    quota: fail, getProps: fail, patchProps: fail, close: async () => undefined,
  };
}

test('errors: one table maps codes to statuses; no stack traces; process survives a plain exception', async () => {
  const cases: [ErrorCode, string, number][] = [
    ['TBDAV_NOT_FOUND', 'GET', 404],
    ['TBDAV_CONFLICT', 'GET', 409],
    ['TBDAV_INVALID_NAME', 'GET', 400],
    ['TBDAV_QUOTA', 'GET', 507],
    ['TBDAV_TOO_LARGE', 'GET', 413],
    ['TBDAV_AUTH', 'GET', 503],
    ['TBDAV_RETRYABLE', 'GET', 503],
    ['TBDAV_RANGE', 'GET', 416],
    ['TBDAV_LOCKED', 'GET', 423],
    ['TBDAV_PRECONDITION', 'GET', 412],
    ['TBDAV_INSUFFICIENT_STORAGE', 'GET', 507],
    ['TBDAV_FATAL', 'GET', 500],
    ['TBDAV_EXISTS', 'MKCOL', 405],
  ];
  for (const [code, method, status] of cases) {
    const b = await startBridge({ fs: failingFs(() => new TbdavError(code, `op /x: failed with access_token=abcdef123456 inside`)), port: 0 });
    try {
      const res = await fetch(`${b.url}/x`, { method });
      const text = await res.text();
      assert.equal(res.status, status, code);
      assert.ok(!/\n\s+at /.test(text), `no stack in ${code}: ${text}`);
      assert.ok(!text.includes('abcdef123456'), `secret redacted in ${code}`);
      if (code === 'TBDAV_RETRYABLE') assert.ok(res.headers.get('retry-after'));
    } finally {
      await b.close();
    }
  }
  const b = await startBridge({ fs: failingFs(() => new TypeError('boom at secret place')), port: 0 });
  try {
    const res = await fetch(`${b.url}/x`);
    const text = await res.text();
    assert.equal(res.status, 500);
    assert.ok(!text.includes('boom'), text);
    assert.ok(!/ at /.test(text));
    // still alive
    assert.equal((await fetch(`${b.url}/x`, { method: 'OPTIONS' })).status, 200);
  } finally {
    await b.close();
  }
});

test('a read stream failing mid-body cuts the connection, the server stays up', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/f.bin', { body: Buffer.alloc(200_000, 1) });
    const orig = h.vfs.openRead.bind(h.vfs);
    h.vfs.openRead = async (path, range, opts) => {
      const res = await orig(path, range, opts);
      let n = 0;
      const broken = new Readable({
        read() {
          if (n++ === 0) this.push(Buffer.alloc(1000, 1));
          else this.destroy(new Error('upstream reset'));
        },
      });
      res.stream.destroy();
      return { entry: res.entry, stream: broken };
    };
    await assert.rejects(h.req('GET', '/f.bin'));
    h.vfs.openRead = orig;
    assert.equal((await h.req('GET', '/f.bin')).body.length, 200_000);
  } finally {
    await h.close();
  }
});

test('close(): stops accepting, lets a PUT in flight finish, then resolves', { timeout: 30_000 }, async () => {
  const h = await startHarness();
  let closed = false;
  try {
    let push: (b: Buffer | null) => void = () => undefined;
    const body = new Readable({ read() {} });
    push = (b) => body.push(b);
    const put = fetch(`${h.url}/slow.bin`, { method: 'PUT', body: body as never, duplex: 'half' } as RequestInit);
    push(Buffer.alloc(100_000, 1));
    // let the server take the request in hand (the answer cannot come before the body ends)
    await new Promise((r) => setTimeout(r, 200));
    const closing = h.bridge.close({ drainMs: 10_000 }).then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(closed, false, 'close waits for the request in flight');
    await assert.rejects(fetch(`${h.url}/`, { method: 'OPTIONS' }), 'no new connections');
    push(Buffer.alloc(50_000, 2));
    push(null);
    const res = await put;
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('connection'), 'close');
    await closing;
    assert.equal((await h.vfs.stat('/slow.bin')).size, 150_000);
  } finally {
    await h.close();
  }
});
