/**
 * The processes of the benchmark, forked by bench/run.ts and driven over the IPC channel (each
 * message { id, cmd, ...args } gets one answer { id, ok, value | error }):
 *
 *   role 'emulator': the TeraBox emulator alone (counters, knobs, authorization codes);
 *   role 'bridge':   the stack of `terabox-dav serve` (src/cli/stack.ts: client -> TeraboxRemote ->
 *                    Vfs -> bridge) configured with the emulator's URLs and credentials, as against
 *                    the real service. Its RSS is what the memory benchmark samples, alone.
 *
 * Separate processes also keep the emulator's work off the bridge's event loop, as in production.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_KEYS, loadConfig } from '../src/cli/config.js';
import { startStack, type Stack } from '../src/cli/stack.js';
import { startEmulator, EMULATOR_CREDENTIALS, type EmulatorHandle } from '../src/emulator/index.js';
import type { SpooledFile } from '../src/remote/types.js';
import { silentLogger } from '../src/shared/logger.js';
import { FileTokenStore } from '../src/terabox/auth/token-store.js';
import { TeraboxClient } from '../src/terabox/client.js';

type Msg = { id: number; cmd: string; [k: string]: unknown };

let dir: string | undefined;
let emu: EmulatorHandle | undefined;
let stack: Stack | undefined;
let appRoot = '';

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

const handlers: Record<string, (m: Msg) => Promise<unknown>> = {
  // ---------------------------------------------------------------- emulator role
  async startEmulator(m) {
    dir = await mkdtemp(join(tmpdir(), 'tbdav-bench-emu-'));
    emu = await startEmulator({ dataDir: dir, logger: silentLogger(), ...((m.options ?? {}) as object) });
    return { authUrl: emu.authUrl, appRoot: emu.appRoot, pid: process.pid };
  },
  async counters() {
    const c = emu!.counters;
    return { requests: { ...c.requests }, bytesServed: c.bytesServed, bytesUploaded: c.bytesUploaded, rateLimited: c.rateLimited };
  },
  async patch(m) {
    emu!.setOptions(m.patch as never);
    return null;
  },
  async authCode() {
    return emu!.issueAuthorizationCode();
  },
  async accessToken() {
    return emu!.issueTokens().access_token;
  },

  // ---------------------------------------------------------------- bridge role
  async startBridge(m) {
    dir = await mkdtemp(join(tmpdir(), 'tbdav-bench-bridge-'));
    appRoot = m.appRoot as string;
    const stateDir = join(dir, 'state');
    const cacheDir = join(dir, 'cache');
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const creds = EMULATOR_CREDENTIALS;
    // extra configuration (m.flags); keys this version does not have are left out and reported
    const keys = new Set(CONFIG_KEYS.map((k) => k.key));
    const known: Record<string, unknown> = {};
    const ignored: string[] = [];
    for (const [k, v] of Object.entries((m.flags ?? {}) as Record<string, unknown>)) {
      if (keys.has(k)) known[k] = v;
      else ignored.push(k);
    }
    const login = new TeraboxClient({ authUrl: m.authUrl as string, ...creds, tokenStore: new FileTokenStore(stateDir), logger: silentLogger() });
    await login.exchangeCode(m.code as string);
    await login.close();
    const config = loadConfig({
      env: {},
      home: dir,
      cwd: dir,
      flags: {
        'server.port': 0,
        stateDir,
        cacheDir,
        'terabox.authUrl': m.authUrl as string,
        'terabox.clientId': creds.clientId,
        'terabox.clientSecret': creds.clientSecret,
        'terabox.privateSecret': creds.privateSecret,
        'terabox.root': appRoot,
        ...(m.callsPerSecond !== undefined ? { 'terabox.callsPerSecond': m.callsPerSecond as number } : {}),
        ...known,
      },
    });
    stack = await startStack(config, { logger: silentLogger() });
    return { url: stack.url, pid: process.pid, ignored };
  },
  /** The adaptive pacer's counters and state (issue 10). */
  async pacerStats() {
    return stack!.client.http.pacerStats();
  },
  /** The dlink of a file: the reference download, without our stack. */
  async dlink(m) {
    const metas = await stack!.client.filemetas([appRoot + (m.path as string)], { dlink: true });
    const dlink = (metas[0] as unknown as { dlink?: string }).dlink;
    if (!dlink) throw new Error('no dlink');
    return dlink;
  },
  /** Upload a spooled file straight through the remote (no vfs, no dav): the PUT reference. */
  async remoteWrite(m) {
    const t0 = performance.now();
    await stack!.remote.write(m.path as string, m.file as SpooledFile, { overwrite: true });
    return performance.now() - t0;
  },
  /** `n` small files in a new folder made behind the vfs cache: one real upload, then rapid uploads (one precreate each). */
  async seed(m) {
    const folder = m.dir as string;
    const n = m.n as number;
    const full = appRoot + folder;
    await stack!.client.createDir(full);
    const body = Buffer.from('seed file for the benchmark\n');
    const md5 = createHash('md5').update(body).digest('hex');
    const names = Array.from({ length: n }, (_, i) => `file-${String(i).padStart(5, '0')}.txt`);
    const local = join(dir!, 'seed.tmp');
    await writeFile(local, body);
    await stack!.remote.write(`${folder}/${names[0]}`, { localPath: local, size: body.length, shardSize: 4 * 1024 * 1024, blockMd5s: [md5], contentMd5: md5 }, { overwrite: false });
    await rm(local);
    await pool(names.slice(1), 16, async (name) => {
      const r = await stack!.client.precreate(`${full}/${name}`, [md5], body.length);
      if ((r as { return_type?: number }).return_type !== 2) throw new Error(`seed ${name}: not a rapid upload`);
    });
    return names.length;
  },

  async close() {
    await stack?.close();
    await emu?.close();
    stack = undefined;
    emu = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    return null;
  },
};

process.on('message', (raw) => {
  const m = raw as Msg;
  const h = handlers[m.cmd];
  if (!h) {
    process.send!({ id: m.id, ok: false, error: `unknown command ${m.cmd}` });
    return;
  }
  h(m).then(
    (value) => process.send!({ id: m.id, ok: true, value }),
    (err: unknown) => process.send!({ id: m.id, ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
  );
});
process.on('disconnect', () => {
  void handlers.close!({ id: 0, cmd: 'close' }).finally(() => process.exit(0));
});
