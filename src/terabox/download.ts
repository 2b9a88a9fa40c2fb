/**
 * The download reader of TeraboxRemote (in the manner of rclone's fs/operations/reopen.go): opens a
 * file at an offset through its dlink, and keeps one uninterrupted stream for the reader when an
 * upstream body breaks, by reopening from the byte reached.
 *
 * Parts:
 *  - DownloadReader: open-at-offset (one GET of bytes from..end through the file's dlink, a fresh
 *    dlink once when the host refuses it), every answer checked before a byte is passed on
 *    (checkAnswer, issue 9.7), a misfit asked again (openFitting).
 *  - DlinkBook: dlink lookup and cache; lookups within a few ms share one download call (Batcher),
 *    topped up with the links of the files next to them (Neighbours: what the remote saw of each
 *    folder) (issue 10).
 *  - ResumableRead: the resume state machine. It knows nothing of dlinks: it is given a function
 *    that opens bytes from..end, and is tested alone over a local HTTP server.
 *  - ParallelRead: a long read on one connection while it proves fast, else as ranged GETs over
 *    several connections, delivered in order (issue 10).
 *
 * Shared state (concurrency):
 *  - `links` (DlinkBook): the dlink cache, the demands in flight and the next batch; see its header.
 *  - `hostEtagIsMd5`: set once (false -> true) by any read whose answer's ETag matched the file md5.
 *  - a read's KnownFile (its first ETag) is written by that read's own hops only.
 *  - a ResumableRead's own fields (current body, byte reached, counters, state) are touched only by
 *    that stream's event handlers and its one resume loop; a ParallelRead's likewise (its chunks).
 *  - `gauge` (BufferGauge): bytes held by all parallel reads of this reader, a sum on the one loop.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import type { ByteRange, CallOptions, Entry } from '../remote/types.js';
import { baseName, parentPath } from '../remote/paths.js';
import { clampRange } from '../remote/range.js';
import { TbdavError, abortError, isTbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { Observer } from '../shared/observer.js';
import { silentLogger } from '../shared/logger.js';
import { SHARD_MIN_BYTES } from './api/types.js';
import { Batcher, type BatchResult } from './batcher.js';
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
  /** One GET of the URL a dlink redirected to (later ranges of the same read; optional). */
  openResolved?(url: string, range?: { start: number; end?: number }, signal?: AbortSignal, requestId?: string): Promise<DlinkResponse>;
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
  /** How long a dlink demand waits for others to share its download call (default 3 ms). */
  dlinkBatchWindowMs?: number;
  /**
   * Connections one read may use (config `download.connections`, default 4): a read longer than
   * two chunks starts on one connection; when that one proves slow (below `parallelBelowBytesPerSecond`)
   * the rest is fetched ahead as ranged GETs of `chunkBytes` over up to this many connections and
   * delivered in order (ParallelRead). 1 = one GET per read.
   */
  connections?: number;
  /** Bytes per ranged GET of a parallel read (default 2 MiB). */
  chunkBytes?: number;
  /**
   * A long read goes parallel when its one connection brings fewer bytes per second than this
   * over its first `probeMs` of transfer (config `download.parallelBelowBytesPerSecond`, default
   * 8 MiB/s). 0: never parallel; Infinity: parallel from the start (no probe).
   */
  parallelBelowBytesPerSecond?: number;
  /** How long a long read's one connection is measured (default 500 ms of transfer from its first byte). */
  probeMs?: number;
  /** Body bytes received are reported here (metrics). */
  observer?: Pick<Observer, 'transfer'>;
}

/** What every answer for one read must agree with. */
export interface KnownFile {
  /** The file's size (from the listing): Content-Range totals and 200 lengths must equal it. */
  size: number;
  /** md5s the file is known by (hex, decoded): the service's md5 from the listing. */
  md5s: string[];
  /** An ETag that is an md5 must be one of `md5s` (the host was seen to send the file md5 as ETag). */
  etagMustBeMd5: boolean;
  /** The ETag of the first answer that had one: every later hop of the same read must carry it. */
  etag?: string;
  /**
   * The URL the dlink redirected to (the CDN's), once a GET of this read was redirected: the read's
   * later GETs (ranges, resumes) ask it directly, one hop less. false once it failed in any way:
   * the rest of the read goes through the dlink.
   */
  resolved?: string | false;
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

/** download.parallelBelowBytesPerSecond by default: one connection slower than 8 MiB/s goes parallel. */
export const DEFAULT_PARALLEL_BELOW = 8 * 1024 * 1024;

export class DownloadReader {
  private readonly logger: Logger;
  /** The dlinks (cache + batched lookup). */
  readonly links: DlinkBook;
  private readonly policy: ResumePolicy;
  /** Learned: the download host's ETag is the file md5 (an ETag matched a known md5 once). */
  private hostEtagIsMd5 = false;
  private readonly parallel: ParallelPolicy;
  private readonly gauge = new BufferGauge();
  private readonly onBytes: ((n: number) => void) | undefined;

