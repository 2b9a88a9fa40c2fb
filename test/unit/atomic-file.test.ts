/**
 * shared/atomic-file.ts, the one atomic replace used by the token store, the vfs state, the
 * write-back journal, the lock file and the emulator's metadata.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../src/shared/atomic-file.js';
import { version } from './fixtures/atomic-writer.js';
import { withTempDir } from '../helpers/temp-dir.js';

const CHILD = fileURLToPath(new URL('./fixtures/atomic-writer.ts', import.meta.url));

const withDir = (fn: (dir: string) => Promise<void>): Promise<void> => withTempDir('tbdav-atomic-', fn);

test('writes and replaces the content, leaving no temp file behind', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'state.json');
    await writeFileAtomic(file, 'first');
    assert.equal(await readFile(file, 'utf8'), 'first');
    await writeFileAtomic(file, Buffer.from('second, longer'));
    assert.equal(await readFile(file, 'utf8'), 'second, longer');
    await writeFileAtomic(file, '');
    assert.equal(await readFile(file, 'utf8'), '');
    assert.deepEqual(await readdir(dir), ['state.json']);
  });
});

test('mode is set exactly, whatever the umask; without it the umask applies', async () => {
  await withDir(async (dir) => {
    const old = process.umask(0o002);
    try {
      await writeFileAtomic(join(dir, 'tokens.json'), '{}', { mode: 0o600 });
      assert.equal((await stat(join(dir, 'tokens.json'))).mode & 0o777, 0o600);
      // replacing a file whose mode was loosened gives the new file the asked mode again
      await chmod(join(dir, 'tokens.json'), 0o644);
      await writeFileAtomic(join(dir, 'tokens.json'), '{}', { mode: 0o600 });
      assert.equal((await stat(join(dir, 'tokens.json'))).mode & 0o777, 0o600);
      await writeFileAtomic(join(dir, 'meta.json'), '{}');
      assert.equal((await stat(join(dir, 'meta.json'))).mode & 0o777, 0o664);
    } finally {
      process.umask(old);
    }
  });
});

test('a failed write keeps the old target and removes its temp file', async () => {
  await withDir(async (dir) => {
    // the target is a non-empty folder: writing and fsync succeed, the rename fails
    const target = join(dir, 'target');
    await mkdir(target);
    await writeFile(join(target, 'inside'), 'kept');
    await assert.rejects(writeFileAtomic(target, 'new'), (err: NodeJS.ErrnoException) => ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(err.code ?? ''));
    assert.deepEqual(await readdir(dir), ['target']);
    assert.equal(await readFile(join(target, 'inside'), 'utf8'), 'kept');
    // the folder is missing: nothing is created
    await assert.rejects(writeFileAtomic(join(dir, 'missing', 'f.json'), 'x'), { code: 'ENOENT' });
    assert.deepEqual(await readdir(dir), ['target']);
  });
});

test('a half-written temp left by a crash changes nothing: the target stays whole and the next write works', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'journal.json');
    await writeFileAtomic(file, '{"v":1}');
    // what a writer killed between open and rename leaves behind (same naming scheme)
    const stale = `${file}.${process.pid}.deadbeef.tmp`;
    await writeFile(stale, '{"v":2, "trunc');
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { v: 1 });
    await writeFileAtomic(file, '{"v":3}');
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { v: 3 });
    assert.equal(await readFile(stale, 'utf8'), '{"v":2, "trunc', 'another writer\'s temp is never written through');
    assert.deepEqual((await readdir(dir)).sort(), ['journal.json', 'journal.json.' + process.pid + '.deadbeef.tmp']);
  });
});

test('concurrent writes to one file: the result is one whole version, no temp left', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'locks.json');
    const size = 256 * 1024;
    await Promise.all(Array.from({ length: 20 }, (_, i) => writeFileAtomic(file, version(i + 1, size))));
    const got = await readFile(file);
    const n = Number(got.subarray(0, 8).toString());
    assert.ok(n >= 1 && n <= 20);
    assert.ok(got.equals(version(n, size)), 'the file is exactly one of the versions');
    assert.deepEqual(await readdir(dir), ['locks.json']);
  });
});

test('kill -9 while rewriting: the target is always one whole version; leftovers are only *.tmp', { timeout: 60_000 }, async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'tokens.json');
    const size = 4 * 1024 * 1024; // large enough that a kill often lands inside a write
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
        env: { ...process.env, TBDAV_ATOMIC_CHILD: JSON.stringify({ file, size }) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += String(c)));
      child.stderr.on('data', (c: Buffer) => (err += String(c)));
      const exited = new Promise<void>((r) => child.on('exit', () => r()));
      const deadline = Date.now() + 30_000;
      while ((out.match(/WROTE/g) ?? []).length < 2 + round) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`child did not write: ${out} ${err.slice(0, 2000)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      await new Promise((r) => setTimeout(r, round * 7)); // vary where the kill lands
      child.kill('SIGKILL');
      await exited;
      const got = await readFile(file);
      const n = Number(got.subarray(0, 8).toString());
      assert.ok(n >= 1, `round ${round}: a version number at the start`);
      assert.ok(got.equals(version(n, size)), `round ${round}: the file is exactly version ${n}, not a mix or a truncation`);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      for (const name of await readdir(dir)) assert.ok(name === 'tokens.json' || name.endsWith('.tmp'), `unexpected ${name}`);
    }
    // after the crashes, a new writer replaces the file as usual
    await writeFileAtomic(file, 'after', { mode: 0o600 });
    assert.equal(await readFile(file, 'utf8'), 'after');
  });
});
