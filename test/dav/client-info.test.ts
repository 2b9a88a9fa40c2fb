/**
 * server.trustedProxies (issue 11): Forwarded / X-Forwarded-* believed only from trusted peers,
 * for the log line, the login throttle, and the host the Destination check compares with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { computeClientInfo, parseForwarded, TrustedProxies } from '../../src/dav/client-info.js';
import { captureLogger } from '../helpers/logs.js';
import { startHarness } from './harness.js';

function fakeReq(peer: string, headers: Record<string, string>, encrypted = false): http.IncomingMessage {
  return { socket: { remoteAddress: peer, encrypted }, headers } as unknown as http.IncomingMessage;
}

test('TrustedProxies: addresses, CIDR ranges, IPv4-mapped IPv6; junk refused', () => {
  const t = new TrustedProxies(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
  assert.equal(t.has('127.0.0.1'), true);
  assert.equal(t.has('::ffff:127.0.0.1'), true);
  assert.equal(t.has('10.20.30.40'), true);
  assert.equal(t.has('11.0.0.1'), false);
  assert.equal(t.has('fd12::1'), true);
  assert.equal(t.has('::1'), false);
  assert.equal(t.has('not an address'), false);
  assert.throws(() => new TrustedProxies(['proxy.lan']), /server\.trustedProxies/);
  assert.throws(() => new TrustedProxies(['10.0.0.0/40']), /prefix length/);
  assert.throws(() => new TrustedProxies(['10.0.0.0/8/1']), /server\.trustedProxies/);
});

test('parseForwarded: several elements, quoted values, IPv6 with port', () => {
  assert.deepEqual(parseForwarded('for=192.0.2.60;proto=https;host="dav.example.org", for="[2001:db8::1]:4711"'), [
    { for: '192.0.2.60', proto: 'https', host: 'dav.example.org' },
    { for: '[2001:db8::1]:4711' },
  ]);
});

test('computeClientInfo: headers ignored from an untrusted peer, believed from a trusted one', () => {
  const trusted = new TrustedProxies(['127.0.0.1', '10.0.0.0/8']);
  const spoof = { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', host: 'dav.lan:8080' };
  assert.deepEqual(computeClientInfo(fakeReq('192.168.1.5', spoof), trusted), {
    address: '192.168.1.5',
    peer: '192.168.1.5',
    proto: 'http',
    host: 'dav.lan:8080',
    viaProxy: false,
  });
  const via = computeClientInfo(fakeReq('::ffff:127.0.0.1', { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'dav.example.org', host: '127.0.0.1:8080' }), trusted);
  assert.deepEqual(via, { address: '198.51.100.7', peer: '127.0.0.1', proto: 'https', host: 'dav.example.org', viaProxy: true });
  // A client-written entry at the far end of the chain does not count: the rightmost untrusted one does.
  const chain = computeClientInfo(fakeReq('127.0.0.1', { 'x-forwarded-for': '1.2.3.4, 198.51.100.7, 10.1.1.1' }), trusted);
  assert.equal(chain.address, '198.51.100.7');
  // Forwarded wins over X-Forwarded-*; proto and host from the client's hop.
  const fwd = computeClientInfo(fakeReq('127.0.0.1', { forwarded: 'for=1.2.3.4;host=forged, for="[2001:db8::7]:555";proto=https;host=dav.example.org', 'x-forwarded-for': '9.9.9.9' }), trusted);
  assert.deepEqual(fwd, { address: '2001:db8::7', peer: '127.0.0.1', proto: 'https', host: 'dav.example.org', viaProxy: true });
  // Unusable values fall back to the socket's own.
  const junk = computeClientInfo(fakeReq('127.0.0.1', { 'x-forwarded-for': 'unknown', 'x-forwarded-proto': 'gopher', 'x-forwarded-host': 'a b', host: 'h:1' }), trusted);
  assert.deepEqual(junk, { address: '127.0.0.1', peer: '127.0.0.1', proto: 'http', host: 'h:1', viaProxy: true });
});

function raw(port: number, localAddress: string, method: string, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const rq = http.request({ host: '127.0.0.1', port, method, path, localAddress, headers: { connection: 'close', ...headers } }, (m) => {
      m.resume();
      m.on('end', () => resolve(m.statusCode ?? 0));
    });
    rq.on('error', reject);
    rq.end();
  });
}

test('bridge: the log line and the throttle see the forwarded client address only from a trusted proxy', async () => {
  const { logger, records } = captureLogger('json', 'info');
  const h = await startHarness({
    logger,
    users: [{ username: 'u', password: 'right' }],
    trustedProxies: ['127.0.0.1'],
    loginThrottle: { freeFailures: 1, baseDelayMs: 600_000, maxHeldPerKey: 1 },
  });
  const bad = 'Basic ' + Buffer.from('u:wrong').toString('base64');
  try {
    await raw(h.bridge.port, '127.0.0.1', 'OPTIONS', '/', { 'x-request-id': 'via-proxy', 'x-forwarded-for': '198.51.100.7', authorization: bad });
    await raw(h.bridge.port, '127.0.0.2', 'OPTIONS', '/', { 'x-request-id': 'spoofed', 'x-forwarded-for': '198.51.100.8', authorization: bad });
    await new Promise((r) => setTimeout(r, 50));
    const line = (id: string) => records().find((r) => r['requestId'] === id && String(r['message']).startsWith('OPTIONS'));
    assert.equal(line('via-proxy')?.['client'], '198.51.100.7');
    assert.equal(line('spoofed')?.['client'], '127.0.0.2', 'X-Forwarded-For from an untrusted peer is ignored');
    // Throttle keyed by the forwarded address: 198.51.100.7 used its free failure, the next one is
    // held (cap 1), the one after refused; a different client behind the same proxy is untouched.
    const held = raw(h.bridge.port, '127.0.0.1', 'OPTIONS', '/', { 'x-forwarded-for': '198.51.100.7', authorization: bad });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await raw(h.bridge.port, '127.0.0.1', 'OPTIONS', '/', { 'x-forwarded-for': '198.51.100.7', authorization: bad }), 429);
    assert.equal(await raw(h.bridge.port, '127.0.0.1', 'OPTIONS', '/', { 'x-forwarded-for': '198.51.100.99', authorization: bad }), 401);
    await h.bridge.close();
    assert.equal(await held, 401);
  } finally {
    await h.close();
  }
});

test('bridge: COPY Destination is compared with the host the client used (X-Forwarded-Host) behind a trusted proxy', async () => {
  const h = await startHarness({ trustedProxies: ['127.0.0.1'] });
  try {
    await h.req('PUT', '/a.txt', { body: 'x' });
    const via = { 'X-Forwarded-Host': 'dav.example.org', 'X-Forwarded-Proto': 'https' };
    const ok = await h.req('COPY', '/a.txt', { headers: { ...via, Destination: 'https://dav.example.org/b.txt' } });
    assert.equal(ok.status, 201);
    const other = await h.req('COPY', '/a.txt', { headers: { ...via, Destination: `${h.url}/c.txt` } });
    assert.equal(other.status, 502, 'the internal address is not the host the client used');
  } finally {
    await h.close();
  }
});
