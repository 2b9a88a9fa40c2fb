/**
 * MemoryRemote: an in-memory Remote that obeys the contract of ./types.ts exactly. Used by the vfs
 * and dav tests, and as the reference the contract suite (test/contract/) is checked against.
 *
 * Behaviour worth knowing:
 *  - Errors by code: NOT_FOUND (path or source absent), EXISTS (target there and overwrite false;
 *    mkdir onto anything), CONFLICT (parent missing or a file; list/openRead of the wrong kind;
 *    write onto a folder), BAD_REQUEST (remove '/', move/copy onto itself or into its own subtree),
 *    RANGE (openRead start beyond the end of a non-empty file), ABORTED (signal fired).
 *  - `hash` is the content md5. Like a backend that uploads in shards, it asks for bodies cut in
 *    `shardBytes` shards (`shardSizeFor`, default 4 MiB), so that the spool's shard hashing is
 *    exercised. `write` checks the spooled bytes against `size`, `contentMd5` and `blockMd5s`
 *    (TBDAV_INTEGRITY on mismatch).
 *  - `refuseZeroByte: true` mimics the service variant that refuses 0-byte files: writing 0 bytes
 *    rejects with TBDAV_FATAL (not retryable, not the caller's fault) after the parent checks.
 *  - `calls` counts calls per method name ('list', 'stat', ...) for economy tests.
 *
 * Concurrency: single-threaded JS; every method does its checks and its mutation of `nodes` without
 * an await in between (the only await, reading the spool file in `write`, happens before the checks),
 * so each operation is atomic with respect to the others.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ShardHasher } from './hash.js';
import { baseName, isInside, parentPath } from './paths.js';
import { clampRange } from './range.js';
import { TbdavError, abortError } from '../shared/errors.js';
import type {
  ByteRange,
  CallOptions,
  Entry,
  MoveOptions,
  Quota,
  Remote,
  SpooledFile,
  WriteOptions,
  WriteResult,
} from './types.js';

export interface MemoryRemoteOptions {
  /** Refuse 0-byte writes with TBDAV_FATAL, like the web variant of the service. */
  refuseZeroByte?: boolean;
  /** Total space reported by quota() (default 1 TiB). */
  quotaTotal?: number;
  /** Clock for mtimes/ctimes (tests), ms. */
  now?: () => number;
  /** Shard size asked of the spool (shardSizeFor), bytes (default 4 MiB). */
  shardBytes?: number;
}

interface Node {
  isDir: boolean;
  data: Buffer;
  mtime: number;
  ctime: number;
  id: string;
  /** Content md5 (files). */
  hash?: string;
}

const CHUNK = 64 * 1024;

function checkPath(op: string, path: string): void {
  if (typeof path !== 'string' || !path.startsWith('/') || (path !== '/' && path.endsWith('/')) || path.includes('//')) {
    throw new TbdavError('TBDAV_BAD_REQUEST', `${op} ${String(path)}: not a normalised absolute path`);
  }
}

function checkSignal(op: string, path: string, opts?: CallOptions): void {
  if (opts?.signal?.aborted) throw abortError(`${op} ${path}`, opts.signal);
}

export class MemoryRemote implements Remote {
  readonly name = 'memory';
  /** Calls per method name. */
  readonly calls: Record<string, number> = {};
  private readonly nodes = new Map<string, Node>();
  private readonly options: Required<Pick<MemoryRemoteOptions, 'refuseZeroByte' | 'quotaTotal' | 'shardBytes'>> & { now: () => number };
  private nextId = 1;

  constructor(options: MemoryRemoteOptions = {}) {
    this.options = {
      refuseZeroByte: options.refuseZeroByte ?? false,
      quotaTotal: options.quotaTotal ?? 2 ** 40,
      now: options.now ?? Date.now,
      shardBytes: Math.max(1, options.shardBytes ?? 4 * 1024 * 1024),
    };
    const t = this.options.now();
    this.nodes.set('/', { isDir: true, data: Buffer.alloc(0), mtime: t, ctime: t, id: String(this.nextId++) });
  }

  shardSizeFor(): number {
    return this.options.shardBytes;
  }

