/** The bridge over the real stack (emulator -> TeraboxRemote -> Vfs): the dav mapping end to end. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startTestStack } from '../helpers/stack.js';
import { parseMultistatus } from './harness.js';

test('over the emulator: 9 MiB PUT, ranged GET, PROPFIND listing, MOVE, COPY, DELETE', { timeout: 50_000 }, async () => {
  const s = await startTestStack({ users: [{ username: 'u', password: 'p+/=' }] });
  const auth = s.authHeaders();
  const call = async (method: string, path: string, init: { headers?: Record<string, string>; body?: Buffer | string } = {}) => {
    const res = await fetch(s.url + path, { method, headers: { ...auth, ...init.headers }, body: init.body });
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  };
  try {
    const data = randomBytes(9 * 1024 * 1024 + 123);
    assert.equal((await call('MKCOL', '/Films')).status, 201);
    assert.equal((await call('PUT', '/Films/big%20one.bin', { body: data })).status, 201);
    const ranged = await call('GET', '/Films/big%20one.bin', { headers: { Range: 'bytes=4194300-4194400' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('content-range'), `bytes 4194300-4194400/${data.length}`);
    assert.deepEqual(ranged.body, data.subarray(4194300, 4194401));
    const full = await call('GET', '/Films/big%20one.bin');
    assert.equal(createHash('md5').update(full.body).digest('hex'), createHash('md5').update(data).digest('hex'));
    const list = await call('PROPFIND', '/Films', { headers: { Depth: '1' } });
    assert.equal(list.status, 207);
    const ms = parseMultistatus(list.body.toString());
    assert.deepEqual(ms.map((e) => e.href).sort(), ['/Films/', '/Films/big%20one.bin']);
    assert.equal(ms.find((e) => e.href.endsWith('.bin'))!.props['{DAV:}getcontentlength']!.value, String(data.length));
    assert.equal((await call('MOVE', '/Films/big%20one.bin', { headers: { Destination: '/Films/renamed.bin' } })).status, 201);
    assert.equal((await call('COPY', '/Films', { headers: { Destination: '/Backup' } })).status, 201);
    assert.equal((await call('HEAD', '/Backup/renamed.bin')).headers.get('content-length'), String(data.length));
    assert.equal((await call('DELETE', '/Films')).status, 204);
    assert.equal((await call('PROPFIND', '/Films', { headers: { Depth: '0' } })).status, 404);
    assert.equal((await fetch(s.url + '/', { method: 'OPTIONS' })).status, 401);
  } finally {
    await s.close();
  }
});
