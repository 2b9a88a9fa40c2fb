/**
 * The rclone round trip of `npm run test:variants` (run per preset by test/variants/run.ts; not a
 * *.test.ts file, so `npm test` does not run it: test/e2e/rclone.test.ts covers the default).
 * rclone copies a tree up through the whole bridge (emulator under the env's variant), `rclone
 * check --download` finds 0 differences, and the tree comes back byte-identical: one-shard and
 * multi-shard files (md5 rules and forms), a 0-byte file, nested folders, names with spaces,
 * '#', '%', accents and emoji.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { run, which, type RunResult } from '../e2e/_e2e-util.js';
import { envVariantName } from '../helpers/emulator-variant.js';
import { startTestStack } from '../helpers/stack.js';

const RCLONE = which('rclone');
const MiB = 1024 * 1024;

const TREE: Record<string, number> = {
  'empty.txt': 0,
  'one kib.bin': 1024,
  'nine MiB.bin': 9 * MiB + 123,
  'a/b/c/deep #1.txt': 333,
  'a/100% sure.txt': 77,
  'a/Crème brûlée é.txt': 4096,
  'a/emoji 🎉 folder/party 🦄.txt': 12,
  'with space/and space.txt': 5000,
  'with space/four MiB.bin': 4 * MiB,
};

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string): Promise<void> {
    for (const d of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory()) await walk(p);
      else out.push(relative(root, p).normalize('NFC'));
    }
  }
  await walk(root);
  return out.sort();
}

test(`rclone copy + check --download + copy back under emulator variant ${envVariantName()}`, { skip: RCLONE ? false : 'rclone is not installed', timeout: 240_000 }, async () => {
  const user = { username: 'rv', password: 'variant pass' };
  const stack = await startTestStack({ users: [user] });
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-variant-rclone-'));
  const src = join(dir, 'src');
  const back = join(dir, 'back');
  try {
    for (const [rel, size] of Object.entries(TREE)) {
      await mkdir(join(src, rel, '..'), { recursive: true });
      await writeFile(join(src, rel), randomBytes(size));
    }
    const obscured = await run(RCLONE!, ['obscure', user.password], { timeoutMs: 10_000, env: { ...process.env, HOME: dir } });
    assert.equal(obscured.code, 0, obscured.stderr);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: dir,
      RCLONE_CONFIG: join(dir, 'rclone.conf'),
      RCLONE_CONFIG_X_TYPE: 'webdav',
      RCLONE_CONFIG_X_URL: stack.url,
      RCLONE_CONFIG_X_VENDOR: 'other',
      RCLONE_CONFIG_X_USER: user.username,
      RCLONE_CONFIG_X_PASS: obscured.stdout.trim(),
    };
    const rc = async (...args: string[]): Promise<RunResult> => {
      const res = await run(RCLONE!, [...args, '--retries', '1', '--low-level-retries', '2', '--contimeout', '10s', '--timeout', '60s'], { env, timeoutMs: 120_000 });
      assert.equal(res.timedOut, false, `rclone ${args.join(' ')} timed out:\n${res.stderr.slice(-3000)}`);
      return res;
    };
    const up = await rc('copy', src, 'X:tree');
    assert.equal(up.code, 0, `rclone copy exited ${up.code}:\n${up.stderr.slice(-3000)}`);
    const check = await rc('check', '--download', src, 'X:tree');
    assert.equal(check.code, 0, `rclone check --download found differences:\n${check.stderr.slice(-3000)}`);
    assert.match(check.stderr, /0 differences found/);
    const down = await rc('copy', 'X:tree', back);
    assert.equal(down.code, 0, `rclone copy back exited ${down.code}:\n${down.stderr.slice(-3000)}`);
    const want = await listFiles(src);
    assert.deepEqual(await listFiles(back), want);
    for (const rel of want) {
      const [a, b] = await Promise.all([readFile(join(src, rel)), readFile(join(back, rel))]);
      assert.ok(a.equals(b), `content of ${rel} differs after the round trip`);
    }
  } finally {
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  }
});
