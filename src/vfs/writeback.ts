/**
 * Write-back uploads (issue 5, `upload.mode: "writeback"`): a PUT is answered once its body is on
 * the spool disk and a journal entry is durable; the upload then runs in the background, is retried
 * with backoff, survives restarts (the journal is replayed by `WritebackQueue.open`), and can be
 * superseded (a later PUT to the same path), cancelled (DELETE) or retargeted (MOVE) while pending.
 *
 * Life of an upload:
 *   caller spools the body with `durable: true` -> `reserve(size)` (TBDAV_INSUFFICIENT_STORAGE when
 *   the spool bound would be passed) -> `enqueue(path, spool)`: the spool file is renamed into
 *   `spoolDir/<id>.data`, the journal entry is written (fsync) -> answered -> a runner uploads it
 *   (remote.write with `resume`/`onResumeToken`, so a backend that supports it reuses its session) ->
 *   `onStored` (the vfs updates its cache) -> journal entry and spool file removed.
 *
 * Failures (issue 9: an acknowledged body is never lost):
 *  - a permanent refusal (PERMANENT: quota full, invalid name, file too large; or no folder to put
 *    it in / a folder at its path; or TBDAV_INTEGRITY three times) stops the upload: the item stays,
 *    `failed` in its journal entry, its body in the spool, so the file stays listed and readable at
 *    its path; it is logged at error now and at every start, `onFailed` is called, and only the user
 *    ends it: `retry(path)` / `discard(path)` (the `terabox-dav uploads` command, through the control
 *    socket of a running server or on the journal directly), a new PUT, DELETE or MOVE;
 *  - anything else (rate limits, 5xx, resets, expired tokens or sessions, unknown errors) is retried
 *    for as long as it takes, with exponential backoff (retryBaseMs doubling up to retryMaxMs) and
 *    jitter; attempts and the time of the next one are journalled, so a restart keeps the backoff.
 *    An attempt that failed while continuing a journalled upload session without getting anywhere
 *    drops the session (the next attempt starts a fresh one).
 *  - a body lost locally (spool file gone) cannot be uploaded: logged at error, the entry dropped.
 *
 * Concurrency (event loop only):
 *  - `byPath` maps a path to the newest item for it; `items` holds every live item by id.
 *  - One runner per item; a runner for a path starts only after the previous item's runner for that
 *    path has settled (`after`), so uploads to one path never overlap and the newest wins.
 *  - `slots` bounds uploads in flight (`concurrency`).
 *  - `pendingBytes` + `reservedBytes` count spool bytes against `spoolMaxBytes`; changed only
 *    synchronously in reserve/enqueue/finish.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { TbdavError, isTbdavError, type ErrorCode } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { ByteRange, Remote, ResumeToken, SpooledFile, WriteResult } from '../remote/types.js';
import { syncDir } from '../shared/atomic-file.js';
import { JOURNAL_VERSION, Journal, type JournalEntry } from './journal.js';
import { serveUploadsControl } from './uploads-control.js';
import { isSameOrInside, parentPath, rebase } from './paths.js';

/** Where write-back keeps its journal and bodies, given the vfs's state and cache folders. */
export function writebackDirs(stateDir: string, cacheDir: string): { journalDir: string; spoolDir: string } {
  return { journalDir: join(stateDir, 'writeback'), spoolDir: join(cacheDir, 'writeback') };
}

/** What the owner of a write-back queue (the Vfs) wants to hear. */
export interface WritebackHooks {
  /** An upload is stored and is still the newest for its path: update caches before it stops being pending. */
  onStored?: (path: string, result: WriteResult, upload: PendingInfo) => void | Promise<void>;
  /** An upload was given up (permanent error). */
  onFailed?: (path: string, error: TbdavError, upload: PendingInfo) => void;
}

