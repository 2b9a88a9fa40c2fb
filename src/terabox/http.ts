/**
 * The ONE call path of the TeraBox client: every request (oauth, openapi, upload, dlink) goes
 * through HttpCaller.call(). It does, in this order, per attempt:
 *   pacer (pacer.ts: adaptive spacing of call starts under a ceiling, concurrency bound) -> undici
 *   request -> HTTP status / errno check (HTTP 200 with errno != 0 is an error, detected only here)
 *   -> the pacer is told how it went ("too often" slows every call down) -> the retry classifier
 *   (classifyRetry) -> backoff with full jitter, honouring Retry-After.
 * URLs and errors are redacted before they reach a log line or an error message.
 *
 * Concurrency: `pacer` is the only shared mutable state (see its header); it bounds concurrent API
 * calls and spaces their starts. Shard uploads are paced at their start but do not hold a
 * concurrency slot while their body streams (pace: 'start'), so that a long upload does not starve
 * listings; download bytes are not API calls and bypass the pacer (pace: 'none'). The Agent is
 * shared and owned by this object (close() ends it).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { abortError, isTbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { silentLogger } from '../shared/logger.js';
import type { Observer } from '../shared/observer.js';
import { redact, redactUrl } from '../shared/redact.js';
import { ERRNO_TABLE, TeraboxApiError, errnoError, httpStatusCode, isTeraboxApiError } from './errors.js';
import { ERRNO } from './api/types.js';
import { DEFAULT_CALLS_PER_SECOND, Pacer, type PaceOutcome, type PacerEvent, type PacerStats } from './pacer.js';

/**
 * How a failed request may be retried.
 *  - 'idempotent': repeating it has the same effect (GETs, precreate, superfile2 of the same
 *    partseq, filemanager delete, create with rtype 3, tokeninfo): retried on any transient error.
 *  - 'unsafe': repeating it could do the thing twice or fail because the first try worked
 *    (move, copy, rename, create with rtype 0, code exchange, refresh): retried only when the
 *    service confirms that nothing happened (HTTP 429, rate-limit errno, connection refused).
 */
export type RetryPolicy = 'idempotent' | 'unsafe';

export type BodyFactory = () => { body: string | Buffer | Readable; headers: Record<string, string> };

export interface HttpRequest {
  /** Endpoint name for logs and errors ('list', 'superfile2', 'dlink'...). */
  endpoint: string;
  method: 'GET' | 'POST';
  /** Full URL (secrets in the query are fine: it is redacted before any log). */
  url: URL;
  /** application/x-www-form-urlencoded body. */
  form?: Record<string, string>;
  /** Any other body; a factory, because each attempt needs a fresh stream. */
  body?: BodyFactory;
  headers?: Record<string, string>;
  retry: RetryPolicy;
  /** 'json' parses and errno-checks; 'text' returns text (errno-checked if it is JSON); 'stream' returns the body. */
  expect: 'json' | 'text' | 'stream';
  /** Our request id (from the WebDAV request) for log lines. */
  requestId?: string;
  signal?: AbortSignal;
  /**
   * 'hold' (default): paced, and a concurrency slot is held until the answer is read. 'start': paced,
   * no concurrency slot (shard uploads). 'none': not an API call (dlink and CDN hops): no pacer at all.
   */
  pace?: 'hold' | 'start' | 'none';
  /** Another dispatcher (e.g. the download pool) instead of the caller's shared Agent. */
  dispatcher?: Dispatcher;
  /** Total time for one attempt (headers + body for json/text; headers only for stream). */
  timeoutMs?: number;
  /** Stream answers: statuses that are returned to the caller rather than thrown (e.g. 302, 403). */
  passStatuses?: readonly number[];
  /** Which errno an answer carries (default: `errno`, or superfile2's `error_code`). */
  errnoFrom?: (json: unknown) => number;
  /**
   * Called before each retry with the error of the attempt that failed (callers that must know
   * whether a repeat may follow an attempt that acted: see refusedBeforeActing).
   */
  onRetry?: (err: unknown) => void;
}

export interface HttpResponse<T> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  data: T;
}

