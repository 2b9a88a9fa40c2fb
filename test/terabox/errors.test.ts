/**
 * The errno table and the retry classifier (pure functions: no network needed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERRNO } from '../../src/terabox/api/types.js';
import {
  ACCESS_TOKEN_ERRNOS,
  ERRNO_TABLE,
  TeraboxApiError,
  errnoCode,
  errnoError,
  httpStatusCode,
} from '../../src/terabox/errors.js';
import { classifyRetry, parseRetryAfter, type RetryContext } from '../../src/terabox/http.js';
import { TbdavError } from '../../src/shared/errors.js';

test('every errno of the wire types has a row in the table', () => {
  for (const [name, errno] of Object.entries(ERRNO)) {
    if (errno === 0) continue;
    assert.ok(ERRNO_TABLE.has(errno), `ERRNO.${name} (${errno}) missing from ERRNO_TABLE`);
  }
});

test('errno codes follow the brief', () => {
  const expect: [number, string][] = [
    [31034, 'TBDAV_RETRYABLE'],
    [42000, 'TBDAV_RETRYABLE'],
    [31363, 'TBDAV_FATAL'],
    [31299, 'TBDAV_FATAL'],
    [31364, 'TBDAV_FATAL'],
    [31365, 'TBDAV_TOO_LARGE'],
    [58, 'TBDAV_TOO_LARGE'],
    [-10, 'TBDAV_QUOTA'],
    [31112, 'TBDAV_QUOTA'],
    [-7, 'TBDAV_INVALID_NAME'],
    [-8, 'TBDAV_EXISTS'],
    [-9, 'TBDAV_NOT_FOUND'],
    [-6, 'TBDAV_AUTH'],
    [111, 'TBDAV_AUTH'],
    [200002, 'TBDAV_AUTH'],
    [200003, 'TBDAV_AUTH'],
    [2, 'TBDAV_FATAL'],
    [31023, 'TBDAV_FATAL'],
    [100001, 'TBDAV_AUTH'],
    [200004, 'TBDAV_AUTH'],
    [500001, 'TBDAV_RETRYABLE'],
    [987654, 'TBDAV_FATAL'], // unknown
  ];
  for (const [errno, code] of expect) assert.equal(errnoCode(errno), code, `errno ${errno}`);
});

test('errnoError carries the code, the errno and the endpoint', () => {
  const e = errnoError('list', -9, { requestId: '77' });
  assert.ok(e instanceof TbdavError);
  assert.ok(e instanceof TeraboxApiError);
  assert.equal(e.code, 'TBDAV_NOT_FOUND');
  assert.equal(e.errno, -9);
  assert.equal(e.endpoint, 'list');
  assert.equal(e.requestId, '77');
  assert.match(e.message, /^list: .*errno -9/);
  assert.equal(errnoError('create', -8).code, 'TBDAV_EXISTS');
  assert.equal(errnoError('create', -7).code, 'TBDAV_INVALID_NAME');
  assert.equal(errnoError('create', -10).code, 'TBDAV_QUOTA');
  assert.equal(errnoError('create', 31365).code, 'TBDAV_TOO_LARGE');
  assert.equal(errnoError('uinfo', 111).code, 'TBDAV_AUTH');
  assert.equal(errnoError('list', 31034).code, 'TBDAV_RETRYABLE');
  assert.equal(errnoError('list', 2).code, 'TBDAV_FATAL');
  assert.equal('category' in e, false, 'one vocabulary: code, no category');
  assert.ok(ACCESS_TOKEN_ERRNOS.has(-6) && ACCESS_TOKEN_ERRNOS.has(111) && ACCESS_TOKEN_ERRNOS.has(200003));
  assert.ok(!ACCESS_TOKEN_ERRNOS.has(200004), 'a refused refresh token cannot be fixed by refreshing');
});

test('error messages are redacted', () => {
  const e = new TeraboxApiError({ endpoint: 'dlink', code: 'TBDAV_FATAL', message: 'GET https://d.example/file?sign=SECRETSIGN123&access_tokens=TOKENVALUE99' });
  assert.doesNotMatch(e.message, /SECRETSIGN123|TOKENVALUE99/);
});

test('HTTP statuses without errno', () => {
  assert.equal(httpStatusCode(429), 'TBDAV_RETRYABLE');
  assert.equal(httpStatusCode(503), 'TBDAV_RETRYABLE');
  assert.equal(httpStatusCode(500), 'TBDAV_RETRYABLE');
  assert.equal(httpStatusCode(401), 'TBDAV_AUTH');
  assert.equal(httpStatusCode(404), 'TBDAV_NOT_FOUND');
  assert.equal(httpStatusCode(400), 'TBDAV_FATAL');
});

const ctx = (over: Partial<RetryContext> = {}): RetryContext => ({
  attempt: 1,
  maxRetries: 5,
  baseMs: 100,
  maxMs: 1000,
  policy: 'idempotent',
  random: () => 0.5,
  ...over,
});
const netErr = (code: string) => Object.assign(new Error(code), { code });

test('retry classifier: transient errors of idempotent calls are retried with full jitter', () => {
  const rate = errnoError('list', 31034);
  let d = classifyRetry(rate, ctx());
  assert.equal(d.retry, true);
  assert.equal(d.delayMs, 50); // 0.5 * min(1000, 100 * 2^0)
  d = classifyRetry(rate, ctx({ attempt: 3 }));
  assert.equal(d.delayMs, 200); // 0.5 * 400
  d = classifyRetry(rate, ctx({ attempt: 5 }));
  assert.equal(d.delayMs, 500); // capped at maxMs 1000
  assert.equal(classifyRetry(errnoError('list', 42000), ctx()).retry, true);
  assert.equal(classifyRetry(new TeraboxApiError({ endpoint: 'x', code: 'TBDAV_RETRYABLE', httpStatus: 503 }), ctx()).retry, true);
  assert.equal(classifyRetry(netErr('ECONNRESET'), ctx()).retry, true);
  assert.equal(classifyRetry(new TeraboxApiError({ endpoint: 'x', code: 'TBDAV_RETRYABLE', cause: netErr('UND_ERR_SOCKET') }), ctx()).retry, true);
});

test('retry classifier: no retry for non-transient errors, exhausted retries or a fired signal', () => {
  assert.equal(classifyRetry(errnoError('list', -9), ctx()).retry, false);
  assert.equal(classifyRetry(errnoError('list', -6), ctx()).retry, false);
  assert.equal(classifyRetry(errnoError('list', 2), ctx()).retry, false);
  assert.equal(classifyRetry(new Error('boom'), ctx()).retry, false);
  assert.equal(classifyRetry(errnoError('list', 31034), ctx({ attempt: 6 })).retry, false);
  const ac = new AbortController();
  ac.abort();
  assert.equal(classifyRetry(errnoError('list', 31034), ctx({ signal: ac.signal })).retry, false);
  assert.equal(classifyRetry(new TbdavError('TBDAV_ABORTED', 'x: aborted'), ctx()).retry, false);
});

test('retry classifier: unsafe calls are retried only when nothing happened', () => {
  const unsafe = ctx({ policy: 'unsafe' });
  assert.equal(classifyRetry(errnoError('create', 31034), unsafe).retry, true, 'rate limit: refused before acting');
  assert.equal(classifyRetry(new TeraboxApiError({ endpoint: 'x', code: 'TBDAV_RETRYABLE', httpStatus: 429 }), unsafe).retry, true);
  assert.equal(classifyRetry(netErr('ECONNREFUSED'), unsafe).retry, true, 'never reached the service');
  assert.equal(classifyRetry(netErr('ECONNRESET'), unsafe).retry, false, 'may have been processed');
  assert.equal(classifyRetry(new TeraboxApiError({ endpoint: 'x', code: 'TBDAV_RETRYABLE', httpStatus: 502 }), unsafe).retry, false);
  assert.equal(classifyRetry(errnoError('x', 500001), unsafe).retry, false);
});

test('retry classifier honours Retry-After', () => {
  const e = new TeraboxApiError({ endpoint: 'x', code: 'TBDAV_RETRYABLE', httpStatus: 429, retryAfterSec: 2 });
  assert.equal(classifyRetry(e, ctx({ maxMs: 1000 })).delayMs, 2000);
  assert.equal(classifyRetry(e, ctx({ maxMs: 100 })).delayMs, 400, 'capped at 4 x maxMs');
  assert.equal(parseRetryAfter('3'), 3);
  assert.equal(parseRetryAfter(undefined), undefined);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5);
});
