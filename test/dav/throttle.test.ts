import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { LoginThrottle } from '../../src/dav/auth.js';
import { startHarness } from './harness.js';

const basic = (u: string, p: string) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');

test('LoginThrottle: blocks after N failures in the window, for the window; success resets', () => {
  let now = 1_000_000;
  const t = new LoginThrottle({ maxFailures: 3, windowMs: 10_000, now: () => now });
  t.failed('a');
  t.failed('a');
  assert.equal(t.retryAfter('a'), 0);
  t.succeeded('a');
  t.failed('a');
  t.failed('a');
  assert.equal(t.retryAfter('a'), 0, 'success reset the count');
  t.failed('a');
  assert.equal(t.retryAfter('a'), 10);
  assert.equal(t.retryAfter('b'), 0);
  now += 9_500;
  assert.equal(t.retryAfter('a'), 1);
  now += 600;
  assert.equal(t.retryAfter('a'), 0);
  // failures spread over more than a window do not add up
  t.failed('c');
  t.failed('c');
  now += 11_000;
  t.failed('c');
  assert.equal(t.retryAfter('c'), 0);
});

test('bridge: failed logins from one address get 429 + Retry-After; another address and anonymous probes unaffected', async () => {
  const h = await startHarness({ users: [{ username: 'u', password: 'right' }] });
  try {
    // anonymous requests do not count
    for (let i = 0; i < 12; i++) assert.equal((await h.req('OPTIONS', '/')).status, 401);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await h.req('OPTIONS', '/', { headers: { Authorization: basic('u', `bad${i}`) } })).status);
    assert.deepEqual(statuses.slice(0, 9), Array(9).fill(401));
    assert.equal(statuses[11], 429);
    const blocked = await h.req('OPTIONS', '/', { headers: { Authorization: basic('u', 'right') } });
    assert.equal(blocked.status, 429, 'no password check while throttled');
    assert.ok(Number(blocked.headers['retry-after']) > 0);
    // the same credentials from another client address (node:http: undici ignores localAddress)
    const status = await new Promise<number>((resolve, reject) => {
      const rq = http.request(
        { host: '127.0.0.1', port: h.bridge.port, method: 'OPTIONS', path: '/', localAddress: '127.0.0.2', headers: { authorization: basic('u', 'right') } },
        (m) => {
          m.resume();
          m.on('end', () => resolve(m.statusCode ?? 0));
        },
      );
      rq.on('error', reject);
      rq.end();
    });
    assert.equal(status, 200);
  } finally {
    await h.close();
  }
});
