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
 *  - `hostEtagIsMd5`: set once (false -> true) by any read whose answer's ETag matched the file md5.
 *  - a read's KnownFile (its first ETag) is written by that read's own hops only.
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
import { SHARD_MIN_BYTES } from './api/types.js';
import { DlinkExpiredError, type DlinkResponse } from './client.js';
import { isTeraboxApiError, relabelError } from './errors.js';
import { decodeServiceMd5, isHexMd5 } from './md5.js';

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

/** What every answer for one read must agree with. */
export interface KnownFile {
  /** The file's size (from the listing): Content-Range totals and 200 lengths must equal it. */
  size: number;
  /** md5s the file is known by (hex): the service's md5, the content md5 when known. */
  md5s: string[];
  /** An ETag that is an md5 must be one of `md5s` (the host was seen to send the file md5 as ETag). */
  etagMustBeMd5: boolean;
  /** The ETag of the first answer that had one: every later hop of the same read must carry it. */
  etag?: string;
}

/** One opened download body, checked. */
export interface Opened {
  body: Readable;
  /** Bytes to drop first (a 200 answer to a Range request). */
  skip: number;
}

/**
 * Why an answer does not fit what was asked and what is known: 'status' (not 200/206), 'range'
 * (a Content-Range for other bytes, or none), 'length' (Content-Length not that of the bytes
 * announced), 'size' (a file of another size), 'etag' (another ETag or md5 than known). The last two
 * also describe a changed file: when every retry says the same, the read ends with TBDAV_INTEGRITY.
 */
export type MisfitKind = 'status' | 'range' | 'length' | 'size' | 'etag';

/** An answer of the download host that does not fit: a retryable fault of that hop. */
export class MisfitError extends TbdavError {
  override readonly name = 'MisfitError';
  constructor(
    readonly kind: MisfitKind,
    message: string,
  ) {
    super('TBDAV_RETRYABLE', message, { detail: { misfit: kind } });
  }
}

/** The head of an answer to check. */
export interface AnswerHead {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
}

export interface AnswerFit {
  /** Bytes to drop first (200 to a Range request). */
  skip: number;
  /** The ETag (weak prefix dropped), if any. */
  etag?: string;
  /** The ETag read as an md5 (plain or obfuscated, decoded), if it is one. */
  etagMd5?: string;
}

/** Opens bytes from..end (inclusive) of one file; rejects with a TbdavError. */
export type OpenAt = (from: number, end: number, signal: AbortSignal) => Promise<Opened>;

