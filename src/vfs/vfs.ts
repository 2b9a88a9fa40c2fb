/**
 * Vfs: filesystem semantics (src/vfs/types.ts FileSystem) over any Remote.
 *
 *  - Metadata through MetadataCache (TTL + precise updates on our own writes).
 *  - PUT, write-through (default): spool to disk while hashing, then upload (`commitPut`); answered
 *    after remote.write succeeded.
 *  - PUT, write-back (`writeback` options given): the Vfs opens its own queue (WritebackQueue, the
 *    WritebackPort) and hands it its `noteStored` hook, as rclone's VFS hands its cache a callback.
 *    A PUT spools durably, hands the file to the queue (`deferPut`) and answers with a `pending`
 *    entry; pending files stat/list/read from the queue's spool until `noteStored` reports them
 *    stored — also those the service refused for good (state `failed`), which stay until the user
 *    retries or removes them. Empty files and ignored names never go the queue.
 *  - Local-only files from StateStore: ignored names (never uploaded) and 0-byte placeholders (when
 *    the remote refuses empty files). They list, stat and read like remote files (`local: true`).
 *  - Dead properties and X-OC-Mtime values in StateStore; they follow moves/copies and go with deletes.
 *
 * Concurrency:
 *  - `putTails` (path -> promise of the last PUT commit queued for that path): PUTs to the same path
 *    take their place in arrival order, spool concurrently, and commit one after the other, so the
 *    later request wins. Other operations are not serialised against each other (the remote and the
 *    cache each apply their own updates atomically).
 *  - `quotaCache` / `quotaFlight`: one quota fetch at a time; the cached value is replaced whole.
 *  - `zeroByteRefused` only goes from false to true.
 *  - The write-back port keeps its own state; the Vfs asks it (pending/listPending) on every lookup.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { TbdavError, abortError, isTbdavError, type ErrorCode } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { Observer } from '../shared/observer.js';
import type { ByteRange, CallOptions, Entry, Quota, Remote, SpooledFile, WriteResult } from '../remote/types.js';
import { clampRange } from '../remote/range.js';
import { EMPTY_MD5 } from '../remote/hash.js';
import { ContentMd5Memory } from './content-md5.js';
import { MetadataCache } from './metadata-cache.js';
import { baseName, isInside, normalizePath, parentPath, rebase } from './paths.js';
import { removeSpool, removeStaleSpools, spoolBody } from './spool.js';
import { StateStore, type LocalFile } from './state-store.js';
import type { CopyMoveResult, DeadProps, FileSystem, OpenReadResult, PutOptions, PutResult, VfsEntry } from './types.js';
import {
  WritebackQueue,
  writebackDirs,
  type PendingInfo,
  type Reservation,
  type WritebackHooks,
  type WritebackPort,
  type WritebackSettings,
} from './writeback.js';

/** How long close() lets running write-back uploads finish before leaving them journalled. */
export const DEFAULT_WRITEBACK_DRAIN_MS = 5000;

export interface VfsOptions {
  remote: Remote;
  stateDir: string;
  cacheDir: string;
  logger?: Logger;
  /** Metadata freshness, ms (default 5 min). */
  cacheTtlMs?: number;
  /** Bound on cached metadata entries (default 100 000). */
  cacheMaxEntries?: number;
  /** Quota freshness, ms (default 60 s). */
  quotaTtlMs?: number;
  /** Glob-ish basenames kept locally, never uploaded (default ['._*', '.DS_Store', 'Thumbs.db', 'desktop.ini']). */
  ignore?: string[];
  /** Largest accepted body, bytes (default: no limit). */
  maxUploadBytes?: number;
  /** Clock, ms (tests). */
  now?: () => number;
  /**
   * Write-back (upload.mode writeback): non-empty PUTs are answered once the body is spooled durably
   * and journalled; the upload runs in the background and the file shows as `pending` meanwhile.
   * The Vfs opens its queue (WritebackQueue, journal in `<stateDir>/writeback`, bodies in
   * `<cacheDir>/writeback`) once it exists itself, so that resumed uploads report to it, and closes
   * it first in close().
   */
  writeback?: VfsWritebackOptions;
  /** Where cache hits and misses are reported (/metrics, the status page's hit ratio). */
  observer?: Observer;
}

export interface VfsWritebackOptions extends WritebackSettings {
  /** Wait up to this long for the upload before answering with a pending entry, ms (default 0). */
  waitMs?: number;
  /** close(): running uploads get this long to finish before the rest stays journalled, ms (default 5000). */
  drainMs?: number;
  /** Tests: open another port than a WritebackQueue (given the hooks the Vfs wants called). */
  openPort?: (hooks: WritebackHooks) => Promise<WritebackPort>;
}

