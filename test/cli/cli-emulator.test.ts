/**
 * `terabox-dav emulator` runs the emulator alone and prints a config for it; `login` (device code,
 * the emulator auto-approves) and `whoami` then work against it from other processes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanEnv, runCli, startCli } from '../helpers/cli.js';

test('emulator command: prints URL and credentials, serves login/whoami, stops on SIGINT', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-cli-emu-'));
  const env = cleanEnv(dir);
  const emu = startCli(['emulator', '--data-dir', join(dir, 'drive')], { env });
  try {
    await emu.waitFor(/Press Ctrl-C to stop\.\n/);
    const out = emu.stdout();
    assert.match(out, /authUrl:\s+http:\/\/127\.0\.0\.1:\d+/);
    const cfgLine = out.split('\n').find((l) => l.startsWith('{"terabox"'));
    assert.ok(cfgLine, out);
    const cfg = JSON.parse(cfgLine) as { terabox: Record<string, string> };
    assert.match(cfg.terabox.authUrl!, /^http:\/\/127\.0\.0\.1:\d+$/);
    const file = join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ ...cfg, stateDir: join(dir, 'state'), cacheDir: join(dir, 'cache') }));
    let r = await runCli(['login', '--config', file], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Logged in as \S+/);
    r = await runCli(['whoami', '--config', file], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Space: /);
    assert.ok((await readdir(join(dir, 'drive'))).length > 0, 'drive data in --data-dir');
  } finally {
    const end = await emu.stop('SIGINT');
    assert.equal(end.code, 0, end.stderr);
    await rm(dir, { recursive: true, force: true });
  }
});
