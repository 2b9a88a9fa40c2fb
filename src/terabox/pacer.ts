/**
 * The adaptive pacer of API calls, in the manner of rclone's lib/pacer: calls start as fast as the
 * service accepts them, never faster than a ceiling (`terabox.callsPerSecond`), slow down
 * exponentially when the service says "too often", and speed up again gradually on success.
 * Where the service says nothing, no limit is invented: below the ceiling the spacing only grows
 * after a frequency-limit answer.
 *
 * What it paces: the start of API calls (openapi, superfile2, oauth). Download bytes (dlink and
 * CDN hops) are not API calls and do not come here (HttpRequest.pace 'none').
 *
 * The controller (all in `onLimited` / `onSuccess`):
 *  - `intervalMs`: the spacing between two call starts; `floorMs` = 1000 / ceiling is its minimum.
 *    A call starts when the previous start is `intervalMs` old (no bursts: an idle pacer does not
 *    save up starts), and, with `hold`, when fewer than `concurrency` held calls are in flight.
 *  - A frequency-limit answer (errno 31034 / 42000 / 300001, HTTP 429, HTTP 503 with Retry-After)
 *    doubles the interval (exponential backoff; at least MIN_BACKOFF_MS, and at least the spacing at
 *    which the service was accepting calls), capped at `maxIntervalMs`. The first refusal after a
 *    success, of a call that had to wait for its turn (the pacer set the pace, so it was too fast),
 *    also sets the `targetMs`: 90 % of the rate the service let through in the second before the
 *    refused call started (or of the current rate, when slower) — but only on evidence of a limit
 *    (at least 2 refusals and 10 % of the calls started in that second), and not while the pace is
 *    still slower than the target (recovering from a backoff): a lone refusal among many accepted
 *    calls (a fault that is not about our rate) backs off and recovers quickly; lowering the target
 *    at each of those ratcheted the pace down to about one call a second (test: 3 % random
 *    refusals in pacer.test.ts). Refusals in a row keep that target
 *    (their own second only saw the backed-off pace). A refusal while calls come slower than the
 *    pace (sporadic) sets no target: the recent rate was the callers', not the service's limit. A Retry-After stops every start until
 *    that time. Answers to calls that started before the last slowdown do not slow down again (they
 *    were sent at the old pace: one congestion event, one step), but each counts in the stats.
 *  - A success speeds up: quickly (the rate x1.5 per success) while slower than the target, then
 *    slowly (+0.3 % of the target rate per success), probing whether the service takes more. Once
 *    the rate is 30 % above the target without a refusal, the target is forgotten (the service's
 *    limit went up) and growth is quick again, up to the ceiling.
 *    Tuning (test/terabox/pacer.test.ts simulates it): against a service allowing 10 calls/s in any
 *    second, 8 callers with 35 ms answers get ~8.9 calls/s through with ~2.6 % refused.
 *  - Other answers (not found, network errors, plain 5xx) change nothing: they say nothing about
 *    the frequency.
 * The retry of a refused call is the caller's (http.ts: jittered exponential delay, Retry-After
 * honoured); the retried call then takes its turn here like any other.
 *
 * Concurrency: single-threaded state touched only from synchronous sections; `waiters` is FIFO,
 * drained by one pump loop at a time (`pumping`), which sleeps until the next start is due.
 */
import { setTimeout as sleepTimer } from 'node:timers/promises';

export type PaceOutcome =
  /** The service answered and did not complain about the frequency. */
  | { kind: 'ok' }
  /** "Too often": 31034-family errno, HTTP 429, or 503 with Retry-After. */
  | { kind: 'limited'; retryAfterMs?: number }
  /** Anything else (errors that say nothing about the frequency, aborts). */
  | { kind: 'other' };

/** What the pacer did, for logs and metrics (ops /metrics reads `stats()`; tests read the events). */
export type PacerEvent =
  | { type: 'backoff'; previousMs: number; intervalMs: number; targetMs: number | undefined }
  | { type: 'pause'; untilMs: number; waitMs: number };

