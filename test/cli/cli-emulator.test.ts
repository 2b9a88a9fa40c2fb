/**
 * `terabox-dav emulator` runs the emulator alone and prints a config for it; `login` (device code,
 * the emulator auto-approves) and `whoami` then work against it from other processes. `--host` and
 * `--port` place its four listeners at fixed ports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:net';
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

/** A base port with base..base+3 free on 127.0.0.1 right now (checked by listening on each). */
async function fourFreePorts(): Promise<number> {
  const tryListen = (port: number): Promise<Server | undefined> =>
    new Promise((res) => {
      const srv = createServer();
      srv.once('error', () => res(undefined));
      srv.listen(port, '127.0.0.1', () => res(srv));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    const held: Server[] = [];
    for (let i = 0; i < 4; i++) {
      const srv = await tryListen(base + i);
      if (!srv) break;
      held.push(srv);
    }
    await Promise.all(held.map((srv) => new Promise((r) => srv.close(r))));
    if (held.length === 4) return base;
  }
  throw new Error('no four consecutive free ports found');
}

test('emulator --host/--port: the four listeners on port..port+3; server.port from the environment does not apply', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-cli-emu-port-'));
  // TERABOX_DAV_SERVER_PORT is the WebDAV server's: it must not move the emulator.
  const env = cleanEnv(dir, { TERABOX_DAV_SERVER_PORT: '1' });
  try {
    let base = 0;
    let out = '';
    for (let attempt = 0; attempt < 3 && !out; attempt++) {
      base = await fourFreePorts();
      const emu = startCli(['emulator', '--data-dir', join(dir, 'drive'), '--host', '127.0.0.1', '--port', String(base)], { env });
      try {
        await emu.waitFor(/Press Ctrl-C to stop\.\n/);
        out = emu.stdout();
        const health = await fetch(`http://127.0.0.1:${base + 1}/openapi/uinfo`);
        assert.ok(health.status > 0, 'the api listener answers at port+1');
        await health.arrayBuffer();
      } catch (err) {
        // Another process took one of the ports between the check and the start: try other ports.
        if (!/EADDRINUSE/.test(emu.stderr())) throw err;
      } finally {
        const end = await emu.stop('SIGINT');
        if (out) assert.equal(end.code, 0, end.stderr);
      }
    }
    assert.match(out, new RegExp(`authUrl:\\s+http://127\\.0\\.0\\.1:${base}\\n`));
    assert.match(out, new RegExp(`api_domain:\\s+127\\.0\\.0\\.1:${base + 1}\\n`));
    assert.match(out, new RegExp(`upload_domain:\\s+127\\.0\\.0\\.1:${base + 2}\\n`));
    assert.match(out, new RegExp(`download:\\s+127\\.0\\.0\\.1:${base + 3}\\n`));

    // Without --port the environment's server.port is ignored: free ports, not 1..4.
    const free = startCli(['emulator', '--data-dir', join(dir, 'drive')], { env });
    try {
      await free.waitFor(/Press Ctrl-C to stop\.\n/);
      const m = free.stdout().match(/authUrl:\s+http:\/\/127\.0\.0\.1:(\d+)/);
      assert.ok(m && Number(m[1]) > 4, free.stdout());
    } finally {
      assert.equal((await free.stop('SIGINT')).code, 0);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('emulator --port out of range or not a number: usage error, exit 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-cli-emu-badport-'));
  try {
    const env = cleanEnv(dir);
    let r = await runCli(['emulator', '--data-dir', join(dir, 'drive'), '--port', '65534'], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^terabox-dav: emulator --port 65534: the four listeners take port\.\.port\+3, so at most 65532\n$/);
    r = await runCli(['emulator', '--data-dir', join(dir, 'drive'), '--port', 'x'], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /port/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
