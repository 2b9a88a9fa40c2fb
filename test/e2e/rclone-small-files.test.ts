/**
 * Issue 10's small-file download economy with a real client: rclone copies 200 files of 10 KiB up
 * to the bridge and back down with `--transfers 8` (emulator stack, port 0). Going down, the dlinks
 * come in batches (files read together share a download call, and a file's folder neighbours come
 * in the same call): at most 20 /openapi/api/download calls for the 200 files, counted by the
 * emulator; every file comes back byte-identical.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestStack } from '../helpers/stack.js';
import { RCLONE, rcloneRemote } from './_rclone.js';

const SKIP = RCLONE ? false : 'rclone is not installed (apt-get install rclone)';

test('rclone --transfers 8: 200 x 10 KiB up and back, at most 20 download calls', { skip: SKIP, timeout: 240_000 }, async () => {
  const stack = await startTestStack();
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-rclone-small-'));
  try {
    const src = join(dir, 'src');
    const back = join(dir, 'back');
    await mkdir(src);
    const names = Array.from({ length: 200 }, (_, i) => `photo-${String(i).padStart(3, '0')}.jpg`);
    for (const n of names) await writeFile(join(src, n), randomBytes(10 * 1024));
    const rclone = await rcloneRemote({ dir, url: stack.url, flags: ['--transfers', '8', '--checkers', '8', '--retries', '1', '--low-level-retries', '2'], timeoutMs: 200_000 });
    const rc = rclone.ok;
    await rc('copy', src, 'X:photos');
    const calls0 = stack.counters.requests['/openapi/api/download'] ?? 0;
    await rc('copy', 'X:photos', back);
    const calls = (stack.counters.requests['/openapi/api/download'] ?? 0) - calls0;
    assert.deepEqual((await readdir(back)).sort(), names);
    for (const n of names) assert.ok((await readFile(join(back, n))).equals(await readFile(join(src, n))), n);
    assert.ok(calls <= 20, `${calls} download calls for 200 files`);
  } finally {
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  }
});