export interface HttpCallerOptions {
  logger?: Logger;
  /** Concurrent API calls (default 4). */
  concurrency?: number;
  /** Ceiling of the adaptive pacer: calls started per second at most (default DEFAULT_CALLS_PER_SECOND). */
  callsPerSecond?: number;
  /** Retries after the first attempt (default 5). */
  maxRetries?: number;
  /** Backoff base (default 500 ms) and cap (default 30 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Time for one attempt of an API call (default 30 s). */
  requestTimeoutMs?: number;
  /** For tests: the random source of the jitter. */
  random?: () => number;
  /** For tests: clock (ms) and sleep of the pacer and of the retry backoff (a virtual clock). */
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
  /** Told of every pacer slowdown and Retry-After pause (metrics, tests). Must not throw. */
  onPacerEvent?: (e: PacerEvent) => void;
  /** Metrics: every attempt (apiCall), every retry wait and pacer slowdown (backoff). Must not throw. */
  observer?: Observer;
}

// ------------------------------------------------------------------ retry classifier

/** Socket errors where the request surely did not reach the service. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
/** Socket errors where the request may or may not have been processed. */
const IO_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'TIMEOUT',
]);
const RATE_ERRNOS = new Set<number>([ERRNO.RATE_LIMIT, ERRNO.RATE_LIMIT_42000, ERRNO.CODE_RATE]);

export interface RetryContext {
  /** Attempts already made (1 after the first failure). */
  attempt: number;
  maxRetries: number;
  baseMs: number;
  maxMs: number;
  policy: RetryPolicy;
  signal?: AbortSignal;
  random?: () => number;
}

export interface RetryDecision {
  retry: boolean;
  delayMs: number;
  reason: string;
}

function errCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (NOT_SENT_CODES.has(code) || IO_CODES.has(code))) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The service surely did nothing with the request: it was not sent (connection refused, no such
 * host...), or the service refused it before acting (HTTP 429, rate-limit errnos). A repeat after
 * such an error is the first time the request acts (createDir: an "exists" then is not ours).
 */
export function refusedBeforeActing(err: unknown): boolean {
  const code = errCode(err);
  if (code && NOT_SENT_CODES.has(code)) return true;
  return isTeraboxApiError(err) && err.code === 'TBDAV_RETRYABLE' && (err.httpStatus === 429 || (err.errno !== undefined && RATE_ERRNOS.has(err.errno)));
}

/**
 * THE retry classifier. Pure: decides from the error, the attempt count and the policy.
 *  - never after the caller's signal fired;
 *  - HTTP 429 and rate-limit errnos (31034, 42000, 300001): the service refused before acting,
 *    so any request may be retried;
 *  - connection refused / connect timeout: nothing was sent, any request may be retried;
 *  - 5xx, errno 500001, resets and timeouts: the request may have been processed, so only
 *    'idempotent' requests are retried;
 *  - everything else (auth, not-found, exists, bad params...) is not retried here.
 * Delay: Retry-After when the service sent one (capped at maxMs * 4), else full jitter:
 * random() * min(maxMs, baseMs * 2^(attempt-1)).
 */
export function classifyRetry(err: unknown, ctx: RetryContext): RetryDecision {
  const no = (reason: string): RetryDecision => ({ retry: false, delayMs: 0, reason });
  if (ctx.signal?.aborted) return no('aborted');
  if (isTbdavError(err, 'TBDAV_ABORTED')) return no('aborted');
  if (ctx.attempt > ctx.maxRetries) return no('retries exhausted');

  let transient = false;
  const safeForAny = refusedBeforeActing(err);
  let retryAfterSec: number | undefined;
  const code = errCode(err);
  if (code && NOT_SENT_CODES.has(code)) {
    transient = true;
  } else if (code && IO_CODES.has(code)) {
    transient = true;
  } else if (isTeraboxApiError(err) && err.code === 'TBDAV_RETRYABLE') {
    transient = true;
    retryAfterSec = err.retryAfterSec;
  }
  if (!transient) return no('not transient');
  if (!safeForAny && ctx.policy !== 'idempotent') return no('not idempotent');

  const random = ctx.random ?? Math.random;
  let delayMs: number;
  if (retryAfterSec !== undefined && Number.isFinite(retryAfterSec) && retryAfterSec >= 0) {
    delayMs = Math.min(retryAfterSec * 1000, ctx.maxMs * 4);
  } else {
    const ceiling = Math.min(ctx.maxMs, ctx.baseMs * 2 ** Math.max(0, ctx.attempt - 1));
    delayMs = Math.floor(random() * ceiling);
  }
  return { retry: true, delayMs, reason: code ?? (isTeraboxApiError(err) ? `errno ${err.errno ?? '-'} HTTP ${err.httpStatus ?? '-'}` : 'transient') };
}