export interface PacerStats {
  /** Calls started (retries included). */
  calls: number;
  /** Answers that said "too often" (each refused call, also those that did not slow down further). */
  rateLimited: number;
  /** Slowdowns (the interval doubled; one per congestion event). */
  backoffs: number;
  /** Retry-After answers honoured by pausing every start. */
  pauses: number;
  /** Current spacing between call starts, ms (0: unpaced). */
  intervalMs: number;
  /** The spacing the pacer is growing back towards (undefined: none known, it grows to the ceiling). */
  targetMs: number | undefined;
  /** The configured ceiling, calls per second (Infinity: none). */
  ceilingPerSecond: number;
  /** Calls waiting for their turn now. */
  waiting: number;
  /** Held calls in flight now. */
  inFlight: number;
}

export interface PacerOptions {
  /** Ceiling: calls started per second at most (default 20; 0 or Infinity: no ceiling). */
  callsPerSecond?: number;
  /** Held calls in flight at once (default 4). */
  concurrency?: number;
  /** Longest spacing the backoff reaches (default 10 s). */
  maxIntervalMs?: number;
  /** Clock, ms (tests: a virtual clock). */
  now?: () => number;
  /** Sleep (tests: advance the virtual clock). Must reject when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Told of every slowdown and pause. Must not throw. */
  onEvent?: (e: PacerEvent) => void;
}

export interface PacerTicket {
  /** Report how the call went; frees its concurrency slot. Only the first report counts. */
  done(outcome: PaceOutcome): void;
}

export const DEFAULT_CALLS_PER_SECOND = 20;
/** The first slowdown from an unpaced (or very fast) state goes at least this far. */
export const MIN_BACKOFF_MS = 10;
/** Growth while slower than the target: rate x this per success. */
const FAST_GROWTH = 1.5;
/** Growth at or above the target: + this share of the target rate per success. */
const PROBE_STEP = 0.003;
/** The target rate is this share of what the service accepted. */
const TARGET_SHARE = 0.9;
/** Above the target by this factor without a refusal: the target is forgotten. */
const FORGET_ABOVE = 1.3;
/** Window over which accepted calls are counted (the services' limits are per second). */
const WINDOW_MS = 1000;
/** Share of refused calls in the last window that makes a refusal evidence of a rate limit. */
const LIMIT_EVIDENCE = 0.1;

interface Waiter {
  hold: boolean;
  /** It had to wait for the spacing (the pacer, not the caller, set its pace). */
  waited?: boolean;
  resolve: (t: PacerTicket) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class PacerClosedError extends Error {
  constructor() {
    super('pacer closed');
    this.name = 'PacerClosedError';
  }
}

export class Pacer {
  private readonly floorMs: number;
  private readonly ceiling: number;
  private readonly concurrency: number;
  private readonly maxIntervalMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly onEvent: ((e: PacerEvent) => void) | undefined;

  private intervalMs: number;
  private targetMs: number | undefined;
  /** Earliest time the next call may start. */
  private nextStartAt = -Infinity;
  /** Retry-After: no start before this. */
  private pausedUntil = -Infinity;
  /** Bumped at every slowdown; a call remembers the epoch it started in. */
  private epoch = 0;
  /** Slowdowns since the last success. */
  private streak = 0;
  /** Start times of the recent successful calls (for the accepted rate), oldest first. */
  private readonly accepted: number[] = [];
  /** Start times of the recent refused calls (evidence of a limit), oldest first. */
  private readonly refused: number[] = [];
  private readonly waiters: Waiter[] = [];
  private inFlight = 0;
  private pumping = false;
  private closed = false;
  private readonly stop = new AbortController();
  private readonly counts = { calls: 0, rateLimited: 0, backoffs: 0, pauses: 0 };

