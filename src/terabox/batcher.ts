/**
 * Batcher: single-key requests that arrive within a few milliseconds of each other share one call
 * of `run` with all their keys (an endpoint that takes a list: filemetas `target`, download
 * `fidlist`). Each caller gets its own key's result; a key asked twice in one batch is sent once.
 *
 * A batch is sent `windowMs` after its first key arrived, or at once when it is full (`maxBatch`
 * keys, or `maxCost` by the `cost` of its keys, e.g. the length they add to a URL). The shared call
 * is not tied to any caller's signal: a caller that aborts stops waiting, the others still get
 * their answers.
 *
 * Concurrency: `open` (the batch being filled) is replaced synchronously when it is sent; each
 * sent batch lives in the closure of its `flush`.
 */

export type BatchResult<V> = { value: V } | { error: unknown };

export interface BatcherOptions<K, V> {
  /** How long a batch stays open after its first key, ms (default 3). */
  windowMs?: number;
  /** Keys in one call at most. */
  maxBatch: number;
  /** What a key costs (e.g. its encoded length in the URL); with maxCost. */
  cost?: (key: K) => number;
  /** A batch is sent before its keys cost more than this (a key alone may exceed it). */
  maxCost?: number;
  /**
   * One call for `keys` (distinct, in arrival order); the result of each key at the same index.
   * A rejection fails every caller of the batch.
   */
  run: (keys: K[], requestId: string | undefined) => Promise<BatchResult<V>[]>;
}

interface Slot<V> {
  resolve: (v: V) => void;
  reject: (e: unknown) => void;
}

interface Open<K, V> {
  keys: K[];
  slots: Map<K, Slot<V>[]>;
  cost: number;
  timer: NodeJS.Timeout;
  requestId: string | undefined;
}

export class Batcher<K, V> {
  private readonly windowMs: number;
  private open: Open<K, V> | undefined;
  /** Calls of `run` so far (tests, metrics). */
  batches = 0;

  constructor(private readonly opts: BatcherOptions<K, V>) {
    this.windowMs = Math.max(0, opts.windowMs ?? 3);
  }

  /** The result for `key`, from the batch it joins. Rejects with `onAbort()` when `signal` aborts first. */
  get(key: K, opts: { signal?: AbortSignal; requestId?: string; onAbort?: () => unknown } = {}): Promise<V> {
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(opts.onAbort ? opts.onAbort() : signal.reason);
    return new Promise<V>((resolve, reject) => {
      let slot: Slot<V> = { resolve, reject };
      if (signal) {
        const abort = () => reject(opts.onAbort ? opts.onAbort() : signal.reason);
        signal.addEventListener('abort', abort, { once: true });
        slot = {
          resolve: (v) => {
            signal.removeEventListener('abort', abort);
            resolve(v);
          },
          reject: (e) => {
            signal.removeEventListener('abort', abort);
            reject(e);
          },
        };
      }
      this.add(key, slot, opts.requestId);
    });
  }

  private add(key: K, slot: Slot<V>, requestId: string | undefined): void {
    const cost = this.opts.cost?.(key) ?? 0;
    let b = this.open;
    if (b && !b.slots.has(key)) {
      const full = b.keys.length >= this.opts.maxBatch || (this.opts.maxCost !== undefined && b.cost + cost > this.opts.maxCost);
      if (full) {
        this.flush(b);
        b = undefined;
      }
    }
    if (!b) {
      const fresh: Open<K, V> = { keys: [], slots: new Map(), cost: 0, requestId, timer: setTimeout(() => this.flush(fresh), this.windowMs) };
      b = this.open = fresh;
    }
    const slots = b.slots.get(key);
    if (slots) {
      slots.push(slot);
      return;
    }
    b.keys.push(key);
    b.slots.set(key, [slot]);
    b.cost += cost;
    if (b.keys.length >= this.opts.maxBatch) this.flush(b);
  }

  private flush(b: Open<K, V>): void {
    clearTimeout(b.timer);
    if (this.open === b) this.open = undefined;
    if (b.keys.length === 0) return;
    this.batches++;
    const settleAll = (results: BatchResult<V>[] | undefined, error?: unknown): void => {
      b.keys.forEach((key, i) => {
        const r = results?.[i];
        for (const s of b.slots.get(key) ?? []) {
          if (!results) s.reject(error);
          else if (!r) s.reject(new Error('batch: no result for a key'));
          else if ('value' in r) s.resolve(r.value);
          else s.reject(r.error);
        }
      });
    };
    let running: Promise<BatchResult<V>[]>;
    try {
      running = this.opts.run([...b.keys], b.requestId);
    } catch (err) {
      settleAll(undefined, err);
      return;
    }
    running.then(
      (results) => settleAll(results),
      (err: unknown) => settleAll(undefined, err),
    );
  }
}