/** How a queue behaves (the Vfs takes these as VfsOptions.writeback). */
export interface WritebackSettings {
  /**
   * Serve `terabox-dav uploads` on a control socket next to the journal (uploads-control.ts), and
   * refuse to open when another live process serves it (default false; `serve` sets it).
   */
  control?: boolean;
  /** Bound on the bytes of pending bodies (default: none). */
  spoolMaxBytes?: number;
  /** Uploads in flight at once (default 2). */
  concurrency?: number;
  /** First retry delay, ms (default 1000); doubles per attempt up to retryMaxMs (default 300 000). */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export interface WritebackOptions extends WritebackSettings, WritebackHooks {
  remote: Remote;
  /** Folder of the journal (e.g. `<stateDir>/writeback`, see writebackDirs). */
  journalDir: string;
  /** Folder of pending bodies (e.g. `<cacheDir>/writeback`); must be on the filesystem of the spool. */
  spoolDir: string;
  logger?: Logger;
}

/** What the vfs shows for a pending file. */
export interface PendingInfo {
  id: string;
  path: string;
  size: number;
  contentMd5: string;
  mtime?: number;
  createdAt: number;
  /** `failed`: refused for good (see `failed`); it waits for the user and is not uploaded. */
  state: 'queued' | 'uploading' | 'retrying' | 'failed';
  attempts: number;
  /** Code of the last failure. */
  lastError?: string;
  /** When the next attempt is due, ms since epoch (state `retrying`). */
  nextAttemptAt?: number;
  /** The permanent refusal that stopped it (state `failed`). */
  failed?: { code: string; at: number };
}

export interface EnqueueOptions {
  /** A reservation taken before spooling (its bytes become the upload's). */
  reservation?: Reservation;
  mtime?: number;
  requestId?: string;
}

export interface Reservation {
  readonly bytes: number;
  /** Give the bytes back (no-op once consumed by enqueue or released). */
  release(): void;
}

export interface PendingUpload extends PendingInfo {
  /** Settles when stored (the WriteResult), or rejects when superseded, removed, given up or shut down. */
  done: Promise<WriteResult>;
}

/**
 * The write-back queue as the Vfs uses it: WritebackQueue implements it; the Vfs opens it (after
 * itself exists, handing it its hooks) and closes it. Tests may give the Vfs another implementation
 * (VfsOptions.writeback.openPort).
 */
export interface WritebackPort {
  /** Hold spool space before receiving a body of known size (TBDAV_INSUFFICIENT_STORAGE when full). */
  reserve(bytes: number, subject?: string): Reservation;
  /** Take over a durable spool file as the pending content of `path` (the file is moved away). */
  enqueue(path: string, spool: SpooledFile, opts?: EnqueueOptions): Promise<PendingUpload>;
  /** Wait up to `ms` for an upload to be stored; undefined when it was not. */
  waitStored(upload: PendingUpload, ms: number): Promise<WriteResult | undefined>;
  /** The pending upload of a path, if any. */
  pending(path: string): PendingInfo | undefined;
  /** Pending uploads directly inside a folder. */
  listPending(folder: string): PendingInfo[];
  /** Pending uploads at `path` or below it. */
  pendingUnder(path: string): PendingInfo[];
  /** A pending body (or a range of it); undefined when nothing is pending there any more. */
  openPending(path: string, range?: ByteRange): Promise<Readable | undefined>;
  /** Cancel pending uploads at `path` or below. */
  remove(path: string): Promise<number>;
  /**
   * Pending uploads at `from` or below now go to the same place under `to`. Returns how many it
   * retargeted: an upload that finished meanwhile is not counted (it is stored at `from`).
   * `whileStopped`, when given, must be called once no upload at or below `from` runs and before
   * any runs at its new path (the Vfs moves a folder on the remote there); if it throws, the
   * uploads stay at their old paths and the error is rethrown.
   */
  move(from: string, to: string, opts?: { whileStopped?: () => Promise<void> }): Promise<number>;
  /** A pending file copied: the copy becomes a pending upload of its own; undefined when nothing is pending at `from` (any more). */
  copy(from: string, to: string, opts?: { requestId?: string }): Promise<PendingUpload | undefined>;
  /** Bytes held by pending bodies and reservations, the bound, and how many uploads are pending. */
  usage(): { pendingBytes: number; reservedBytes: number; maxBytes: number; pending: number };
  /** Stop: running uploads get `drainMs` to finish, the rest stays for the next open. */
  close(opts?: { drainMs?: number }): Promise<void>;
}

/** What each permanent refusal means, for the log and `terabox-dav uploads`. */
export const FAILURE_MEANING: Readonly<Record<string, string>> = {
  TBDAV_QUOTA: 'the drive is full',
  TBDAV_INVALID_NAME: 'the service refuses the name',
  TBDAV_TOO_LARGE: 'the file is too large for the service',
  TBDAV_CONFLICT: 'the folder it belongs in is gone, or a folder is at its path',
  TBDAV_INTEGRITY: 'the service kept other bytes than were sent, three times',
};

/**
 * Refusals that no retry will cure: the upload stops (and waits for the user). Everything else is
 * retried, including errors we do not know: the body is acknowledged, giving up would lose it.
 */
const PERMANENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['TBDAV_QUOTA', 'TBDAV_INVALID_NAME', 'TBDAV_TOO_LARGE', 'TBDAV_CONFLICT']);
const INTEGRITY_ATTEMPTS = 3;

type CancelReason = 'superseded' | 'removed' | 'moved' | 'closing';

