import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, parseMultistatus } from './harness.js';

test('smoke: put, get, propfind', async () => {
  const h = await startHarness();
  try {
    let r = await h.req('PUT', '/a.txt', { body: 'hello world' });
    assert.equal(r.status, 201, r.text);
    r = await h.req('GET', '/a.txt');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'hello world');
    r = await h.req('PROPFIND', '/', { headers: { Depth: '1' } });
    assert.equal(r.status, 207, r.text);
    const ms = parseMultistatus(r.text);
    assert.deepEqual(ms.map((e) => e.href), ['/', '/a.txt']);
    r = await h.req('GET', '/a.txt', { headers: { Range: 'bytes=6-' } });
    assert.equal(r.status, 206);
    assert.equal(r.text, 'world');
    assert.equal(r.headers['content-range'], 'bytes 6-10/11');
  } finally {
    await h.close();
  }
});
