/**
 * rclone as a client of the bridge in the tests: a webdav remote configured by environment variables
 * only (HOME and rclone.conf in the test's temp dir), commands run with a time bound, and the round
 * trip the rclone suites share (a local tree copied up, `check --download`, copied back, compared
 * byte for byte).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listFiles } from '../helpers/files.js';
import { run, which, type RunResult } from './_e2e-util.js';

export const RCLONE = which('rclone');

export interface RcloneRemoteOptions {
  /** HOME of the runs (rclone.conf lands there): the test's temp dir. */
  dir: string;
  url: string;
  /** The remote's name in commands (`X:path`); default X. */
  name?: string;
  vendor?: 'other' | 'owncloud';
  /** Basic auth; the password goes through `rclone obscure`. */
  user?: { username: string; password: string };
  /** Appended to every command (retries, transfers, timeouts). */
  flags?: string[];
  /** Bound of one command (default 120 s); a command that outlasts it fails the test. */
  timeoutMs?: number;
}

export interface Rclone {
  env: NodeJS.ProcessEnv;
  /** rclone with `args` and the flags; any exit code is returned. */
  run(...args: string[]): Promise<RunResult>;
  /** As run; an exit code other than 0 fails the test with rclone's stderr. */
  ok(...args: string[]): Promise<RunResult>;
}

export async function rcloneRemote(o: RcloneRemoteOptions): Promise<Rclone> {
  assert.ok(RCLONE, 'rclone is not installed');
  const key = `RCLONE_CONFIG_${(o.name ?? 'X').toUpperCase()}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: o.dir,
    RCLONE_CONFIG: join(o.dir, 'rclone.conf'),
    [`${key}_TYPE`]: 'webdav',
    [`${key}_URL`]: o.url,
    [`${key}_VENDOR`]: o.vendor ?? 'other',
  };
  if (o.user) {
    const obscured = await run(RCLONE, ['obscure', o.user.password], { timeoutMs: 10_000, env: { ...process.env, HOME: o.dir } });
    assert.equal(obscured.code, 0, obscured.stderr);
    env[`${key}_USER`] = o.user.username;
    env[`${key}_PASS`] = obscured.stdout.trim();
  }
  const flags = o.flags ?? [];
  const timeoutMs = o.timeoutMs ?? 120_000;
  const runOne = async (...args: string[]): Promise<RunResult> => {
    const res = await run(RCLONE, [...args, ...flags], { env, timeoutMs });
    assert.equal(res.timedOut, false, `rclone ${args.join(' ')} timed out:\n${res.stderr.slice(-3000)}`);
    return res;
  };
  return {
    env,
    run: runOne,
    ok: async (...args) => {
      const res = await runOne(...args);
      assert.equal(res.code, 0, `rclone ${args.join(' ')} exited ${res.code}:\n${res.stderr.slice(-3000)}`);
      return res;
    },
  };
}

/**
 * rclone copies the local tree `src` up to `remote` (`upFlags` added), `check --download` finds 0
 * differences, and the copy back into `back` holds the same files, byte for byte.
 */
export async function upCheckBack(rc: Rclone, src: string, remote: string, back: string, upFlags: string[] = []): Promise<void> {
  await rc.ok('copy', ...upFlags, src, remote);
  const check = await rc.run('check', '--download', src, remote);
  assert.equal(check.code, 0, `rclone check --download found differences:\n${check.stderr.slice(-3000)}`);
  assert.match(check.stderr, /0 differences found/);
  await rc.ok('copy', remote, back);
  const want = await listFiles(src);
  assert.deepEqual(await listFiles(back), want);
  for (const rel of want) {
    const [a, b] = await Promise.all([readFile(join(src, rel)), readFile(join(back, rel))]);
    assert.ok(a.equals(b), `content of ${rel} differs after the round trip`);
  }
}