export const DEFAULT_IGNORE = ['._*', '.DS_Store', 'Thumbs.db', 'desktop.ini'];
export const DEFAULT_QUOTA_TTL_MS = 60_000;
/** Reported when the remote has no quota: 1 PiB. */
export const UNKNOWN_QUOTA_TOTAL = 2 ** 50;

/** Errors of a 0-byte write that do NOT mean "the service refuses empty files". */
const NOT_A_ZERO_BYTE_REFUSAL: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'TBDAV_RETRYABLE',
  'TBDAV_ABORTED',
  'TBDAV_AUTH',
  'TBDAV_NOT_LOGGED_IN',
  'TBDAV_CONFLICT',
  'TBDAV_EXISTS',
  'TBDAV_NOT_FOUND',
  'TBDAV_QUOTA',
  'TBDAV_INSUFFICIENT_STORAGE',
  'TBDAV_INTEGRITY',
  'TBDAV_CONFIG',
]);

/** Compile glob-ish basename patterns ('*' any run, '?' one character) into one matcher. */
export function compileIgnore(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map((p) => {
    const body = [...p].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
    return new RegExp(`^${body}$`, 'u');
  });
  return (name: string) => res.some((r) => r.test(name));
}

/** A file that lives on the remote only (not local-only, not a pending upload). */
function isRemoteFile(e: VfsEntry): boolean {
  return !e.isDir && !e.local && !e.pending;
}

function emptyStream(): Readable {
  return Readable.from([], { objectMode: false });
}

export class Vfs implements FileSystem {
  readonly remote: Remote;
  readonly cache: MetadataCache;
  readonly state: StateStore;
  /** Content md5s of files we uploaded, by their backend hash. */
  private readonly md5s: ContentMd5Memory;
  private readonly cacheDir: string;
  private readonly logger: Logger;
  private readonly observer: Observer | undefined;
  private readonly quotaTtlMs: number;
  private readonly isIgnored: (name: string) => boolean;
  private readonly maxUploadBytes: number | undefined;
  private readonly now: () => number;
  private readonly startedAt: number;
  /** Set once by open() (after the Vfs exists), closed first by close(). */
  private wb: WritebackPort | undefined;
  private readonly writebackWaitMs: number;
  private readonly writebackDrainMs: number;
  private readonly putTails = new Map<string, Promise<void>>();
  private quotaCache: { quota: Quota; at: number } | undefined;
  /** Set once the remote refused a 0-byte file: later empty PUTs go straight to a placeholder. */
  private zeroByteRefused = false;
  private quotaFlight: Promise<Quota> | undefined;

  private constructor(opts: VfsOptions, state: StateStore, md5s: ContentMd5Memory) {
    this.remote = opts.remote;
    this.state = state;
    this.md5s = md5s;
    this.cacheDir = opts.cacheDir;
    this.logger = opts.logger ?? silentLogger();
    this.observer = opts.observer;
    this.now = opts.now ?? Date.now;
    this.cache = new MetadataCache({ ttlMs: opts.cacheTtlMs, maxEntries: opts.cacheMaxEntries, now: this.now });
    this.quotaTtlMs = opts.quotaTtlMs ?? DEFAULT_QUOTA_TTL_MS;
    this.isIgnored = compileIgnore(opts.ignore ?? DEFAULT_IGNORE);
    this.maxUploadBytes = opts.maxUploadBytes;
    this.startedAt = this.now();
    this.writebackWaitMs = opts.writeback?.waitMs ?? 0;
    this.writebackDrainMs = opts.writeback?.drainMs ?? DEFAULT_WRITEBACK_DRAIN_MS;
  }

  /**
   * Open the vfs: loads the local state from `stateDir`; with write-back, then opens its queue, which
   * resumes the journalled uploads (they report to this Vfs).
   */
  static async open(opts: VfsOptions): Promise<Vfs> {
    const state = await StateStore.open(opts.stateDir, { logger: opts.logger });
    const logger = opts.logger ?? silentLogger();
    await removeStaleSpools(opts.cacheDir, logger);
    await state.removeOrphanBlobs();
    const md5s = await ContentMd5Memory.open(opts.stateDir, { logger });
    const vfs = new Vfs(opts, state, md5s);
    if (opts.writeback) {
      const { openPort, waitMs: _w, drainMs: _d, ...settings } = opts.writeback;
      const hooks: WritebackHooks = { onStored: (p, result, upload) => vfs.noteStored(p, result, upload.contentMd5) };
      try {
        vfs.wb = openPort
          ? await openPort(hooks)
          : await WritebackQueue.open({ ...settings, ...writebackDirs(opts.stateDir, opts.cacheDir), remote: opts.remote, logger, ...hooks });
      } catch (err) {
        await state.close();
        throw err;
      }
    }
    return vfs;
  }