interface Item {
  entry: JournalEntry;
  state: PendingInfo['state'];
  ac: AbortController;
  /** Ends the wait before the next attempt (retry now). */
  wake?: () => void;
  /** The backend reported progress during the current attempt. */
  progressed?: boolean;
  /** TBDAV_INTEGRITY failures in a row (three stop the upload). */
  integrityFailures?: number;
  cancelled?: CancelReason;
  /** Resolves when the current runner has ended. */
  settled: Promise<void>;
  done: Promise<WriteResult>;
  resolve(r: WriteResult): void;
  reject(e: TbdavError): void;
}

/** A counting semaphore whose waits end early when a signal fires (then `acquire` resolves false). */
class Slots {
  private waiters: { wake: () => void }[] = [];
  constructor(private free: number) {}
  acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const w = {
        wake: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        },
      };
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
    });
  }
  release(): void {
    const w = this.waiters.shift();
    if (w) w.wake();
    else this.free++;
  }
}

/** Wait `ms`, less when the signal fires or `item.wake` is called. */
function sleep(ms: number, signal: AbortSignal, item?: Item): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      if (item) item.wake = undefined;
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    if (item) item.wake = done;
  });
}

function asTbdav(err: unknown, subject: string): TbdavError {
  if (isTbdavError(err)) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new TbdavError('TBDAV_FATAL', `${subject}: spool file vanished`, { cause: err });
  return new TbdavError('TBDAV_RETRYABLE', `${subject}: ${String((err as Error)?.message ?? err)}`, { cause: err });
}

export class WritebackQueue implements WritebackPort {
  private readonly remote: Remote;
  private readonly journal: Journal;
  private readonly spoolDir: string;
  private readonly failedDir: string;
  private readonly maxBytes: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly logger: Logger;
  private readonly onStored: WritebackHooks['onStored'];
  private readonly onFailed: WritebackHooks['onFailed'];
  private readonly slots: Slots;
  private readonly items = new Map<string, Item>();
  private readonly byPath = new Map<string, Item>();
  private pendingBytes = 0;
  private reservedBytes = 0;
  private seq = 0;
  private closing = false;
  private control: { close(): Promise<void> } | undefined;

  private constructor(opts: WritebackOptions, journal: Journal) {
    this.remote = opts.remote;
    this.journal = journal;
    this.spoolDir = opts.spoolDir;
    this.failedDir = join(opts.spoolDir, 'failed');
    this.maxBytes = opts.spoolMaxBytes ?? Number.POSITIVE_INFINITY;
    this.retryBaseMs = opts.retryBaseMs ?? 1000;
    this.retryMaxMs = Math.max(this.retryBaseMs, opts.retryMaxMs ?? 300_000);
    this.logger = opts.logger ?? silentLogger();
    this.onStored = opts.onStored;
    this.onFailed = opts.onFailed;
    this.slots = new Slots(Math.max(1, opts.concurrency ?? 2));
  }

  /** Open the queue and resume every journalled upload. */
  static async open(opts: WritebackOptions): Promise<WritebackQueue> {
    const logger = opts.logger ?? silentLogger();
    const journal = await Journal.open(opts.journalDir, { logger });
    await mkdir(opts.spoolDir, { recursive: true, mode: 0o700 });
    const q = new WritebackQueue(opts, journal);
    // First: refuses to go on when another live process owns this journal.
    if (opts.control) q.control = await serveUploadsControl(q, opts.journalDir, logger);
    try {
      await q.resume();
    } catch (err) {
      await q.control?.close();
      throw err;
    }
    return q;
  }