  constructor(
    private readonly client: DlinkClient,
    opts: DownloadReaderOptions = {},
  ) {
    this.logger = opts.logger ?? client.logger ?? silentLogger();
    this.links = new DlinkBook(client, { logger: this.logger, ttlMs: opts.dlinkTtlMs ?? 50 * 60_000, windowMs: opts.dlinkBatchWindowMs });
    const chunkBytes = Math.max(1, Math.floor(opts.chunkBytes ?? 2 * 1024 * 1024));
    this.parallel = {
      connections: Math.max(1, Math.floor(opts.connections ?? 4)),
      chunkBytes,
      parallelBelow: Math.max(0, opts.parallelBelowBytesPerSecond ?? DEFAULT_PARALLEL_BELOW),
      probeMs: Math.max(1, opts.probeMs ?? 500),
    };
    const observer = opts.observer;
    this.onBytes = observer?.transfer ? (bytes: number) => observer.transfer?.({ direction: 'down', bytes }) : undefined;
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
    // resumes go through the dlink (after a break, the conservative way); the first GET of each
    // range may go straight to the URL the read's first GET was redirected to
    const open: OpenAt = (from, to, signal) => this.openAt(path, fsId, from, to, known, { signal, requestId: opts.requestId }, false);
    const openRangeFirst: OpenAt = (from, to, signal) => this.openAt(path, fsId, from, to, known, { signal, requestId: opts.requestId }, true);
    const onBytes = this.onBytes;
    /** A resumable read of from..to (its first GET done before it is handed out). */
    const openResumable = async (from: number, to: number, signal: AbortSignal | undefined): Promise<ResumableRead> => {
      const first = await openFitting(what, openRangeFirst, from, to, this.policy, this.logger, { signal, requestId: opts.requestId });
      return new ResumableRead({ what, open, first, start: from, end: to, policy: this.policy, logger: this.logger, signal, requestId: opts.requestId, onBytes });
    };
    const openRange = async (from: number, to: number, signal: AbortSignal | undefined): Promise<Readable> => (await openResumable(from, to, signal)).stream;
    const policy = this.parallel;
    const { connections, chunkBytes, parallelBelow } = policy;
    if (connections < 2 || parallelBelow <= 0 || end - start + 1 <= 2 * chunkBytes) return openRange(start, end, opts.signal);
    // a long read: its first GET is opened here (a failure rejects before any byte): the whole read
    // while it is measured, one chunk when parallel from the start
    const firstEnd = Number.isFinite(parallelBelow) ? end : start + chunkBytes - 1;
    const first = await openResumable(start, firstEnd, opts.signal);
    return new ParallelRead({ what, start, end, first, openRange, policy, gauge: this.gauge, signal: opts.signal, logger: this.logger, requestId: opts.requestId }).stream;
  }

  /** Bytes held by parallel reads not yet taken by their readers (now, and the most ever). */
  bufferStats(): { buffered: number; peak: number } {
    return { buffered: this.gauge.current, peak: this.gauge.peak };
  }

  /** What the answers for `entry` must agree with. */
  private knownOf(entry: Entry): KnownFile {
    const md5 = entry.hash === undefined ? undefined : decodeServiceMd5(entry.hash);
    const md5s = md5 !== undefined && isHexMd5(md5) ? [md5] : [];
    // a host whose ETags were the file md5 before must name ours, where ours is surely the content
    // md5 too (a file of one shard: the service's md5 is its content md5 under either rule)
    return { size: entry.size, md5s, etagMustBeMd5: this.hostEtagIsMd5 && entry.size <= SHARD_MIN_BYTES && md5s.length > 0 };
  }

