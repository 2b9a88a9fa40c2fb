/**
 * Behind a real TLS reverse proxy (Debian nginx, self-signed certificate, loopback) with
 * `server.trustedProxies` (issue 11): the bridge's log and its login throttle see the real client
 * address (clients connect from different 127.0.0.x source addresses; nginx appends them to
 * X-Forwarded-For), and litmus passes every test it runs over TLS (103; it skips expect100 for SSL
 * servers) through the proxy, whose Host header names the
 * upstream (X-Forwarded-Host carries the client's, for Destination and tagged If headers).
 * Without trustedProxies the same litmus run fails (MOVE/COPY 502, tagged If 412): checked once by
 * hand (see docs/guides/reverse-proxy.md), not repeated here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { captureLogger } from '../helpers/logs.js';
import { NGINX, startNginx } from '../helpers/nginx.js';
import { startTestStack } from '../helpers/stack.js';
import { LITMUS, runLitmusSuites } from './_litmus.js';

const SKIP = !NGINX ? 'nginx is not installed' : !LITMUS ? 'litmus is not installed' : false;
const USER = { username: 'owner', password: 'a?>b:c~~>?' };
const basic = (u: string, p: string): string => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');

/** One request through the proxy from a chosen loopback source address; 'held' when no answer within giveUpMs. */
function viaProxy(
  url: string,
  from: string,
  opts: { method?: string; headers?: Record<string, string>; giveUpMs?: number } = {},
): Promise<{ status: number; retryAfter?: string } | 'held'> {
  return new Promise((resolve, reject) => {
    const rq = https.request(
      `${url}/`,
      { method: opts.method ?? 'PROPFIND', localAddress: from, rejectUnauthorized: false, agent: false, headers: { depth: '0', ...opts.headers } },
      (m) => {
        m.resume();
        m.on('end', () => {
          clearTimeout(timer);
          resolve({ status: m.statusCode ?? 0, retryAfter: m.headers['retry-after'] as string | undefined });
        });
      },
    );
    const timer = opts.giveUpMs
      ? setTimeout(() => {
          rq.destroy();
          resolve('held');
        }, opts.giveUpMs)
      : undefined;
    rq.on('error', (err) => {
      if (timer === undefined) reject(err);
    });
    rq.end();
  });
}

test('behind nginx with trustedProxies: the log and the throttle see the real client address; litmus passes through the proxy', { skip: SKIP, timeout: 240_000 }, async () => {
  const { logger, records } = captureLogger('json', 'info');
  const stack = await startTestStack({ users: [USER], logger, configPatch: { server: { trustedProxies: ['127.0.0.1'] } } });
  const proxy = await startNginx(stack.url);
  try {
    const status = (r: { status: number } | 'held'): number | 'held' => (r === 'held' ? r : r.status);
    // 1. The log line names the client, not the proxy (and not what the client claims in X-Forwarded-For).
    const ok = await viaProxy(proxy.url, '127.0.0.2', { headers: { authorization: basic(USER.username, USER.password), 'x-request-id': 'from-two', 'x-forwarded-for': '6.6.6.6' } });
    assert.equal(status(ok), 207);
    await new Promise((r) => setTimeout(r, 50));
    const rec = records().find((r) => r['requestId'] === 'from-two' && String(r['message']).startsWith('PROPFIND'));
    assert.ok(rec, 'request logged');
    assert.equal(rec['client'], '127.0.0.2');
    assert.match(await proxy.accessLog(), /^127\.0\.0\.2 /m, 'nginx saw the same client');

    // 2. A guesser at 127.0.0.3 is slowed and then refused; the owner at 127.0.0.2, same user name,
    //    behind the same proxy, is not.
    const wrong = basic(USER.username, 'guess');
    for (let i = 0; i < 5; i++) assert.equal(status(await viaProxy(proxy.url, '127.0.0.3', { headers: { authorization: wrong } })), 401);
    const burst = await Promise.all(Array.from({ length: 16 }, () => viaProxy(proxy.url, '127.0.0.3', { headers: { authorization: wrong }, giveUpMs: 1500 })));
    assert.ok(burst.some((r) => r === 'held'), `guesses held: ${JSON.stringify(burst)}`);
    assert.ok(burst.some((r) => r !== 'held' && r.status === 429), `guesses beyond the held cap refused: ${JSON.stringify(burst)}`);
    assert.equal(status(await viaProxy(proxy.url, '127.0.0.2', { headers: { authorization: basic(USER.username, USER.password) } })), 207, 'the owner behind the same proxy gets in');
    const warn = records().find((r) => /too many failed logins/.test(String(r['message'])));
    assert.match(String(warn?.['message']), /from 127\.0\.0\.3/, 'the throttle log names the guesser');

    // 3. litmus through the proxy: all five suites, 104 tests, 0 failures.
    const { out, code, total } = await runLitmusSuites(`${proxy.url}/`, USER);
    // 104 over plain HTTP; over TLS litmus itself skips http/expect100 ("skipping for SSL server").
    assert.equal(total, 103);
    const skipped = out.split('\n').filter((l: string) => /SKIPPED/.test(l));
    assert.equal(skipped.length, 1, skipped.join('\n'));
    assert.match(skipped[0]!, /expect100.*skipping for SSL server/);
    assert.equal(code, 0);
  } finally {
    await proxy.close();
    await stack.close();
  }
});
