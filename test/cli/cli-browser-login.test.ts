/**
 * Login from the browser (issue 11): `serve` with TeraBox credentials but no saved token (or a saved
 * login the service refuses) starts anyway; the share answers 503 + Retry-After and points to the
 * status page, which shows the service's QR code and user code (asked for when the page is looked
 * at, renewed as codes expire); once approved the tokens are saved and the share comes up without a
 * restart. Child-process serve against an emulator this test starts (it approves after a few polls).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cleanEnv, startCli, type RunningCli } from '../helpers/cli.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';

let dir: string;
let emu: EmulatorHandle;
const USER = { username: 'nas', password: 'nas pass' };
const AUTH = { authorization: 'Basic ' + Buffer.from(`${USER.username}:${USER.password}`).toString('base64') };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tbdav-browser-login-'));
  emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emulator'), deviceCodeInterval: 1, autoApproveAfterPolls: 3 }));
});

after(async () => {
  await emu?.close();
  await rm(dir, { recursive: true, force: true });
});

/** config.json for a serve child in `dir/name` against `on` (default: the shared emulator), drive folder app root + `root`. */
async function writeConfig(name: string, on: Pick<EmulatorHandle, 'authUrl' | 'credentials' | 'appRoot'> = emu, root = '/' + name): Promise<{ file: string; stateDir: string }> {
  const stateDir = join(dir, name, 'state');
  const file = join(dir, name, 'config.json');
  await mkdir(join(dir, name), { recursive: true });
  await writeFile(
    file,
    JSON.stringify({
      server: { host: '127.0.0.1', port: 0, users: [USER] },
      terabox: { authUrl: on.authUrl, ...on.credentials, root: on.appRoot + root },
      stateDir,
      cacheDir: join(dir, name, 'cache'),
      log: { level: 'info' },
    }),
  );
  return { file, stateDir };
}

async function page(url: string): Promise<string> {
  const r = await fetch(`${url}/.terabox-dav/`, { headers: AUTH });
  assert.equal(r.status, 200);
  return r.text();
}

/** Look at the status page every 300 ms until `re` matches it (like a browser on its meta refresh). */
async function watchPage(url: string, re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    last = await page(url);
    const m = last.match(re);
    if (m) return m;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`status page never matched ${re}:\n${last.slice(0, 3000)}`);
}

async function stopped(serve: RunningCli): Promise<void> {
  const end = await serve.stop('SIGTERM');
  assert.equal(end.code, 0, end.stderr);
  assert.match(end.stdout, /Stopped\./);
}

