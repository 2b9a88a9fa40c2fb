/**
 * /metrics (Prometheus text, prom-client) and the numbers the status page shows (issue 11).
 *
 * Sources:
 *  - the bridge itself: WebDAV requests by method and status, latency, bytes in/out (request());
 *  - the lower layers, through the Observer of src/shared/observer.ts (`observer`): upstream calls
 *    by endpoint and errno, backoffs, token refreshes, cache lookups, transfer bytes;
 *  - levels read at scrape time from the objects that own them (`levels`, given by cli/): write-back
 *    queue and spool, pacer counters and spacing, cache size.
 * Besides the registry it keeps what the status page needs and Prometheus does not: API calls in the
 * last minute, the recent failures with their errno meaning, and when the service last answered
 * (/readyz).
 *
 * One registry per instance (no global state: several bridges in one test process).
 *
 * Shared state: the prom-client metrics, `perSecond` (a ring of 60 one-second buckets),
 * `recent` (bounded list) and `lastAnswerAt` — event loop only.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ApiCallEvent, Observer } from '../shared/observer.js';

/** Levels read at scrape time (each part optional: what the running stack has). */
export interface MetricLevels {
  writeback?: { queued: number; inFlight: number; failed: number; spoolBytes: number; spoolMaxBytes: number };
  pacer?: { calls: number; rateLimited: number; backoffs: number; pauses: number; intervalMs: number };
  cache?: { bytes: number; entries: number };
}

/** A failed upstream call, as the status page lists it. */
export interface RecentError {
  at: number;
  endpoint: string;
  errno: number | undefined;
  httpStatus: number | undefined;
  code: string | undefined;
  meaning: string;
}

const RECENT_MAX = 30;
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export interface BridgeMetricsOptions {
  /** Levels read at scrape time. */
  levels?: () => MetricLevels;
  /** Process metrics (CPU, memory, event loop lag, fds) too (default true). */
  processMetrics?: boolean;
  now?: () => number;
}

export class BridgeMetrics {
  readonly registry = new Registry();
  private readonly now: () => number;
  private levelsFn: (() => MetricLevels) | undefined;

  private readonly requests: Counter<'method' | 'status'>;
  private readonly duration: Histogram<'method'>;
  private readonly bytes: Counter<'direction'>;
  private readonly upstreamCalls: Counter<'endpoint' | 'errno'>;
  private readonly upstreamDuration: Histogram<'endpoint'>;
  private readonly upstreamBytes: Counter<'direction'>;
  private readonly backoffs: Counter<'endpoint'>;
  private readonly refreshes: Counter<'result'>;
  private readonly cacheLookups: Counter<'result'>;
  private readonly loginFailures: Counter;

  /** Calls per second over the last minute: 60 buckets keyed by the second. */
  private readonly perSecond: { second: number; calls: number }[] = Array.from({ length: 60 }, () => ({ second: -1, calls: 0 }));
  private readonly recent: RecentError[] = [];
  private lastAnswer: number | undefined;
  private hits = 0;
  private misses = 0;

  /** Give to the lower layers (cli/stack.ts passes it down). */
  readonly observer: Observer;