/** Parse Retry-After (seconds or HTTP date) into seconds. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, (t - now) / 1000);
}

/**
 * What an answer says about the frequency of calls (the pacer's input): "too often" for the
 * rate-limit errnos (31034, 42000, 300001) and HTTP 429, and for HTTP 503 when it carries
 * Retry-After (an overloaded service asking us to wait); anything else says nothing about it.
 * Answers the service did not give (network errors, our timeouts, aborts) are not "ok" either.
 */
export function paceOutcome(err: unknown): PaceOutcome {
  if (!isTeraboxApiError(err)) return { kind: 'other' };
  const retryAfterMs = err.retryAfterSec !== undefined && Number.isFinite(err.retryAfterSec) ? err.retryAfterSec * 1000 : undefined;
  const limited =
    (err.errno !== undefined && RATE_ERRNOS.has(err.errno)) || err.httpStatus === 429 || (err.httpStatus === 503 && retryAfterMs !== undefined);
  if (!limited) {
    // an error the service answered for the call itself (not found, exists, auth...) is an accepted
    // call; a 5xx or a failure without an answer says nothing about the frequency
    if (err.errno !== undefined) return { kind: 'ok' };
    return err.httpStatus !== undefined && err.httpStatus < 500 ? { kind: 'ok' } : { kind: 'other' };
  }
  return retryAfterMs !== undefined ? { kind: 'limited', retryAfterMs } : { kind: 'limited' };
}

/**
 * The service's request id. Taken from the raw text when possible: it is a 64-bit number that
 * JSON.parse would round (15001987287138667544 -> 15001987287138667000).
 */
function serviceRequestId(json: unknown, text: string): string | undefined {
  const raw = /"request_id"\s*:\s*"?(\d+)"?/.exec(text)?.[1];
  if (raw) return raw;
  if (json && typeof json === 'object' && 'request_id' in json) {
    const v = (json as { request_id?: unknown }).request_id;
    if (typeof v === 'string' || typeof v === 'number') return String(v);
  }
  return undefined;
}

/** JSON.parse; ids beyond 2^53 (request_id) are read from the text by serviceRequestId. */
function parseJson(text: string): unknown {
  return JSON.parse(text);
}

/** The errno of an answer: `errno`, or superfile2's `error_code`. 0 when absent. */
function answerErrno(json: unknown): number {
  if (!json || typeof json !== 'object') return 0;
  const o = json as { errno?: unknown; error_code?: unknown };
  const n = Number(o.errno ?? o.error_code ?? 0);
  return Number.isFinite(n) ? n : 0;
}

export class HttpCaller {
  readonly logger: Logger;
  private readonly pacer: Pacer;
  private readonly agent: Agent;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly requestTimeoutMs: number;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
  private readonly observer: Observer | undefined;

