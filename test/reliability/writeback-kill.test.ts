/**
 * kill -9 mid-upload, then restart: a child process accepts three files in write-back mode over the
 * real TeraboxRemote and the emulator (throttled so the uploads take a while), is SIGKILLed after the
 * first shard reached the service, and a new queue opened on the same state/cache dirs resumes every
 * journalled upload; the final content is checked byte for byte in the emulator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../../src/emulator/index.js';
import { FileTokenStore } from '../../src/terabox/auth/token-store.js';
import { TeraboxClient } from '../../src/terabox/client.js';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { decodeResumeToken } from '../../src/terabox/shards.js';
import { WritebackQueue } from '../../src/vfs/writeback.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';

const CHILD = fileURLToPath(new URL('./fixtures/writeback-child.ts', import.meta.url));

interface KillOutcome {
  /** Journal entries found on disk right after the kill. */
  atKill: { path: string; size: number; shardSize: number; resume?: string }[];
  uploadedAtKill: number;
  uploadedAfter: number;
  total: number;
}

/** Shards the journalled resume token (TeraBox's, opaque to the queue) says the service confirmed. */
function confirmedShards(e: KillOutcome['atKill'][number]): number[] {
  return e.resume === undefined ? [] : (decodeResumeToken(e.resume, Math.ceil(e.size / e.shardSize))?.doneShards ?? []);
}

async function killAndResume(): Promise<KillOutcome> {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-wbkill-'));
  const emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emu'), throughputBytesPerSec: 3 * 1024 * 1024 }));
  let child: ReturnType<typeof spawn> | undefined;
  let client: TeraboxClient | undefined;
  let q: WritebackQueue | undefined;
  try {
    const stateDir = join(dir, 'state');
    const cacheDir = join(dir, 'cache');
    await mkdir(join(dir, 'src'), { recursive: true });
    const files: [string, string, Buffer][] = [];
    for (let i = 0; i < 3; i++) {
      const data = randomBytes(5 * 1024 * 1024 + 1000 * i); // two shards each (4 MiB + rest)
      const local = join(dir, 'src', `f${i}.bin`);
      await writeFile(local, data);
      files.push([local, `/kill-${i}.bin`, data]);
    }
    const input = {
      authUrl: emu.authUrl,
      credentials: emu.credentials,
      code: emu.issueAuthorizationCode(),
      root: emu.appRoot,
      stateDir,
      cacheDir,
      files: files.map(([l, r]) => [l, r]),
    };
    child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, TBDAV_CHILD: JSON.stringify(input) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += String(c)));
    child.stderr!.on('data', (c: Buffer) => (err += String(c)));
    const exited = new Promise<number | null>((r) => child!.on('exit', (code) => r(code)));
    // Wait until everything is accepted and the first shard has reached the service and its
    // confirmation is journalled (the emulator counts a shard before the child hears of it).
    const confirmedInJournal = async (): Promise<boolean> => {
      const names = await readdir(join(stateDir, 'writeback')).catch(() => [] as string[]);
      for (const f of names.filter((n) => n.endsWith('.json'))) {
        try {
          const e = JSON.parse(await readFile(join(stateDir, 'writeback', f), 'utf8')) as KillOutcome['atKill'][number];
          if (confirmedShards(e).length > 0) return true;
        } catch {
          // being rewritten right now: look again at the next poll
        }
      }
      return false;
    };
    const deadline = Date.now() + 60_000;
    while (!(out.includes('ENQUEUED 3') && emu.counters.bytesUploaded > 0 && (await confirmedInJournal()))) {
      if (Date.now() > deadline) throw new Error(`child did not get going: ${out} ${err.slice(0, 2000)}`);
      if (child.exitCode !== null) throw new Error(`child exited ${child.exitCode}: ${err.slice(0, 2000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await exited;
    const journalled = (await readdir(join(stateDir, 'writeback'))).filter((f) => f.endsWith('.json'));
    assert.ok(journalled.length >= 1, `uploads were still pending when killed (${journalled.length} journalled)`);
    const atKill = await Promise.all(journalled.map(async (f) => JSON.parse(await readFile(join(stateDir, 'writeback', f), 'utf8')) as KillOutcome['atKill'][number]));
    // Bytes the dead process had already handed to the kernel still arrive: let them drain
    // (unthrottled) before counting, so that only the restarted process's uploads count as "after".
    emu.setOptions({ throughputBytesPerSec: 0 });
    for (let last = -1; last !== emu.counters.bytesUploaded; ) {
      last = emu.counters.bytesUploaded;
      await new Promise((r) => setTimeout(r, 300));
    }
    const uploadedAtKill = emu.counters.bytesUploaded;
    assert.ok(uploadedAtKill < files.reduce((n, [, , d]) => n + d.length, 0), 'killed mid-upload, not after');

    // Restart: a new process-equivalent (new client, new queue) over the same dirs.
    client = new TeraboxClient({ authUrl: emu.authUrl, ...emu.credentials, tokenStore: new FileTokenStore(join(stateDir, 'parent-tokens')), callsPerSecond: 100 });
    await client.exchangeCode(emu.issueAuthorizationCode());
    const remote = new TeraboxRemote(client, { root: emu.appRoot });
    emu.setOptions({ throughputBytesPerSec: 0 });
    q = await WritebackQueue.open({ remote, journalDir: join(stateDir, 'writeback'), spoolDir: join(cacheDir, 'writeback'), retryBaseMs: 50, retryMaxMs: 500 });
    const until = Date.now() + 60_000;
    while (q.usage().pending > 0) {
      if (Date.now() > until) throw new Error(`uploads did not finish after the restart: ${JSON.stringify(q.usage())}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const [, remotePath, data] of files) {
      const s = await remote.openRead(remotePath);
      const parts: Buffer[] = [];
      for await (const c of s) parts.push(c as Buffer);
      assert.ok(Buffer.concat(parts).equals(data), `${remotePath}: content in the emulator equals what was accepted`);
    }
    assert.deepEqual((await readdir(join(stateDir, 'writeback'))).filter((f) => f.endsWith('.json')), [], 'journal empty');
    assert.deepEqual((await readdir(join(cacheDir, 'writeback'))).filter((f) => f.endsWith('.data')), [], 'spool empty');
    const total = files.reduce((n, [, , d]) => n + d.length, 0);
    return { atKill, uploadedAtKill, uploadedAfter: emu.counters.bytesUploaded - uploadedAtKill, total };
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await q?.close({ drainMs: 0 });
    await client?.close();
    await emu.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test('write-back survives kill -9 mid-upload: every journalled upload resumes after restart and lands intact', { timeout: 90_000 }, async () => {
  await killAndResume();
});

test('after kill -9 the journalled upload session is reused: confirmed shards are not sent again', { timeout: 90_000 }, async () => {
  const o = await killAndResume();
  const withProgress = o.atKill.filter((e) => confirmedShards(e).length > 0);
  assert.ok(withProgress.length > 0, 'the journal recorded the upload session and its confirmed shards');
  const confirmed = withProgress.reduce((n, e) => n + confirmedShards(e).reduce((m, i) => m + Math.min(e.shardSize, e.size - i * e.shardSize), 0), 0);
  const pendingBytes = o.atKill.reduce((n, e) => n + e.size, 0);
  assert.ok(o.uploadedAfter <= pendingBytes - confirmed, `after the restart ${o.uploadedAfter} bytes were sent; at most ${pendingBytes - confirmed} were missing`);
});