  /**
   * One GET of bytes `from`..`end` through the file's dlink (a fresh dlink once when it is refused),
   * or, when `viaResolved` (the first GET of a range), straight at the URL the dlink led to earlier
   * in this read (KnownFile.resolved; on any failure of that, through the dlink), checked against what is known of the file (checkAnswer) before it is handed on: a misfit is a
   * MisfitError (TBDAV_RETRYABLE), never bytes. The first fitting ETag is remembered in `known`,
   * so that every later hop of the same read must carry it too.
   */
  private async openAt(path: string, fsId: string, from: number, end: number, known: KnownFile, opts: CallOptions, viaResolved: boolean): Promise<Opened> {
    const what = `openRead ${path}`;
    const direct = viaResolved && typeof known.resolved === 'string' && this.client.openResolved ? await this.openResolvedAt(what, known.resolved, from, end, known, opts) : undefined;
    if (direct) return direct;
    for (let attempt = 1; ; attempt++) {
      const dlink = await this.dlinkFor(fsId, path, opts);
      let res: DlinkResponse;
      try {
        res = await this.client.openDlink(dlink, { start: from, end }, opts.signal, opts.requestId);
      } catch (err) {
        if (err instanceof DlinkExpiredError && attempt === 1) {
          this.logger.debug(`${what}: dlink refused, asking a fresh one`, { requestId: opts.requestId });
          this.links.forget(fsId);
          continue;
        }
        if (opts.signal?.aborted) throw abortError(what, opts.signal);
        if (isTeraboxApiError(err) && err.httpStatus === 416) {
          throw new TbdavError('TBDAV_RANGE', `${what}: range not satisfiable`, { cause: err });
        }
        throw relabelError('openRead', path, err);
      }
      const opened = this.fit(what, from, end, res, known, opts);
      if (res.resolvedUrl !== undefined && known.resolved === undefined) known.resolved = res.resolvedUrl;
      return opened;
    }
  }

  /**
   * The GET of `from`..`end` at the URL an earlier GET of this read was redirected to; undefined
   * (and the URL forgotten) when it fails in any way, so that the caller asks the dlink. A misfit
   * is the caller's too (MisfitError), like any answer's.
   */
  private async openResolvedAt(what: string, url: string, from: number, end: number, known: KnownFile, opts: CallOptions): Promise<Opened | undefined> {
    let res: DlinkResponse;
    try {
      res = await this.client.openResolved!(url, { start: from, end }, opts.signal, opts.requestId);
    } catch (err) {
      if (opts.signal?.aborted) throw abortError(what, opts.signal);
      known.resolved = false;
      this.logger.debug(`${what}: the download URL the dlink led to failed (${(err as Error).message}); back to the dlink`, { requestId: opts.requestId });
      return undefined;
    }
    try {
      return this.fit(what, from, end, res, known, opts);
    } catch (err) {
      known.resolved = false; // the next try goes through the dlink
      throw err;
    }
  }

  /** checkAnswer, and what an answer teaches (the host's ETag is the md5; the read's first ETag); a misfit's body dropped. */
  private fit(what: string, from: number, end: number, res: DlinkResponse, known: KnownFile, opts: CallOptions): Opened {
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

  /** The dlink of `fsId` (cached, or asked in a batch), tied to the caller's signal. */
  private dlinkFor(fsId: string, path: string, opts: CallOptions): Promise<string> {
    return this.links.get(fsId, path, opts);
  }
}

// ------------------------------------------------------------------ dlink lookup and cache

/**
 * The files known in each folder (name -> fs_id), from listings, uploads and lookups: the files a
 * read's dlink may be fetched together with. Stale knowledge costs one call (DlinkBook's -9
 * fallback), never a wrong answer. An LRU of folders; every method is synchronous.
 */
export class Neighbours {
  private readonly folders = new LRUCache<string, Map<string, string>>({ max: 2000 });

  /** A complete listing of `folder` (replaces what was known). */
  setFolder(folder: string, files: Iterable<{ name: string; id: string }>): void {
    const m = new Map<string, string>();
    for (const f of files) m.set(f.name, f.id);
    this.folders.set(folder, m);
  }

