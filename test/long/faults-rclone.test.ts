/**
 * Faults of the service, end to end with a real client (npm run test:long): rclone copies a
 * ~300 MiB tree (many small files and a few multi-shard ones) to the bridge while the emulator
 * injects 10 % faults (HTTP 5xx, errno 31034, socket resets) and access tokens expire every 10 s;
 * API faults strike before or after the service did the work (phase 'mixed': a lost answer to a
 * create or filemanager call that happened, the nastier case);
 * then `rclone check --download` reads everything back and must find 0 differences. rclone's own
 * retries are turned off (--retries 1 --low-level-retries 1), so the bridge has to absorb the faults.
 * The log must show the retries and the refreshes.
 *
 * Knobs: TBDAV_RCLONE_MIB (total size, default 300), TBDAV_FAULT_SEED (default 42),
 * TBDAV_FAULT_PHASE (before | after | mixed, default mixed), TBDAV_FAULTS_LOG
 * (file that receives the debug log of a failed run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestStack } from '../helpers/stack.js';
import { captureLogger } from '../reliability/helpers.js';

const run = promisify(execFile);
const TOTAL_MIB = Number(process.env.TBDAV_RCLONE_MIB ?? 300);

async function rclone(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('rclone', [...args, '--config', join(cwd, 'rclone.conf')], { cwd, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

test(`rclone copy + check --download of ${TOTAL_MIB} MiB under 10 % faults and 10 s tokens: 0 differences`, { timeout: 30 * 60_000 }, async () => {
  const work = await mkdtemp(join(tmpdir(), 'tbdav-rclone-'));
  const cap = captureLogger();
  const s = await startTestStack({ logger: cap.logger, emulator: { accessTokenTtlSec: 10 } });
  try {
    // The tree: ~60 % in large files (1..3 shards and more), the rest in small ones, a few folders deep.
    const src = join(work, 'src');
    let left = TOTAL_MIB * 1024 * 1024;
    let i = 0;
    const bigSizes = [20, 9, 33, 4, 17, 48, 12, 64].map((m) => m * 1024 * 1024 + 12_345);
    for (const size of bigSizes) {
      if (left < size + 50 * 1024 * 1024 && i > 0) break;
      await mkdir(join(src, 'big'), { recursive: true });
      await writeFile(join(src, 'big', `b${i++}.bin`), randomBytes(size));
      left -= size;
    }
    let n = 0;
    while (left > 0) {
      const size = Math.min(left, [0, 1, 100, 4096, 65_536, 300_000, 1_500_000, 4 * 1024 * 1024 + 1][n % 8]!);
      const d = join(src, `d${n % 7}`, `e${n % 3}`);
      await mkdir(d, { recursive: true });
      await writeFile(join(d, `s${n}.dat`), randomBytes(size));
      left -= Math.max(size, 1);
      n++;
    }
    await writeFile(join(work, 'rclone.conf'), `[bridge]\ntype = webdav\nurl = ${s.url}/\nvendor = other\n`);
    s.emulator.setOptions({ faults: { rate: 0.1, seed: Number(process.env.TBDAV_FAULT_SEED ?? 42), phase: (process.env.TBDAV_FAULT_PHASE ?? 'mixed') as 'before' | 'after' | 'mixed', kinds: ['http5xx', 'errno31034', 'reset'] } });
    const common = ['--retries', '1', '--low-level-retries', '1', '--transfers', '4', '--checkers', '4', '--stats', '0', '-q'];
    const copy = await rclone(['copy', src, 'bridge:tree', ...common], work);
    assert.equal(copy.code, 0, `rclone copy failed:\n${copy.out.slice(-4000)}`);
    const check = await rclone(['check', src, 'bridge:tree', '--download', '--one-way', ...common], work);
    assert.equal(check.code, 0, `rclone check found differences:\n${check.out.slice(-4000)}`);
    assert.ok(s.counters.faultsInjected > 5, `faults were injected (${s.counters.faultsInjected})`);
    const text = cap.text();
    assert.ok(/retry|retrying|attempt [2-9]/i.test(text), 'the log shows the retries');
    assert.ok(/refresh/i.test(text), 'the log shows the token refreshes');
    assert.ok(!cap.lines.some((l) => /" 5\d\d|: 5\d\d\b/.test(l) && /^\S+ info: (PUT|GET|PROPFIND|MKCOL)/.test(l)), 'the bridge answered no 5xx');
  } catch (err) {
    // Keep the bridge's debug log of a failed run for diagnosis (TBDAV_FAULTS_LOG=path).
    if (process.env.TBDAV_FAULTS_LOG) await writeFile(process.env.TBDAV_FAULTS_LOG, cap.text());
    throw err;
  } finally {
    await s.close();
    await rm(work, { recursive: true, force: true });
  }
});
