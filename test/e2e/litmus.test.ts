/**
 * litmus (the WebDAV compliance suite, Debian package `litmus`) against the whole bridge:
 * emulator -> TeraboxRemote -> Vfs -> bridge, on port 0, with Basic authentication whose
 * credentials hold ':' in the password and encode to base64 with '+' and '/' (stock
 * webdav-server refused those). All five suites must run (104 tests, Apache mod_dav's count)
 * with 0 failures, and the bridge must still answer afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestStack, type TestStackOptions } from '../helpers/stack.js';
import { run, which } from './_e2e-util.js';

const LITMUS = which('litmus');
const SUITES = ['basic', 'copymove', 'props', 'locks', 'http'];
const EXPECTED_TOTAL = 104;

interface Summary {
  suite: string;
  run: number;
  passed: number;
  failed: number;
}

/** Parse "<- summary for `basic': of 16 tests run: 16 passed, 0 failed. 100.0%". */
function parseSummaries(out: string): Summary[] {
  const re = /summary for `([a-z]+)': of (\d+) tests run: (\d+) passed, (\d+) failed/g;
  const res: Summary[] = [];
  for (const m of out.matchAll(re)) {
    res.push({ suite: m[1]!, run: Number(m[2]), passed: Number(m[3]), failed: Number(m[4]) });
  }
  return res;
}

/** Lines of tests that did not pass (FAIL, and WARNING lines for context). */
function failingLines(out: string): string[] {
  return out.split('\n').filter((l) => /\bFAIL\b|WARNING:|\.\.\. FAIL/.test(l));
}

async function runLitmus(configPatch?: TestStackOptions['configPatch']): Promise<void> {
  const user = { username: 'litmus', password: 'a?>b:c~~>?' };
  assert.match(Buffer.from(`${user.username}:${user.password}`).toString('base64'), /\+.*\/|\/.*\+/);
  const stack = await startTestStack({ users: [user], configPatch });
  const home = await mkdtemp(join(tmpdir(), 'tbdav-litmus-'));
  try {
    const res = await run(LITMUS!, ['--keep-going', `${stack.url}/`, user.username, user.password], {
      env: { ...process.env, TESTS: SUITES.join(' '), HOME: home },
      cwd: home,
      timeoutMs: 100_000,
    });
    const out = res.stdout + res.stderr;
    assert.equal(res.timedOut, false, `litmus did not finish in time:\n${out.slice(-3000)}`);
    const sums = parseSummaries(out);
    const failing = failingLines(out);
    const warnings = out.split('\n').filter((l) => l.includes('WARNING:')).map((l) => l.replace(/\r/g, '').trim());
    // Warnings are not failures (Apache gets some too); show them so that they are seen.
    if (warnings.length) console.log(`litmus warnings:\n${warnings.join('\n')}`);
    assert.deepEqual(
      sums.map((s) => s.suite),
      SUITES,
      `every suite must report a summary (a suite that aborts reports none):\n${out.slice(-4000)}`,
    );
    const total = sums.reduce((n, s) => n + s.run, 0);
    const failed = sums.reduce((n, s) => n + s.failed, 0);
    assert.equal(failed, 0, `litmus failures:\n${failing.join('\n')}\n\n${sums.map((s) => JSON.stringify(s)).join('\n')}`);
    assert.equal(total, EXPECTED_TOTAL, `tests run per suite: ${JSON.stringify(sums)}`);
    assert.equal(res.code, 0, `litmus exit code ${res.code}:\n${out.slice(-2000)}`);

    // The process survived and still serves.
    const probe = await fetch(`${stack.url}/`, { method: 'PROPFIND', headers: { ...stack.authHeaders(), depth: '0' } });
    assert.equal(probe.status, 207);
    await probe.arrayBuffer();
  } finally {
    await stack.close();
    await rm(home, { recursive: true, force: true });
  }
}

const SKIP = LITMUS ? false : 'litmus is not installed (apt-get install litmus)';

test('litmus: basic, copymove, props, locks, http all pass (104 tests) over the emulator stack', { skip: SKIP, timeout: 120_000 }, async () => {
  await runLitmus();
});

test('litmus: the same 104/104 with write-back uploads (answered once the body is journalled on local disk)', { skip: SKIP, timeout: 120_000 }, async () => {
  await runLitmus({ upload: { mode: 'writeback' } });
});
