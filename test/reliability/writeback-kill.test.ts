/**
 * kill -9 of `terabox-dav serve` mid-upload, then a restart, in write-back mode over an emulator the
 * test runs (throttled so the upload takes a while; the service variant of TBDAV_EMULATOR_VARIANT, so
 * `npm run test:variants` runs this under every preset):
 *  - a 40 MiB PUT is answered 201, serve is SIGKILLed once the first shard reached the service and
 *    its confirmation is journalled, a new serve on the same state and cache folders resumes the
 *    journalled upload, and GET answers the exact 40 MiB;
 *  - the journalled upload session is reused: confirmed shards are not sent again;
 *  - upload sessions expired by the service while serve is down (issue 9): after the restart the
 *    file completes all the same (a fresh session), GET 200 with the right bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator } from '../../src/emulator/index.js';
import { FileTokenStore } from '../../src/terabox/auth/token-store.js';
import { TeraboxClient } from '../../src/terabox/client.js';
import { decodeResumeToken } from '../../src/terabox/shards.js';
import { cleanEnv, startCli, type RunningCli } from '../helpers/cli.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';

const MiB = 1024 * 1024;
const SIZE = 40 * MiB + 12_345;
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

interface JournalView {
  path: string;
  size: number;
  shardSize: number;
  resume?: string;
}

interface KillOutcome {
  /** Journal entries found on disk right after the kill. */
  atKill: JournalView[];
  uploadedAtKill: number;
  uploadedAfter: number;
  total: number;
}

/** Shards the journalled resume token (TeraBox's, opaque to the queue) says the service confirmed. */
function confirmedShards(e: JournalView): number[] {
  return e.resume === undefined ? [] : (decodeResumeToken(e.resume, Math.ceil(e.size / e.shardSize))?.doneShards ?? []);
}

