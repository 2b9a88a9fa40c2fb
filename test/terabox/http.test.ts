/**
 * HttpCaller (the one call path) against a small real HTTP server on port 0, for answers the
 * emulator does not give: Retry-After, HTML error pages, broken JSON, connection refused, pacing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpCaller } from '../../src/terabox/http.js';
import { isTeraboxApiError } from '../../src/terabox/errors.js';

let server: Server;
let base: string;
const hits: Record<string, number> = {};
let inFlight = 0;
let maxInFlight = 0;

function handler(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const n = (hits[path] = (hits[path] ?? 0) + 1);
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  switch (path) {
    case '/retry-after': // 429 with Retry-After once, then fine
      if (n === 1) return json(429, { errno: 0 }, { 'retry-after': '1' });
      return json(200, { errno: 0, ok: true });
    case '/html-502': // an HTML error page from a proxy, then fine
      if (n === 1) {
        res.writeHead(502, { 'content-type': 'text/html' });
        return void res.end('<html><body>Bad Gateway</body></html>');
      }
      return json(200, { errno: 0, ok: true });
    case '/broken-json':
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end('{"errno": 0, "list": [');
    case '/errno-in-200':
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end('{"errno": -9, "request_id": 15001987287138667544, "errmsg": "no such file"}');
    case '/slow': {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        json(200, { errno: 0 });
      }, 30);
      return;
    }
    default:
      return json(404, { errno: 0 });
  }
}

before(async () => {
  server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const caller = (over: ConstructorParameters<typeof HttpCaller>[0] = {}) =>
  new HttpCaller({ retryBaseMs: 5, retryMaxMs: 50, maxRetries: 3, callsPerSecond: 1000, ...over });

test('429 with Retry-After is retried (also for unsafe calls) and succeeds', async () => {
  const h = caller();
  try {
    const res = await h.call<{ ok: boolean }>({ endpoint: 't', method: 'POST', url: new URL('/retry-after', base), form: { a: '1' }, retry: 'unsafe', expect: 'json' });
    assert.equal(res.data.ok, true);
    assert.equal(hits['/retry-after'], 2);
  } finally {
    await h.close();
  }
});

test('an HTML 502 page is a retryable error; retried for idempotent calls', async () => {
  const h = caller();
  try {
    const res = await h.call<{ ok: boolean }>({ endpoint: 't', method: 'GET', url: new URL('/html-502', base), retry: 'idempotent', expect: 'json' });
    assert.equal(res.data.ok, true);
    assert.equal(hits['/html-502'], 2);
  } finally {
    await h.close();
  }
});

test('HTTP 200 with errno != 0 is an error with errno, endpoint and the service request id', async () => {
  const h = caller();
  try {
    await assert.rejects(
      h.call({ endpoint: 'filemetas', method: 'GET', url: new URL('/errno-in-200?access_tokens=SECRETTOKEN123', base), retry: 'idempotent', expect: 'json' }),
      (e: unknown) => isTeraboxApiError(e) && e.errno === -9 && e.code === 'TBDAV_NOT_FOUND' && e.endpoint === 'filemetas' && e.requestId === '15001987287138667544' && !e.message.includes('SECRETTOKEN123'),
    );
    assert.equal(hits['/errno-in-200'], 1, 'not retried');
  } finally {
    await h.close();
  }
});

test('broken JSON is a fatal error, not retried', async () => {
  const h = caller();
  try {
    await assert.rejects(h.call({ endpoint: 'list', method: 'GET', url: new URL('/broken-json', base), retry: 'idempotent', expect: 'json' }), { code: 'TBDAV_FATAL' });
    assert.equal(hits['/broken-json'], 1);
  } finally {
    await h.close();
  }
});

test('connection refused is retried even for unsafe calls, then TBDAV_RETRYABLE', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const retries: number[] = [];
  const h = caller({ maxRetries: 2 });
  try {
    await assert.rejects(
      h.call({ endpoint: 'create', method: 'POST', url: new URL(`http://127.0.0.1:${port}/x`), form: {}, retry: 'unsafe', expect: 'json', onRetry: () => retries.push(1) }),
      { code: 'TBDAV_RETRYABLE' },
    );
    assert.equal(retries.length, 2);
  } finally {
    await h.close();
  }
});

test('the pacer bounds concurrent calls', async () => {
  const h = caller({ concurrency: 2 });
  try {
    maxInFlight = 0;
    await Promise.all(Array.from({ length: 8 }, () => h.call({ endpoint: 's', method: 'GET', url: new URL('/slow', base), retry: 'idempotent', expect: 'json' })));
    assert.equal(hits['/slow'], 8);
    assert.ok(maxInFlight <= 2, `at most 2 at once (saw ${maxInFlight})`);
    assert.ok(maxInFlight >= 1);
  } finally {
    await h.close();
  }
});
