import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { connect } from 'node:net';
import { request } from 'undici';
import { startHarness } from './harness.js';

test('PUT: 201 new, 204 replaced, 409 without parent, 405 on a folder, content stored', async () => {
  const h = await startHarness();
  try {
    let r = await h.req('PUT', '/a.txt', { body: 'one' });
    assert.equal(r.status, 201);
    assert.match(r.headers['etag']!, /^"/);
    r = await h.req('PUT', '/a.txt', { body: 'two!' });
    assert.equal(r.status, 204);
    assert.equal((await h.req('GET', '/a.txt')).text, 'two!');
    assert.equal((await h.req('PUT', '/missing/a.txt', { body: 'x' })).status, 409);
    await h.req('MKCOL', '/dir');
    assert.equal((await h.req('PUT', '/dir', { body: 'x' })).status, 405);
    assert.equal((await h.req('PUT', '/a.txt/child', { body: 'x' })).status, 409);
  } finally {
    await h.close();
  }
});

test('PUT: chunked body with X-Expected-Entity-Length, X-OC-Mtime kept, 0-byte file', async () => {
  const h = await startHarness();
  try {
    const parts = [Buffer.alloc(100_000, 1), Buffer.alloc(50_000, 2)];
    const r = await h.req('PUT', '/c.bin', {
      body: Readable.from(parts),
      headers: { 'X-Expected-Entity-Length': '150000', 'X-OC-Mtime': '1600000000' },
    });
    assert.equal(r.status, 201, r.text);
    const e = await h.vfs.stat('/c.bin');
    assert.equal(e.size, 150_000);
    assert.equal(e.mtime, 1_600_000_000_000);
    const g = await h.req('GET', '/c.bin');
    assert.deepEqual(g.body, Buffer.concat(parts));
    const z = await h.req('PUT', '/zero.txt', { body: '' });
    assert.equal(z.status, 201);
    assert.equal((await h.req('GET', '/zero.txt')).body.length, 0);
  } finally {
    await h.close();
  }
});

test('PUT: client abort mid-body stores nothing', { timeout: 20_000 }, async () => {
  const h = await startHarness();
  try {
    const ac = new AbortController();
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= 4) {
          // stall, then abort the request
          setTimeout(() => ac.abort(), 50);
          return;
        }
        sent++;
        this.push(Buffer.alloc(64 * 1024, 3));
      },
    });
    await assert.rejects(
      request(h.url + '/partial.bin', { method: 'PUT', body, signal: ac.signal, headers: { 'content-length': String(10 * 1024 * 1024) } }),
    );
    // give the server a moment to notice, then check nothing is there
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((await h.req('GET', '/partial.bin')).status, 404);
    assert.equal(await h.remote.stat('/partial.bin').then(() => 'present', () => 'absent'), 'absent');
  } finally {
    await h.close();
  }
});

test('PUT: If-None-Match * refuses to replace (412)', async () => {
  const h = await startHarness();
  try {
    assert.equal((await h.req('PUT', '/x.txt', { body: 'a', headers: { 'If-None-Match': '*' } })).status, 201);
    assert.equal((await h.req('PUT', '/x.txt', { body: 'b', headers: { 'If-None-Match': '*' } })).status, 412);
    assert.equal((await h.req('GET', '/x.txt')).text, 'a');
  } finally {
    await h.close();
  }
});

test('MKCOL: 201, 405 if exists, 409 without parent, 415 with a body', async () => {
  const h = await startHarness();
  try {
    assert.equal((await h.req('MKCOL', '/d')).status, 201);
    assert.equal((await h.req('MKCOL', '/d')).status, 405);
    await h.req('PUT', '/f.txt', { body: 'x' });
    assert.equal((await h.req('MKCOL', '/f.txt')).status, 405);
    assert.equal((await h.req('MKCOL', '/no/such')).status, 409);
    assert.equal((await h.req('MKCOL', '/e', { body: '<x/>' })).status, 415);
    assert.equal((await h.req('MKCOL', '/e')).status, 201);
    const p = await h.req('PROPFIND', '/d', { headers: { Depth: '0' } });
    assert.equal(p.status, 207);
  } finally {
    await h.close();
  }
});

test('DELETE: 204, 404 if absent, recursive, Depth other than infinity on a folder 400', async () => {
  const h = await startHarness();
  try {
    await h.req('MKCOL', '/d');
    await h.req('PUT', '/d/a.txt', { body: 'x' });
    await h.req('PUT', '/f.txt', { body: 'x' });
    assert.equal((await h.req('DELETE', '/f.txt')).status, 204);
    assert.equal((await h.req('GET', '/f.txt')).status, 404);
    assert.equal((await h.req('DELETE', '/f.txt')).status, 404);
    assert.equal((await h.req('DELETE', '/d', { headers: { Depth: '0' } })).status, 400);
    assert.equal((await h.req('GET', '/d/a.txt')).status, 200);
    assert.equal((await h.req('DELETE', '/d', { headers: { Depth: 'infinity' } })).status, 204);
    assert.equal((await h.req('GET', '/d/a.txt')).status, 404);
    assert.equal((await h.req('PROPFIND', '/d', { headers: { Depth: '0' } })).status, 404);
  } finally {
    await h.close();
  }
});

/** Send PUT headers with Expect: 100-continue and report the first answer line before any body is sent. */
function firstAnswer(port: number, path: string, body: string, extra = ''): Promise<{ first: string; all: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () =>
      s.write(`PUT ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n${extra}Connection: close\r\n\r\n`),
    );
    let data = '';
    let resolved = false;
    let done: (v: string) => void = () => undefined;
    const all = new Promise<string>((r) => (done = r));
    s.on('data', (d) => {
      data += d.toString();
      if (!resolved && data.includes('\r\n')) {
        resolved = true;
        const first = data.split('\r\n')[0]!;
        if (first.includes(' 100 ')) s.write(body);
        resolve({ first, all });
      }
    });
    s.on('end', () => done(data));
    s.on('error', reject);
  });
}

test('Expect: 100-continue: refusals come before the body, success after 100 Continue', { timeout: 20_000 }, async () => {
  const h = await startHarness({ users: [{ username: 'u', password: 'p' }] });
  try {
    const auth = `Authorization: Basic ${Buffer.from('u:p').toString('base64')}\r\n`;
    const noAuth = await firstAnswer(h.bridge.port, '/a.txt', 'hello');
    assert.match(noAuth.first, / 401 /);
    const noParent = await firstAnswer(h.bridge.port, '/missing/a.txt', 'hello', auth);
    assert.match(noParent.first, / 409 /);
    const ok = await firstAnswer(h.bridge.port, '/a.txt', 'hello', auth);
    assert.match(ok.first, / 100 /);
    assert.match(await ok.all, /HTTP\/1\.1 201/);
    const g = await h.req('GET', '/a.txt', { headers: { Authorization: `Basic ${Buffer.from('u:p').toString('base64')}` } });
    assert.equal(g.text, 'hello');
  } finally {
    await h.close();
  }
});
