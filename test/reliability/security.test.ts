/**
 * Security over the full stack (bridge -> vfs -> TeraboxRemote -> emulator on loopback, port 0):
 *  - no secret in any log line at any level: one debug-level run that logs in, refreshes tokens
 *    (short access-token lifetime), uploads (one and several shards), downloads (dlinks), moves,
 *    copies, deletes, fails Basic auth, meets injected faults; then every secret it used is looked
 *    for in every log line and in every answer the WebDAV clients got;
 *  - the token file is 0600 and no temp file of an atomic write is left behind;
 *  - 401 answers and the realm tell nothing about which part of the credentials was wrong;
 *  - the WebDAV client's credentials never reach the service (every request the emulator's
 *    servers receive is inspected);
 *  - the client follows redirects only for downloads and only to http(s).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileTokenStore } from '../../src/terabox/auth/token-store.js';
import { TeraboxClient } from '../../src/terabox/client.js';
import { startTestStack } from '../helpers/stack.js';
import { captureLogger, readEmulatorMeta } from './helpers.js';

const USER = { username: 'alice', password: 'Corr3ct-Horse-Battery-7f3a' };
const basic = (u: string, p: string): string => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');

/** Record every request any node http server of this process receives (a spy: the request goes on). */
function spyServerRequests(): { seen: { port: number; url: string; headers: IncomingMessage['headers'] }[]; restore(): void } {
  const seen: { port: number; url: string; headers: IncomingMessage['headers'] }[] = [];
  const orig = http.Server.prototype.emit as (this: http.Server, event: string, ...args: unknown[]) => boolean;
  http.Server.prototype.emit = function (this: http.Server, event: string, ...args: unknown[]) {
    if (event === 'request') {
      const req = args[0] as IncomingMessage;
      const port = (this.address() as AddressInfo | null)?.port ?? -1;
      seen.push({ port, url: req.url ?? '', headers: { ...req.headers } });
    }
    return orig.call(this, event, ...args);
  } as typeof http.Server.prototype.emit;
  return {
    seen,
    restore: () => {
      http.Server.prototype.emit = orig as typeof http.Server.prototype.emit;
    },
  };
}

