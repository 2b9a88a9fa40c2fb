import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import winston from 'winston';
import { clearRegisteredSecrets, redact, redactValue, registerSecret } from '../../src/shared/redact.js';
import { createLogger } from '../../src/shared/logger.js';

test('secret query parameters are masked in URLs', () => {
  const url =
    'https://d.example.com/file/abc?fid=1-2-3&sign=FDtAERVC-DCb740ccc5511e5e8fedcff06b081203-u2yxDGhrYS8wodPxekcedfl0sBU%3D&expires=1h&access_tokens=ASO9gMfmazGgYCLp';
  const out = redact(url);
  assert.ok(!out.includes('FDtAERVC'), out);
  assert.ok(!out.includes('ASO9gMfmazGgYCLp'), out);
  assert.ok(out.includes('fid=1-2-3'), 'non-secret parameters stay readable');
});

test('JSON fields, headers and cookies are masked', () => {
  const json = JSON.stringify({ access_token: 'tok-aaaaaaaa', refresh_token: 'ref-bbbbbbbb', expires_in: 10 });
  const out = redact(json);
  assert.ok(!out.includes('tok-aaaaaaaa') && !out.includes('ref-bbbbbbbb'), out);
  assert.ok(out.includes('"expires_in":10'));
  assert.ok(!redact('Set-Cookie: BOXCLND=secretcookievalue; path=/').includes('secretcookievalue'));
  assert.ok(!redact('authorization: Basic dXNlcjpwYXNz').includes('dXNlcjpwYXNz'));
});

test('registered literal secrets are masked anywhere', () => {
  registerSecret('my-client-secret-123');
  try {
    assert.equal(redact('failed with my-client-secret-123 inside'), 'failed with [REDACTED] inside');
    const v = redactValue({ nested: ['x my-client-secret-123 y'], clientSecret: 'whatever' }) as Record<string, unknown>;
    assert.deepEqual(v, { nested: ['x [REDACTED] y'], clientSecret: '[REDACTED]' });
  } finally {
    clearRegisteredSecrets();
  }
});

test('the logger redacts messages and metadata', async () => {
  let captured = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      captured += String(chunk);
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream: sink })] });
  logger.debug('GET https://x/y?access_tokens=SECRET_TOKEN_1&a=1', { url: 'https://x?refresh_token=SECRET_TOKEN_2', privateSecret: 'SECRET_3' });
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(captured.length > 0, 'log line written');
  for (const s of ['SECRET_TOKEN_1', 'SECRET_TOKEN_2', 'SECRET_3']) assert.ok(!captured.includes(s), `${s} leaked: ${captured}`);
});

test("the signature of the bridge's HLS URLs is masked (a capability, like a dlink sign)", () => {
  const out = redact('GET /.terabox-dav/hls/kvxVvuIjZimp02JL_M-fWl/L1ZpZGVvcy9jbGlwLnRz/seg/3.ts: 206');
  assert.equal(out, 'GET /.terabox-dav/hls/[REDACTED]/L1ZpZGVvcy9jbGlwLnRz/seg/3.ts: 206');
});
