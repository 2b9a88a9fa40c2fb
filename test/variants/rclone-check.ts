/**
 * The rclone round trip of `npm run test:variants` (run per preset by test/variants/run.ts; not a
 * *.test.ts file, so `npm test` does not run it: test/e2e/rclone.test.ts covers the default).
 * rclone copies a tree up through the whole bridge (emulator under the env's variant), `rclone
 * check --download` finds 0 differences, and the tree comes back byte-identical: one-shard and
 * multi-shard files (md5 rules and forms), a 0-byte file, nested folders, names with spaces,
 * '#', '%', accents and emoji.
 */
import { test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RCLONE, rcloneRemote, upCheckBack } from '../e2e/_rclone.js';
import { envVariantName } from '../helpers/emulator-variant.js';
import { writeRandomTree } from '../helpers/files.js';
import { startTestStack } from '../helpers/stack.js';

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

test(`rclone copy + check --download + copy back under emulator variant ${envVariantName()}`, { skip: RCLONE ? false : 'rclone is not installed', timeout: 240_000 }, async () => {
  const user = { username: 'rv', password: 'variant pass' };
  const stack = await startTestStack({ users: [user] });
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-variant-rclone-'));
  const src = join(dir, 'src');
  const back = join(dir, 'back');
  try {
    await writeRandomTree(src, TREE);
    const rc = await rcloneRemote({ dir, url: stack.url, user, flags: ['--retries', '1', '--low-level-retries', '2', '--contimeout', '10s', '--timeout', '60s'] });
    await upCheckBack(rc, src, 'X:tree', back);
  } finally {
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  }
});
