/**
 * The Vfs with a write-back port (VfsOptions.writeback): PUTs answered as pending, pending files
 * listed/read from the spool, DELETE/MOVE/COPY of pending files and of folders holding them, and the
 * cache updated by noteStored. The port here is a small in-test queue whose uploads run only when
 * the test calls flush(), so every intermediate state can be checked (the real queue,
 * src/vfs/writeback.ts, has its own tests).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { TbdavError, isTbdavError } from '../../src/shared/errors.js';
import type { ByteRange, Remote, SpooledFile, WriteResult } from '../../src/remote/types.js';
import { isSameOrInside, parentPath, rebase } from '../../src/vfs/paths.js';
import type { PendingInfo, PendingUpload, Reservation, WritebackHooks, WritebackPort } from '../../src/vfs/writeback.js';
import { body, fixture, type Fixture } from './fixture.js';

interface Item {
  info: PendingInfo;
  spool: SpooledFile;
  done: Promise<WriteResult>;
  resolve(r: WriteResult): void;
  reject(e: unknown): void;
}

class ManualPort implements WritebackPort {
  readonly items = new Map<string, Item>();
  reserved = 0;
  maxBytes = Number.POSITIVE_INFINITY;
  hooks: WritebackHooks = {};
  constructor(
    private readonly dir: string,
    private readonly remote: Remote,
  ) {}

  reserve(bytes: number, subject = 'write-back'): Reservation {
    if (this.reserved + bytes > this.maxBytes) throw new TbdavError('TBDAV_INSUFFICIENT_STORAGE', `${subject}: spool full`);
    this.reserved += bytes;
    let held = true;
    return {
      bytes,
      release: () => {
        if (held) this.reserved -= bytes;
        held = false;
      },
    };
  }

  async enqueue(path: string, spool: SpooledFile, opts: { reservation?: Reservation; mtime?: number } = {}): Promise<PendingUpload> {
    await mkdir(this.dir, { recursive: true });
    const localPath = join(this.dir, `${randomUUID()}.data`);
    await rename(spool.localPath, localPath);
    opts.reservation?.release();
    this.items.get(path)?.reject(new TbdavError('TBDAV_ABORTED', `write-back ${path}: superseded`));
    let resolve!: (r: WriteResult) => void;
    let reject!: (e: unknown) => void;
    const done = new Promise<WriteResult>((a, b) => ((resolve = a), (reject = b)));
    done.catch(() => undefined);
    const info: PendingInfo = {
      id: randomUUID(),
      path,
      size: spool.size,
      contentMd5: spool.contentMd5,
      createdAt: 1000,
      state: 'queued',
      attempts: 0,
      ...(opts.mtime !== undefined ? { mtime: opts.mtime } : {}),
    };
    this.items.set(path, { info, spool: { ...spool, localPath }, done, resolve, reject });
    return { ...info, done };
  }

  async waitStored(upload: { done: Promise<WriteResult> }, ms: number): Promise<WriteResult | undefined> {
    return Promise.race([upload.done, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms))]);
  }

  pending(path: string): PendingInfo | undefined {
    return this.items.get(path)?.info;
  }
  listPending(folder: string): PendingInfo[] {
    return [...this.items.values()].filter((i) => i.info.path !== '/' && parentPath(i.info.path) === folder).map((i) => i.info);
  }
  pendingUnder(path: string): PendingInfo[] {
    return [...this.items.values()].filter((i) => isSameOrInside(i.info.path, path)).map((i) => i.info);
  }
  async openPending(path: string, range?: ByteRange): Promise<Readable | undefined> {
    const item = this.items.get(path);
    if (!item) return undefined;
    return createReadStream(item.spool.localPath, { start: range?.start ?? 0, ...(range?.end !== undefined ? { end: range.end } : {}) });
  }
  async remove(path: string): Promise<number> {
    const victims = [...this.items.keys()].filter((p) => isSameOrInside(p, path));
    for (const p of victims) {
      const item = this.items.get(p)!;
      this.items.delete(p);
      item.reject(new TbdavError('TBDAV_ABORTED', `write-back ${p}: removed`));
      await rm(item.spool.localPath, { force: true });
    }
    return victims.length;
  }
  async move(from: string, to: string, opts: { whileStopped?: () => Promise<void> } = {}): Promise<number> {
    const movers = [...this.items.entries()].filter(([p]) => isSameOrInside(p, from));
    // Nothing uploads here until flush(): everything is "stopped" already.
    await opts.whileStopped?.();
    for (const [p, item] of movers) {
      this.items.delete(p);
      const np = rebase(p, from, to);
      item.info = { ...item.info, path: np };
      this.items.set(np, item);
    }
    return movers.length;
  }
  async copy(from: string, to: string): Promise<PendingUpload | undefined> {
    const src = this.items.get(from);
    if (!src) return undefined;
    const tmp = join(this.dir, `${randomUUID()}.copy`);
    await copyFile(src.spool.localPath, tmp);
    return this.enqueue(to, { ...src.spool, localPath: tmp }, src.info.mtime !== undefined ? { mtime: src.info.mtime } : {});
  }

  usage(): { pendingBytes: number; reservedBytes: number; maxBytes: number; pending: number } {
    return { pendingBytes: [...this.items.values()].reduce((n, i) => n + i.info.size, 0), reservedBytes: this.reserved, maxBytes: this.maxBytes, pending: this.items.size };
  }
  async close(): Promise<void> {
    // Nothing runs in the background here.
  }

  /** Upload everything pending, in path order, reporting each to the Vfs like the real queue. */
  async flush(): Promise<void> {
    for (const [p, item] of [...this.items.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const res = await this.remote.write(p, item.spool, { overwrite: true, ...(item.info.mtime !== undefined ? { mtime: item.info.mtime } : {}) });
      await this.hooks.onStored?.(p, res, item.info);
      this.items.delete(p);
      await rm(item.spool.localPath, { force: true });
      item.resolve(res);
    }
  }
}