  /** One file seen (uploaded, looked up, read). */
  add(path: string, id: string): void {
    const folder = parentPath(path);
    let m = this.folders.get(folder);
    if (!m) this.folders.set(folder, (m = new Map()));
    m.set(baseName(path), id);
  }

  /** A file gone from `path` (removed, moved away). */
  remove(path: string): void {
    this.folders.get(parentPath(path))?.delete(baseName(path));
    this.folders.delete(path); // a folder removed: its files go with it
  }

  /** fs_ids of the other files of `path`'s folder: those after it by name first, then those before. */
  around(path: string): string[] {
    const m = this.folders.get(parentPath(path));
    if (!m) return [];
    const name = baseName(path);
    const names = [...m.keys()].sort();
    const after = names.filter((n) => n > name);
    const before = names.filter((n) => n < name).reverse();
    return [...after, ...before].map((n) => m.get(n)!);
  }
}

export interface DlinkBookOptions {
  logger: Logger;
  /** How long a dlink is reused. */
  ttlMs: number;
  /** How long a first demand waits for others to share its call (default: the Batcher's 3 ms). */
  windowMs?: number;
  /** fs_ids per download call (default 100, the service's limit). */
  maxBatch?: number;
}

/**
 * The dlinks of files: a cache (fs_id -> dlink, for dlinkTtlMs) in front of batched
 * /openapi/api/download calls. Demands arriving within a few ms share one call (the Batcher, up to
 * `maxBatch` fs_ids); a call also fetches, in the same request, the links of files listed next to a
 * demanded one (`neighbours`: what listings, uploads and lookups showed of its folder), so that
 * reading the files of a folder one after the other costs one call per `maxBatch` files. A call refused as a whole (the service answers -9 when any fs_id is
 * unknown, e.g. a listed sibling deleted since) is asked again without the siblings, then one file
 * at a time, so that one stale id never fails the others.
 *
 * Shared state: `cache`, `inflight` (fs_id -> the promise of the call asking it, so that a reader
 * of a file whose link is on its way, demanded or fetched ahead, waits for that call), `pathOf`
 * and `neighbours` are touched by get, the remote's notes and the batch runs on the one event loop.
 */
export class DlinkBook {
  private readonly cache: LRUCache<string, string>;
  /** fs_id -> the call asking it: resolves its link, or undefined when that call did not bring it. */
  private readonly inflight = new Map<string, Promise<string | undefined>>();
  /** fs_id -> the path it was demanded for (to find its neighbours when its batch is sent). */
  private readonly pathOf = new Map<string, string>();
  private readonly maxBatch: number;
  private readonly batcher: Batcher<string, string>;

  constructor(
    private readonly client: Pick<DlinkClient, 'download'>,
    private readonly opts: DlinkBookOptions,
  ) {
    this.cache = new LRUCache<string, string>({ max: 10_000, ttl: Math.max(1, opts.ttlMs) });
    this.maxBatch = Math.max(1, opts.maxBatch ?? 100);
    this.batcher = new Batcher<string, string>({ windowMs: opts.windowMs, maxBatch: this.maxBatch, run: (ids, requestId) => this.run(ids, requestId) });
  }

  /** The files known in each folder: a demanded file's neighbours are fetched in its call. */
  readonly neighbours = new Neighbours();

  /** Forget a refused dlink: the next get asks a fresh one. */
  forget(fsId: string): void {
    this.cache.delete(fsId);
  }

  /**
   * The dlink of `fsId`: from the cache, from a call already asking it (a demand, or a sibling
   * fetched ahead), or demanded in the next batch. The shared call is not tied to the caller's
   * signal; the caller's wait is.
   */
  async get(fsId: string, path: string, opts: CallOptions): Promise<string> {
    const what = `openRead ${path}`;
    for (;;) {
      const cached = this.cache.get(fsId);
      if (cached) return cached;
      let pending = this.inflight.get(fsId);
      if (!pending) {
        this.pathOf.set(fsId, path);
        pending = this.batcher.get(fsId, { requestId: opts.requestId });
        this.track(fsId, pending);
      }
      let link: string | undefined;
      try {
        link = await waitFor(pending, what, opts.signal);
      } catch (err) {
        if (isTbdavError(err, 'TBDAV_ABORTED') || isTeraboxApiError(err) || !isTbdavError(err)) throw relabelError('openRead', path, err);
        throw new TbdavError(err.code, `${what}: ${err.message}`, { cause: err });
      }
      if (link !== undefined) return link;
      // fetched ahead by a call that did not bring it (refused as a whole): demand it
    }
  }

