/**
 * One litmus run (Debian package `litmus`, the WebDAV compliance suite) for the e2e tests that drive
 * it: the five suites against `url` as `user`, in a HOME of its own, and the checks every caller
 * makes (finished in time, every suite reported a summary, 0 failures). The caller asserts the
 * total, which depends on the transport (104 over HTTP; over TLS litmus skips http/expect100).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, which } from './_e2e-util.js';

export const LITMUS = which('litmus');
export const LITMUS_SUITES = ['basic', 'copymove', 'props', 'locks', 'http'];

export interface LitmusSummary {
  suite: string;
  run: number;
  passed: number;
  failed: number;
}

export interface LitmusRun {
  out: string;
  code: number | null;
  sums: LitmusSummary[];
  /** Tests run over all suites. */
  total: number;
}

/** Parse "<- summary for `basic': of 16 tests run: 16 passed, 0 failed. 100.0%". */
export function parseLitmusSummaries(out: string): LitmusSummary[] {
  const re = /summary for `([a-z]+)': of (\d+) tests run: (\d+) passed, (\d+) failed/g;
  return [...out.matchAll(re)].map((m) => ({ suite: m[1]!, run: Number(m[2]), passed: Number(m[3]), failed: Number(m[4]) }));
}

/** Lines of tests that did not pass (FAIL, and WARNING lines for context). */
function failingLines(out: string): string[] {
  return out.split('\n').filter((l) => /\bFAIL\b|WARNING:|\.\.\. FAIL/.test(l));
}

/** Run the five suites against `url` (ending in '/') and assert: in time, every suite summarised, 0 failed. */
export async function runLitmusSuites(url: string, user: { username: string; password: string }, opts: { timeoutMs?: number } = {}): Promise<LitmusRun> {
  assert.ok(LITMUS, 'litmus is not installed (apt-get install litmus)');
  const home = await mkdtemp(join(tmpdir(), 'tbdav-litmus-'));
  try {
    const res = await run(LITMUS, ['--keep-going', url, user.username, user.password], {
      env: { ...process.env, TESTS: LITMUS_SUITES.join(' '), HOME: home },
      cwd: home,
      timeoutMs: opts.timeoutMs ?? 180_000,
    });
    const out = res.stdout + res.stderr;
    assert.equal(res.timedOut, false, `litmus did not finish in time:\n${out.slice(-3000)}`);
    const sums = parseLitmusSummaries(out);
    assert.deepEqual(
      sums.map((s) => s.suite),
      LITMUS_SUITES,
      `every suite must report a summary (a suite that aborts reports none):\n${out.slice(-4000)}`,
    );
    const failed = sums.reduce((n, s) => n + s.failed, 0);
    assert.equal(failed, 0, `litmus failures:\n${failingLines(out).join('\n')}\n\n${sums.map((s) => JSON.stringify(s)).join('\n')}`);
    return { out, code: res.code, sums, total: sums.reduce((n, s) => n + s.run, 0) };
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}