async function withPort(fn: (f: Fixture, port: ManualPort) => Promise<void>, waitMs = 0): Promise<void> {
  let port!: ManualPort;
  const f = await fixture({}, {});
  try {
    port = new ManualPort(join(f.dir, 'wb'), f.remote);
    await f.reopen({
      writeback: {
        waitMs,
        openPort: async (hooks) => {
          port.hooks = hooks;
          return port;
        },
      },
    });
    await fn(f, port);
  } finally {
    await f.close();
  }
}

test('write-back PUT: answered pending without an upload; listed, stat-ed and read from the spool; stored later', async () => {
  await withPort(async (f, port) => {
    const data = randomBytes(200_000);
    await f.vfs.mkdir('/d');
    const r = await f.vfs.put('/d/big.bin', body(data), { overwrite: true, expectedSize: data.length });
    assert.equal(r.created, true);
    assert.equal(r.entry.pending, true);
    assert.equal(r.entry.size, data.length);
    assert.equal(f.remote.calls.write, undefined, 'nothing uploaded yet');
    assert.deepEqual((await f.vfs.list('/d')).map((e) => [e.name, e.size, e.pending ?? false]), [['big.bin', data.length, true]]);
    assert.equal((await f.vfs.stat('/d/big.bin')).pending, true);
    assert.deepEqual(await f.read('/d/big.bin'), data);
    assert.deepEqual(await f.read('/d/big.bin', { start: 1000, end: 1999 }), data.subarray(1000, 2000));
    await assert.rejects(f.vfs.openRead('/d/big.bin', { start: data.length }), (e: unknown) => isTbdavError(e, 'TBDAV_RANGE'));
    assert.deepEqual(await f.spoolFiles(), [], 'the spool file went to the queue');
    assert.equal(port.reserved, 0, 'the reservation was handed over');
    await port.flush();
    f.remote.resetCalls();
    const e = await f.vfs.stat('/d/big.bin');
    assert.equal(e.pending, undefined);
    assert.equal(e.size, data.length);
    assert.deepEqual({ ...f.remote.calls }, {}, 'noteStored updated the cache');
    assert.deepEqual(await f.read('/d/big.bin'), data);
    assert.deepEqual((await f.vfs.list('/d')).map((x) => [x.name, x.pending ?? false]), [['big.bin', false]]);
  });
});

test('write-back: a second PUT supersedes the pending one; created is false', async () => {
  await withPort(async (f, port) => {
    assert.equal((await f.put('/a', 'one')).created, true);
    const r = await f.put('/a', 'two!');
    assert.equal(r.created, false);
    assert.equal((await f.read('/a')).toString(), 'two!');
    await port.flush();
    assert.equal((await f.remote.stat('/a')).size, 4);
    assert.equal(f.remote.calls.write, 1);
  });
});

test('write-back: empty files and ignored names bypass the queue', async () => {
  await withPort(async (f, port) => {
    await f.put('/empty', '');
    await f.put('/.DS_Store', 'ds');
    assert.equal(port.items.size, 0);
    assert.equal((await f.remote.stat('/empty')).size, 0);
    assert.equal((await f.vfs.stat('/.DS_Store')).local, true);
  });
});

