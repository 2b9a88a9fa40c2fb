/** The Remote contract suite on MemoryRemote, plus the memory-only knobs (call counters, refuseZeroByte). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MemoryRemote } from '../../src/remote/memory.js';
import { isTbdavError } from '../../src/shared/errors.js';
import { removeSpool, spoolBody } from '../../src/vfs/spool.js';
import { remoteContract } from './remote-contract.js';

remoteContract('memory', async () => ({ remote: new MemoryRemote(), cleanup: async () => {} }));

test('MemoryRemote counts calls per method', async () => {
  const r = new MemoryRemote();
  await r.mkdir('/a');
  await r.list('/');
  await r.list('/a');
  await r.stat('/a');
  assert.deepEqual({ ...r.calls }, { mkdir: 1, list: 2, stat: 1 });
  r.resetCalls();
  assert.deepEqual({ ...r.calls }, {});
});

test('MemoryRemote refuseZeroByte refuses empty files with TBDAV_FATAL, accepts others', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-mem-'));
  try {
    const r = new MemoryRemote({ refuseZeroByte: true });
    const empty = await spoolBody(Readable.from([]), { cacheDir: dir });
    await assert.rejects(r.write('/e', empty, { overwrite: true }), (e: unknown) => isTbdavError(e, 'TBDAV_FATAL'));
    await assert.rejects(r.stat('/e'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    const one = await spoolBody(Readable.from([Buffer.from('x')]), { cacheDir: dir });
    assert.equal((await r.write('/e', one, { overwrite: true })).entry.size, 1);
    await removeSpool(empty);
    await removeSpool(one);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('MemoryRemote write checks the spool against its md5', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-mem-'));
  try {
    const r = new MemoryRemote();
    const f = await spoolBody(Readable.from([Buffer.from('abc')]), { cacheDir: dir });
    await assert.rejects(r.write('/x', { ...f, contentMd5: '0'.repeat(32) }, { overwrite: true }), (e: unknown) => isTbdavError(e, 'TBDAV_INTEGRITY'));
    await assert.rejects(r.stat('/x'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    await removeSpool(f);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
