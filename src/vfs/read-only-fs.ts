/**
 * ReadOnlyFs: the FileSystem (types.ts) of a read-only Remote (a TeraBox share), with the same
 * metadata cache as the drive (MetadataCache: TTL, single-flight listings). Reads go to the remote
 * with the range pushed down; every write answers TBDAV_FORBIDDEN with `reason` (the WebDAV layer
 * answers 403 with that text). No local state: no dead properties, no placeholders.
 *
 * Paths are the remote's own ('/' = the remote's root); MountFs maps them into the tree.
 *
 * Concurrency: the cache's rules (see metadata-cache.ts); nothing else is shared.
 */
import { TbdavError, isTbdavError } from '../shared/errors.js';
import type { ByteRange, CallOptions, Entry, Quota, Remote } from '../remote/types.js';
import { clampRange } from '../remote/range.js';
import { MetadataCache } from './metadata-cache.js';
import { normalizePath } from './paths.js';
import type { CopyMoveResult, DeadProps, FileSystem, OpenReadResult, PutResult, VfsEntry } from './types.js';
import { Readable } from 'node:stream';

export interface ReadOnlyFsOptions {
  remote: Remote;
  /** Why writes are refused, e.g. "'x' is a read-only TeraBox share". */
  reason: string;
  cacheTtlMs?: number;
  cacheMaxEntries?: number;
  now?: () => number;
}

export class ReadOnlyFs implements FileSystem {
  readonly remote: Remote;
  readonly cache: MetadataCache;
  private readonly reason: string;

  constructor(opts: ReadOnlyFsOptions) {
    this.remote = opts.remote;
    this.reason = opts.reason;
    this.cache = new MetadataCache({ ttlMs: opts.cacheTtlMs, maxEntries: opts.cacheMaxEntries, now: opts.now });
  }

  private refuse(op: string, path: string): TbdavError {
    return new TbdavError('TBDAV_FORBIDDEN', `${op} ${path}: ${this.reason}`);
  }

  async stat(path: string, opts?: CallOptions): Promise<VfsEntry> {
    const p = normalizePath(path);
    const known = this.cache.lookup(p);
    if (known === null) throw new TbdavError('TBDAV_NOT_FOUND', `stat ${p}: not found`);
    if (known) return known;
    const e = await this.cache.statThrough(p, async () => {
      try {
        return await this.remote.stat(p, opts);
      } catch (err) {
        if (isTbdavError(err, 'TBDAV_NOT_FOUND')) return null;
        throw err;
      }
    });
    if (!e) throw new TbdavError('TBDAV_NOT_FOUND', `stat ${p}: not found`);
    return e;
  }

  async list(path: string, opts?: CallOptions): Promise<VfsEntry[]> {
    const p = normalizePath(path);
    const known = p === '/' ? undefined : this.cache.lookup(p);
    if (known === null) throw new TbdavError('TBDAV_NOT_FOUND', `list ${p}: no such folder`);
    if (known && !known.isDir) throw new TbdavError('TBDAV_CONFLICT', `list ${p}: not a folder`);
    try {
      return await this.cache.list(p, () => this.remote.list(p, opts));
    } catch (err) {
      if (isTbdavError(err, 'TBDAV_NOT_FOUND')) this.cache.removeTree(p);
      throw err;
    }
  }

  async openRead(path: string, range?: ByteRange, opts?: CallOptions): Promise<OpenReadResult> {
    const p = normalizePath(path);
    const entry = await this.stat(p, opts);
    if (entry.isDir) throw new TbdavError('TBDAV_CONFLICT', `openRead ${p}: is a folder`);
    const { start, end } = clampRange('openRead', p, entry.size, range);
    if (entry.size === 0 || end < start) return { entry, stream: Readable.from([]) };
    const stream = await this.remote.openRead(p, range ? { start, end } : undefined, { ...opts, entry: entry as Entry });
    return { entry, stream };
  }

  async put(path: string): Promise<PutResult> {
    throw this.refuse('PUT', path);
  }

  async mkdir(path: string): Promise<VfsEntry> {
    throw this.refuse('MKCOL', path);
  }

  async remove(path: string): Promise<void> {
    throw this.refuse('DELETE', path);
  }

  async move(from: string): Promise<CopyMoveResult> {
    throw this.refuse('MOVE', from);
  }

  async copy(from: string): Promise<CopyMoveResult> {
    throw this.refuse('COPY', from);
  }

  async quota(): Promise<Quota> {
    return { total: 0, used: 0 };
  }

  async getProps(): Promise<DeadProps> {
    return {};
  }

  async patchProps(path: string): Promise<void> {
    throw this.refuse('PROPPATCH', path);
  }

  /** Forget what is cached (the share changed, or its link went away). */
  forgetAll(): void {
    this.cache.clear();
  }

  async close(): Promise<void> {
    this.cache.clear();
  }
}