  constructor(opts: BridgeMetricsOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.levelsFn = opts.levels;
    const r = [this.registry];
    this.requests = new Counter({ name: 'tbdav_webdav_requests_total', help: 'WebDAV requests answered, by method and HTTP status.', labelNames: ['method', 'status'], registers: r });
    this.duration = new Histogram({ name: 'tbdav_webdav_request_duration_seconds', help: 'Time from a WebDAV request to the end of its answer.', labelNames: ['method'], buckets: DURATION_BUCKETS, registers: r });
    this.bytes = new Counter({ name: 'tbdav_webdav_bytes_total', help: 'Bytes received from (in) and sent to (out) WebDAV clients, headers included.', labelNames: ['direction'], registers: r });
    this.upstreamCalls = new Counter({
      name: 'tbdav_upstream_calls_total',
      help: 'Attempts of calls to the TeraBox service by endpoint and errno ("0": success; "none": no errno, see the log).',
      labelNames: ['endpoint', 'errno'],
      registers: r,
    });
    this.upstreamDuration = new Histogram({ name: 'tbdav_upstream_call_duration_seconds', help: 'Time of one attempt of a call to the service.', labelNames: ['endpoint'], buckets: DURATION_BUCKETS, registers: r });
    this.upstreamBytes = new Counter({ name: 'tbdav_upstream_bytes_total', help: 'Body bytes sent to (up) and received from (down) the service.', labelNames: ['direction'], registers: r });
    this.backoffs = new Counter({ name: 'tbdav_backoffs_total', help: 'Waits before a retry and pacer slowdowns, by endpoint.', labelNames: ['endpoint'], registers: r });
    this.refreshes = new Counter({ name: 'tbdav_token_refreshes_total', help: 'Access token refreshes, by result.', labelNames: ['result'], registers: r });
    this.cacheLookups = new Counter({ name: 'tbdav_cache_lookups_total', help: 'Metadata lookups answered from the cache (hit) or by the service (miss).', labelNames: ['result'], registers: r });
    this.loginFailures = new Counter({ name: 'tbdav_login_failures_total', help: 'Failed Basic logins (wrong user name or password).', registers: r });

    const levels = (): MetricLevels => {
      try {
        return this.levelsFn?.() ?? {};
      } catch {
        return {};
      }
    };
    const gauge = (name: string, help: string, read: (l: MetricLevels) => number | undefined): void => {
      new Gauge({
        name,
        help,
        registers: r,
        collect() {
          const v = read(levels());
          if (v === undefined) this.reset();
          else this.set(v);
        },
      });
    };
    gauge('tbdav_writeback_queued_uploads', 'Write-back uploads waiting for their turn or for their next attempt.', (l) => l.writeback?.queued);
    gauge('tbdav_writeback_uploading', 'Write-back uploads running now.', (l) => l.writeback?.inFlight);
    gauge('tbdav_writeback_failed_uploads', 'Write-back uploads TeraBox refused for good, kept until retried or removed (status page, terabox-dav uploads).', (l) => l.writeback?.failed);
    gauge('tbdav_writeback_spool_bytes', 'Bytes of not-yet-uploaded bodies on local disk.', (l) => l.writeback?.spoolBytes);
    gauge('tbdav_writeback_spool_max_bytes', 'upload.spoolMaxBytes: beyond it a PUT gets 507.', (l) => l.writeback?.spoolMaxBytes);
    gauge('tbdav_pacer_interval_seconds', 'Current spacing between API call starts (0: unpaced).', (l) => (l.pacer ? l.pacer.intervalMs / 1000 : undefined));
    gauge('tbdav_pacer_backoffs', 'Pacer slowdowns since start (the spacing doubled after the service said "too often").', (l) => l.pacer?.backoffs);
    gauge('tbdav_pacer_rate_limited_answers', 'Answers that said "too often" (31034, 42000, 429...) since start.', (l) => l.pacer?.rateLimited);
    gauge('tbdav_cache_bytes', 'Bytes held by the local cache.', (l) => l.cache?.bytes);
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'tbdav_' });

    this.observer = {
      apiCall: (e) => this.apiCall(e),
      backoff: (e) => this.backoffs.inc({ endpoint: e.endpoint }),
      tokenRefresh: (e) => this.refreshes.inc({ result: e.ok ? 'ok' : 'failed' }),
      cacheLookup: (e) => {
        if (e.hit) this.hits++;
        else this.misses++;
        this.cacheLookups.inc({ result: e.hit ? 'hit' : 'miss' });
      },
      transfer: (e) => this.upstreamBytes.inc({ direction: e.direction }, e.bytes),
    };
  }

  /** Set (or replace) where levels come from. */
  setLevels(fn: () => MetricLevels): void {
    this.levelsFn = fn;
  }

  /** One WebDAV request answered (or cut). */
  request(method: string, status: number, seconds: number, bytesIn: number, bytesOut: number): void {
    const m = KNOWN_METHODS.has(method) ? method : 'other';
    this.requests.inc({ method: m, status: String(status) });
    this.duration.observe({ method: m }, seconds);
    if (bytesIn > 0) this.bytes.inc({ direction: 'in' }, bytesIn);
    if (bytesOut > 0) this.bytes.inc({ direction: 'out' }, bytesOut);
  }

  loginFailed(): void {
    this.loginFailures.inc();
  }

  private apiCall(e: ApiCallEvent): void {
    const t = this.now();
    this.upstreamCalls.inc({ endpoint: e.endpoint, errno: e.errno === undefined ? 'none' : String(e.errno) });
    this.upstreamDuration.observe({ endpoint: e.endpoint }, e.ms / 1000);
    const second = Math.floor(t / 1000);
    const b = this.perSecond[second % 60]!;
    if (b.second !== second) {
      b.second = second;
      b.calls = 0;
    }
    b.calls++;
    if (e.httpStatus !== undefined) this.lastAnswer = t;
    if (e.errno !== 0 && e.code !== 'TBDAV_ABORTED') {
      this.recent.push({ at: t, endpoint: e.endpoint, errno: e.errno, httpStatus: e.httpStatus, code: e.code, meaning: e.meaning ?? 'failed' });
      if (this.recent.length > RECENT_MAX) this.recent.shift();
    }
  }

  /** API call attempts in the last 60 s. */
  callsLastMinute(): number {
    const now = Math.floor(this.now() / 1000);
    return this.perSecond.reduce((n, b) => (b.second > now - 60 && b.second <= now ? n + b.calls : n), 0);
  }

  /** Failed upstream calls, newest first. */
  recentErrors(): RecentError[] {
    return [...this.recent].reverse();
  }

  /** When the service last answered anything (even an error), ms since epoch. */
  lastAnswerAt(): number | undefined {
    return this.lastAnswer;
  }

  /** Metadata cache hits and misses since start. */
  cacheCounts(): { hits: number; misses: number } {
    return { hits: this.hits, misses: this.misses };
  }

  /** The Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

const KNOWN_METHODS = new Set(['OPTIONS', 'GET', 'HEAD', 'PUT', 'DELETE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'POST']);
