/**
 * What the layers report for /metrics and the status page (issue 11): ONE small interface of
 * events, built by the composition root (cli/stack.ts) and handed down through constructor options
 * (`observer?: Observer`). A layer with something to report calls the matching method when present;
 * it keeps no counters for others and never imports prom-client (only dav/ and cli/ do).
 *
 * Levels (queue depth, spool bytes, cache size, pacer interval) are not pushed: the composition
 * root reads them at scrape time from the objects that own them (WritebackQueue.usage(), ...).
 *
 * Every method must be cheap and must not throw (callers do not guard against it); `safeObserver`
 * wraps one so that a fault in metrics never fails a request.
 */
import type { ErrorCode } from './errors.js';

export interface ApiCallEvent {
  /** Endpoint name as in logs and errors ('list', 'filemetas', 'precreate', 'superfile2', 'token', 'dlink'...). */
  endpoint: string;
  /** errno of the answer: 0 for success; undefined when there was none (network error, bare HTTP error). */
  errno: number | undefined;
  /** HTTP status of the answer; undefined when none came (connection refused, timeout). */
  httpStatus: number | undefined;
  /** Our code for a failure (TBDAV_RETRYABLE, TBDAV_AUTH...); undefined on success. */
  code?: ErrorCode;
  /** Short meaning of the errno or of the failure ('rate limited', 'ECONNRESET'...). Never a secret. */
  meaning?: string;
  /** Time of this attempt, ms. */
  ms: number;
  /** Our request id (from the WebDAV request), when the call has one. */
  requestId?: string;
}

export interface Observer {
  /** One attempt of a call to the service ended (terabox/http.ts, the one call path). */
  apiCall?(e: ApiCallEvent): void;
  /** A call waits before a retry, or the pacer slowed down after a rate-limit answer (terabox/http.ts). */
  backoff?(e: { endpoint: string; delayMs: number; reason: string }): void;
  /** The access token was refreshed (ok) or the refresh was refused (terabox/auth). */
  tokenRefresh?(e: { ok: boolean }): void;
  /** A metadata lookup was answered from the cache (hit) or had to ask the service (miss) (vfs). */
  cacheLookup?(e: { hit: boolean }): void;
  /** Body bytes sent to (up) or received from (down) the service (terabox uploads and downloads). */
  transfer?(e: { direction: 'up' | 'down'; bytes: number }): void;
}

/** Calls every given observer in turn. */
export function combineObservers(...observers: (Observer | undefined)[]): Observer {
  const list = observers.filter((o): o is Observer => o !== undefined);
  return {
    apiCall: (e) => list.forEach((o) => o.apiCall?.(e)),
    backoff: (e) => list.forEach((o) => o.backoff?.(e)),
    tokenRefresh: (e) => list.forEach((o) => o.tokenRefresh?.(e)),
    cacheLookup: (e) => list.forEach((o) => o.cacheLookup?.(e)),
    transfer: (e) => list.forEach((o) => o.transfer?.(e)),
  };
}

/** An observer whose faults are reported to `onError` instead of reaching the caller. */
export function safeObserver(o: Observer, onError: (err: unknown) => void): Observer {
  const guard =
    <E>(fn: ((e: E) => void) | undefined) =>
    (e: E): void => {
      if (!fn) return;
      try {
        fn.call(o, e);
      } catch (err) {
        onError(err);
      }
    };
  return {
    apiCall: guard(o.apiCall),
    backoff: guard(o.backoff),
    tokenRefresh: guard(o.tokenRefresh),
    cacheLookup: guard(o.cacheLookup),
    transfer: guard(o.transfer),
  };
}
