/**
 * The download reader of TeraboxRemote (in the manner of rclone's fs/operations/reopen.go): opens a
 * file at an offset through its dlink, and keeps one uninterrupted stream for the reader when an
 * upstream body breaks, by reopening from the byte reached.
 *
 * Two parts:
 *  - DownloadReader: dlink lookup and cache, open-at-offset (one GET of bytes from..end through the
 *    dlink, a fresh dlink once when the host refuses it), the identity check of a resumed answer.
 *  - ResumableRead: the resume state machine. It knows nothing of dlinks: it is given a function
 *    that opens bytes from..end, and is tested alone over a local HTTP server.
 *
 * Shared state (concurrency):
 *  - `dlinks`: fs_id -> dlink (an LRU with the dlink TTL), read and written by open only; a refused
 *    dlink is dropped and fetched again.
 *  - `dlinkFetches`: fs_id -> the download call in flight, so that concurrent reads of one file
 *    (players, Finder's parallel Range GETs) share one /openapi/api/download call.
 *  - a ResumableRead's own fields (current body, byte reached, counters, state) are touched only by
 *    that stream's event handlers and its one resume loop.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import type { ByteRange, CallOptions, Entry } from '../remote/types.js';
import { clampRange } from '../remote/range.js';
import { TbdavError, abortError, isTbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { silentLogger } from '../shared/logger.js';
import { DlinkExpiredError, type DlinkResponse } from './client.js';
import { isTeraboxApiError, relabelError } from './errors.js';

/** What the reader needs of the API client (TeraboxClient; tests may script it). */
export interface DlinkClient {
  readonly logger?: Logger;
  /** GET /openapi/api/download: dlinks of files by fs_id. */
  download(fsIds: string[], opts?: CallOptions): Promise<{ fs_id: string; dlink: string }[]>;
  /** One GET of a dlink (token appended, redirects followed), Range sent when given. */
  openDlink(dlink: string, range?: { start: number; end?: number }, signal?: AbortSignal, requestId?: string): Promise<DlinkResponse>;
}

export interface ResumePolicy {
  /** Breaks in a row without a new byte before giving up (10x as many in all). */
  attempts: number;
  /** Backoff before a resume: base, doubled per break in a row, capped at maxMs; jittered 50-100 %. */
  baseMs: number;
  maxMs: number;
}

export interface DownloadReaderOptions {
  logger?: Logger;
  /** How long a dlink is reused (default 50 min; the service's live about 1 h). */
  dlinkTtlMs?: number;
  /**
   * A download whose body breaks is resumed from the byte reached: at most this many breaks in a
   * row without a new byte (default 5; 10x as many in all).
   */
  resumeAttempts?: number;
  /** Backoff before a resume: base (default 200 ms), doubled per break in a row, capped (default 5 s). */
  resumeBaseMs?: number;
  resumeMaxMs?: number;
}

/** What a resumed download must still see: the same file version. */
export interface FileIdentity {
  total: number;
  etag?: string;
}

/** One opened download body. */
export interface Opened {
  body: Readable;
  /** Bytes to drop first (a 200 answer to a Range request). */
  skip: number;
  /** The file's size as the answer states it (Content-Range total, or Content-Length of a 200). */
  total?: number;
  etag?: string;
}

/** Opens bytes from..end (inclusive) of one file; rejects with a TbdavError. */
export type OpenAt = (from: number, end: number, signal: AbortSignal) => Promise<Opened>;

