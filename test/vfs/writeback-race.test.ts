/**
 * The Vfs over the real WritebackQueue when a background upload ends in the middle of a MOVE or COPY
 * (notes 11:16 and 11:33 in the coordination log; litmus copymove in write-back mode).
 *
 * The remote is a MemoryRemote whose writes wait at a gate (and honour their abort signal, like a
 * real upload), and whose stat/move/copy can run a hook: the hook opens the gate and waits until the
 * queue has finished the upload, so "the upload finished at this exact moment of the MOVE/COPY"
 * happens every run. Each case lost data before the fix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallOptions, Entry, MoveOptions } from '../../src/remote/types.js';
import { Vfs } from '../../src/vfs/vfs.js';
import type { WritebackPort } from '../../src/vfs/writeback.js';
import { body, readAll } from './fixture.js';
import { GatedMemoryRemote } from '../helpers/gated-remote.js';

type Hook = (op: 'stat' | 'move' | 'copy', path: string) => Promise<void>;

/** MemoryRemote whose writes wait at a gate (closed at first) and whose stat/move/copy call a hook after the inner call. */
class RaceRemote extends GatedMemoryRemote {
  override readonly name = 'race-memory';
  hook: Hook | undefined;
  constructor() {
    super({ closed: true });
  }
  override async stat(p: string, o?: CallOptions): Promise<Entry> {
    try {
      return await this.inner.stat(p, o);
    } finally {
      await this.hook?.('stat', p);
    }
  }
  async move(from: string, to: string, o: MoveOptions): Promise<void> {
    await this.inner.move(from, to, o);
    await this.hook?.('move', from);
  }
  async copy(from: string, to: string, o: MoveOptions): Promise<void> {
    await this.inner.copy(from, to, o);
    await this.hook?.('copy', from);
  }
}

interface Rig {
  remote: RaceRemote;
  queue: WritebackPort;
  vfs: Vfs;
  /** Open the gate and wait until nothing is pending at `path` any more (stored or given up). */
  finishUpload(path: string): Promise<void>;
  read(path: string): Promise<Buffer>;
}