test('full run: no secret in any log line or answer, token file 0600, client credentials never forwarded upstream', { timeout: 120_000 }, async () => {
  const cap = captureLogger();
  const spy = spyServerRequests();
  const s = await startTestStack({
    users: [USER],
    logger: cap.logger,
    emulator: { accessTokenTtlSec: 4, dlinkTtlSec: 2, faults: { rate: 0.1, seed: 7, kinds: ['http5xx', 'errno31034'] } },
  });
  const answers: string[] = [];
  const call = async (method: string, path: string, init: { body?: Buffer | string; headers?: Record<string, string> } = {}): Promise<Response> => {
    const res = await fetch(s.url + path, { method, body: init.body, headers: { ...s.authHeaders(), ...init.headers } });
    const text = Buffer.from(await res.arrayBuffer()).toString('latin1');
    answers.push(`${res.status} ${JSON.stringify([...res.headers])}\n${text}`);
    return new Response(method === 'HEAD' || res.status === 204 || res.status === 304 ? null : text, { status: res.status, headers: res.headers });
  };
  try {
    const bridgePort = Number(new URL(s.url).port);
    const big = randomBytes(9 * 1024 * 1024 + 123);
    assert.equal((await call('MKCOL', '/sec')).status, 201);
    assert.ok([201, 204].includes((await call('PUT', '/sec/small.txt', { body: 'small secret-free body' })).status));
    assert.ok([201, 204].includes((await call('PUT', '/sec/big.bin', { body: big })).status));
    const got = await call('GET', '/sec/big.bin');
    assert.equal(got.status, 200);
    assert.equal(Buffer.from(await got.text(), 'latin1').equals(big), true, 'big file reads back');
    await new Promise((r) => setTimeout(r, 4500)); // dlinks and the access token expire
    const part = await call('GET', '/sec/big.bin', { headers: { range: 'bytes=5000000-5000099' } });
    assert.equal(part.status, 206);
    assert.ok(Buffer.from(await part.text(), 'latin1').equals(big.subarray(5000000, 5000100)));
    assert.equal((await call('PROPFIND', '/sec', { headers: { depth: '1' } })).status, 207);
    assert.ok([201, 204].includes((await call('COPY', '/sec/small.txt', { headers: { destination: s.url + '/sec/copy.txt' } })).status));
    assert.ok([201, 204].includes((await call('MOVE', '/sec/copy.txt', { headers: { destination: s.url + '/sec/moved.txt' } })).status));
    assert.equal((await call('DELETE', '/sec/moved.txt')).status, 204);
    // Failed logins: wrong password, unknown user, garbage.
    const wrongPass = await call('PROPFIND', '/', { headers: { authorization: basic(USER.username, 'not-the-password'), depth: '0' } });
    const wrongUser = await call('PROPFIND', '/', { headers: { authorization: basic('mallory', USER.password), depth: '0' } });
    const noAuth = await fetch(s.url + '/', { method: 'PROPFIND', headers: { depth: '0' } });
    for (const r of [wrongPass, wrongUser, noAuth]) assert.equal(r.status, 401);
    // The realm is the configured one and nothing else; both failures read the same.
    const realmOf = (r: Response): string | null => r.headers.get('www-authenticate');
    assert.equal(realmOf(wrongPass), realmOf(wrongUser));
    assert.match(realmOf(wrongPass) ?? '', /^Basic realm="[^"]*"(, charset="UTF-8")?$/);
    const scrub = (t: string): string => t.replace(/[0-9a-f]{8}(-[0-9a-f-]+)?/gi, 'ID');
    assert.equal(scrub(await wrongPass.text()), scrub(await wrongUser.text()), '401 bodies must not tell a wrong password from an unknown user');
    await noAuth.arrayBuffer();
    for (const r of [wrongPass, wrongUser]) {
      assert.equal(r.headers.get('server')?.match(/\d+\.\d+/), undefined, 'no version in Server header');
      assert.equal(r.headers.get('x-powered-by'), null);
    }
    const emulatorHits = spy.seen.filter((x) => x.port !== bridgePort);
    assert.ok(emulatorHits.length > 10, 'the spy saw the upstream traffic');

    // Gather every secret this run used.
    const tokenDir = join(s.stateDir, 'emulator-session');
    const meta = await readEmulatorMeta(join(s.stateDir, 'emulator'));
    const tokens = [...(meta.sections?.auth?.access ?? []), ...(meta.sections?.auth?.refresh ?? [])].map(([t]) => t);
    assert.ok(tokens.length >= 4, `tokens were refreshed during the run (${tokens.length} issued)`);
    const secrets: [string, string][] = [
      ['user password', USER.password],
      ['Basic credentials', basic(USER.username, USER.password).slice(6)],
      ['client secret', s.emulator.credentials.clientSecret],
      ['private secret', s.emulator.credentials.privateSecret],
      ...tokens.map((t, i): [string, string] => [`token #${i}`, t]),
    ];
    const logText = cap.text();
    assert.ok(cap.lines.length > 50, `debug logging was on (${cap.lines.length} lines)`);
    assert.ok(/refresh/i.test(logText), 'the log shows token refreshes');
    for (const [what, value] of secrets) {
      assert.ok(!logText.includes(value), `${what} (${value.slice(0, 4)}...) appears in the log`);
      for (const a of answers) assert.ok(!a.includes(value), `${what} appears in an answer to a WebDAV client`);
    }
    // Shapes of secrets whose values we cannot list (dlink signatures, one-time codes, cookies).
    const shapes = /[?&;\s"'](?:sign|access_tokens?|refresh_token|client_secret|private_secret|code|device_code|csign)=(?!\[REDACTED\])[^&\s"']+/i;
    const bad = cap.lines.filter((l) => shapes.test(l) || /authorization["']?\s*[:=]\s*["']?basic\s+[a-z0-9+/=]{8,}/i.test(l));
    assert.deepEqual(bad.slice(0, 5), [], 'secret-shaped values in the log');

    // Client credentials never go upstream.
    for (const h of emulatorHits) {
      const all = JSON.stringify(h.headers) + h.url;
      assert.ok(!all.includes(USER.password) && !all.includes(basic(USER.username, USER.password).slice(6)), `WebDAV credentials forwarded to the service: ${h.url.slice(0, 60)}`);
      assert.equal(h.headers.authorization, undefined, `an Authorization header went upstream (${h.url.slice(0, 60)})`);
      assert.equal(h.headers.cookie, undefined, 'a cookie went upstream');
    }

    // Token file: 0600, no leftovers of an atomic write.
    const files = await readdir(tokenDir);
    assert.ok(files.includes('tokens.json'), `token file present (${files.join(', ')})`);
    assert.deepEqual(files.filter((f) => f.startsWith('tokens.json') && f !== 'tokens.json'), [], 'temp files of the atomic write left behind');
    assert.equal((await stat(join(tokenDir, 'tokens.json'))).mode & 0o777, 0o600);
  } finally {
    spy.restore();
    await s.close();
  }
});

test('the client follows redirects only for downloads and only to http(s); API answers that redirect are errors', { timeout: 30_000 }, async () => {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    const u = new URL(req.url ?? '/', 'http://x');
    const to: Record<string, string> = {
      '/dl/http': `http://127.0.0.1:${port}/landed`,
      '/dl/file': 'file:///etc/passwd',
      '/dl/ftp': `ftp://127.0.0.1:${port}/landed`,
      '/dl/data': 'data:text/plain,owned',
    };
    if (to[u.pathname]) {
      res.writeHead(302, { location: to[u.pathname] }).end();
    } else if (u.pathname === '/landed') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end('landed');
    } else {
      // Every API endpoint answers with a redirect that a client must not follow.
      res.writeHead(302, { location: `http://127.0.0.1:${port}/api-landed` }).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-redirect-'));
  const store = new FileTokenStore(dir);
  const now = Date.now();
  await store.save({
    accessToken: 'acc-tok-redirect-test',
    refreshToken: 'ref-tok-redirect-test',
    expiresAt: now + 3600_000,
    obtainedAt: now,
    domains: { apiDomain: `127.0.0.1:${port}`, uploadDomain: `127.0.0.1:${port}`, fetchedAt: now },
  });
  const client = new TeraboxClient({
    authUrl: `http://127.0.0.1:${port}`,
    clientId: 'cid',
    clientSecret: 'csecret-redirect',
    privateSecret: 'psecret-redirect',
    tokenStore: store,
    maxRetries: 0,
    refreshMarginSec: 1,
  });
  try {
    const ok = await client.openDlink(`http://127.0.0.1:${port}/dl/http?fid=1`);
    assert.equal(ok.statusCode, 200);
    let body = '';
    for await (const c of ok.body) body += String(c);
    assert.equal(body, 'landed');
    const landed = hits.find((h) => h.startsWith('/landed'));
    assert.ok(landed !== undefined && !landed.includes('acc-tok-redirect-test') && !/access_token/.test(landed), `the token is not forwarded to the redirect target: ${landed}`);
    assert.ok(hits.some((h) => h.startsWith('/dl/http') && h.includes('access_tokens=acc-tok-redirect-test')), 'the dlink itself carries the token');
    for (const p of ['/dl/file', '/dl/ftp', '/dl/data']) {
      const before = hits.length;
      await assert.rejects(client.openDlink(`http://127.0.0.1:${port}${p}?fid=1`), /redirect|scheme/i, `${p} must be refused`);
      assert.deepEqual(hits.slice(before).map((h) => new URL(h, 'http://x').pathname), [p], `${p}: nothing followed`);
    }
    await assert.rejects(client.quota(), 'an API call answered with a redirect fails');
    await assert.rejects(client.list('/x'));
    assert.ok(!hits.some((h) => h.startsWith('/api-landed')), `an API redirect was followed: ${hits.join(' ')}`);
  } finally {
    await client.close();
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * One PROPFIND from a chosen loopback source address (127.0.0.0/8 all reach the bridge); with
 * `giveUpMs`, 'held' when no answer came by then (the connection is dropped).
 */
function propfindFrom(url: string, localAddress: string, authorization: string, giveUpMs?: number): Promise<{ status: number; retryAfter: string | undefined } | 'held'> {
  return new Promise((resolve, reject) => {
    const req = http.request(url + '/', { method: 'PROPFIND', localAddress, headers: { depth: '0', authorization, connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
      });
    });
    const timer = giveUpMs
      ? setTimeout(() => {
          req.destroy();
          resolve('held');
        }, giveUpMs)
      : undefined;
    req.on('error', (err) => {
      if (timer === undefined) reject(err);
    });
    req.end();
  });
}

// src/dav LoginThrottle (issue 11): failed Basic logins are counted per (client address, user name);
// after a few free failures each further 401 is held for a growing delay, parallel guesses beyond
// the held cap get 429 + Retry-After without a password check, and neither another user at the same
// address nor the same user from another address is slowed.
test('failed Basic logins are slowed per (address, user): held 401s, then 429 + Retry-After; others unaffected', { timeout: 60_000 }, async () => {
  const OTHER = { username: 'other', password: 'second secret' };
  const s = await startTestStack({ users: [USER, OTHER] });
  try {
    const wrong = basic(USER.username, 'guess-000');
    // The first failures are answered at once (typos happen).
    const statusOf = (r: { status: number } | 'held'): number | 'held' => (r === 'held' ? r : r.status);
    for (let i = 0; i < 5; i++) assert.equal(statusOf(await propfindFrom(s.url, '127.0.0.1', wrong)), 401);
    // A burst of guesses: some are held (not answered within a second), the rest refused with 429.
    const burst = await Promise.all(Array.from({ length: 20 }, () => propfindFrom(s.url, '127.0.0.1', wrong, 1000)));
    const held = burst.filter((r) => r === 'held').length;
    const refused = burst.filter((r): r is { status: number; retryAfter: string | undefined } => r !== 'held' && r.status === 429);
    assert.ok(held >= 1, `failed logins were held: ${JSON.stringify(burst)}`);
    assert.ok(refused.length >= 1, `a parallel burst beyond the held cap is refused: ${JSON.stringify(burst)}`);
    assert.equal(held + refused.length, 20, JSON.stringify(burst));
    assert.ok(refused.every((r) => Number(r.retryAfter) > 0), '429 carries Retry-After');
    // Another user at the same address, and the same user from another address, still log in.
    assert.equal(statusOf(await propfindFrom(s.url, '127.0.0.1', basic(OTHER.username, OTHER.password))), 207);
    assert.equal(statusOf(await propfindFrom(s.url, '127.0.0.2', basic(USER.username, USER.password))), 207);
  } finally {
    await s.close();
  }
});