  constructor(options: HttpCallerOptions = {}) {
    this.logger = options.logger ?? silentLogger();
    this.observer = options.observer;
    this.sleep = options.sleep ?? ((ms, signal) => sleep(ms, undefined, signal ? { signal } : undefined));
    const log = this.logger;
    const onEvent = options.onPacerEvent;
    this.pacer = new Pacer({
      callsPerSecond: options.callsPerSecond ?? DEFAULT_CALLS_PER_SECOND,
      concurrency: options.concurrency ?? 4,
      now: options.now,
      sleep: this.sleep,
      onEvent: (e) => {
        if (e.type === 'backoff') log.debug(`pacer: the service says too often, spacing calls ${Math.round(e.previousMs)} -> ${Math.round(e.intervalMs)} ms`);
        else log.debug(`pacer: the service asks to wait ${Math.round(e.waitMs)} ms (Retry-After), every call waits`);
        onEvent?.(e);
      },
    });
    this.agent = new Agent({ keepAliveTimeout: 10_000, connections: 32 });
    this.maxRetries = options.maxRetries ?? 5;
    this.retryBaseMs = options.retryBaseMs ?? 500;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  get dispatcher(): Dispatcher {
    return this.agent;
  }

  /** The pacer's counters and state (calls, rate-limited answers, backoffs, pauses, current spacing). */
  pacerStats(): PacerStats {
    return this.pacer.stats();
  }

  async close(): Promise<void> {
    this.pacer.close();
    await this.agent.close();
  }

  /** One call with retries. Rejects with TeraboxApiError or TBDAV_ABORTED. */
  async call<T = unknown>(req: HttpRequest): Promise<HttpResponse<T>> {
    const log = this.logger;
    for (let attempt = 1; ; attempt++) {
      if (req.signal?.aborted) throw abortError(req.endpoint, req.signal);
      try {
        return await this.attempt<T>(req, attempt);
      } catch (err) {
        if (req.signal?.aborted) throw abortError(req.endpoint, req.signal);
        const decision = classifyRetry(err, {
          attempt,
          maxRetries: this.maxRetries,
          baseMs: this.retryBaseMs,
          maxMs: this.retryMaxMs,
          policy: req.retry,
          signal: req.signal,
          random: this.random,
        });
        const wrapped = this.wrap(req, err);
        if (!decision.retry) {
          log.debug(`${req.endpoint}: failed, not retried (${decision.reason})`, { requestId: req.requestId, attempt, error: wrapped.message });
          throw wrapped;
        }
        log.debug(`${req.endpoint}: retry ${attempt}/${this.maxRetries} in ${decision.delayMs} ms (${decision.reason})`, {
          requestId: req.requestId,
          error: wrapped.message,
        });
        this.observer?.backoff?.({ endpoint: req.endpoint, delayMs: decision.delayMs, reason: decision.reason });
        try {
          await this.sleep(decision.delayMs, req.signal);
        } catch (sleepErr) {
          log.debug(`${req.endpoint}: backoff interrupted`, { requestId: req.requestId, error: String(sleepErr) });
          throw abortError(req.endpoint, req.signal);
        }
        req.onRetry?.(err);
      }
    }
  }

  /** Turn anything thrown into a TeraboxApiError (network errors become TBDAV_RETRYABLE). */
  private wrap(req: HttpRequest, err: unknown): Error {
    if (isTbdavError(err)) return err;
    const code = errCode(err);
    const msg = err instanceof Error ? err.message : String(err);
    return new TeraboxApiError({
      endpoint: req.endpoint,
      code: code ? 'TBDAV_RETRYABLE' : 'TBDAV_FATAL',
      message: `${code ?? 'request failed'}: ${redact(msg)}`,
      cause: err,
    });
  }

  private async attempt<T>(req: HttpRequest, attempt: number): Promise<HttpResponse<T>> {
    const ticket = req.pace === 'none' ? undefined : await this.pacer.acquire({ hold: req.pace !== 'start', signal: req.signal });
    let outcome: PaceOutcome = { kind: 'other' };
    const started = performance.now();
    try {
      const res = await this.send<T>(req, attempt);
      outcome = { kind: 'ok' };
      this.observer?.apiCall?.({ endpoint: req.endpoint, errno: 0, httpStatus: res.status, ms: performance.now() - started, requestId: req.requestId });
      return res;
    } catch (err) {
      outcome = paceOutcome(err);
      this.reportFailure(req, err, performance.now() - started);
      throw err;
    } finally {
      if (ticket) {
        const before = this.observer?.backoff ? this.pacer.stats().backoffs : 0;
        ticket.done(outcome);
        if (this.observer?.backoff) {
          const after = this.pacer.stats();
          if (after.backoffs > before) this.observer.backoff({ endpoint: req.endpoint, delayMs: after.intervalMs, reason: 'pacer: the service says too often' });
        }
      }
    }
  }

  /** observer.apiCall for a failed attempt (our code, the errno's meaning or the network error's code). */
  private reportFailure(req: HttpRequest, err: unknown, ms: number): void {
    if (!this.observer?.apiCall) return;
    if (isTeraboxApiError(err)) {
      const meaning = err.errno !== undefined ? ERRNO_TABLE.get(err.errno)?.meaning : err.httpStatus !== undefined ? `HTTP ${err.httpStatus}` : undefined;
      this.observer.apiCall({ endpoint: req.endpoint, errno: err.errno, httpStatus: err.httpStatus, code: err.code, meaning, ms, requestId: req.requestId });
      return;
    }
    if (req.signal?.aborted) {
      this.observer.apiCall({ endpoint: req.endpoint, errno: undefined, httpStatus: undefined, code: 'TBDAV_ABORTED', meaning: 'aborted', ms, requestId: req.requestId });
      return;
    }
    const code = errCode(err);
    this.observer.apiCall({
      endpoint: req.endpoint,
      errno: undefined,
      httpStatus: undefined,
      code: isTbdavError(err) ? err.code : code ? 'TBDAV_RETRYABLE' : 'TBDAV_FATAL',
      meaning: code ?? 'request failed',
      ms,
      requestId: req.requestId,
    });
  }

  private async send<T>(req: HttpRequest, attempt: number): Promise<HttpResponse<T>> {
    const timeoutMs = req.timeoutMs ?? this.requestTimeoutMs;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(Object.assign(new Error('request timed out'), { code: 'TIMEOUT' })), timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, timeout.signal]) : timeout.signal;
    const headers: Record<string, string> = { 'user-agent': 'terabox-dav', ...(req.headers ?? {}) };
    let body: string | Buffer | Readable | undefined;
    if (req.form) {
      body = new URLSearchParams(req.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (req.body) {
      const made = req.body();
      body = made.body;
      Object.assign(headers, made.headers);
    }
    const started = Date.now();
    try {
      const res = await request(req.url, {
        dispatcher: req.dispatcher ?? this.agent,
        method: req.method,
        headers,
        body,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const status = res.statusCode;
      const resHeaders = res.headers as Record<string, string | string[] | undefined>;
      this.logger.debug(`${req.endpoint}: ${req.method} ${redactUrl(req.url)} -> HTTP ${status}`, {
        requestId: req.requestId,
        attempt,
        ms: Date.now() - started,
      });

      if (req.expect === 'stream') {
        if (status >= 200 && status < 300) {
          // the body has its own inactivity timeout (bodyTimeout); the total timer stops here
          return { status, headers: resHeaders, data: res.body as unknown as T };
        }
        if (req.passStatuses?.includes(status)) {
          return { status, headers: resHeaders, data: res.body as unknown as T };
        }
        const text = await res.body.text().catch((e: unknown) => {
          this.logger.debug(`${req.endpoint}: error body unreadable`, { requestId: req.requestId, error: String(e) });
          return '';
        });
        throw this.statusError(req, status, resHeaders, text);
      }

      const text = await res.body.text();
      let json: unknown;
      const looksJson = /^\s*[{[]/.test(text);
      if (looksJson) {
        try {
          json = parseJson(text);
        } catch (parseErr) {
          if (req.expect === 'json') {
            throw new TeraboxApiError({
              endpoint: req.endpoint,
              code: status >= 500 ? 'TBDAV_RETRYABLE' : 'TBDAV_FATAL',
              httpStatus: status,
              message: 'answer is not valid JSON',
              cause: parseErr,
            });
          }
        }
      }
      const errno = json === undefined ? 0 : (req.errnoFrom ?? answerErrno)(json);
      if (errno !== 0) {
        throw errnoError(req.endpoint, errno, {
          httpStatus: status === 200 ? undefined : status,
          requestId: serviceRequestId(json, text),
          retryAfterSec: parseRetryAfter(resHeaders['retry-after']),
          message: this.serviceMessage(json),
        });
      }
      if (status < 200 || status >= 300) throw this.statusError(req, status, resHeaders, text);
      if (req.expect === 'json') {
        if (json === undefined) {
          throw new TeraboxApiError({ endpoint: req.endpoint, code: 'TBDAV_FATAL', httpStatus: status, message: 'answer is not JSON' });
        }
        return { status, headers: resHeaders, data: json as T };
      }
      return { status, headers: resHeaders, data: text as unknown as T };
    } catch (err) {
      // a timeout of our own is an I/O error, not the caller's abort
      if (timeout.signal.aborted && !req.signal?.aborted && !isTbdavError(err)) {
        throw Object.assign(new Error(`${req.endpoint}: no answer within ${timeoutMs} ms`), { code: 'TIMEOUT', cause: err });
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The service's own words for an error, if it gave any (redacted by TeraboxApiError). */
  private serviceMessage(json: unknown): string | undefined {
    const o = (json ?? {}) as { show_msg?: unknown; errmsg?: unknown; error_msg?: unknown };
    return [o.errmsg, o.error_msg, o.show_msg].find((x) => typeof x === 'string' && x.length > 0) as string | undefined;
  }

  private statusError(req: HttpRequest, status: number, headers: Record<string, string | string[] | undefined>, text: string): TeraboxApiError {
    return new TeraboxApiError({
      endpoint: req.endpoint,
      code: httpStatusCode(status),
      httpStatus: status,
      retryAfterSec: parseRetryAfter(headers['retry-after']),
      message: text && text.length < 200 && !/^\s*</.test(text) ? redact(text.trim()) : undefined,
    });
  }
}