async function journalEntries(dir: string): Promise<JournalView[]> {
  const out: JournalView[] = [];
  for (const f of (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'))) {
    try {
      out.push(JSON.parse(await readFile(join(dir, f), 'utf8')) as JournalView);
    } catch {
      // being rewritten right now (atomic rename): read again at the next poll
    }
  }
  return out;
}

async function killAndResume(opts: { expireSessions: boolean }): Promise<KillOutcome> {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-wbkill-'));
  const emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emu'), throughputBytesPerSec: 3 * MiB }));
  const running: RunningCli[] = [];
  try {
    const stateDir = join(dir, 'state');
    const cacheDir = join(dir, 'cache');
    await mkdir(stateDir, { recursive: true });
    // `terabox-dav login` done by hand: tokens in the state folder, as serve expects them
    const login = new TeraboxClient({ authUrl: emu.authUrl, ...emu.credentials, tokenStore: new FileTokenStore(stateDir) });
    await login.exchangeCode(emu.issueAuthorizationCode());
    await login.close();
    const env = cleanEnv(dir, {
      TERABOX_DAV_SERVER_PORT: '0',
      TERABOX_DAV_STATE_DIR: stateDir,
      TERABOX_DAV_CACHE_DIR: cacheDir,
      TERABOX_DAV_UPLOAD_MODE: 'writeback',
      TERABOX_DAV_TERABOX_AUTH_URL: emu.authUrl,
      TERABOX_DAV_TERABOX_CLIENT_ID: emu.credentials.clientId,
      TERABOX_DAV_TERABOX_CLIENT_SECRET: emu.credentials.clientSecret,
      TERABOX_DAV_TERABOX_PRIVATE_SECRET: emu.credentials.privateSecret,
      TERABOX_DAV_TERABOX_ROOT: emu.appRoot,
    });
    const serve = async (): Promise<{ cli: RunningCli; url: string }> => {
      const cli = startCli(['serve'], { env });
      running.push(cli);
      const m = await cli.waitFor(/WebDAV URL: (\S+)\n/, 60_000);
      return { cli, url: m[1]!.replace(/\/?$/, '/') };
    };
    const journal = join(stateDir, 'vfs', 'writeback');
    const spool = join(cacheDir, 'writeback');

    const first = await serve();
    const data = randomBytes(SIZE);
    const put = await fetch(first.url + 'kill.bin', { method: 'PUT', body: data });
    assert.equal(put.status, 201, 'answered once journalled');
    // Kill once the first shard reached the service and its confirmation is journalled (the
    // emulator counts a shard before serve hears of it).
    const deadline = Date.now() + 60_000;
    while (!(emu.counters.bytesUploaded > 0 && (await journalEntries(journal)).some((e) => confirmedShards(e).length > 0))) {
      if (Date.now() > deadline) throw new Error(`no shard confirmed in time: ${first.cli.stderr().slice(-2000)}`);
      if (first.cli.child.exitCode !== null) throw new Error(`serve exited ${first.cli.child.exitCode}: ${first.cli.stderr().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    first.cli.child.kill('SIGKILL');
    const end = await first.cli.exited;
    assert.equal(end.signal, 'SIGKILL');
    const atKill = await journalEntries(journal);
    assert.equal(atKill.length, 1, 'the upload was still journalled when serve died');
    // Bytes the dead process had already handed to the kernel still arrive: let them drain
    // (unthrottled) before counting, so that only the restarted process's uploads count as "after".
    emu.setOptions({ throughputBytesPerSec: 0 });
    for (let last = -1; last !== emu.counters.bytesUploaded; ) {
      last = emu.counters.bytesUploaded;
      await new Promise((r) => setTimeout(r, 300));
    }
    const uploadedAtKill = emu.counters.bytesUploaded;
    assert.ok(uploadedAtKill < SIZE, 'killed mid-upload, not after');
    if (opts.expireSessions) emu.expireUploadSessions();

    const second = await serve();
    const until = Date.now() + 90_000;
    const left = async (): Promise<number> =>
      (await readdir(journal)).filter((f) => f.endsWith('.json')).length + (await readdir(spool)).filter((f) => f.endsWith('.data')).length;
    while ((await left()) > 0) {
      if (Date.now() > until) throw new Error(`the upload did not finish after the restart: ${second.cli.stderr().slice(-3000)}`);
      if (second.cli.child.exitCode !== null) throw new Error(`serve exited ${second.cli.child.exitCode}: ${second.cli.stderr().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const get = await fetch(second.url + 'kill.bin');
    assert.equal(get.status, 200);
    const back = Buffer.from(await get.arrayBuffer());
    assert.equal(back.length, SIZE);
    assert.equal(md5(back), md5(data), 'GET answers the exact bytes the PUT sent');
    const stopped = await second.cli.stop('SIGTERM');
    assert.equal(stopped.code, 0, stopped.stderr.slice(-2000));
    return { atKill, uploadedAtKill, uploadedAfter: emu.counters.bytesUploaded - uploadedAtKill, total: SIZE };
  } finally {
    for (const c of running) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await Promise.all(running.map((c) => c.exited));
    await emu.close();
    await rm(dir, { recursive: true, force: true });
  }
}

let killed: Promise<KillOutcome> | undefined;
const killedOnce = (): Promise<KillOutcome> => (killed ??= killAndResume({ expireSessions: false }));

test('write-back survives kill -9 of serve mid-upload: a 40 MiB PUT resumes after the restart and GET answers it complete', { timeout: 180_000 }, async () => {
  const o = await killedOnce();
  assert.equal(o.atKill.length, 1);
});

test('after kill -9 the journalled upload session is reused: confirmed shards are not sent again', { timeout: 180_000 }, async () => {
  const o = await killedOnce();
  const withProgress = o.atKill.filter((e) => confirmedShards(e).length > 0);
  assert.ok(withProgress.length > 0, 'the journal recorded the upload session and its confirmed shards');
  const confirmed = withProgress.reduce((n, e) => n + confirmedShards(e).reduce((m, i) => m + Math.min(e.shardSize, e.size - i * e.shardSize), 0), 0);
  const pendingBytes = o.atKill.reduce((n, e) => n + e.size, 0);
  assert.ok(o.uploadedAfter <= pendingBytes - confirmed, `after the restart ${o.uploadedAfter} bytes were sent; at most ${pendingBytes - confirmed} were missing`);
});

test('upload sessions expired by the service while serve is down: after the restart the file completes, GET 200 with the right bytes', { timeout: 180_000 }, async () => {
  const o = await killAndResume({ expireSessions: true });
  assert.ok(o.uploadedAfter > 0, 'uploaded again after the restart');
});