test('write-back: DELETE of a pending file cancels it (nothing lands later), also inside a deleted folder', async () => {
  await withPort(async (f, port) => {
    await f.vfs.mkdir('/d');
    await f.put('/x', 'x');
    await f.put('/d/y', 'y');
    await f.vfs.remove('/x');
    await f.vfs.remove('/d');
    assert.equal(port.items.size, 0);
    await port.flush();
    assert.equal(f.remote.calls.write, undefined);
    await assert.rejects(f.vfs.stat('/x'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    assert.deepEqual((await f.remote.list('/')).map((e) => e.name), []);
  });
});

test('write-back: a pending file that replaced a stored one; DELETE removes both', async () => {
  await withPort(async (f, port) => {
    await f.put('/a', 'old');
    await port.flush();
    await f.put('/a', 'new');
    await f.vfs.remove('/a');
    await port.flush();
    await assert.rejects(f.remote.stat('/a'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    await assert.rejects(f.vfs.stat('/a'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
  });
});

test('write-back: MOVE of a pending file retargets it and removes an older stored version at the source', async () => {
  await withPort(async (f, port) => {
    await f.put('/a', 'old');
    await port.flush();
    await f.put('/a', 'new content');
    await f.vfs.patchProps('/a', { '{urn:x}p': 'v' });
    const r = await f.vfs.move('/a', '/b', { overwrite: false });
    assert.equal(r.created, true);
    await assert.rejects(f.vfs.stat('/a'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    assert.equal((await f.vfs.stat('/b')).pending, true);
    assert.equal((await f.read('/b')).toString(), 'new content');
    assert.deepEqual(await f.vfs.getProps('/b'), { '{urn:x}p': 'v' });
    await port.flush();
    assert.deepEqual((await f.remote.list('/')).map((e) => [e.name, e.size]), [['b', 11]]);
  });
});

test('write-back: MOVE and COPY of a folder carry the uploads pending inside it', async () => {
  await withPort(async (f, port) => {
    await f.vfs.mkdir('/src');
    await f.put('/src/stored', 's');
    await port.flush();
    await f.put('/src/pending', 'p');
    await f.vfs.copy('/src', '/copy', { overwrite: false, depth: 'infinity' });
    assert.deepEqual((await f.vfs.list('/copy')).map((e) => [e.name, e.pending ?? false]), [['pending', true], ['stored', false]]);
    await f.vfs.move('/src', '/moved', { overwrite: false });
    assert.deepEqual((await f.vfs.list('/moved')).map((e) => [e.name, e.pending ?? false]), [['pending', true], ['stored', false]]);
    await port.flush();
    assert.deepEqual((await f.remote.list('/moved')).map((e) => e.name), ['pending', 'stored']);
    assert.deepEqual((await f.remote.list('/copy')).map((e) => e.name), ['pending', 'stored']);
    assert.deepEqual((await f.remote.list('/')).map((e) => e.name), ['copy', 'moved']);
  });
});

test('write-back: COPY of a pending file makes a pending copy', async () => {
  await withPort(async (f, port) => {
    await f.put('/a', 'aaa');
    const r = await f.vfs.copy('/a', '/b', { overwrite: false, depth: 'infinity' });
    assert.equal(r.created, true);
    assert.equal((await f.vfs.stat('/b')).pending, true);
    assert.equal((await f.read('/b')).toString(), 'aaa');
    await port.flush();
    assert.equal((await f.remote.stat('/b')).size, 3);
    assert.equal((await f.remote.stat('/a')).size, 3);
  });
});

test('write-back: the spool bound refuses a PUT of known size before reading it', async () => {
  await withPort(async (f, port) => {
    port.maxBytes = 1000;
    await assert.rejects(f.vfs.put('/big', body(randomBytes(5000)), { overwrite: true, expectedSize: 5000 }), (e: unknown) => isTbdavError(e, 'TBDAV_INSUFFICIENT_STORAGE'));
    assert.equal(port.reserved, 0);
    // a body shorter than announced gives the reservation back
    await assert.rejects(f.vfs.put('/short', body('abc'), { overwrite: true, expectedSize: 500 }), (e: unknown) => isTbdavError(e, 'TBDAV_BAD_REQUEST'));
    assert.equal(port.reserved, 0);
    assert.equal(port.items.size, 0);
    assert.deepEqual(await f.spoolFiles(), []);
  });
});

test('write-back with writebackWaitMs: an upload stored in time answers with the stored entry', async () => {
  await withPort(async (f, port) => {
    const p = f.put('/a', 'quick');
    // let the PUT reach the queue, then store it
    for (let i = 0; i < 200 && port.items.size === 0; i++) await new Promise((r) => setTimeout(r, 5));
    await port.flush();
    const r = await p;
    assert.equal(r.entry.pending, undefined);
    assert.equal(r.entry.size, 5);
    assert.equal(r.created, true);
  }, 30_000);
});

test('write-back: pending files survive in listings next to remote files and local placeholders', async () => {
  await withPort(async (f) => {
    await f.vfs.mkdir('/d');
    await f.put('/d/.DS_Store', 'x');
    await f.put('/d/p', 'pending');
    assert.deepEqual((await f.vfs.list('/d')).map((e) => [e.name, e.local ?? false, e.pending ?? false]), [
      ['.DS_Store', true, false],
      ['p', false, true],
    ]);
    await assert.rejects(f.vfs.list('/d/p'), (e: unknown) => isTbdavError(e, 'TBDAV_CONFLICT'));
    await assert.rejects(f.vfs.mkdir('/d/p'), (e: unknown) => isTbdavError(e, 'TBDAV_EXISTS'));
    assert.deepEqual(await readdir(join(f.dir, 'wb')).then((n) => n.length), 1);
  });
});
