import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { isTbdavError } from '../../src/shared/errors.js';
import { hashShards } from '../../src/remote/hash.js';
import { SHARD_MIN_BYTES as SHARD_BYTES } from '../../src/terabox/api/types.js';
import { shardSizeFor } from '../../src/terabox/shards.js';
import { removeSpool, spoolBody } from '../../src/vfs/spool.js';
import { withTempDir } from '../helpers/temp-dir.js';

const MiB = 1024 * 1024;
// The spool cuts bodies as the backend asks (Remote.shardSizeFor); these tests ask as TeraBox does.
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

const withDir = (fn: (dir: string) => Promise<void>): Promise<void> => withTempDir('tbdav-spool-', fn);

/** A body delivered in uneven chunks (so shard boundaries fall inside chunks). */
function chunked(buf: Buffer, size = 65_537): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

function expectedShards(buf: Buffer, shard: number): string[] {
  if (buf.length === 0) return [md5(buf)];
  const out: string[] = [];
  for (let i = 0; i < buf.length; i += shard) out.push(md5(buf.subarray(i, i + shard)));
  return out;
}

async function spoolFiles(dir: string): Promise<string[]> {
  try {
    return await readdir(join(dir, 'spool'));
  } catch {
    return [];
  }
}

for (const [label, size, known] of [
  ['0 B', 0, true],
  ['1 KiB', 1024, true],
  ['exactly 4 MiB', 4 * MiB, true],
  ['9 MiB', 9 * MiB, true],
  ['9 MiB, size unknown', 9 * MiB, false],
  ['4 MiB + 1, size unknown', 4 * MiB + 1, false],
] as const) {
  test(`spool ${label}: shard md5s and content md5 match crypto of the same bytes`, async () => {
    await withDir(async (dir) => {
      const buf = randomBytes(size);
      const f = await spoolBody(chunked(buf), { cacheDir: dir, shardSizeFor, expectedSize: known ? size : undefined });
      assert.equal(f.size, size);
      assert.equal(f.shardSize, SHARD_BYTES);
      assert.equal(f.contentMd5, md5(buf));
      assert.deepEqual(f.blockMd5s, expectedShards(buf, SHARD_BYTES));
      if (size === 0) assert.deepEqual(f.blockMd5s, ['d41d8cd98f00b204e9800998ecf8427e']);
      if (size === 9 * MiB) assert.equal(f.blockMd5s.length, 3);
      if (size === 4 * MiB) assert.equal(f.blockMd5s.length, 1);
      assert.ok(f.localPath.startsWith(join(dir, 'spool')));
      assert.deepEqual(await readFile(f.localPath), buf);
      await removeSpool(f);
      assert.deepEqual(await spoolFiles(dir), []);
    });
  });
}

test('without a cut the body is one shard; a cut that depends on the final size re-hashes an unknown-size body', async () => {
  await withDir(async (dir) => {
    const buf = randomBytes(5 * MiB + 7);
    const whole = await spoolBody(chunked(buf), { cacheDir: dir });
    assert.deepEqual(whole.blockMd5s, [md5(buf)]);
    assert.equal(whole.shardSize, buf.length);
    const cut = (n: number): number => (n > 4 * MiB ? 2 * MiB : MiB);
    const unknown = await spoolBody(chunked(buf), { cacheDir: dir, shardSizeFor: cut });
    assert.equal(unknown.shardSize, 2 * MiB);
    assert.deepEqual(unknown.blockMd5s, expectedShards(buf, 2 * MiB));
    const known = await spoolBody(chunked(buf), { cacheDir: dir, expectedSize: buf.length, shardSizeFor: cut });
    assert.deepEqual(known.blockMd5s, expectedShards(buf, 2 * MiB));
    const empty = await spoolBody(chunked(Buffer.alloc(0)), { cacheDir: dir });
    assert.deepEqual(empty.blockMd5s, [md5(Buffer.alloc(0))]);
    for (const f of [whole, unknown, known, empty]) await removeSpool(f);
  });
});

test('hashShards re-hashes a spool file with a larger shard size (second pass)', async () => {
  await withDir(async (dir) => {
    const buf = randomBytes(9 * MiB);
    const f = await spoolBody(chunked(buf), { cacheDir: dir, shardSizeFor });
    assert.deepEqual(await hashShards(f.localPath, 8 * MiB), expectedShards(buf, 8 * MiB));
    await removeSpool(f);
  });
});

test('spool refuses a body shorter or longer than announced, leaving no file', async () => {
  await withDir(async (dir) => {
    await assert.rejects(spoolBody(chunked(randomBytes(1000)), { cacheDir: dir, shardSizeFor, expectedSize: 1001 }), (e: unknown) => isTbdavError(e, 'TBDAV_BAD_REQUEST'));
    await assert.rejects(spoolBody(chunked(randomBytes(1000)), { cacheDir: dir, shardSizeFor, expectedSize: 999 }), (e: unknown) => isTbdavError(e, 'TBDAV_BAD_REQUEST'));
    assert.deepEqual(await spoolFiles(dir), []);
  });
});