  /** `p` answers for `fsId` until it settles. */
  private track(fsId: string, p: Promise<string | undefined>): void {
    this.inflight.set(fsId, p);
    const done = (): void => {
      if (this.inflight.get(fsId) === p) this.inflight.delete(fsId);
    };
    p.then(done, done);
  }

  /** One batch: the demanded fs_ids, topped up with listed siblings; every link it brings is cached. */
  private async run(ids: string[], requestId: string | undefined): Promise<BatchResult<string>[]> {
    const extra = this.siblingsOf(ids);
    for (const id of ids) this.pathOf.delete(id);
    let settleAhead: (links: Map<string, string>) => void = () => undefined;
    if (extra.length > 0) {
      const ahead = new Promise<Map<string, string>>((resolve) => {
        settleAhead = resolve;
      });
      for (const id of extra) this.track(id, ahead.then((m) => m.get(id)));
    }
    let links: Map<string, string>;
    try {
      links = await this.fetch(ids, extra, requestId);
    } catch (err) {
      settleAhead(new Map());
      throw err;
    }
    for (const [id, dlink] of links) this.cache.set(id, dlink);
    settleAhead(links);
    return ids.map((id) => {
      const dlink = links.get(id);
      return dlink ? { value: dlink } : { error: new TbdavError('TBDAV_NOT_FOUND', 'no download link') };
    });
  }

  /**
   * The links of `ids` and `extra` in one call. Refused as a whole for an unknown fs_id: again
   * without `extra`, then one fs_id at a time (an unknown one is then left out).
   */
  private async fetch(ids: string[], extra: string[], requestId: string | undefined): Promise<Map<string, string>> {
    const all = [...ids, ...extra];
    try {
      const links = await this.client.download(all, { requestId });
      const out = new Map<string, string>();
      for (const l of links) if (l?.dlink) out.set(String(l.fs_id), l.dlink);
      // a single-file answer whose fs_id is spelled otherwise is still that file's
      if (all.length === 1 && out.size === 0 && links[0]?.dlink) out.set(all[0]!, links[0].dlink);
      return out;
    } catch (err) {
      if (!isTbdavError(err, 'TBDAV_NOT_FOUND') || all.length === 1) throw err;
      this.opts.logger.debug(`dlinks: a call for ${all.length} files was refused (${(err as Error).message}), asking ${extra.length > 0 ? 'without the listed siblings' : 'one file at a time'}`, { requestId });
      if (extra.length > 0) return this.fetch(ids, [], requestId);
      const out = new Map<string, string>();
      for (const one of await Promise.allSettled(ids.map((id) => this.fetch([id], [], requestId)))) {
        if (one.status === 'fulfilled') for (const [k, v] of one.value) out.set(k, v);
        else if (!isTbdavError(one.reason, 'TBDAV_NOT_FOUND')) throw one.reason;
      }
      return out;
    }
  }