  private async resume(): Promise<void> {
    const entries = await this.journal.load();
    const newest = new Map<string, JournalEntry>();
    for (const e of entries) {
      this.seq = Math.max(this.seq, e.seq);
      const prev = newest.get(e.path);
      if (prev) await this.discard(prev, 'superseded before the restart');
      newest.set(e.path, e);
    }
    const keep = new Set<string>();
    const failed: JournalEntry[] = [];
    for (const e of newest.values()) {
      let size: number | undefined;
      try {
        size = (await stat(e.spoolFile)).size;
      } catch (err) {
        this.logger.debug(`write-back ${e.path}: spool file unreadable`, { error: String(err) });
      }
      if (size !== e.size) {
        this.logger.error(`write-back ${e.path}: pending body lost (${size === undefined ? 'missing' : `${size} of ${e.size} bytes`}); the upload cannot resume`);
        await this.journal.remove(e.id);
        continue;
      }
      keep.add(`${e.id}.data`);
      this.pendingBytes += e.size;
      const item = this.newItem(e);
      if (e.failed) {
        item.state = 'failed';
        failed.push(e);
        continue;
      }
      this.logger.info(
        `write-back ${e.path}: resuming upload of ${e.size} bytes${e.resume !== undefined ? ' (continuing its upload session)' : ''}${e.attempts > 0 ? ` after ${e.attempts} failed attempt(s)` : ''}`,
      );
      this.start(item);
    }
    // Refused for good before: reported at every start until the user retries or removes them.
    for (const e of failed) this.logger.error(this.failedLine(e));
    if (failed.length > 0) {
      this.logger.error(`write-back: ${failed.length} upload(s) refused by the service are kept locally (readable at their paths); see \`terabox-dav uploads list\``);
    }
    const legacy = await readdir(this.failedDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') this.logger.debug(`write-back: ${this.failedDir} unreadable`, { error: String(err) });
      return [] as string[];
    });
    if (legacy.length > 0) {
      this.logger.warn(`write-back: ${legacy.length} body(ies) of uploads given up by an earlier version are kept in ${this.failedDir} (not uploaded; move them back by hand)`);
    }
    // Bodies whose journal entry was never written: their PUT was never answered.
    for (const name of await readdir(this.spoolDir)) {
      if (name.endsWith('.data') && !keep.has(name)) {
        this.logger.debug(`write-back: removing orphan body ${name}`);
        await rm(join(this.spoolDir, name), { force: true });
      }
    }
  }

  /** The log line of an upload refused for good, with what the user can do. */
  private failedLine(e: JournalEntry): string {
    const code = e.failed?.code ?? e.lastError ?? '?';
    const meaning = FAILURE_MEANING[code] ?? 'refused';
    return (
      `write-back ${e.path}: upload refused by the service (${code}: ${meaning}) after ${e.attempts} attempt(s); the file (${e.size} bytes) is kept ` +
      `locally and stays readable at its path. Retry: terabox-dav uploads retry ${JSON.stringify(e.path)}; give it up: terabox-dav uploads remove ${JSON.stringify(e.path)}`
    );
  }

  private async discard(e: JournalEntry, why: string): Promise<void> {
    this.logger.debug(`write-back ${e.path}: dropping upload ${e.id} (${why})`);
    await this.journal.remove(e.id);
    await rm(e.spoolFile, { force: true });
  }

  // ------------------------------------------------------------------ space

  /** Bytes held by pending bodies and reservations, and the bound. */
  usage(): { pendingBytes: number; reservedBytes: number; maxBytes: number; pending: number } {
    return { pendingBytes: this.pendingBytes, reservedBytes: this.reservedBytes, maxBytes: this.maxBytes, pending: this.items.size };
  }

  private fits(bytes: number): boolean {
    return this.pendingBytes + this.reservedBytes + bytes <= this.maxBytes;
  }

  private full(subject: string, bytes: number): TbdavError {
    return new TbdavError('TBDAV_INSUFFICIENT_STORAGE', `${subject}: the write-back spool is full (${bytes} more bytes would pass the bound of ${this.maxBytes})`, {
      detail: { pendingBytes: this.pendingBytes, reservedBytes: this.reservedBytes, maxBytes: this.maxBytes },
    });
  }

  /**
   * Hold `bytes` of spool space before receiving a body of known size (TBDAV_INSUFFICIENT_STORAGE
   * when it does not fit, so that the client gets 507 before sending the body).
   */
  reserve(bytes: number, subject = 'write-back'): Reservation {
    this.checkOpen(subject);
    if (!this.fits(bytes)) throw this.full(subject, bytes);
    this.reservedBytes += bytes;
    let held = true;
    return {
      bytes,
      release: () => {
        if (!held) return;
        held = false;
        this.reservedBytes -= bytes;
      },
    };
  }

  private checkOpen(subject: string): void {
    if (this.closing) throw new TbdavError('TBDAV_RETRYABLE', `${subject}: the server is shutting down`);
  }

  // ------------------------------------------------------------------ enqueue

  /**
   * Take over a spooled body (spooled with `durable: true`) as the pending content of `path` and
   * return once it and its journal entry are durable. The spool file is moved; the caller must not
   * remove it afterwards (it must on failure). A pending upload of the same path is superseded.
   */
  async enqueue(path: string, spool: SpooledFile, opts: EnqueueOptions = {}): Promise<PendingUpload> {
    const subject = `write-back ${path}`;
    const r = opts.reservation;
    try {
      this.checkOpen(subject);
      const extra = spool.size - (r?.bytes ?? 0);
      if (extra > 0 && !this.fits(extra)) throw this.full(subject, spool.size);
    } catch (err) {
      r?.release();
      throw err;
    }
    const id = randomUUID();
    const spoolFile = join(this.spoolDir, `${id}.data`);
    this.seq = Math.max(this.seq + 1, Date.now());
    const entry: JournalEntry = {
      version: JOURNAL_VERSION,
      id,
      seq: this.seq,
      path,
      spoolFile,
      size: spool.size,
      shardSize: spool.shardSize,
      blockMd5s: spool.blockMd5s,
      contentMd5: spool.contentMd5,
      createdAt: Date.now(),
      attempts: 0,
      ...(opts.mtime !== undefined ? { mtime: opts.mtime } : {}),
    };
    // Count the bytes now (synchronously with the check above), give them back on failure.
    this.pendingBytes += spool.size;
    r?.release();
    try {
      await rename(spool.localPath, spoolFile);
      await syncDir(this.spoolDir, this.logger); // the body's new name survives a power loss before the entry does
      await this.journal.put(entry);
    } catch (err) {
      this.pendingBytes -= spool.size;
      await rm(spoolFile, { force: true });
      await this.journal.remove(id).catch((e: unknown) => this.logger.debug(`${subject}: journal cleanup failed`, { error: String(e) }));
      throw new TbdavError('TBDAV_INSUFFICIENT_STORAGE', `${subject}: cannot journal the upload`, { cause: err });
    }
    const prev = this.byPath.get(path);
    if (prev) this.cancel(prev, 'superseded');
    const item = this.newItem(entry);
    this.start(item, prev?.settled);
    this.logger.info(`${subject}: accepted ${spool.size} bytes, upload queued`, { requestId: opts.requestId, id });
    return { ...this.info(item), done: item.done };
  }

  private newItem(entry: JournalEntry): Item {
    let resolve!: (r: WriteResult) => void;
    let reject!: (e: TbdavError) => void;
    const done = new Promise<WriteResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Callers may never look at `done` (a write-back PUT is answered before): keep a rejection
    // from becoming an unhandled one. Every rejection is logged where it happens.
    done.catch((err: unknown) => this.logger.debug(`write-back ${entry.path}: upload ${entry.id} ended: ${(err as TbdavError).code}`));
    const item: Item = { entry, state: 'queued', ac: new AbortController(), settled: Promise.resolve(), done, resolve, reject };
    this.items.set(entry.id, item);
    this.byPath.set(entry.path, item);
    return item;
  }

  private info(item: Item): PendingInfo {
    const e = item.entry;
    return {
      id: e.id,
      path: e.path,
      size: e.size,
      contentMd5: e.contentMd5,
      createdAt: e.createdAt,
      state: item.state,
      attempts: e.attempts,
      ...(e.mtime !== undefined ? { mtime: e.mtime } : {}),
      ...(e.lastError !== undefined ? { lastError: e.lastError } : {}),
      ...(e.nextAttemptAt !== undefined && item.state === 'retrying' ? { nextAttemptAt: e.nextAttemptAt } : {}),
      ...(e.failed ? { failed: { ...e.failed } } : {}),
    };
  }

  // ------------------------------------------------------------------ runner

  private start(item: Item, after?: Promise<void>): void {
    item.state = 'queued';
    item.integrityFailures = 0;
    item.ac = new AbortController();
    item.settled = this.run(item, after).catch((err: unknown) => {
      // run() handles its own errors; this is the last line.
      this.logger.error(`write-back ${item.entry.path}: runner failed: ${String((err as Error)?.message ?? err)}`);
    });
  }

  private async run(item: Item, after?: Promise<void>): Promise<void> {
    await after;
    const signal = item.ac.signal;
    // After a restart the backoff goes on: wait for the journalled next attempt (at most retryMaxMs,
    // should the clock have jumped).
    const due = item.entry.nextAttemptAt;
    if (due !== undefined && !item.cancelled) {
      const wait = Math.min(this.retryMaxMs, due - Date.now());
      if (wait > 0) {
        item.state = 'retrying';
        await sleep(wait, signal, item);
      }
    }
    while (!item.cancelled) {
      if (!(await this.slots.acquire(signal))) break;
      if (item.cancelled) {
        this.slots.release();
        break;
      }
      const e = item.entry;
      const subject = `write-back ${e.path}`;
      let result: WriteResult;
      item.state = 'uploading';
      item.progressed = false;
      const resumed = e.resume !== undefined;
      try {
        result = await this.remote.write(e.path, { localPath: e.spoolFile, size: e.size, shardSize: e.shardSize, blockMd5s: e.blockMd5s, contentMd5: e.contentMd5 }, {
          overwrite: true,
          signal,
          ...(e.mtime !== undefined ? { mtime: e.mtime } : {}),
          ...(e.resume !== undefined ? { resume: e.resume } : {}),
          onResumeToken: (t) => this.progress(item, t),
        });
      } catch (err) {
        this.slots.release();
        if (item.cancelled) break;
        const te = asTbdav(err, subject);
        e.attempts++;
        e.lastError = te.code;
        if (!(await this.bodyThere(e))) {
          await this.lose(item, te);
          return;
        }
        item.integrityFailures = te.code === 'TBDAV_INTEGRITY' ? (item.integrityFailures ?? 0) + 1 : 0;
        if (PERMANENT.has(te.code) || item.integrityFailures >= INTEGRITY_ATTEMPTS) {
          await this.fail(item, te);
          return;
        }
        if (resumed && !item.progressed) {
          // continuing the journalled session got nowhere (the service may have forgotten it under
          // an errno nobody knows): the next attempt starts a fresh one
          this.logger.info(`${subject}: the resumed upload session failed (${te.code}); the next attempt starts a new one`, { id: e.id });
          delete e.resume;
        }
        item.state = 'retrying';
        const delay = Math.round(Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(30, e.attempts - 1)) * (0.5 + Math.random() / 2));
        e.nextAttemptAt = Date.now() + delay;
        this.logger.warn(`${subject}: attempt ${e.attempts} failed (${te.code}), retrying in ${delay} ms`, { id: e.id });
        await this.journal.put(e).catch((je: unknown) => this.logger.warn(`${subject}: journal update failed`, { error: String(je) }));
        await sleep(delay, signal, item);
        continue;
      }
      this.slots.release();
      if (item.cancelled) {
        this.logger.debug(`${subject}: upload ${e.id} finished after it was ${item.cancelled}`);
        break;
      }
      await this.finish(item, result);
      return;
    }
    await this.afterCancel(item);
  }

  private progress(item: Item, token: ResumeToken): void {
    if (item.cancelled) return;
    item.progressed = true;
    item.entry.resume = token;
    // Durable but not awaited by the upload: losing the last progress only costs resent shards.
    void this.journal.put(item.entry).catch((err: unknown) => this.logger.debug(`write-back ${item.entry.path}: progress not journalled`, { error: String(err) }));
  }

  private release(item: Item): void {
    this.items.delete(item.entry.id);
    if (this.byPath.get(item.entry.path) === item) this.byPath.delete(item.entry.path);
    this.pendingBytes -= item.entry.size;
  }

  private async finish(item: Item, result: WriteResult): Promise<void> {
    const e = item.entry;
    this.logger.info(`write-back ${e.path}: stored ${e.size} bytes${result.rapid ? ' (rapid upload)' : ''} after ${e.attempts + 1} attempt(s)`, { id: e.id });
    if (this.byPath.get(e.path) === item && this.onStored) {
      try {
        await this.onStored(e.path, result, this.info(item));
      } catch (err) {
        this.logger.warn(`write-back ${e.path}: onStored failed: ${String((err as Error)?.message ?? err)}`);
      }
    }
    // Clean up before it stops being pending: "not pending" then means journal and body are gone
    // (a reader that finds the body gone meanwhile falls back to the remote, which has it now).
    await this.journal.remove(e.id);
    await rm(e.spoolFile, { force: true });
    this.release(item);
    item.resolve(result);
  }

  /**
   * Refused for good: the upload stops, but the item, its body and its journal entry stay (the file
   * stays readable at its path), marked failed, until the user retries or removes it.
   */
  private async fail(item: Item, err: TbdavError): Promise<void> {
    const e = item.entry;
    e.failed = { code: err.code, at: Date.now() };
    delete e.nextAttemptAt;
    item.state = 'failed';
    await this.journal.put(e).catch((je: unknown) => this.logger.warn(`write-back ${e.path}: journal update failed`, { error: String(je) }));
    this.logger.error(this.failedLine(e), { id: e.id });
    this.onFailed?.(e.path, err, this.info(item));
    item.reject(err);
  }

  /** Whether the body of an upload is still in the spool. */
  private async bodyThere(e: JournalEntry): Promise<boolean> {
    try {
      return (await stat(e.spoolFile)).size === e.size;
    } catch (err) {
      this.logger.debug(`write-back ${e.path}: body unreadable`, { error: String(err) });
      return false;
    }
  }

  /** The body vanished from the spool (removed or cut by someone else): nothing is left to upload. */
  private async lose(item: Item, err: TbdavError): Promise<void> {
    const e = item.entry;
    this.logger.error(`write-back ${e.path}: the pending body ${e.spoolFile} is gone from the spool (last error ${err.code}); the upload cannot go on`, { id: e.id });
    this.release(item);
    await this.journal.remove(e.id);
    this.onFailed?.(e.path, err, this.info(item));
    item.reject(err);
  }

  /** The runner of a cancelled item ended: clean up according to why. */
  private async afterCancel(item: Item): Promise<void> {
    const e = item.entry;
    switch (item.cancelled) {
      case 'moved':
        return; // the mover restarts it
      case 'closing':
        item.reject(new TbdavError('TBDAV_ABORTED', `write-back ${e.path}: shut down before the upload finished; it resumes at the next start`));
        return;
      default:
        this.release(item);
        await this.journal.remove(e.id);
        await rm(e.spoolFile, { force: true });
        item.reject(new TbdavError('TBDAV_ABORTED', `write-back ${e.path}: upload ${item.cancelled === 'superseded' ? 'superseded by a newer PUT' : 'cancelled by a DELETE'}`));
    }
  }

  private cancel(item: Item, why: CancelReason): void {
    if (item.cancelled && why !== 'moved') return;
    item.cancelled = why;
    if (why !== 'moved' && this.byPath.get(item.entry.path) === item) this.byPath.delete(item.entry.path);
    item.ac.abort(new TbdavError('TBDAV_ABORTED', `write-back ${item.entry.path}: ${why}`));
    // A failed upload has no runner to clean up after it: do it here.
    if (item.state === 'failed') item.settled = this.afterCancel(item);
  }

  // ------------------------------------------------------------------ what the vfs asks

  /** The pending upload of a path, if any. */
  pending(path: string): PendingInfo | undefined {
    const item = this.byPath.get(path);
    return item ? this.info(item) : undefined;
  }

  /** Pending uploads directly inside a folder. */
  listPending(folder: string): PendingInfo[] {
    const out: PendingInfo[] = [];
    for (const [p, item] of this.byPath) if (p !== '/' && parentPath(p) === folder) out.push(this.info(item));
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Pending uploads at `path` or below it. */
  pendingUnder(path: string): PendingInfo[] {
    return [...this.byPath.values()].filter((i) => isSameOrInside(i.entry.path, path)).map((i) => this.info(i));
  }

  /**
   * Read a pending body (or a range of it) from the spool; undefined when nothing is pending there
   * (any more). The file is opened before returning, so a concurrent end of the upload does not
   * cut the read.
   */
  async openPending(path: string, range?: ByteRange): Promise<Readable | undefined> {
    const item = this.byPath.get(path);
    if (!item) return undefined;
    let fh;
    try {
      fh = await open(item.entry.spoolFile, 'r');
    } catch (err) {
      this.logger.debug(`write-back ${path}: pending body gone while opening`, { error: String(err) });
      return undefined;
    }
    return fh.createReadStream({ start: range?.start ?? 0, ...(range?.end !== undefined ? { end: range.end } : {}) });
  }

  // ------------------------------------------------------------------ what the user asks

  /**
   * `terabox-dav uploads retry PATH`: an upload refused for good starts again with fresh attempts;
   * one waiting for its next attempt stops waiting. False when nothing is pending at `path`.
   */
  async retry(path: string): Promise<boolean> {
    const item = this.byPath.get(path);
    if (!item) return false;
    const e = item.entry;
    if (item.state === 'failed') {
      delete e.failed;
      delete e.nextAttemptAt;
      delete e.lastError;
      e.attempts = 0;
      await this.journal.put(e);
      this.logger.info(`write-back ${path}: retrying the upload refused before, as asked`, { id: e.id });
      this.start(item);
    } else if (item.wake) {
      delete e.nextAttemptAt;
      this.logger.info(`write-back ${path}: next attempt now, as asked`, { id: e.id });
      item.wake();
    }
    return true;
  }

  /**
   * `terabox-dav uploads remove PATH`: give up the upload pending at exactly `path` (its body is
   * deleted; what the drive has at the path stays). False when nothing is pending there.
   */
  async discardUpload(path: string): Promise<boolean> {
    const item = this.byPath.get(path);
    if (!item) return false;
    this.logger.warn(`write-back ${path}: upload of ${item.entry.size} bytes given up, as asked; its body is deleted`, { id: item.entry.id });
    this.cancel(item, 'removed');
    await item.settled;
    return true;
  }

  /** Wait up to `ms` for a pending upload to be stored (hybrid `upload.waitSeconds`). */
  async waitStored(upload: PendingUpload, ms: number): Promise<WriteResult | undefined> {
    if (ms <= 0) return undefined;
    let t: NodeJS.Timeout | undefined;
    const timer = new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), ms)));
    try {
      return await Promise.race([upload.done, timer]);
    } catch (err) {
      this.logger.debug(`write-back ${upload.path}: not stored while waiting`, { error: String((err as TbdavError).code ?? err) });
      return undefined;
    } finally {
      clearTimeout(t);
    }
  }

  /** DELETE: cancel pending uploads at `path` or below it. Returns how many were cancelled. */
  async remove(path: string): Promise<number> {
    const victims = [...this.byPath.values()].filter((i) => isSameOrInside(i.entry.path, path));
    for (const v of victims) this.cancel(v, 'removed');
    await Promise.all(victims.map((v) => v.settled));
    return victims.length;
  }

  /**
   * MOVE: pending uploads at `from` or below it now go to the same place under `to` (journalled
   * before returning). A pending upload at a destination path is superseded. Returns how many moved:
   * an upload that finished meanwhile is not counted (it is stored at `from`; move it on the remote).
   *
   * `whileStopped` (a folder MOVE) runs once every upload at or below `from` has stopped and before
   * any restarts at its new path: move the folder on the remote there, so that no upload lands in
   * the old folder after it moved (or before the new one exists). When it throws, the uploads
   * resume at their old paths and the error is rethrown.
   */
  async move(from: string, to: string, opts: { whileStopped?: () => Promise<void> } = {}): Promise<number> {
    const movers = [...this.byPath.values()].filter((i) => isSameOrInside(i.entry.path, from));
    for (const m of movers) this.cancel(m, 'moved');
    await Promise.all(movers.map((m) => m.settled));
    if (opts.whileStopped) {
      try {
        await opts.whileStopped();
      } catch (err) {
        for (const m of movers) {
          if (!this.items.has(m.entry.id) || m.cancelled !== 'moved') continue;
          m.cancelled = undefined;
          if (m.entry.failed) m.state = 'failed'; // stays stopped where it was
          else this.start(m);
        }
        throw err;
      }
    }
    let moved = 0;
    for (const m of movers) {
      if (!this.items.has(m.entry.id)) {
        // Its upload finished (or failed) before the cancel took: it is stored at the old path now,
        // and the caller must move it there (the return value does not count it).
        this.logger.debug(`write-back ${m.entry.path}: finished before the move; not retargeted`);
        continue;
      }
      moved++;
      const oldPath = m.entry.path;
      const newPath = rebase(oldPath, from, to);
      if (this.byPath.get(oldPath) === m) this.byPath.delete(oldPath);
      const there = this.byPath.get(newPath);
      if (there && there !== m) this.cancel(there, 'superseded');
      m.entry.path = newPath;
      delete m.entry.resume; // a session is bound to its path
      // at a new path it starts afresh (a refused name may be fine now)
      delete m.entry.nextAttemptAt;
      if (m.entry.failed) {
        delete m.entry.failed;
        m.entry.attempts = 0;
      }
      m.cancelled = undefined;
      this.byPath.set(newPath, m);
      await this.journal.put(m.entry);
      this.start(m, there?.settled);
    }
    return moved;
  }

  /** COPY of a pending file: the copy becomes a pending upload of its own. */
  async copy(from: string, to: string, opts: { requestId?: string } = {}): Promise<PendingUpload | undefined> {
    const src = this.byPath.get(from);
    if (!src) return undefined;
    const e = src.entry;
    const tmp = join(this.spoolDir, `${randomUUID()}.copy`);
    const r = this.reserve(e.size, `write-back ${to}`);
    try {
      await copyFile(e.spoolFile, tmp);
      const fh = await open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      r.release();
      await rm(tmp, { force: true });
      if (!this.items.has(e.id)) {
        // Its upload finished (or was cancelled) while the body was being copied: nothing is pending
        // at `from` any more; the caller copies what is stored there now.
        this.logger.debug(`write-back ${from}: upload ended while copying its body to ${to}; not copied`);
        return undefined;
      }
      throw asTbdav(err, `write-back copy ${from} -> ${to}`);
    }
    try {
      return await this.enqueue(to, { localPath: tmp, size: e.size, shardSize: e.shardSize, blockMd5s: e.blockMd5s, contentMd5: e.contentMd5 }, { reservation: r, mtime: e.mtime, requestId: opts.requestId });
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Shut down (SIGTERM): refuse new uploads, give uploads in flight up to `drainMs` to finish, then
   * stop the rest. Everything not stored stays journalled and resumes at the next open().
   */
  async close(opts: { drainMs?: number } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const drainMs = opts.drainMs ?? 10_000;
    const live = [...this.items.values()];
    for (const i of live) if (i.state !== 'uploading') this.cancel(i, 'closing');
    const all = Promise.all(live.map((i) => i.settled));
    let t: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (t = setTimeout(r, drainMs)))]);
    clearTimeout(t);
    for (const i of live) if (!i.cancelled && this.items.has(i.entry.id)) this.cancel(i, 'closing');
    await all;
    await this.journal.flush();
    await this.control?.close();
    const refused = [...this.items.values()].filter((i) => i.entry.failed).length;
    const left = this.items.size - refused;
    if (left) this.logger.info(`write-back: ${left} upload(s) left in the journal; they resume at the next start`);
    if (refused) this.logger.info(`write-back: ${refused} upload(s) refused by the service stay in the journal until retried or removed (terabox-dav uploads)`);
  }
}