async function withRig(fn: (r: Rig) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-wbrace-'));
  const remote = new RaceRemote();
  // The Vfs opens its own queue (journal and bodies under its state and cache folders).
  const vfs = await Vfs.open({
    remote,
    stateDir: join(dir, 'state'),
    cacheDir: join(dir, 'cache'),
    writeback: { retryBaseMs: 5, retryMaxMs: 20, drainMs: 2000 },
  });
  const queue = vfs.writeback!;
  try {
    const v = vfs;
    const rig: Rig = {
      remote,
      queue,
      vfs: v,
      async finishUpload(path) {
        remote.open();
        for (let i = 0; i < 2000 && queue.pending(path); i++) await new Promise((r) => setTimeout(r, 2));
        assert.equal(queue.pending(path), undefined, `upload of ${path} ended`);
      },
      async read(path) {
        return readAll((await v.openRead(path)).stream);
      },
    };
    await fn(rig);
  } finally {
    remote.open();
    await vfs.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Wait until the queue has nothing pending any more. */
async function drained(q: WritebackPort): Promise<void> {
  for (let i = 0; i < 2000 && q.usage().pending > 0; i++) await new Promise((r) => setTimeout(r, 2));
  assert.equal(q.usage().pending, 0, 'every upload ended');
}

test('write-back race: MOVE of a pending file whose upload finishes during the MOVE moves the stored file', async () => {
  await withRig(async ({ remote, queue, vfs, finishUpload, read }) => {
    const data = randomBytes(50_000);
    await vfs.put('/a.bin', body(data), { overwrite: true, expectedSize: data.length });
    assert.equal((await vfs.stat('/a.bin')).pending, true);
    // The MOVE looks the destination up (remote stat): the upload of the source finishes right then.
    remote.hook = async (op, p) => {
      if (op === 'stat' && p === '/b.bin') {
        remote.hook = undefined;
        await finishUpload('/a.bin');
      }
    };
    const r = await vfs.move('/a.bin', '/b.bin', { overwrite: true });
    assert.equal(r.created, true);
    await drained(queue);
    assert.deepEqual(await read('/b.bin'), data, 'the moved file is at the destination');
    await assert.rejects(vfs.stat('/a.bin'), { code: 'TBDAV_NOT_FOUND' });
    assert.deepEqual(await remote.inner.stat('/b.bin').then((e) => e.size), data.length);
    await assert.rejects(remote.inner.stat('/a.bin'), { code: 'TBDAV_NOT_FOUND' });
  });
});

test('write-back race: MOVE with Overwrite onto a pending destination, the source upload finishing meanwhile', async () => {
  await withRig(async ({ remote, queue, vfs, finishUpload, read }) => {
    const data = randomBytes(30_000);
    const old = randomBytes(20_000);
    await vfs.put('/dest.bin', body(old), { overwrite: true, expectedSize: old.length });
    await vfs.put('/src.bin', body(data), { overwrite: true, expectedSize: data.length });
    // The MOVE first cancels the pending destination and removes it on the remote: the source's
    // upload finishes right then (before the queue is asked to retarget it).
    const origRemove = remote.remove.bind(remote);
    let armed = true;
    remote.remove = async (p, o) => {
      await origRemove(p, o).finally(async () => {
        if (armed && p === '/dest.bin') {
          armed = false;
          await finishUpload('/src.bin');
        }
      });
    };
    await vfs.move('/src.bin', '/dest.bin', { overwrite: true });
    remote.open();
    await drained(queue);
    assert.deepEqual(await read('/dest.bin'), data);
    await assert.rejects(vfs.stat('/src.bin'), { code: 'TBDAV_NOT_FOUND' });
    await assert.rejects(remote.inner.stat('/src.bin'), { code: 'TBDAV_NOT_FOUND' });
  });
});

test('write-back race: COPY of a pending file whose upload finishes during the COPY copies the stored file', async () => {
  await withRig(async ({ remote, queue, vfs, finishUpload, read }) => {
    const data = randomBytes(50_000);
    await vfs.put('/a.bin', body(data), { overwrite: true, expectedSize: data.length });
    remote.hook = async (op, p) => {
      if (op === 'stat' && p === '/c.bin') {
        remote.hook = undefined;
        await finishUpload('/a.bin');
      }
    };
    const r = await vfs.copy('/a.bin', '/c.bin', { overwrite: true, depth: 'infinity' });
    assert.equal(r.created, true);
    await drained(queue);
    assert.deepEqual(await read('/c.bin'), data, 'the copy is there');
    assert.deepEqual(await read('/a.bin'), data, 'the source is still there');
  });
});

test('write-back race: MOVE of a folder holding a pending upload; nothing lands in the old folder after it moved', async () => {
  await withRig(async ({ remote, queue, vfs, read }) => {
    const data = randomBytes(40_000);
    await vfs.mkdir('/d');
    await vfs.put('/d/x.bin', body(data), { overwrite: true, expectedSize: data.length });
    // Right after the folder moved on the remote, the upload gets through.
    remote.hook = async (op, p) => {
      if (op === 'move' && p === '/d') {
        remote.hook = undefined;
        remote.open();
        // Give a runner that is still waiting at the gate the time to write (and fail or land).
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await vfs.move('/d', '/e', { overwrite: false });
    await drained(queue);
    assert.deepEqual(await read('/e/x.bin'), data, 'the pending file followed its folder');
    await assert.rejects(remote.inner.stat('/d'), { code: 'TBDAV_NOT_FOUND' });
    await assert.rejects(vfs.stat('/d/x.bin'), { code: 'TBDAV_NOT_FOUND' });
  });
});

test('write-back race: COPY of a folder holding a pending upload that finishes during the remote copy', async () => {
  await withRig(async ({ remote, queue, vfs, finishUpload, read }) => {
    const data = randomBytes(40_000);
    await vfs.mkdir('/d');
    await vfs.put('/d/x.bin', body(data), { overwrite: true, expectedSize: data.length });
    // The remote copy took the folder without the file; the upload lands right after.
    remote.hook = async (op, p) => {
      if (op === 'copy' && p === '/d') {
        remote.hook = undefined;
        await finishUpload('/d/x.bin');
      }
    };
    await vfs.copy('/d', '/c', { overwrite: false, depth: 'infinity' });
    await drained(queue);
    assert.deepEqual(await read('/c/x.bin'), data, 'the copy holds the file');
    assert.deepEqual(await read('/d/x.bin'), data, 'the source still holds it');
    assert.deepEqual((await vfs.list('/c')).map((e) => e.name), ['x.bin']);
  });
});

test('write-back: DELETE of a pending file whose upload lands as it is cancelled leaves nothing on the remote', async () => {
  await withRig(async ({ remote, queue, vfs }) => {
    const data = randomBytes(10_000);
    // The cache learns that /g.bin is absent before the PUT.
    await assert.rejects(vfs.stat('/g.bin'), { code: 'TBDAV_NOT_FOUND' });
    // A write that no longer heeds its abort signal (its last request was already sent).
    const gated = remote.write.bind(remote);
    remote.write = (p, f, o) => gated(p, f, { ...o, signal: undefined });
    await vfs.put('/g.bin', body(data), { overwrite: true, expectedSize: data.length });
    // The upload gets through just after the DELETE cancelled it.
    const removing = vfs.remove('/g.bin');
    setTimeout(() => remote.open(), 0);
    await removing;
    await drained(queue);
    await assert.rejects(remote.inner.stat('/g.bin'), { code: 'TBDAV_NOT_FOUND' });
    await assert.rejects(vfs.stat('/g.bin'), { code: 'TBDAV_NOT_FOUND' });
  });
});
