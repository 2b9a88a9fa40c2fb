/**
 * `terabox-dav share add/list/remove` as child processes against an emulator this test started:
 * a share with and without an extraction code, the clear one-line refusals (wrong code, no code,
 * invalid or expired link), shares.json 0600 without the key in any output, list and remove.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { FileTokenStore } from '../../src/terabox/auth/token-store.js';
import { TeraboxClient } from '../../src/terabox/client.js';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { makeSpool } from '../terabox/setup.js';
import { cleanEnv, runCli, writeCliConfig } from '../helpers/cli.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';

let dir: string;
let emu: EmulatorHandle;
let file: string;
let stateDir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tbdav-cli-shares-'));
  emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emulator') }));
  // something to share, stored through the client like any upload
  const client = new TeraboxClient({ authUrl: emu.authUrl, ...emu.credentials, tokenStore: new FileTokenStore(join(dir, 'seed')) });
  await client.exchangeCode(emu.issueAuthorizationCode());
  const drive = new TeraboxRemote(client, { root: emu.appRoot });
  await drive.mkdir('/Holiday');
  await drive.write('/Holiday/beach.jpg', await makeSpool(dir, 'spool', 2048), { overwrite: false });
  await client.close();
  ({ file, stateDir } = await writeCliConfig(dir, emu));
});

after(async () => {
  await emu?.close();
  await rm(dir, { recursive: true, force: true });
});

test('share add (with and without code), refusals, list, remove', async () => {
  const env = cleanEnv(dir);
  const withCode = emu.createShare([`${emu.appRoot}/Holiday`], 'ab12');
  const open = emu.createShare([`${emu.appRoot}/Holiday/beach.jpg`], '');
  const link = `https://www.terabox.com/s/${withCode.shorturl}`;

  let r = await runCli(['share', 'add', link, '--config', file], { env });
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), 'terabox-dav: not logged in: run terabox-dav login');
  r = await runCli(['login', '--config', file, '--code', emu.issueAuthorizationCode()], { env });
  assert.equal(r.code, 0, r.stderr);

  r = await runCli(['share', 'add', link, '--pwd', 'zz99', '--config', file], { env });
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), `terabox-dav: share ${link}: wrong extraction code (TeraBox refused it)`);
  r = await runCli(['share', 'add', link, '--config', file], { env });
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), `terabox-dav: share ${link}: this share needs an extraction code: give it with --pwd CODE`);
  r = await runCli(['share', 'add', 'https://www.terabox.com/s/1gone0000', '--config', file], { env });
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), 'terabox-dav: share https://www.terabox.com/s/1gone0000: the link is invalid or has expired');
  r = await runCli(['share', 'add', 'https://www.terabox.com/nothing', '--config', file], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no \/s\/<id> path/);

  r = await runCli(['share', 'add', link, '--pwd', 'ab12', '--config', file], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'Added share "Holiday": /Shared with me/Holiday (read-only; COPY from it saves into your drive without a download).');
  r = await runCli(['share', 'add', `https://www.terabox.com/s/${open.shorturl}`, '--name', 'Beach', '--config', file], { env });
  assert.equal(r.code, 0, r.stderr);
  r = await runCli(['share', 'add', `https://www.terabox.com/s/${open.shorturl}`, '--name', 'Beach', '--config', file], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /a share of that name exists/);

  const sharesFile = join(stateDir, 'shares.json');
  assert.equal((await stat(sharesFile)).mode & 0o777, 0o600);
  const stored = JSON.parse(await readFile(sharesFile, 'utf8')) as { shares: { name: string; sekey: string }[] };
  assert.deepEqual(stored.shares.map((s) => s.name), ['Holiday', 'Beach']);

  r = await runCli(['share', 'list', '--config', file], { env });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^Holiday\t.*\twith code\t/);
  assert.match(lines[1]!, /^Beach\t.*\tno code\t.*\/Shared with me\/Beach$/);
  for (const s of stored.shares) assert.ok(!r.stdout.includes(s.sekey), 'the share key is never printed');
  assert.ok(!r.stdout.includes('ab12'), 'nor the code');

  r = await runCli(['share', 'remove', 'Beach', '--config', file], { env });
  assert.equal(r.code, 0, r.stderr);
  r = await runCli(['share', 'remove', 'Beach', '--config', file], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no share named "Beach"/);
  r = await runCli(['share', 'list', '--config', file], { env });
  assert.deepEqual(r.stdout.trim().split('\n').map((l) => l.split('\t')[0]), ['Holiday']);
  r = await runCli(['share', '--config', file], { env });
  assert.equal(r.code, 2);
});