  /** The write-back queue (upload.mode writeback), for status and tests. */
  get writeback(): WritebackPort | undefined {
    return this.wb;
  }

  // ------------------------------------------------------------------ entries

  /** A file whose content the vfs holds itself (local, or pending upload): its hash is the content md5. */
  private heldEntry(path: string, size: number, mtime: number, ctime: number, contentMd5: string, held: { local: true } | { pending: true }): VfsEntry {
    return { path, name: baseName(path), isDir: false, size, mtime: this.state.getMtime(path) ?? mtime, ctime, hash: contentMd5, contentMd5, ...held };
  }

  private localEntry(f: LocalFile): VfsEntry {
    return this.heldEntry(f.path, f.size, f.mtime, f.ctime, f.contentMd5, { local: true });
  }

  private pendingEntry(info: PendingInfo): VfsEntry {
    return this.heldEntry(info.path, info.size, info.mtime ?? info.createdAt, info.createdAt, info.contentMd5, { pending: true });
  }

  /** A remote entry as the vfs shows it: with the recorded mtime, and the content md5 when we know it. */
  private decorate(e: VfsEntry): VfsEntry {
    const out: VfsEntry = { ...e };
    const mtime = this.state.getMtime(e.path);
    if (mtime !== undefined) out.mtime = mtime;
    const md5 = e.isDir ? undefined : (e.contentMd5 ?? this.md5s.lookup(e.hash, e.size));
    if (md5 !== undefined) out.contentMd5 = md5;
    return out;
  }

  private rootEntry(): VfsEntry {
    return { path: '/', name: '', isDir: true, size: 0, mtime: this.startedAt, ctime: this.startedAt };
  }

  /** Entry of a normalised path, or undefined when absent. */
  private async lookup(path: string, opts?: CallOptions): Promise<VfsEntry | undefined> {
    if (path === '/') return this.rootEntry();
    const pending = this.wb?.pending(path);
    if (pending) return this.pendingEntry(pending);
    const local = this.state.getLocal(path);
    if (local) return this.localEntry(local);
    const known = this.cache.lookup(path);
    this.observer?.cacheLookup?.({ hit: known !== undefined });
    if (known === null) return undefined;
    if (known) return this.decorate(known);
    const e = await this.cache.statThrough(path, async () => {
      try {
        return await this.remote.stat(path, opts);
      } catch (err) {
        if (isTbdavError(err, 'TBDAV_NOT_FOUND')) return null;
        throw err;
      }
    });
    return e ? this.decorate(e) : undefined;
  }

  private async require(op: string, path: string, opts?: CallOptions): Promise<VfsEntry> {
    const e = await this.lookup(path, opts);
    if (!e) throw new TbdavError('TBDAV_NOT_FOUND', `${op} ${path}: not found`);
    return e;
  }

  /** The parent of `path` must be an existing folder (TBDAV_CONFLICT otherwise). */
  private async requireParent(op: string, path: string, opts?: CallOptions): Promise<void> {
    const parent = parentPath(path);
    const e = await this.lookup(parent, opts);
    if (!e || !e.isDir) throw new TbdavError('TBDAV_CONFLICT', `${op} ${path}: parent folder ${parent} missing`);
  }

  async stat(path: string, opts?: CallOptions): Promise<VfsEntry> {
    const p = normalizePath(path);
    return this.require('stat', p, opts);
  }