function headerOf(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export class DownloadReader {
  private readonly logger: Logger;
  private readonly dlinks: LRUCache<string, string>;
  private readonly dlinkFetches = new Map<string, Promise<string>>();
  private readonly policy: ResumePolicy;

  constructor(
    private readonly client: DlinkClient,
    opts: DownloadReaderOptions = {},
  ) {
    this.logger = opts.logger ?? client.logger ?? silentLogger();
    const ttl = opts.dlinkTtlMs ?? 50 * 60_000;
    this.dlinks = new LRUCache<string, string>({ max: 10_000, ttl: Math.max(1, ttl) });
    const baseMs = Math.max(0, opts.resumeBaseMs ?? 200);
    this.policy = { attempts: Math.max(0, opts.resumeAttempts ?? 5), baseMs, maxMs: Math.max(baseMs, opts.resumeMaxMs ?? 5000) };
  }

  /**
   * A stream of exactly the bytes of `range` (clamped to the file) of the file `entry`, resumed
   * when an upstream body breaks. Rejects before any byte when the first GET fails.
   */
  async open(path: string, entry: Entry, range: ByteRange | undefined, opts: CallOptions): Promise<Readable> {
    const { start, end } = clampRange('openRead', path, entry.size, range);
    if (end - start + 1 <= 0) return Readable.from([]);
    if (!entry.id) throw new TbdavError('TBDAV_FATAL', `openRead ${path}: no file id`);
    const fsId = entry.id;
    const first = await this.openAt(path, fsId, start, end, opts);
    const expect: FileIdentity = { total: first.total ?? entry.size };
    if (first.etag !== undefined) expect.etag = first.etag;
    const reopen: OpenAt = (from, to, signal) => this.openAt(path, fsId, from, to, { signal, requestId: opts.requestId }, expect);
    return new ResumableRead({ what: `openRead ${path}`, open: reopen, first, start, end, policy: this.policy, logger: this.logger, ...opts }).stream;
  }

  /**
   * One GET of bytes `from`..`end` through the file's dlink (a fresh dlink once when it is refused).
   * With `expect` (a resumed download) the answer must describe the same file version: same total
   * size in Content-Range and, where both have one, the same ETag; otherwise TBDAV_INTEGRITY (bytes
   * of a changed file are never spliced onto those already delivered).
   */
  private async openAt(path: string, fsId: string, from: number, end: number, opts: CallOptions, expect?: FileIdentity): Promise<Opened> {
    for (let attempt = 1; ; attempt++) {
      const dlink = await this.dlinkFor(fsId, path, opts);
      try {
        const res = await this.client.openDlink(dlink, { start: from, end }, opts.signal, opts.requestId);
        let skip = 0;
        let total: number | undefined;
        if (res.statusCode === 206) {
          const cr = headerOf(res.headers['content-range']) ?? '';
          const m = /bytes\s+(\d+)-(\d+)\/(\d+|\*)/.exec(cr);
          if (m && Number(m[1]) !== from) {
            res.body.destroy();
            throw new TbdavError('TBDAV_RETRYABLE', `openRead ${path}: the service answered another range (${cr})`);
          }
          if (m && m[3] !== '*') total = Number(m[3]);
        } else {
          if (from > 0) skip = from; // range ignored: skip to it ourselves
          const cl = Number(headerOf(res.headers['content-length']));
          if (headerOf(res.headers['content-length']) !== undefined && Number.isSafeInteger(cl)) total = cl;
        }
        const etag = headerOf(res.headers.etag)?.replace(/^W\//, '');
        if (expect) {
          const changed =
            (total !== undefined && total !== expect.total) || (etag !== undefined && expect.etag !== undefined && etag !== expect.etag);
          if (changed) {
            res.body.destroy();
            throw new TbdavError(
              'TBDAV_INTEGRITY',
              `openRead ${path}: the file changed during the download (size ${expect.total} -> ${total ?? '?'}, etag ${expect.etag ?? '-'} -> ${etag ?? '-'}); not resuming`,
            );
          }
        }
        const opened: Opened = { body: res.body, skip };
        if (total !== undefined) opened.total = total;
        if (etag !== undefined) opened.etag = etag;
        return opened;
      } catch (err) {
        if (err instanceof DlinkExpiredError && attempt === 1) {
          this.logger.debug(`openRead ${path}: dlink refused, asking a fresh one`, { requestId: opts.requestId });
          this.dlinks.delete(fsId);
          continue;
        }
        if (opts.signal?.aborted) throw abortError(`openRead ${path}`, opts.signal);
        if (isTeraboxApiError(err) && err.httpStatus === 416) {
          throw new TbdavError('TBDAV_RANGE', `openRead ${path}: range not satisfiable`, { cause: err });
        }
        throw relabelError('openRead', path, err);
      }
    }
  }

  private async dlinkFor(fsId: string, path: string, opts: CallOptions): Promise<string> {
    const cached = this.dlinks.get(fsId);
    if (cached) return cached;
    let fetch = this.dlinkFetches.get(fsId);
    if (!fetch) {
      // shared by every reader of this file: not tied to the first caller's signal
      fetch = this.fetchDlink(fsId, path, { requestId: opts.requestId }).finally(() => this.dlinkFetches.delete(fsId));
      this.dlinkFetches.set(fsId, fetch);
    }
    if (!opts.signal) return fetch;
    const signal = opts.signal;
    if (signal.aborted) throw abortError(`openRead ${path}`, signal);
    return new Promise<string>((resolve, reject) => {
      const onAbort = () => reject(abortError(`openRead ${path}`, signal));
      signal.addEventListener('abort', onAbort, { once: true });
      fetch.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private async fetchDlink(fsId: string, path: string, opts: CallOptions): Promise<string> {
    let links;
    try {
      links = await this.client.download([fsId], opts);
    } catch (err) {
      throw relabelError('openRead', path, err);
    }
    const link = links.find((l) => l.fs_id === fsId) ?? links[0];
    if (!link?.dlink) throw new TbdavError('TBDAV_NOT_FOUND', `openRead ${path}: no download link`);
    this.dlinks.set(fsId, link.dlink);
    return link.dlink;
  }
}

// ------------------------------------------------------------------ the resume state machine

export interface ResumableReadInit extends CallOptions {
  /** Subject of log lines and errors, e.g. 'openRead /a.bin'. */
  what: string;
  /** Opens the bytes still missing (after a break). */
  open: OpenAt;
  /** The body already opened for start..end. */
  first: Opened;
  start: number;
  /** Inclusive. */
  end: number;
  policy: ResumePolicy;
  logger: Logger;
}

/**
 * A stream of exactly the bytes `start`..`end`, fed by `first` and, when an upstream body breaks
 * (error or early end) before all of them arrived, by `open(pos, end)` from the byte reached, after
 * a backoff. The reader sees one uninterrupted stream.
 *
 * States:
 *  - 'streaming': `body` feeds the output; bytes `pos`..`end` are still owed.
 *  - 'resuming':  `body` broke; the resume loop sleeps (backoff) and opens again. A failure to open
 *                 that is TBDAV_RETRYABLE counts as another break; any other fails the stream.
 *  - 'done':      every byte delivered, failed, or destroyed (terminal: late events are ignored).
 * Gives up (TBDAV_RETRYABLE) after `policy.attempts` breaks in a row without a new byte, or 10x that
 * many in all. Destroying the stream or the caller's signal stops everything, including a pending
 * resume (TBDAV_ABORTED for the signal).
 */
export class ResumableRead {
  readonly stream: Readable;
  private state: 'streaming' | 'resuming' | 'done' = 'streaming';
  private body: Readable;
  /** Bytes to drop from the current body before delivering (a 200 to a Range request). */
  private toSkip: number;
  /** Next byte to deliver. */
  private pos: number;
  /** Resumes in all, and breaks in a row without a new byte. */
  private breaks = 0;
  private stalled = 0;
  private lastBreakAt = -1;
  private readonly stop = new AbortController();
  private readonly signal: AbortSignal;

  constructor(private readonly init: ResumableReadInit) {
    this.body = init.first.body;
    this.toSkip = init.first.skip;
    this.pos = init.start;
    this.signal = init.signal ? AbortSignal.any([init.signal, this.stop.signal]) : this.stop.signal;
    const self = this;
    this.stream = new Readable({
      // 1 MiB: with the default 16 KiB every 64 KiB socket chunk would pause the upstream body and
      // resume it on the next read (bench get-1g; bench/README.md).
      highWaterMark: 1024 * 1024,
      read() {
        self.body.resume();
      },
      destroy(err, cb) {
        self.state = 'done';
        self.stop.abort();
        self.body.destroy();
        cb(err);
      },
    });
    this.attach(this.body);
  }

  /** Terminal? (a method: the state changes across the resume loop's awaits). */
  private finished(): boolean {
    return this.state === 'done';
  }

  /** Bytes delivered so far. */
  get delivered(): number {
    return this.pos - this.init.start;
  }

  private fail(err: unknown): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.stop.abort();
    this.body.destroy();
    this.stream.destroy(err instanceof Error ? err : new Error(String(err)));
  }

  private aborted(): TbdavError {
    return abortError(this.init.what, this.init.signal);
  }

  private attach(b: Readable): void {
    b.on('data', (chunk: Buffer) => this.onData(b, chunk));
    b.on('end', () => this.onBreak(b, undefined));
    b.on('error', (err) => this.onBreak(b, err));
  }

  private onData(b: Readable, chunk: Buffer): void {
    if (this.state !== 'streaming' || b !== this.body) return;
    let c = chunk;
    if (this.toSkip > 0) {
      if (c.length <= this.toSkip) {
        this.toSkip -= c.length;
        return;
      }
      c = c.subarray(this.toSkip);
      this.toSkip = 0;
    }
    const left = this.init.end - this.pos + 1;
    if (c.length >= left) {
      this.stream.push(c.subarray(0, left));
      this.pos = this.init.end + 1;
      this.state = 'done';
      this.stream.push(null);
      b.destroy();
      return;
    }
    this.pos += c.length;
    if (!this.stream.push(c)) b.pause();
  }

  /** The current body ended or failed before the last byte. */
  private onBreak(b: Readable, err: Error | undefined): void {
    if (this.state !== 'streaming' || b !== this.body) return;
    if (this.init.signal?.aborted) return this.fail(this.aborted());
    this.state = 'resuming';
    void this.resume(err);
  }

  private async resume(cause: unknown): Promise<void> {
    const { policy, logger, what } = this.init;
    for (;;) {
      if (this.pos > this.lastBreakAt) this.stalled = 0; // new bytes since the last break
      this.lastBreakAt = this.pos;
      this.stalled++;
      this.breaks++;
      const why = cause instanceof Error ? cause.message : cause === undefined ? 'ended early' : String(cause);
      if (this.stalled > policy.attempts || this.breaks > policy.attempts * 10) {
        return this.fail(new TbdavError('TBDAV_RETRYABLE', `${what}: download broke at byte ${this.pos} (${why}); gave up after ${this.breaks} resumes`, { cause }));
      }
      logger.info(`${what}: upstream broke at byte ${this.pos} of ${this.init.start}-${this.init.end} (${why}), resuming (attempt ${this.breaks})`, {
        requestId: this.init.requestId,
      });
      const delay = Math.min(policy.maxMs, policy.baseMs * 2 ** (this.stalled - 1));
      try {
        await sleep(Math.round(delay * (0.5 + Math.random() / 2)), undefined, { signal: this.signal });
      } catch {
        // stopped while waiting: by destroy (nothing to report) or by the caller's signal
        if (!this.finished()) this.fail(this.aborted());
        return;
      }
      if (this.finished()) return;
      let next: Opened;
      try {
        next = await this.init.open(this.pos, this.init.end, this.signal);
      } catch (err) {
        if (this.finished()) return;
        if (this.init.signal?.aborted) return this.fail(this.aborted());
        if (!isTbdavError(err, 'TBDAV_RETRYABLE')) return this.fail(err);
        cause = err;
        continue;
      }
      if (this.finished()) {
        next.body.destroy();
        return;
      }
      this.body = next.body;
      this.toSkip = next.skip;
      this.state = 'streaming';
      this.attach(this.body);
      return;
    }
  }
}