function headerOf(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Stop a body we will not read. An undici body destroyed before its end emits an abort error: that
 * error is the expected outcome here, so it is taken (a body without an 'error' listener would
 * throw it out of the process).
 */
export function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

const DECIMAL = /^\s*\d+\s*$/;

/**
 * THE check of a download answer, before any of its bytes is passed on. We always ask
 * `Range: bytes=from-end`, so the answer must be:
 *  - 206 with `Content-Range: bytes from-b/size`, b <= end (a host may send less: the rest is
 *    resumed), and a Content-Length, if any, of b-from+1;
 *  - or 200 (the host ignored the range: the reader skips to `from`) with a Content-Length, if
 *    any, of the file's size;
 *  - an ETag, if any, equal to the first one of this read (known.etag), and, when it is an md5 and
 *    known.etagMustBeMd5, one of the file's md5s.
 * Anything else throws a MisfitError (TBDAV_RETRYABLE). Pure: the caller destroys the body.
 */
export function checkAnswer(what: string, from: number, end: number, res: AnswerHead, known: KnownFile): AnswerFit {
  const cl = headerOf(res.headers['content-length']);
  if (cl !== undefined && !DECIMAL.test(cl)) throw new MisfitError('length', `${what}: the host sent Content-Length ${JSON.stringify(cl)}`);
  const length = cl === undefined ? undefined : Number(cl);
  let skip = 0;
  if (res.statusCode === 206) {
    const cr = headerOf(res.headers['content-range']);
    const m = cr === undefined ? null : /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(cr);
    if (!m) throw new MisfitError('range', `${what}: 206 with Content-Range ${cr === undefined ? '(none)' : JSON.stringify(cr)}`);
    const a = Number(m[1]);
    const b = Number(m[2]);
    if (m[3] !== '*' && Number(m[3]) !== known.size) {
      throw new MisfitError('size', `${what}: the host answers for a file of ${m[3]} bytes, this one has ${known.size}`);
    }
    if (m[3] === '*' || a !== from || b < a || b > end) {
      throw new MisfitError('range', `${what}: asked bytes ${from}-${end}, the host answered ${cr!.trim()}`);
    }
    if (length !== undefined && length !== b - a + 1) {
      throw new MisfitError('length', `${what}: Content-Length ${length} for bytes ${a}-${b}`);
    }
  } else if (res.statusCode === 200) {
    if (length !== undefined && length !== known.size) {
      throw new MisfitError('size', `${what}: the host sends a whole file of ${length} bytes, this one has ${known.size}`);
    }
    skip = from;
  } else {
    throw new MisfitError('status', `${what}: the host answered HTTP ${res.statusCode} to a Range request`);
  }
  const fit: AnswerFit = { skip };
  const etag = headerOf(res.headers.etag)?.trim().replace(/^W\//, '');
  if (etag) {
    fit.etag = etag;
    if (known.etag !== undefined && etag !== known.etag) {
      throw new MisfitError('etag', `${what}: ETag ${etag}, the first answer of this read had ${known.etag}`);
    }
    const md5 = decodeServiceMd5(etag.replace(/^"|"$/g, ''));
    if (isHexMd5(md5)) {
      fit.etagMd5 = md5;
      if (known.etagMustBeMd5 && !known.md5s.includes(md5)) {
        throw new MisfitError('etag', `${what}: the host names md5 ${md5}, the file is ${known.md5s.join(' / ')}`);
      }
    }
  }
  return fit;
}

/** Backoff before the n-th try in a row (n >= 1): base doubled per try, capped, jittered 50-100 %. */
function backoffMs(policy: ResumePolicy, n: number): number {
  const delay = Math.min(policy.maxMs, policy.baseMs * 2 ** (n - 1));
  return Math.round(delay * (0.5 + Math.random() / 2));
}

/**
 * The error a read ends with after too many failed tries: TBDAV_INTEGRITY when the host kept
 * describing another version of the file (size or ETag), else TBDAV_RETRYABLE.
 */
function giveUpError(message: string, cause: unknown): TbdavError {
  if (cause instanceof MisfitError && (cause.kind === 'size' || cause.kind === 'etag')) {
    return new TbdavError('TBDAV_INTEGRITY', `${message}: the file changed or the host keeps answering another one (${cause.message}); not serving it`, { cause });
  }
  return new TbdavError('TBDAV_RETRYABLE', message, { cause });
}

/**
 * The first GET of a read: an answer that does not fit (MisfitError) is asked again, with the
 * resume policy's backoff, at most `policy.attempts` times; any other failure is the caller's.
 */
export async function openFitting(what: string, open: OpenAt, start: number, end: number, policy: ResumePolicy, logger: Logger, opts: CallOptions): Promise<Opened> {
  const stop = new AbortController();
  const signal = opts.signal ?? stop.signal;
  for (let misfits = 0; ; ) {
    try {
      return await open(start, end, signal);
    } catch (err) {
      if (!(err instanceof MisfitError) || opts.signal?.aborted) throw err;
      misfits++;
      if (misfits > policy.attempts) throw giveUpError(`${what}: no fitting answer in ${misfits} tries`, err);
      logger.info(`${err.message}; asking again (attempt ${misfits})`, { requestId: opts.requestId });
      try {
        await sleep(backoffMs(policy, misfits), undefined, { signal });
      } catch {
        throw abortError(what, opts.signal);
      }
    }
  }
}

export class DownloadReader {
  private readonly logger: Logger;
  private readonly dlinks: LRUCache<string, string>;
  private readonly dlinkFetches = new Map<string, Promise<string>>();
  private readonly policy: ResumePolicy;
  /** Learned: the download host's ETag is the file md5 (an ETag matched a known md5 once). */
  private hostEtagIsMd5 = false;

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
   * when an upstream body breaks. Rejects before any byte when the first GET fails; an answer that
   * does not fit (checkAnswer) is asked again first, with the resume policy's backoff.
   */
  async open(path: string, entry: Entry, range: ByteRange | undefined, opts: CallOptions): Promise<Readable> {
    const { start, end } = clampRange('openRead', path, entry.size, range);
    if (end - start + 1 <= 0) return Readable.from([]);
    if (!entry.id) throw new TbdavError('TBDAV_FATAL', `openRead ${path}: no file id`);
    const fsId = entry.id;
    const what = `openRead ${path}`;
    const known = this.knownOf(entry);
    const open: OpenAt = (from, to, signal) => this.openAt(path, fsId, from, to, known, { signal, requestId: opts.requestId });
    const first = await openFitting(what, open, start, end, this.policy, this.logger, opts);
    return new ResumableRead({ what, open, first, start, end, policy: this.policy, logger: this.logger, ...opts }).stream;
  }

  /** What the answers for `entry` must agree with. */
  private knownOf(entry: Entry): KnownFile {
    const md5s = new Set<string>();
    for (const v of [entry.hash, entry.contentMd5]) {
      const d = v === undefined ? undefined : decodeServiceMd5(v);
      if (d !== undefined && isHexMd5(d)) md5s.add(d);
    }
    // a host whose ETags were the file md5 before must name one of ours, where ours surely include
    // the content md5 (known, or a file of one shard, whose service md5 is its content md5)
    const contentMd5Known = entry.contentMd5 !== undefined || entry.size <= SHARD_MIN_BYTES;
    return { size: entry.size, md5s: [...md5s], etagMustBeMd5: this.hostEtagIsMd5 && contentMd5Known && md5s.size > 0 };
  }

  /**
   * One GET of bytes `from`..`end` through the file's dlink (a fresh dlink once when it is refused),
   * checked against what is known of the file (checkAnswer) before it is handed on: a misfit is a
   * MisfitError (TBDAV_RETRYABLE), never bytes. The first fitting ETag is remembered in `known`,
   * so that every later hop of the same read must carry it too.
   */
  private async openAt(path: string, fsId: string, from: number, end: number, known: KnownFile, opts: CallOptions): Promise<Opened> {
    const what = `openRead ${path}`;
    for (let attempt = 1; ; attempt++) {
      const dlink = await this.dlinkFor(fsId, path, opts);
      let res: DlinkResponse;
      try {
        res = await this.client.openDlink(dlink, { start: from, end }, opts.signal, opts.requestId);
      } catch (err) {
        if (err instanceof DlinkExpiredError && attempt === 1) {
          this.logger.debug(`${what}: dlink refused, asking a fresh one`, { requestId: opts.requestId });
          this.dlinks.delete(fsId);
          continue;
        }
        if (opts.signal?.aborted) throw abortError(what, opts.signal);
        if (isTeraboxApiError(err) && err.httpStatus === 416) {
          throw new TbdavError('TBDAV_RANGE', `${what}: range not satisfiable`, { cause: err });
        }
        throw relabelError('openRead', path, err);
      }
      let fit: AnswerFit;
      try {
        fit = checkAnswer(what, from, end, res, known);
      } catch (err) {
        discard(res.body);
        throw err;
      }
      if (fit.etagMd5 !== undefined && known.md5s.includes(fit.etagMd5) && !this.hostEtagIsMd5) {
        this.hostEtagIsMd5 = true;
        this.logger.debug(`${what}: the download host's ETag is the file md5; checking it from now on`, { requestId: opts.requestId });
      }
      if (fit.etag !== undefined && known.etag === undefined) known.etag = fit.etag;
      return { body: res.body, skip: fit.skip };
    }
  }

  private async dlinkFor(fsId: string, path: string, opts: CallOptions): Promise<string> {
    const what = `openRead ${path}`;
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
    if (signal.aborted) throw abortError(what, signal);
    return new Promise<string>((resolve, reject) => {
      const onAbort = () => reject(abortError(what, signal));
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
        return this.fail(giveUpError(`${what}: download broke at byte ${this.pos} (${why}); gave up after ${this.breaks} resumes`, cause));
      }
      logger.info(`${what}: upstream broke at byte ${this.pos} of ${this.init.start}-${this.init.end} (${why}), resuming (attempt ${this.breaks})`, {
        requestId: this.init.requestId,
      });
      try {
        await sleep(backoffMs(policy, this.stalled), undefined, { signal: this.signal });
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
        discard(next.body);
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