  constructor(opts: PacerOptions = {}) {
    const cps = opts.callsPerSecond ?? DEFAULT_CALLS_PER_SECOND;
    this.ceiling = cps > 0 && Number.isFinite(cps) ? cps : Infinity;
    this.floorMs = Number.isFinite(this.ceiling) ? 1000 / this.ceiling : 0;
    this.intervalMs = this.floorMs;
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.maxIntervalMs = Math.max(this.floorMs, opts.maxIntervalMs ?? 10_000);
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? ((ms, signal) => sleepTimer(ms, undefined, { signal }));
    this.onEvent = opts.onEvent;
  }

  stats(): PacerStats {
    return {
      ...this.counts,
      intervalMs: this.intervalMs,
      targetMs: this.targetMs,
      ceilingPerSecond: this.ceiling,
      waiting: this.waiters.length,
      inFlight: this.inFlight,
    };
  }

  /**
   * Wait for this call's turn. `hold`: the call also takes one of `concurrency` slots until
   * `done` (API calls whose answer is small); without it only its start is paced (shard uploads).
   * Rejects with the signal's reason when it aborts while waiting, PacerClosedError after close().
   */
  acquire(opts: { hold: boolean; signal?: AbortSignal }): Promise<PacerTicket> {
    if (this.closed) return Promise.reject(new PacerClosedError());
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<PacerTicket>((resolve, reject) => {
      const w: Waiter = { hold: opts.hold, resolve, reject };
      if (signal) {
        w.signal = signal;
        w.onAbort = () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
      this.kick();
    });
  }

  /** Reject every waiting call and stop. Calls in flight may still report (ignored). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort();
    for (const w of this.waiters.splice(0)) {
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(new PacerClosedError());
    }
  }

  /** Run the pump; should its sleep fail (an injected sleep), the waiting calls get the error. */
  private kick(): void {
    this.pump().catch((err: unknown) => {
      for (const w of this.waiters.splice(0)) {
        if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
        w.reject(err);
      }
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closed && this.waiters.length > 0) {
        const head = this.waiters[0]!;
        if (head.hold && this.inFlight >= this.concurrency) return; // a done() pumps again
        const wait = Math.max(this.nextStartAt, this.pausedUntil) - this.now();
        if (wait > 0) {
          head.waited = true;
          try {
            await this.sleep(wait, this.stop.signal);
          } catch (err) {
            if (this.closed) return; // close() aborted the sleep: the waiters were rejected there
            throw err;
          }
          continue; // the interval, a pause or the queue may have changed meanwhile
        }
        this.waiters.shift();
        if (head.onAbort) head.signal?.removeEventListener('abort', head.onAbort);
        // saturated: this call waited for its turn, or others wait behind it
        head.resolve(this.grant(head.hold, head.waited === true || this.waiters.length > 0));
      }
    } finally {
      this.pumping = false;
    }
  }

  private grant(hold: boolean, saturated: boolean): PacerTicket {
    const startedAt = this.now();
    const epoch = this.epoch;
    this.nextStartAt = startedAt + this.intervalMs;
    this.counts.calls++;
    if (hold) this.inFlight++;
    let reported = false;
    return {
      done: (outcome: PaceOutcome) => {
        if (reported) return;
        reported = true;
        if (hold) this.inFlight--;
        if (outcome.kind === 'ok') this.onSuccess(startedAt);
        else if (outcome.kind === 'limited') this.onLimited(startedAt, epoch, saturated, outcome.retryAfterMs);
        if (this.waiters.length > 0) this.kick();
      },
    };
  }

  private setSpacing(ms: number): void {
    const next = Math.min(this.maxIntervalMs, Math.max(this.floorMs, ms));
    if (next === this.intervalMs) return;
    // the next start moves with the interval (a slowdown delays it, a speed-up brings it forward)
    if (Number.isFinite(this.nextStartAt)) this.nextStartAt += next - this.intervalMs;
    this.intervalMs = next;
  }

  private onSuccess(startedAt: number): void {
    this.streak = 0;
    this.accepted.push(startedAt);
    this.prune();
    if (this.intervalMs <= this.floorMs) return;
    const rate = 1000 / this.intervalMs;
    let next: number;
    if (this.targetMs === undefined) {
      next = rate * FAST_GROWTH;
    } else {
      const target = 1000 / this.targetMs;
      if (rate < target) next = Math.min(target, rate * FAST_GROWTH);
      else {
        next = rate + target * PROBE_STEP;
        if (next >= target * FORGET_ABOVE) this.targetMs = undefined;
      }
    }
    this.setSpacing(1000 / next);
  }

  private onLimited(startedAt: number, epoch: number, saturated: boolean, retryAfterMs: number | undefined): void {
    this.counts.rateLimited++;
    const now = this.now();
    if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs > 0) {
      const until = now + retryAfterMs;
      if (until > this.pausedUntil) {
        this.pausedUntil = until;
        this.counts.pauses++;
        this.emit({ type: 'pause', untilMs: until, waitMs: retryAfterMs });
      }
    }
    // One step per congestion event: calls sent before the last slowdown do not slow down again.
    if (epoch !== this.epoch) return;
    const previous = this.intervalMs;
    let acceptedSpacing: number | undefined;
    this.refused.push(startedAt);
    this.prune();
    // Evidence of a limit: a good share of the calls started in the second before were refused. A
    // lone refusal among many accepted calls (3 % random refusals, faults that are not about our
    // rate) backs off but sets no target: lowering the target at each of those ratcheted the pace
    // down to one call a second.
    let okInWindow = 0;
    let refusedInWindow = 0;
    for (const t of this.accepted) if (t >= startedAt - WINDOW_MS && t < startedAt) okInWindow++;
    for (const t of this.refused) if (t >= startedAt - WINDOW_MS && t <= startedAt) refusedInWindow++;
    const evidence = refusedInWindow >= LIMIT_EVIDENCE * (okInWindow + refusedInWindow) && refusedInWindow >= 2;
    // Slower than the target (still recovering from a backoff): the service refused a pace it had
    // let through before, so this says nothing new about its limit: keep the target.
    const recovering = this.targetMs !== undefined && previous > this.targetMs;
    if (!evidence || recovering) {
      // back off below, target unchanged
    } else if (this.streak === 0 && saturated) {
      // the first refusal after a success, while calls were queueing: the pacer's pace was too fast.
      // What did the service let through in the second before?
      acceptedSpacing = okInWindow > 0 ? WINDOW_MS / okInWindow : undefined;
      this.targetMs = Math.min(this.maxIntervalMs, Math.max(previous, acceptedSpacing ?? previous, MIN_BACKOFF_MS) / TARGET_SHARE);
    } else if (this.targetMs === undefined && saturated) {
      this.targetMs = Math.min(this.maxIntervalMs, Math.max(previous, MIN_BACKOFF_MS) / TARGET_SHARE);
    }
    // Not saturated (calls came slower than the pace): the recent rate was the callers', not a
    // measure of the service's limit (a sporadic refusal); no target, so success recovers quickly.
    // refusals in a row keep the target of the first: their own second saw only the backed-off pace
    this.streak++;
    this.epoch++;
    this.counts.backoffs++;
    this.setSpacing(Math.max(previous * 2, acceptedSpacing ?? 0, MIN_BACKOFF_MS));
    this.emit({ type: 'backoff', previousMs: previous, intervalMs: this.intervalMs, targetMs: this.targetMs });
  }

  /** Keep only the successes of the last two windows. */
  private prune(): void {
    const horizon = this.now() - 2 * WINDOW_MS;
    for (const list of [this.accepted, this.refused]) {
      let drop = 0;
      while (drop < list.length && list[drop]! < horizon) drop++;
      if (drop > 0) list.splice(0, drop);
    }
  }

  private emit(e: PacerEvent): void {
    this.onEvent?.(e);
  }
}