  /** fs_ids of files next to the demanded ones (after them first), neither cached nor asked: to fill the call. */
  private siblingsOf(ids: string[]): string[] {
    const room = this.maxBatch - ids.length;
    if (room <= 0) return [];
    const asked = new Set(ids);
    const out = new Set<string>();
    for (const id of ids) {
      const path = this.pathOf.get(id);
      if (path === undefined) continue;
      for (const s of this.neighbours.around(path)) {
        if (out.size >= room) return [...out];
        if (asked.has(s) || out.has(s) || this.inflight.has(s) || this.cache.has(s)) continue;
        out.add(s);
      }
    }
    return [...out];
  }
}

/** `p`, or TBDAV_ABORTED as soon as `signal` fires (p goes on for its other waiters). */
function waitFor<T>(p: Promise<T>, what: string, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortError(what, signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(what, signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
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
  /** Told the size of every piece of body received (metrics). */
  onBytes?: (bytes: number) => void;
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
  /** Last byte owed (inclusive): init.end, or less once shortened. */
  private end: number;

  constructor(private readonly init: ResumableReadInit) {
    this.end = init.end;
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

  /**
   * Owe bytes up to `end` only (a parallel read takes the rest over other connections): the
   * stream ends there, and the upstream body is cut when it gets there (the bytes the host sent
   * beyond it meanwhile are dropped). Bytes already passed on stay: the end settled on is the
   * later of `end` and the last byte passed on; it is returned. A finished stream keeps its end.
   */
  shorten(end: number): number {
    if (this.state === 'done' || end >= this.end) return this.end;
    this.end = Math.max(end, this.pos - 1);
    if (this.pos > this.end) {
      // everything owed is out: end now (a pending resume is stopped)
      this.state = 'done';
      this.stop.abort();
      this.body.destroy();
      this.stream.push(null);
    }
    return this.end;
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
    this.init.onBytes?.(chunk.length);
    let c = chunk;
    if (this.toSkip > 0) {
      if (c.length <= this.toSkip) {
        this.toSkip -= c.length;
        return;
      }
      c = c.subarray(this.toSkip);
      this.toSkip = 0;
    }
    const left = this.end - this.pos + 1;
    if (c.length >= left) {
      this.pos = this.end + 1;
      this.state = 'done';
      // the body first: its connection is closed before the end of this stream is seen (a
      // parallel read then starts its next range), never one range too many in flight
      b.destroy();
      this.stream.push(c.subarray(0, left));
      this.stream.push(null);
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
      logger.info(`${what}: upstream broke at byte ${this.pos} of ${this.init.start}-${this.end} (${why}), resuming (attempt ${this.breaks})`, {
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
        next = await this.init.open(this.pos, this.end, this.signal);
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

// ------------------------------------------------------------------ parallel ranged reads

export interface ParallelPolicy {
  /** Ranged GETs in flight at once (>= 2) once the read is parallel. */
  connections: number;
  /** Bytes per ranged GET. */
  chunkBytes: number;
  /**
   * The first connection's speed (bytes per second, over `probeMs` of transfer) below which the
   * read goes parallel. Infinity: parallel from the start (no probe).
   */
  parallelBelow: number;
  /** How long the first connection is measured: ms of transfer from its first byte, time paused by a slow reader not counted. */
  probeMs: number;
}

/** Bytes held by parallel reads and not yet taken by their readers: now and the most ever. */
export class BufferGauge {
  current = 0;
  peak = 0;
  add(n: number): void {
    this.current += n;
    if (this.current > this.peak) this.peak = this.current;
  }
  sub(n: number): void {
    this.current -= n;
  }
}

/** The stream of a read's first GET, which the read may end sooner (ResumableRead). */
export interface FirstRange {
  stream: Readable;
  /** Owe bytes up to `end` only; returns the end settled on (>= the last byte already passed on). */
  shorten(end: number): number;
}

export interface ParallelReadInit extends Pick<CallOptions, 'signal'> {
  what: string;
  start: number;
  /** Inclusive. */
  end: number;
  /**
   * The first GET, already opened: start..end (the whole read) when probing
   * (policy.parallelBelow finite), else start..start+chunkBytes-1.
   */
  first: FirstRange;
  /** Opens a resumable stream of from..to (rejects with the first GET's failure). */
  openRange(from: number, to: number, signal: AbortSignal): Promise<Readable>;
  policy: ParallelPolicy;
  gauge: BufferGauge;
  logger?: Logger;
  requestId?: string;
}

/** One ranged GET of a parallel read. */
interface Chunk {
  start: number;
  end: number;
  stop: AbortController;
  stream: Readable | undefined;
  /** Received, not yet delivered. */
  parts: Buffer[];
  buffered: number;
  ended: boolean;
  /** Paused by us: it holds a chunk's worth (only the first GET, which may span the whole read). */
  paused: boolean;
}

/**
 * A long read, on one connection while that connection proves fast, else fetched ahead as ranged
 * GETs of `chunkBytes` over up to `connections` connections (TeraBox throttles each connection of
 * a free account), delivered in order, each range resumable on its own (ResumableRead) and checked
 * like any answer.
 *
 * Modes:
 *  - 'probing': one GET of the whole read streams; its bytes over the first `probeMs` of transfer
 *    are counted. As soon as they reach `parallelBelow` x probeMs it is fast: 'single'. When probeMs
 *    of transfer pass below that: 'parallel' — the first GET is shortened to end one chunk past the
 *    byte delivered (ResumableRead.shorten: cut there, the bytes already on their way beyond it
 *    dropped) and the rest is asked as ranges. Time the first GET is paused because the reader is
 *    slow does not count (a slow reader does not make a link slow).
 *  - 'single': the one GET to the end, as with one connection: no range GETs, no reassembly.
 *  - 'parallel': up to `connections` GETs of disjoint ranges; a new one starts when the head one is
 *    delivered. With parallelBelow Infinity a read starts here (its first GET one chunk).
 * Every byte is asked once (ranges disjoint); the only waste is what the first GET's host sent
 * past the cut before the connection closed.
 *
 * Memory: a chunk's bytes are held until the reader takes them (the first GET is paused when it
 * holds a chunk), a new chunk starts only when the head chunk is delivered, so a read holds about
 * `connections` x `chunkBytes` at most (BufferGauge counts them). A read abandoned early (a
 * player probing, a seek) costs what its one GET received. Destroying the stream (or the caller's
 * signal) aborts every chunk, queued and in flight.
 *
 * Shared state: the fields below are touched only by this read's stream callbacks, its chunks'
 * event handlers and its probe timer; `gauge` is shared by the reads of one DownloadReader (a sum,
 * same event loop).
 */
export class ParallelRead {
  readonly stream: Readable;
  /** In order, the head first. */
  private readonly chunks: Chunk[] = [];
  /** First byte not yet given to a chunk. */
  private next: number;
  /** Next byte to deliver. */
  private pos: number;
  private done = false;
  private wantMore = true;
  private mode: 'probing' | 'single' | 'parallel';
  /** The probe of the first GET: its first byte's time, bytes, time paused by us. */
  private probe = { firstAt: 0, bytes: 0, pausedMs: 0, pausedAt: 0, timer: undefined as NodeJS.Timeout | undefined };

  constructor(private readonly init: ParallelReadInit) {
    const { start, policy } = init;
    this.pos = start;
    this.mode = Number.isFinite(policy.parallelBelow) ? 'probing' : 'parallel';
    const firstEnd = this.mode === 'probing' ? init.end : Math.min(init.end, start + policy.chunkBytes - 1);
    this.next = firstEnd + 1;
    const self = this;
    this.stream = new Readable({
      highWaterMark: 1024 * 1024,
      read() {
        self.wantMore = true;
        self.pump();
      },
      destroy(err, cb) {
        self.stopAll();
        cb(err);
      },
    });
    const head = this.newChunk(start, firstEnd);
    this.attach(head, init.first.stream);
    init.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.fill(); // parallel from the start: the others at once
  }

  private readonly onAbort = (): void => {
    this.fail(abortError(this.init.what, this.init.signal));
  };

  private newChunk(start: number, end: number): Chunk {
    const c: Chunk = { start, end, stop: new AbortController(), stream: undefined, parts: [], buffered: 0, ended: false, paused: false };
    this.chunks.push(c);
    return c;
  }

  private attach(c: Chunk, stream: Readable): void {
    c.stream = stream;
    const first = this.chunks.length === 1 && this.chunks[0] === c && c.start === this.init.start;
    stream.on('data', (b: Buffer) => {
      if (this.done) return;
      c.parts.push(b);
      c.buffered += b.length;
      this.init.gauge.add(b.length);
      if (first && this.mode === 'probing') this.probed(b.length);
      if (c === this.chunks[0]) this.pump();
      if (!c.ended && c.buffered >= this.init.policy.chunkBytes && !c.paused && first) {
        // the first GET may span the whole read: hold at most a chunk of it
        c.paused = true;
        stream.pause();
        if (this.mode === 'probing') this.probe.pausedAt = Date.now();
      }
    });
    stream.on('end', () => {
      c.ended = true;
      if (c === this.chunks[0]) this.pump();
    });
    stream.on('error', (err) => this.fail(err));
  }

  /** `n` more bytes of the first GET while probing. */
  private probed(n: number): void {
    const p = this.probe;
    const { parallelBelow, probeMs } = this.init.policy;
    if (p.firstAt === 0) {
      p.firstAt = Date.now();
      p.timer = setTimeout(this.onProbeTimer, probeMs);
      p.timer.unref?.();
    }
    p.bytes += n;
    if (p.bytes >= (parallelBelow * probeMs) / 1000) this.stopProbe('single');
  }

  /** Transfer time of the first GET so far (ms), time paused by us not counted. */
  private probeActiveMs(): number {
    const p = this.probe;
    const now = Date.now();
    return now - p.firstAt - p.pausedMs - (p.pausedAt ? now - p.pausedAt : 0);
  }

  private readonly onProbeTimer = (): void => {
    this.probe.timer = undefined;
    if (this.done || this.mode !== 'probing') return;
    const active = this.probeActiveMs();
    if (active < this.init.policy.probeMs) {
      // the reader held it back for a while: measure the transfer time still missing
      this.probe.timer = setTimeout(this.onProbeTimer, Math.max(10, this.init.policy.probeMs - active));
      this.probe.timer.unref?.();
      return;
    }
    this.stopProbe('parallel');
  };

  private stopProbe(mode: 'single' | 'parallel'): void {
    const p = this.probe;
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    if (this.mode !== 'probing') return;
    const rate = Math.round((p.bytes * 1000) / Math.max(1, this.probeActiveMs()));
    if (mode === 'single') {
      this.mode = 'single';
      return;
    }
    const head = this.chunks[0];
    const { chunkBytes, connections } = this.init.policy;
    // the first GET ends one chunk past the byte delivered; the rest as ranges (unless little is left)
    const want = this.pos + chunkBytes - 1;
    if (!head || head.start !== this.init.start || this.init.end - want < chunkBytes / 2) {
      this.mode = 'single';
      return;
    }
    const end = this.init.first.shorten(want);
    if (end >= this.init.end) {
      this.mode = 'single';
      return;
    }
    head.end = end;
    this.next = end + 1;
    this.mode = 'parallel';
    this.init.logger?.debug(
      `${this.init.what}: one connection brings ${rate} B/s (below ${this.init.policy.parallelBelow}): bytes ${this.next}-${this.init.end} over up to ${connections} connections`,
      { requestId: this.init.requestId },
    );
    this.fill();
  }

  /** Open chunks ahead, up to the connections allowed now. */
  private fill(): void {
    const { policy, end } = this.init;
    const allowed = this.mode === 'parallel' ? policy.connections : 1;
    while (!this.done && this.chunks.length < allowed && this.next <= end) {
      const c = this.newChunk(this.next, Math.min(end, this.next + policy.chunkBytes - 1));
      this.next = c.end + 1;
      const signal = this.init.signal ? AbortSignal.any([this.init.signal, c.stop.signal]) : c.stop.signal;
      this.init.openRange(c.start, c.end, signal).then(
        (stream) => {
          if (this.done || c.stop.signal.aborted) return discard(stream);
          this.attach(c, stream);
        },
        (err: unknown) => this.fail(err),
      );
    }
  }

  /** Deliver what the head chunk holds, in order; move on when it is complete. */
  private pump(): void {
    while (!this.done && this.wantMore) {
      const head = this.chunks[0];
      if (!head) {
        this.finish();
        this.stream.push(null);
        return;
      }
      const part = head.parts.shift();
      if (part) {
        head.buffered -= part.length;
        this.init.gauge.sub(part.length);
        this.pos += part.length;
        this.wantMore = this.stream.push(part);
        continue;
      }
      if (!head.ended) {
        if (head.paused) {
          // all it held is delivered: let it bring more
          head.paused = false;
          if (this.probe.pausedAt) {
            this.probe.pausedMs += Date.now() - this.probe.pausedAt;
            this.probe.pausedAt = 0;
          }
          head.stream?.resume();
        }
        return; // more of the head is on its way
      }
      this.chunks.shift();
      this.fill();
    }
  }

  private finish(): void {
    this.done = true;
    if (this.probe.timer) clearTimeout(this.probe.timer);
    this.probe.timer = undefined;
    this.init.signal?.removeEventListener('abort', this.onAbort);
  }

  private fail(err: unknown): void {
    if (this.done) return;
    this.stopAll();
    this.stream.destroy(err instanceof Error ? err : new Error(String(err)));
  }

  /** Abort every chunk and release what they hold. */
  private stopAll(): void {
    this.finish();
    for (const c of this.chunks.splice(0)) {
      c.stop.abort();
      if (c.stream) discard(c.stream);
      this.init.gauge.sub(c.buffered);
      c.buffered = 0;
      c.parts = [];
    }
  }
}