  async list(path: string, opts?: CallOptions): Promise<VfsEntry[]> {
    const p = normalizePath(path);
    if (this.state.getLocal(p) || this.wb?.pending(p)) throw new TbdavError('TBDAV_CONFLICT', `list ${p}: not a folder`);
    const known = p === '/' ? undefined : this.cache.lookup(p);
    if (known === null) throw new TbdavError('TBDAV_NOT_FOUND', `list ${p}: no such folder`);
    if (known && !known.isDir) throw new TbdavError('TBDAV_CONFLICT', `list ${p}: not a folder`);
    let remote: Entry[];
    let asked = false;
    try {
      remote = await this.cache.list(p, () => {
        asked = true;
        return this.remote.list(p, opts);
      });
      this.observer?.cacheLookup?.({ hit: !asked });
    } catch (err) {
      // The folder went away (or became a file) behind our back: forget what we knew of it.
      if (isTbdavError(err, 'TBDAV_NOT_FOUND')) this.cache.removeTree(p);
      if (isTbdavError(err, 'TBDAV_CONFLICT')) this.cache.forget(p);
      throw err;
    }
    const byName = new Map<string, VfsEntry>();
    for (const e of remote) byName.set(e.name, this.decorate(e));
    for (const f of this.state.listLocal(p)) {
      const name = baseName(f.path);
      if (f.kind === 'placeholder' && byName.has(name)) {
        // A placeholder is made only where the remote had nothing (or after removing what it had), so
        // a remote file there now came from elsewhere: it replaces the placeholder.
        this.logger.debug(`list ${p}: ${name} appeared on ${this.remote.name}, dropping its local placeholder`);
        await this.state.deleteLocal(f.path);
        continue;
      }
      byName.set(name, this.localEntry(f));
    }
    for (const info of this.wb?.listPending(p) ?? []) byName.set(baseName(info.path), this.pendingEntry(info));
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  // ------------------------------------------------------------------ reads

  async openRead(path: string, range?: ByteRange, opts?: CallOptions): Promise<OpenReadResult> {
    const p = normalizePath(path);
    const entry = await this.require('openRead', p, opts);
    if (entry.isDir) throw new TbdavError('TBDAV_CONFLICT', `openRead ${p}: is a folder`);
    // The contract's one rule for the bytes a range means (remote/range.ts), for every kind of file.
    const { start, end } = clampRange('openRead', p, entry.size, range);
    if (end < start) return { entry, stream: emptyStream() };
    if (entry.pending && this.wb) {
      const stream = await this.wb.openPending(p, { start, end });
      if (stream) return { entry, stream };
      // Stored (or cancelled) in the meantime: read what is there now.
      this.logger.debug(`openRead ${p}: pending upload ended while opening, reading again`);
      return this.openRead(p, range, opts);
    }
    if (entry.local) {
      const f = this.state.getLocal(p);
      if (!f?.blob) return { entry, stream: emptyStream() };
      return { entry, stream: createReadStream(this.state.blobPath(f.blob), { start, end }) };
    }
    const remoteRange = range ? { start, end } : undefined;
    try {
      const stream = await this.remote.openRead(p, remoteRange, { ...opts, entry });
      return { entry, stream };
    } catch (err) {
      if (isTbdavError(err, 'TBDAV_NOT_FOUND')) this.cache.removeTree(p);
      throw err;
    }
  }

  // ------------------------------------------------------------------ writes

  async put(path: string, body: Readable, opts: PutOptions): Promise<PutResult> {
    const p = normalizePath(path);
    const subject = `put ${p}`;
    // Take our place among PUTs to this path now: the later request commits later and wins.
    const prev = this.putTails.get(p) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.putTails.set(p, tail);
    let spool: SpooledFile | undefined;
    let reservation: Reservation | undefined;
    try {
      // Refuse before receiving the body (a 409/412 should not cost the upload)...
      await this.putTarget(p, opts);
      const deferrable = this.wb !== undefined && !this.isIgnored(baseName(p));
      // Hold write-back spool space before reading a body of known size (507 before the upload).
      if (deferrable && opts.expectedSize !== undefined && opts.expectedSize > 0) reservation = this.wb!.reserve(opts.expectedSize, subject);
      spool = await spoolBody(body, {
        cacheDir: this.cacheDir,
        expectedSize: opts.expectedSize,
        maxBytes: this.maxUploadBytes,
        signal: opts.signal,
        durable: deferrable,
        ...(this.remote.shardSizeFor ? { shardSizeFor: this.remote.shardSizeFor.bind(this.remote) } : {}),
        subject,
        logger: this.logger,
      });
      await prev;
      if (opts.signal?.aborted) throw abortError(subject, opts.signal);
      // ...and again now that it is this PUT's turn: the path may have changed while the body came.
      const before = await this.putTarget(p, opts);
      if (deferrable && spool.size > 0) return await this.deferPut(p, spool, before, reservation, opts);
      return await this.commitPut(p, spool, before, opts);
    } finally {
      // After a successful enqueue the spool file has been moved away and the reservation consumed:
      // both calls are then no-ops.
      reservation?.release();
      if (spool) await removeSpool(spool, this.logger);
      release();
      if (this.putTails.get(p) === tail) this.putTails.delete(p);
    }
  }

  /**
   * The PUT preconditions, in one place: the parent is a folder, no folder is at the path, and a
   * file there only with overwrite. Answers what is there (undefined: nothing).
   */
  private async putTarget(p: string, opts: PutOptions): Promise<VfsEntry | undefined> {
    if (p === '/') throw new TbdavError('TBDAV_CONFLICT', `put ${p}: is a folder`);
    await this.requireParent('put', p, opts);
    const before = await this.lookup(p, opts);
    if (before?.isDir) throw new TbdavError('TBDAV_CONFLICT', `put ${p}: a folder is there`);
    if (before && !opts.overwrite) throw new TbdavError('TBDAV_EXISTS', `put ${p}: exists`);
    return before;
  }

  /** New content at `p`: its mtime is the client's (X-OC-Mtime) when given, else none of ours. */
  private async recordPutMtime(p: string, mtime: number | undefined): Promise<void> {
    if (mtime !== undefined) await this.state.setMtime(p, mtime);
    else if (this.state.getMtime(p) !== undefined) await this.state.setMtime(p, undefined);
  }

  /**
   * Write-back: hand the durable spool file to the queue and answer with a pending entry (or, with
   * writeback.waitMs, with the stored entry when the upload finishes in time). Runs alone for its path.
   */
  private async deferPut(p: string, spool: SpooledFile, before: VfsEntry | undefined, reservation: Reservation | undefined, opts: PutOptions): Promise<PutResult> {
    const wb = this.wb!;
    const upload = await wb.enqueue(p, spool, { ...(reservation ? { reservation } : {}), mtime: opts.mtime, requestId: opts.requestId });
    // A placeholder at this path is replaced by the pending content.
    if (this.state.getLocal(p)) await this.state.deleteLocal(p);
    await this.recordPutMtime(p, opts.mtime);
    this.logger.debug(`put ${p}: ${spool.size} bytes journalled for write-back`, { requestId: opts.requestId });
    const created = before === undefined;
    if (this.writebackWaitMs > 0) {
      const stored = await wb.waitStored(upload, this.writebackWaitMs);
      if (stored) return { entry: this.decorate({ ...stored.entry, contentMd5: spool.contentMd5 } satisfies VfsEntry), created };
    }
    return { entry: this.pendingEntry(upload), created };
  }

  /**
   * A write-back upload was stored and is still the newest for its path: update the cache before it
   * stops being pending. Pass it as the queue's `onStored`.
   */
  async noteStored(path: string, result: WriteResult, contentMd5?: string): Promise<void> {
    const entry: VfsEntry = { ...result.entry };
    if (contentMd5 !== undefined) entry.contentMd5 = contentMd5;
    // The cache holds the vfs's view of its own writes (with the content md5) until refreshed;
    // updated synchronously, before the upload stops being pending.
    this.cache.putEntry(entry);
    // on disk soon (close() waits for it); the answer need not wait for the fsync
    if (contentMd5 !== undefined) void this.md5s.remember(entry.hash, entry.size, contentMd5);
    this.logger.debug(`put ${path}: write-back upload stored${result.rapid ? ' (rapid upload)' : ''}`);
  }

  /**
   * Store a spooled body at `p` now (write-through). Runs alone for its path (see putTails).
   */
  private async commitPut(p: string, spool: SpooledFile, before: VfsEntry | undefined, opts: PutOptions): Promise<PutResult> {
    const subject = `put ${p}`;
    const created = before === undefined;
    const now = this.now();

    if (this.isIgnored(baseName(p))) {
      const blob = spool.size > 0 ? await this.state.adoptBlob(spool.localPath) : undefined;
      const file: LocalFile = { path: p, kind: 'ignored', size: spool.size, mtime: opts.mtime ?? now, ctime: before?.ctime ?? now, contentMd5: spool.contentMd5 };
      if (blob) file.blob = blob;
      await this.state.setLocal(file);
      this.logger.debug(`${subject}: ignored name, kept locally`, { size: spool.size });
      return { entry: this.localEntry(file), created };
    }

    if (spool.size === 0 && this.zeroByteRefused) {
      return this.keepPlaceholder(p, before, created, opts);
    }
    let entry: VfsEntry;
    try {
      const res = await this.remote.write(p, spool, { overwrite: opts.overwrite || before !== undefined, mtime: opts.mtime, signal: opts.signal, requestId: opts.requestId, checked: true });
      entry = { ...res.entry, contentMd5: spool.contentMd5 } satisfies VfsEntry;
      void this.md5s.remember(entry.hash, entry.size, spool.contentMd5); // on disk soon (close() waits for it)
      this.logger.debug(`${subject}: stored ${spool.size} bytes on ${this.remote.name}${res.rapid ? ' (rapid upload)' : ''}`, { requestId: opts.requestId });
    } catch (err) {
      if (spool.size === 0 && isTbdavError(err) && !NOT_A_ZERO_BYTE_REFUSAL.has(err.code)) {
        this.zeroByteRefused = true;
        this.logger.info(`${subject}: ${this.remote.name} refuses 0-byte files (${err.code}); empty files are kept as local placeholders from now on`);
        return this.keepPlaceholder(p, before, created, opts);
      }
      throw err;
    }
    this.cache.putEntry(entry);
    if (this.state.getLocal(p)) await this.state.deleteLocal(p);
    await this.recordPutMtime(p, opts.mtime);
    return { entry: this.decorate(entry), created };
  }

  /** The remote refused an empty file: keep a local placeholder that lists and reads as empty. */
  private async keepPlaceholder(p: string, before: VfsEntry | undefined, created: boolean, opts: PutOptions): Promise<PutResult> {
    this.logger.debug(`put ${p}: keeping a local 0-byte placeholder`);
    if (before && !before.local) {
      // The path held remote content that an empty file replaces.
      await this.remote.remove(p, opts);
      this.cache.removeTree(p);
    }
    const now = this.now();
    const file: LocalFile = { path: p, kind: 'placeholder', size: 0, mtime: opts.mtime ?? now, ctime: before?.ctime ?? now, contentMd5: EMPTY_MD5 };
    await this.state.setLocal(file);
    return { entry: this.localEntry(file), created };
  }

  async mkdir(path: string, opts?: CallOptions): Promise<VfsEntry> {
    const p = normalizePath(path);
    if (p === '/') throw new TbdavError('TBDAV_EXISTS', 'mkdir /: exists');
    await this.requireParent('mkdir', p, opts);
    if (await this.lookup(p, opts)) throw new TbdavError('TBDAV_EXISTS', `mkdir ${p}: exists`);
    let e: Entry;
    try {
      e = await this.cache.mkdirThrough(p, () => this.remote.mkdir(p, opts));
    } catch (err) {
      // The folder may exist now (made before a reset/5xx, or EXISTS: made by another client or an
      // earlier attempt): a cached "absent" for it must not outlive this (PUT into it would get 409).
      // Except EXISTS while the cache holds the folder's listing: a concurrent MKCOL of ours made it
      // and seeded it (rclone --transfers 8 makes the parent of every upload at once); forgetting
      // that would cost a lookup per upload into it (issue 10).
      if (!(isTbdavError(err, 'TBDAV_EXISTS') && this.cache.getListing(p) !== undefined)) this.cache.unsure(p);
      throw err;
    }
    return this.decorate(e);
  }

  async remove(path: string, opts?: CallOptions): Promise<void> {
    const p = normalizePath(path);
    if (p === '/') throw new TbdavError('TBDAV_BAD_REQUEST', 'remove /: the root cannot be removed');
    const e = await this.require('remove', p, opts);
    await this.removeKnown(p, e, opts);
  }

  private async removeKnown(p: string, e: VfsEntry, opts?: CallOptions): Promise<void> {
    // Pending write-back uploads at or under p are cancelled first, so none lands after the delete.
    if (this.wb && (e.pending || e.isDir)) await this.wb.remove(p);
    // An upload that was finishing when it was cancelled may have stored the file anyway, even where
    // the cache says nothing is: ask the remote for pending paths.
    if (!e.local) await this.removeRemoteIfThere(p, opts, e.pending === true);
    this.cache.removeTree(p);
    this.cache.putAbsent(p);
    await this.state.deleteTree(p);
  }

  /**
   * Remove `p` on the remote unless the cache knows it is absent (`force`: even then); NOT_FOUND
   * counts as done. With `force` (making sure a pending upload left nothing behind) a name the
   * backend refuses counts as done too: nothing can be stored under it (a write-back upload
   * refused for its name never reached the remote, and its MOVE or DELETE did what was asked).
   */
  private async removeRemoteIfThere(p: string, opts?: CallOptions, force = false): Promise<void> {
    if (!force && this.cache.lookup(p) === null) return;
    try {
      await this.remote.remove(p, opts);
    } catch (err) {
      // Already gone upstream (changed elsewhere, or only ever pending): the local records still go.
      const absent = isTbdavError(err, 'TBDAV_NOT_FOUND') || (force && isTbdavError(err, 'TBDAV_INVALID_NAME'));
      if (!absent) throw err;
      this.logger.debug(`remove ${p}: absent on the remote (${(err as { code?: string }).code})`);
    }
  }

  private async transferChecks(op: 'move' | 'copy', fromIn: string, toIn: string, opts: CallOptions) {
    const from = normalizePath(fromIn);
    const to = normalizePath(toIn);
    if (from === '/' || to === '/') throw new TbdavError('TBDAV_BAD_REQUEST', `${op} ${from} -> ${to}: the root cannot be moved, copied or replaced`);
    if (from === to || isInside(to, from)) throw new TbdavError('TBDAV_BAD_REQUEST', `${op} ${from} -> ${to}: onto itself or into its own subtree`);
    const src = await this.require(op, from, opts);
    await this.requireParent(op, to, opts);
    const dst = await this.lookup(to, opts);
    return { from, to, src, dst };
  }

  async move(fromIn: string, toIn: string, opts: { overwrite: boolean; mtime?: number } & CallOptions): Promise<CopyMoveResult> {
    const { from, to, src, dst } = await this.transferChecks('move', fromIn, toIn, opts);
    if (dst) {
      if (!opts.overwrite) throw new TbdavError('TBDAV_PRECONDITION', `move ${from} -> ${to}: destination exists`);
      if (isInside(from, to)) throw new TbdavError('TBDAV_BAD_REQUEST', `move ${from} -> ${to}: destination contains the source`);
    }
    const bothRemoteFiles = dst !== undefined && isRemoteFile(dst) && isRemoteFile(src);
    if (dst && !bothRemoteFiles) await this.removeKnown(to, dst, opts);
    if (src.pending && this.wb && (await this.wb.move(from, to)) > 0) {
      // The pending upload goes to the new path. An older version stored at the old path goes away,
      // and so does a copy that the upload stored there just as it was stopped (the cache may not
      // know of it: ask the remote).
      await this.removeRemoteIfThere(from, opts, true);
      this.cache.removeTree(from);
      this.cache.putAbsent(from);
      this.cache.removeTree(to);
    } else if (src.pending) {
      // Pending when looked up, but the upload finished (it is stored at `from`) before the move
      // reached the queue: move the stored file.
      this.logger.debug(`move ${from} -> ${to}: the upload finished meanwhile, moving the stored file`, { requestId: opts.requestId });
      await this.remoteMove(from, to, { ...opts, overwrite: opts.overwrite });
      this.cache.removeTree(from);
      this.cache.putAbsent(from);
      await this.learnTransferred('move', from, to, opts);
    } else if (!src.local) {
      const wb = this.wb;
      if (src.isDir && wb && wb.pendingUnder(from).length > 0) {
        // Uploads pending inside a moved folder follow it: they are stopped while the folder moves on
        // the remote (none lands in the old folder after it moved) and restart under `to` after.
        let ran = false;
        await wb.move(from, to, {
          whileStopped: async () => {
            ran = true;
            await this.remoteMove(from, to, { ...opts, overwrite: bothRemoteFiles });
          },
        });
        if (!ran) await this.remoteMove(from, to, { ...opts, overwrite: bothRemoteFiles });
      } else {
        await this.remoteMove(from, to, { ...opts, overwrite: bothRemoteFiles });
      }
      this.cache.moveTree(from, to, src);
    } else {
      this.cache.removeTree(to);
    }
    await this.state.moveTree(from, to);
    if (opts.mtime !== undefined) await this.state.setMtime(to, opts.mtime);
    return { created: dst === undefined };
  }

  /** A file was moved or copied on the remote to `to`: replace what the cache knew there with a fresh stat. */
  private async learnTransferred(op: 'move' | 'copy', from: string, to: string, opts: CallOptions): Promise<void> {
    this.cache.removeTree(to);
    try {
      this.cache.putEntry(await this.remote.stat(to, opts));
    } catch (err) {
      // The transfer is done; the listing will be fetched again when asked.
      this.logger.debug(`${op} ${from} -> ${to}: stat of the result failed`, { error: String(err) });
      this.cache.forget(parentPath(to));
    }
  }

  private async remoteMove(from: string, to: string, opts: { overwrite: boolean } & CallOptions): Promise<void> {
    if (!this.remote.move) throw new TbdavError('TBDAV_FATAL', `move ${from} -> ${to}: the ${this.remote.name} remote cannot move`);
    await this.remote.move(from, to, { overwrite: opts.overwrite, signal: opts.signal, requestId: opts.requestId });
  }

  private async remoteCopy(from: string, to: string, opts: { overwrite: boolean } & CallOptions): Promise<void> {
    if (!this.remote.copy) throw new TbdavError('TBDAV_FATAL', `copy ${from} -> ${to}: the ${this.remote.name} remote cannot copy`);
    await this.remote.copy(from, to, { overwrite: opts.overwrite, signal: opts.signal, requestId: opts.requestId });
  }

  async copy(fromIn: string, toIn: string, opts: { overwrite: boolean; depth: 0 | 'infinity'; mtime?: number } & CallOptions): Promise<CopyMoveResult> {
    const { from, to, src, dst } = await this.transferChecks('copy', fromIn, toIn, opts);
    if (dst) {
      if (!opts.overwrite) throw new TbdavError('TBDAV_PRECONDITION', `copy ${from} -> ${to}: destination exists`);
      if (isInside(from, to)) throw new TbdavError('TBDAV_BAD_REQUEST', `copy ${from} -> ${to}: destination contains the source`);
    }
    const shallowFolder = src.isDir && opts.depth === 0;
    const bothRemoteFiles = dst !== undefined && isRemoteFile(dst) && isRemoteFile(src);
    if (dst && !bothRemoteFiles) await this.removeKnown(to, dst, opts);
    if (shallowFolder) {
      await this.cache.mkdirThrough(to, () => this.remote.mkdir(to, opts));
    } else if (src.pending && this.wb && (await this.wb.copy(from, to, { requestId: opts.requestId })) !== undefined) {
      this.cache.removeTree(to);
    } else if (src.pending) {
      // Pending when looked up, but the upload finished (it is stored at `from`) before the copy
      // reached the queue: copy the stored file.
      this.logger.debug(`copy ${from} -> ${to}: the upload finished meanwhile, copying the stored file`, { requestId: opts.requestId });
      await this.remoteCopy(from, to, { ...opts, overwrite: opts.overwrite });
      await this.learnTransferred('copy', from, to, opts);
    } else if (!src.local) {
      // Uploads pending inside a copied folder, as they were before the remote copy started.
      const pendingInside = src.isDir && this.wb ? this.wb.pendingUnder(from).map((i) => i.path) : [];
      await this.remoteCopy(from, to, { ...opts, overwrite: bothRemoteFiles });
      await this.learnTransferred('copy', from, to, opts);
      // Uploads pending inside a copied folder are copied as pending uploads of their own. One that
      // finished meanwhile may have landed after the remote copy took its files: copy the stored file.
      for (const p of pendingInside) {
        const dest = rebase(p, from, to);
        if ((await this.wb!.copy(p, dest, { requestId: opts.requestId })) !== undefined) continue;
        this.logger.debug(`copy ${from} -> ${to}: upload of ${p} finished during the copy, copying the stored file`, { requestId: opts.requestId });
        try {
          await this.remoteCopy(p, dest, { ...opts, overwrite: true });
        } catch (err) {
          // Cancelled or given up meanwhile: there is nothing stored to copy.
          if (!isTbdavError(err, 'TBDAV_NOT_FOUND')) throw err;
          this.logger.debug(`copy ${from} -> ${to}: ${p} is not stored either, nothing to copy`);
        }
        await this.learnTransferred('copy', p, dest, opts);
      }
    } else {
      this.cache.removeTree(to);
    }
    await this.state.copyTree(from, to, !shallowFolder);
    if (opts.mtime !== undefined) await this.state.setMtime(to, opts.mtime);
    return { created: dst === undefined };
  }

  // ------------------------------------------------------------------ quota and properties

  async quota(opts?: CallOptions): Promise<Quota> {
    const c = this.quotaCache;
    if (c && this.now() - c.at < this.quotaTtlMs) return { ...c.quota };
    if (!this.remote.quota) return { total: UNKNOWN_QUOTA_TOTAL, used: 0 };
    if (!this.quotaFlight) {
      const quotaFn = this.remote.quota.bind(this.remote);
      this.quotaFlight = (async () => {
        try {
          const q = await quotaFn(opts);
          this.quotaCache = { quota: { ...q }, at: this.now() };
          return q;
        } catch (err) {
          // Clients re-read quota often (Finder, on every root PROPFIND): an old value beats an error.
          if (!c) throw err;
          this.logger.debug(`quota: ${this.remote.name} failed, answering the value from ${this.now() - c.at} ms ago`, { error: String(err) });
          return c.quota;
        } finally {
          this.quotaFlight = undefined;
        }
      })();
    }
    return { ...(await this.quotaFlight) };
  }

  async getProps(path: string): Promise<DeadProps> {
    return this.state.getProps(normalizePath(path));
  }

  async patchProps(path: string, patch: Record<string, string | null>): Promise<void> {
    await this.state.patchProps(normalizePath(path), patch);
  }

  /** The X-OC-Mtime (or upload mtime) recorded for a path, if any. */
  getRecordedMtime(path: string): number | undefined {
    return this.state.getMtime(normalizePath(path));
  }

  /** Whether a basename is kept locally (ignore list). */
  ignores(name: string): boolean {
    return this.isIgnored(name);
  }

  async close(): Promise<void> {
    // The queue first: what it cannot finish within the drain stays journalled for the next start.
    await this.wb?.close({ drainMs: this.writebackDrainMs });
    await Promise.allSettled([...this.putTails.values()]);
    await this.md5s.flush();
    await this.state.close();
  }
}