test('spool refuses a body over maxBytes with TBDAV_TOO_LARGE', async () => {
  await withDir(async (dir) => {
    await assert.rejects(spoolBody(chunked(randomBytes(5000), 1000), { cacheDir: dir, shardSizeFor, maxBytes: 4096 }), (e: unknown) => isTbdavError(e, 'TBDAV_TOO_LARGE'));
    assert.deepEqual(await spoolFiles(dir), []);
  });
});

test('a body that errors mid-way rejects with TBDAV_ABORTED and leaves no file', async () => {
  await withDir(async (dir) => {
    const body = new PassThrough();
    const p = spoolBody(body, { cacheDir: dir, shardSizeFor, expectedSize: 10_000 });
    body.write(randomBytes(3000));
    setImmediate(() => body.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
    await assert.rejects(p, (e: unknown) => isTbdavError(e, 'TBDAV_ABORTED'));
    assert.deepEqual(await spoolFiles(dir), []);
  });
});

test('an AbortSignal stops the spool with TBDAV_ABORTED and leaves no file', async () => {
  await withDir(async (dir) => {
    const body = new PassThrough();
    const ac = new AbortController();
    const p = spoolBody(body, { cacheDir: dir, shardSizeFor, signal: ac.signal });
    body.write(randomBytes(3000));
    setImmediate(() => ac.abort());
    await assert.rejects(p, (e: unknown) => isTbdavError(e, 'TBDAV_ABORTED'));
    assert.equal(body.destroyed, true);
    assert.deepEqual(await spoolFiles(dir), []);
  });
});

test('spool pulls a 64 MiB generator body chunk by chunk to the end', async () => {
  await withDir(async (dir) => {
    let produced = 0;
    const chunk = randomBytes(MiB);
    async function* gen(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 64; i++) {
        produced++;
        yield chunk;
      }
    }
    const f = await spoolBody(Readable.from(gen()), { cacheDir: dir, shardSizeFor, expectedSize: 64 * MiB });
    assert.equal(produced, 64);
    assert.equal(f.size, 64 * MiB);
    assert.equal(f.blockMd5s.length, 16);
    assert.equal(new Set(f.blockMd5s).size, 1);
    await removeSpool(f);
  });
});

for (const [label, batchBytes, chunk] of [
  ['batches smaller than a chunk', 1000, 65_537],
  ['batches not dividing the shard size', 3 * MiB + 7, 65_537],
  ['chunks larger than a batch', 64 * 1024, 5 * MiB + 3],
  ['one-byte batches', 1, 4099],
  ['tiny chunks (more chunks than one writev takes)', 1024 * 1024, 7],
] as const) {
  test(`spool with ${label}: bytes and md5s are the same as crypto's`, async () => {
    await withDir(async (dir) => {
      const buf = randomBytes(chunk < 5000 ? 20_000 : 9 * MiB + 5);
      for (const expectedSize of [buf.length, undefined]) {
        const f = await spoolBody(chunked(buf, chunk), { cacheDir: dir, shardSizeFor, expectedSize, batchBytes });
        assert.equal(f.size, buf.length);
        assert.equal(f.contentMd5, md5(buf));
        assert.deepEqual(f.blockMd5s, expectedShards(buf, SHARD_BYTES));
        assert.deepEqual(await readFile(f.localPath), buf);
        await removeSpool(f);
      }
      assert.deepEqual(await spoolFiles(dir), []);
    });
  });
}

test('a body that errors after several batches were written rejects with TBDAV_ABORTED and leaves no file', async () => {
  await withDir(async (dir) => {
    const body = new PassThrough();
    const p = spoolBody(body, { cacheDir: dir, shardSizeFor, expectedSize: 64 * MiB, batchBytes: 256 * 1024 });
    for (let i = 0; i < 40; i++) body.write(randomBytes(64 * 1024));
    setTimeout(() => body.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })), 20);
    await assert.rejects(p, (e: unknown) => isTbdavError(e, 'TBDAV_ABORTED'));
    assert.deepEqual(await spoolFiles(dir), []);
  });
});

test('a body longer than announced is refused mid-batch and the rest is drained, leaving no file', async () => {
  await withDir(async (dir) => {
    const body = chunked(randomBytes(3 * MiB), 65_536);
    await assert.rejects(spoolBody(body, { cacheDir: dir, shardSizeFor, expectedSize: 2 * MiB + 1, batchBytes: 512 * 1024 }), (e: unknown) => isTbdavError(e, 'TBDAV_BAD_REQUEST'));
    await new Promise((r) => setImmediate(r));
    assert.equal(body.destroyed || body.readableFlowing === true, true);
    assert.deepEqual(await spoolFiles(dir), []);
  });
});