  /** Reset the call counters (tests). */
  resetCalls(): void {
    for (const k of Object.keys(this.calls)) delete this.calls[k];
  }

  private count(method: string): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
  }

  private entryOf(path: string, n: Node): Entry {
    const e: Entry = { path, name: baseName(path), isDir: n.isDir, size: n.isDir ? 0 : n.data.length, mtime: n.mtime, ctime: n.ctime, id: n.id };
    if (n.hash !== undefined) e.hash = n.hash;
    return e;
  }

  private requireParentFolder(op: string, path: string): void {
    const parent = this.nodes.get(parentPath(path));
    if (!parent || !parent.isDir) throw new TbdavError('TBDAV_CONFLICT', `${op} ${path}: parent folder missing`);
  }

  /** Paths at or under `path`. */
  private subtree(path: string): string[] {
    return [...this.nodes.keys()].filter((p) => p === path || isInside(p, path));
  }

  private removeTree(path: string): void {
    for (const p of this.subtree(path)) this.nodes.delete(p);
  }

  async list(path: string, opts?: CallOptions): Promise<Entry[]> {
    this.count('list');
    checkPath('list', path);
    checkSignal('list', path, opts);
    const n = this.nodes.get(path);
    if (!n) throw new TbdavError('TBDAV_NOT_FOUND', `list ${path}: no such folder`);
    if (!n.isDir) throw new TbdavError('TBDAV_CONFLICT', `list ${path}: not a folder`);
    const out: Entry[] = [];
    for (const [p, child] of this.nodes) {
      if (p !== '/' && parentPath(p) === path) out.push(this.entryOf(p, child));
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async stat(path: string, opts?: CallOptions): Promise<Entry> {
    this.count('stat');
    checkPath('stat', path);
    checkSignal('stat', path, opts);
    const n = this.nodes.get(path);
    if (!n) throw new TbdavError('TBDAV_NOT_FOUND', `stat ${path}: not found`);
    return this.entryOf(path, n);
  }

  async openRead(path: string, range?: ByteRange, opts?: CallOptions & { entry?: Entry }): Promise<Readable> {
    this.count('openRead');
    checkPath('openRead', path);
    checkSignal('openRead', path, opts);
    const n = this.nodes.get(path);
    if (!n) throw new TbdavError('TBDAV_NOT_FOUND', `openRead ${path}: not found`);
    if (n.isDir) throw new TbdavError('TBDAV_CONFLICT', `openRead ${path}: is a folder`);
    const { start, end } = clampRange('openRead', path, n.data.length, range);
    // Snapshot: a later write replaces n.data with a new Buffer, this one stays valid.
    const data = n.data;
    const signal = opts?.signal;
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let pos = start; pos <= end; pos += CHUNK) {
        if (signal?.aborted) throw abortError(`openRead ${path}`, signal);
        yield data.subarray(pos, Math.min(end + 1, pos + CHUNK));
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  async write(path: string, file: SpooledFile, opts: WriteOptions): Promise<WriteResult> {
    this.count('write');
    checkPath('write', path);
    checkSignal('write', path, opts);
    if (path === '/') throw new TbdavError('TBDAV_CONFLICT', 'write /: is a folder');
    const data = await readFile(file.localPath);
    checkSignal('write', path, opts);
    if (data.length !== file.size) {
      throw new TbdavError('TBDAV_INTEGRITY', `write ${path}: spool holds ${data.length} bytes, ${file.size} announced`);
    }
    const md5 = createHash('md5').update(data).digest('hex');
    if (md5 !== file.contentMd5) throw new TbdavError('TBDAV_INTEGRITY', `write ${path}: content md5 mismatch`);
    const shards = new ShardHasher(file.shardSize);
    shards.update(data);
    if (JSON.stringify(shards.finish()) !== JSON.stringify(file.blockMd5s)) throw new TbdavError('TBDAV_INTEGRITY', `write ${path}: shard md5s mismatch`);
    this.requireParentFolder('write', path);
    const existing = this.nodes.get(path);
    if (existing?.isDir) throw new TbdavError('TBDAV_CONFLICT', `write ${path}: a folder is there`);
    if (existing && !opts.overwrite) throw new TbdavError('TBDAV_EXISTS', `write ${path}: exists`);
    if (data.length === 0 && this.options.refuseZeroByte) {
      throw new TbdavError('TBDAV_FATAL', `write ${path}: the service refuses 0-byte files`);
    }
    const now = this.options.now();
    const rapid = [...this.nodes.values()].some((n) => !n.isDir && n.hash === md5 && n.data.length === data.length);
    const node: Node = {
      isDir: false,
      data,
      mtime: opts.mtime ?? now,
      ctime: existing?.ctime ?? now,
      id: String(this.nextId++),
      hash: md5,
    };
    this.nodes.set(path, node);
    return { entry: this.entryOf(path, node), rapid };
  }

  async mkdir(path: string, opts?: CallOptions): Promise<Entry> {
    this.count('mkdir');
    checkPath('mkdir', path);
    checkSignal('mkdir', path, opts);
    if (this.nodes.has(path)) throw new TbdavError('TBDAV_EXISTS', `mkdir ${path}: exists`);
    this.requireParentFolder('mkdir', path);
    const now = this.options.now();
    const node: Node = { isDir: true, data: Buffer.alloc(0), mtime: now, ctime: now, id: String(this.nextId++) };
    this.nodes.set(path, node);
    return this.entryOf(path, node);
  }

  async remove(path: string, opts?: CallOptions): Promise<void> {
    this.count('remove');
    checkPath('remove', path);
    checkSignal('remove', path, opts);
    if (path === '/') throw new TbdavError('TBDAV_BAD_REQUEST', 'remove /: the root cannot be removed');
    if (!this.nodes.has(path)) throw new TbdavError('TBDAV_NOT_FOUND', `remove ${path}: not found`);
    this.removeTree(path);
  }

  private checkTransfer(op: string, from: string, to: string, opts: MoveOptions): void {
    checkPath(op, from);
    checkPath(op, to);
    checkSignal(op, from, opts);
    if (from === '/' || from === to || isInside(to, from)) {
      throw new TbdavError('TBDAV_BAD_REQUEST', `${op} ${from} -> ${to}: onto itself or into its own subtree`);
    }
    if (!this.nodes.has(from)) throw new TbdavError('TBDAV_NOT_FOUND', `${op} ${from}: not found`);
    this.requireParentFolder(op, to);
    if (this.nodes.has(to) && !opts.overwrite) throw new TbdavError('TBDAV_EXISTS', `${op} ${from} -> ${to}: destination exists`);
  }

  async move(from: string, to: string, opts: MoveOptions): Promise<void> {
    this.count('move');
    this.checkTransfer('move', from, to, opts);
    if (isInside(from, to)) {
      // Replacing an ancestor of the source with the source itself: take the source out first.
      throw new TbdavError('TBDAV_BAD_REQUEST', `move ${from} -> ${to}: destination contains the source`);
    }
    this.removeTree(to);
    for (const p of this.subtree(from)) {
      const n = this.nodes.get(p)!;
      this.nodes.delete(p);
      this.nodes.set(to + p.slice(from.length), n);
    }
  }

  async copy(from: string, to: string, opts: MoveOptions): Promise<void> {
    this.count('copy');
    this.checkTransfer('copy', from, to, opts);
    if (isInside(from, to)) throw new TbdavError('TBDAV_BAD_REQUEST', `copy ${from} -> ${to}: destination contains the source`);
    const now = this.options.now();
    const copies: [string, Node][] = this.subtree(from).map((p) => {
      const n = this.nodes.get(p)!;
      return [to + p.slice(from.length), { ...n, ctime: now, id: String(this.nextId++) }];
    });
    this.removeTree(to);
    for (const [p, n] of copies) this.nodes.set(p, n);
  }

  async quota(opts?: CallOptions): Promise<Quota> {
    this.count('quota');
    checkSignal('quota', '/', opts);
    let used = 0;
    for (const n of this.nodes.values()) used += n.data.length;
    return { total: this.options.quotaTotal, used };
  }
}
