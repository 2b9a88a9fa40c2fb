import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { startTestStack } from '../helpers/stack.js';

test('test stack: PUT then GET round trip through bridge, vfs, remote and emulator; close removes the temp dir', async () => {
  const s = await startTestStack({ users: [{ username: 'alice', password: 'pw' }] });
  let closed = false;
  try {
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+/);
    const denied = await fetch(s.url + '/', { method: 'PROPFIND', headers: { depth: '0' } });
    assert.equal(denied.status, 401);
    await denied.arrayBuffer();
    const body = 'hello from the test stack\n'.repeat(100);
    const put = await fetch(s.url + '/dir-less.txt', { method: 'PUT', body, headers: s.authHeaders() });
    assert.ok(put.status === 201 || put.status === 204, `PUT status ${put.status}`);
    await put.arrayBuffer();
    const get = await fetch(s.url + '/dir-less.txt', { headers: s.authHeaders() });
    assert.equal(get.status, 200);
    assert.equal(await get.text(), body);
    // the bytes really went through the emulator's upload endpoint
    assert.ok(s.counters.bytesUploaded >= body.length, `bytesUploaded ${s.counters.bytesUploaded}`);
    const entry = await s.remote.stat('/dir-less.txt');
    assert.equal(entry.size, body.length);
    await s.close();
    closed = true;
    await assert.rejects(stat(s.dir), { code: 'ENOENT' });
  } finally {
    if (!closed) await s.close();
  }
});