test('serve without a saved login: 503 + Retry-After, QR and code on the status page, share up after approval without a restart', { timeout: 90_000 }, async () => {
  const { file, stateDir } = await writeConfig('fresh');
  const serve = startCli(['serve', '--config', file], { env: cleanEnv(dir) });
  try {
    const [, url] = await serve.waitFor(/WebDAV URL: (\S+)\n/);
    await serve.waitFor(/NOT LOGGED IN to TeraBox/);
    // the advice is the next line, written a moment later: wait for it (reading stdout at once raced it)
    await serve.waitFor(new RegExp(`Open ${url!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\.terabox-dav/ in a browser`));

    const r = await fetch(`${url}/`, { method: 'PROPFIND', headers: { ...AUTH, depth: '0' } });
    assert.equal(r.status, 503);
    assert.ok(Number(r.headers.get('retry-after')) > 0, 'Retry-After');
    assert.match(await r.text(), /not logged in to TeraBox yet: open .*\/\.terabox-dav\/ in a browser/);
    assert.equal(emu.counters.requests['/oauth/devicecode'] ?? 0, 0, 'no code is asked for before anyone looks at the page');

    // The first look asks for a code; the page then shows the service's QR image (and the user
    // code when the service gives one: the spec says "currently not available", the emulator sends '').
    await watchPage(url!, /id="login-qr"/);
    const html = await page(url!);
    assert.match(html, /<img id="login-qr"[^>]+src="\/\.terabox-dav\/login-qr\.png\?v=[0-9a-f]+"/);
    assert.match(html, /offers no code to type in for now/);
    assert.match(html, /Scan this QR code with the <b>TeraBox app<\/b>/);
    assert.match(html, /http-equiv="refresh"/, 'refreshes itself without JavaScript');
    const qr = await fetch(`${url}/.terabox-dav/login-qr.png`, { headers: AUTH });
    assert.equal(qr.headers.get('content-type'), 'image/png');
    assert.deepEqual([...Buffer.from(await qr.arrayBuffer()).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'the service\'s PNG');

    // The emulator approves after a few polls: the share comes up by itself.
    await watchPage(url!, /● serving/);
    await serve.waitFor(/Logged in: the share is serving\./);
    assert.equal((await stat(join(stateDir, 'tokens.json'))).mode & 0o777, 0o600, 'tokens saved, private');
    const put = await fetch(`${url}/after-login.txt`, { method: 'PUT', headers: AUTH, body: 'hello' });
    assert.equal(put.status, 201);
    const pf = await fetch(`${url}/`, { method: 'PROPFIND', headers: { ...AUTH, depth: '1' } });
    assert.equal(pf.status, 207);
    assert.match(await pf.text(), /after-login\.txt/);
    assert.match(await page(url!), /emulator@terabox-dav\.invalid/, 'the account shows once logged in');
    for (const secret of Object.values(emu.credentials).slice(1)) assert.ok(!(serve.stdout() + serve.stderr()).includes(secret), 'no secret printed');
  } finally {
    await stopped(serve);
  }
});

test('a saved login the service refuses: serve stays up, says why on the page, and a browser login replaces it', { timeout: 90_000 }, async () => {
  const { file, stateDir } = await writeConfig('refused');
  await mkdir(stateDir, { recursive: true });
  const bogus = { accessToken: 'bogus-access-token-2', refreshToken: 'bogus-refresh-token-2', expiresAt: Date.now() - 1000, obtainedAt: Date.now() - 10_000 };
  await writeFile(join(stateDir, 'tokens.json'), JSON.stringify(bogus), { mode: 0o600 });
  emu.setOptions({ autoApproveAfterPolls: 1_000_000 });
  const serve = startCli(['serve', '--config', file], { env: cleanEnv(dir) });
  try {
    const [, url] = await serve.waitFor(/WebDAV URL: (\S+)\n/);
    await serve.waitFor(/NOT LOGGED IN to TeraBox \(TeraBox refused the saved login/);
    assert.equal((await fetch(`${url}/`, { method: 'PROPFIND', headers: { ...AUTH, depth: '0' } })).status, 503);
    await watchPage(url!, /id="login-qr"/);
    assert.match(await page(url!), /TeraBox refused the saved login/);
    emu.setOptions({ autoApproveAfterPolls: 1 });
    await watchPage(url!, /● serving/);
    assert.equal((await fetch(`${url}/`, { method: 'PROPFIND', headers: { ...AUTH, depth: '0' } })).status, 207);
  } finally {
    emu.setOptions({ autoApproveAfterPolls: 3 });
    await stopped(serve);
  }
  assert.doesNotMatch(serve.stdout() + serve.stderr(), /bogus-(access|refresh)-token-2/, 'tokens never printed');
  assert.doesNotMatch(serve.stderr(), /\n\s+at /, 'no stack trace');
});

test('a code that expires unapproved is replaced by a new one on the page', { timeout: 90_000 }, async () => {
  const short = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emulator-short'), deviceCodeInterval: 1, deviceCodeTtlSec: 3, autoApproveAfterPolls: 1_000_000 }));
  try {
    const { file, stateDir } = await writeConfig('short', short, '');
    const serve = startCli(['serve', '--config', file], { env: cleanEnv(dir) });
    try {
      const [, url] = await serve.waitFor(/WebDAV URL: (\S+)\n/);
      const [, c1] = await watchPage(url!, /login-qr\.png\?v=([0-9a-f]+)/);
      const [, c2] = await watchPage(url!, new RegExp(`login-qr\\.png\\?v=((?!${c1})[0-9a-f]+)`));
      assert.notEqual(c2, c1, 'a new code replaced the expired one');
      assert.match(await page(url!), /expired before it was approved; here is a new one/);
      short.setOptions({ autoApproveAfterPolls: 1 });
      await watchPage(url!, /● serving/);
      assert.equal((await fetch(`${url}/`, { method: 'PROPFIND', headers: { ...AUTH, depth: '0' } })).status, 207);
    } finally {
      await stopped(serve);
    }
  } finally {
    await short.close();
  }
});

test('a login TeraBox refuses while serving sends the share back to the browser login; approved again, the same share serves', { timeout: 90_000 }, async () => {
  // Refresh tokens that die 8 s after the login (a refresh keeps the old expiry), access tokens of 2 s.
  const short = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emulator-refresh'), deviceCodeInterval: 1, autoApproveAfterPolls: 1, accessTokenTtlSec: 2, refreshTokenTtlSec: 8 }));
  try {
    const { file, stateDir } = await writeConfig('refresh', short, '');
    const serve = startCli(['serve', '--config', file], { env: cleanEnv(dir) });
    try {
      const [, url] = await serve.waitFor(/WebDAV URL: (\S+)\n/);
      await watchPage(url!, /● serving/);
      const loggedInAt = Date.now();
      assert.equal((await fetch(`${url}/kept.txt`, { method: 'PUT', headers: AUTH, body: 'still here' })).status, 201);
      // Past the refresh token's life: the next call needs a refresh, which TeraBox refuses.
      await new Promise((r) => setTimeout(r, Math.max(0, loggedInAt + 9000 - Date.now())));
      const refused = await fetch(`${url}/new.txt`, { method: 'PUT', headers: AUTH, body: 'x' });
      assert.equal(refused.status, 503);
      await refused.arrayBuffer();
      await watchPage(url!, /refused the saved login while serving/);
      assert.equal((await fetch(`${url}/`, { method: 'PROPFIND', headers: { ...AUTH, depth: '0' } })).status, 503, 'the share points to the login');
      // The page asks for a code, the emulator approves it: the same share serves again.
      await watchPage(url!, /● serving/);
      const kept = await fetch(`${url}/kept.txt`, { headers: AUTH });
      assert.equal(kept.status, 200);
      assert.equal(await kept.text(), 'still here');
    } finally {
      await stopped(serve);
    }
  } finally {
    await short.close();
  }
});
