/**
 * `login --config F` then `serve --config F` as child processes against an emulator this test
 * started (any server speaking the protocol would do): device code without a terminal, token file
 * 0600, whoami, serve answering WebDAV, logout removing the token file, and `login --code`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cleanEnv, runCli, startCli, writeCliConfig } from '../helpers/cli.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';

let dir: string;
let emu: EmulatorHandle;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tbdav-cli-login-'));
  emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emulator'), deviceCodeInterval: 1, autoApproveAfterPolls: 2 }));
});

after(async () => {
  await emu?.close();
  await rm(dir, { recursive: true, force: true });
});

const writeConfig = (name: string): Promise<{ file: string; stateDir: string }> => writeCliConfig(join(dir, name), emu, '/cli-test');

test('login (device code, no TTY) -> whoami -> serve -> logout', async () => {
  const { file, stateDir } = await writeConfig('device');
  const env = cleanEnv(dir);
  const tokenFile = join(stateDir, 'tokens.json');

  // serve before login starts anyway (issue 11): the share answers 503 and the status page offers a
  // browser login (test/cli/cli-browser-login.test.ts); here it is only stopped again.
  const early = startCli(['serve', '--config', file], { env });
  try {
    const [, earlyUrl] = await early.waitFor(/WebDAV URL: (\S+)\n/);
    await early.waitFor(/NOT LOGGED IN to TeraBox/);
    const pf = await fetch(earlyUrl + '/', { method: 'PROPFIND', headers: { depth: '0' } });
    assert.equal(pf.status, 503);
    assert.match(await pf.text(), /not logged in to TeraBox yet/);
  } finally {
    assert.equal((await early.stop('SIGTERM')).code, 0);
  }

  let r = await runCli(['login', '--config', file], { env });

  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Scan this QR code/);
  assert.match(r.stdout, /[█▀▄]{10}/, 'QR drawn with half blocks');
  assert.match(r.stdout, /Waiting for approval\.\.\. \d+ s left/);
  assert.doesNotMatch(r.stdout, /\r|\x1b\[/, 'no cursor tricks without a terminal');
  assert.match(r.stdout, /Logged in as emulator@terabox-dav\.invalid/);
  const st = await stat(tokenFile);
  assert.equal(st.mode & 0o777, 0o600, 'token file is private');
  await assert.rejects(stat(join(stateDir, 'login-qr.png')), { code: 'ENOENT' }, 'QR image removed after login');
  for (const secret of Object.values(emu.credentials).slice(1)) assert.ok(!(r.stdout + r.stderr).includes(secret), 'no secret printed');

  r = await runCli(['whoami', '--config', file], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /User:\s+emulator@terabox-dav\.invalid/);
  assert.match(r.stdout, /Space:\s+[\d.]+ (B|KiB|MiB|GiB) used of [\d.]+ (GiB|TiB)/);

  const serve = startCli(['serve', '--config', file], { env });
  try {
    const [, url] = await serve.waitFor(/WebDAV URL: (\S+)\n/);
    assert.doesNotMatch(serve.stdout(), /EMULATOR/, 'real (configured) mode, not the embedded emulator');
    const opt = await fetch(url + '/', { method: 'OPTIONS' });
    assert.equal(opt.status, 200);
    assert.match(opt.headers.get('dav') ?? '', /1/);
    await opt.arrayBuffer();
    const put = await fetch(url + '/from-cli.txt', { method: 'PUT', body: 'via login + serve' });
    assert.ok([201, 204].includes(put.status), `PUT ${put.status}`);
    await put.arrayBuffer();
    const pf = await fetch(url + '/', { method: 'PROPFIND', headers: { depth: '1' } });
    assert.equal(pf.status, 207);
    assert.match(await pf.text(), /from-cli\.txt/);
  } finally {
    const end = await serve.stop('SIGTERM');
    assert.equal(end.code, 0, end.stderr);
    assert.match(end.stdout, /Stopped\./);
  }

  r = await runCli(['logout', '--config', file], { env });
  assert.equal(r.code, 0, r.stderr);
  await assert.rejects(stat(tokenFile), { code: 'ENOENT' });
  r = await runCli(['whoami', '--config', file], { env });
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), 'terabox-dav: not logged in: run terabox-dav login');
});

test('login --code exchanges an authorization code', async () => {
  const { file, stateDir } = await writeConfig('code');
  const env = cleanEnv(dir);
  let r = await runCli(['login', '--config', file, '--code', 'not-a-valid-code'], { env });
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /not-a-valid-code/, 'the code is a secret too');
  r = await runCli(['login', '--config', file, '--code', emu.issueAuthorizationCode()], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Logged in as emulator@terabox-dav\.invalid/);
  assert.doesNotMatch(r.stdout, /QR/);
  assert.equal((await stat(join(stateDir, 'tokens.json'))).mode & 0o777, 0o600);
});

test('login without credentials configured is a config error', async () => {
  const r = await runCli(['login', '--state-dir', join(dir, 'none')], { env: cleanEnv(dir) });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^terabox-dav: config terabox\.clientId: login needs TeraBox credentials/);
});

// A saved login the service refuses: serve stays up and offers a browser login
// (test/cli/cli-browser-login.test.ts, issue 11).

test('SIGINT while waiting for approval: one line, exit 1, no token file, no QR image left', async () => {
  const { file, stateDir } = await writeConfig('interrupted');
  emu.setOptions({ autoApproveAfterPolls: 1000 });
  try {
    const login = startCli(['login', '--config', file], { env: cleanEnv(dir) });
    await login.waitFor(/Waiting for approval/);
    const r = await login.stop('SIGINT');
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim(), 'terabox-dav: login: interrupted, not logged in');
    await assert.rejects(stat(join(stateDir, 'tokens.json')), { code: 'ENOENT' });
    await assert.rejects(stat(join(stateDir, 'login-qr.png')), { code: 'ENOENT' });
  } finally {
    emu.setOptions({ autoApproveAfterPolls: 2 });
  }
});
