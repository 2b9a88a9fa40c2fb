/**
 * The adaptive pacer (src/terabox/pacer.ts) and its use by HttpCaller (src/terabox/http.ts).
 *
 * No timing assertions: the pacer runs on a virtual clock (injected `now`/`sleep`), so the
 * spacings it computes are asserted exactly; the HTTP tests use a real local server answering
 * 31034 / 429 / 503 and assert on counts, order and the delays the caller computed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pacer, MIN_BACKOFF_MS, type PacerEvent, type PaceOutcome } from '../../src/terabox/pacer.js';
import { HttpCaller, paceOutcome } from '../../src/terabox/http.js';
import { TeraboxApiError } from '../../src/terabox/errors.js';
import { prng } from '../helpers/random.js';

// ------------------------------------------------------------------ a virtual clock

/** Discrete-event clock: sleeps wake in time order; time jumps to the next wake-up when all else waits. */
class VirtualClock {
  t = 0;
  private timers: { at: number; seq: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private seq = 0;
  readonly slept: number[] = [];
  now = (): number => this.t;
  sleep = (ms: number, signal?: AbortSignal): Promise<void> => {
    this.slept.push(ms);
    return new Promise<void>((resolve, reject) => {
      const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, resolve, reject };
      this.timers.push(timer);
      signal?.addEventListener(
        'abort',
        () => {
          this.timers = this.timers.filter((x) => x !== timer);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  };
  /** Let every promise chain settle, then wake the earliest sleeper; until `done()` or no sleeper is left. */
  async run(done: () => boolean): Promise<void> {
    for (;;) {
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      if (done() || this.timers.length === 0) return;
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers.shift()!;
      this.t = Math.max(this.t, next.at);
      next.resolve();
    }
  }
}

const OK: PaceOutcome = { kind: 'ok' };
const LIMITED: PaceOutcome = { kind: 'limited' };

/** Acquire one ticket on a virtual clock; returns it with the time it was granted. */
async function turn(clock: VirtualClock, pacer: Pacer): Promise<{ done: (o: PaceOutcome) => void; at: number }> {
  let got: { done: (o: PaceOutcome) => void; at: number } | undefined;
  void pacer.acquire({ hold: true }).then((t) => (got = { done: (o) => t.done(o), at: clock.now() }));
  await clock.run(() => got !== undefined);
  assert.ok(got, 'the pacer granted the call');
  return got;
}

// ------------------------------------------------------------------ the controller on a virtual clock

test('below the ceiling the pacer invents no limit: without a ceiling, 20 calls never wait', async () => {
  const clock = new VirtualClock();
  const pacer = new Pacer({ callsPerSecond: Infinity, now: clock.now, sleep: clock.sleep });
  for (let i = 0; i < 20; i++) (await turn(clock, pacer)).done(OK);
  assert.deepEqual(clock.slept, []);
  assert.equal(clock.t, 0);
  assert.equal(pacer.stats().calls, 20);
  assert.equal(pacer.stats().intervalMs, 0);
});

test('the ceiling spaces call starts evenly (no burst after an idle time)', async () => {
  const clock = new VirtualClock();
  const pacer = new Pacer({ callsPerSecond: 10, now: clock.now, sleep: clock.sleep });
  const at: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = await turn(clock, pacer);
    at.push(t.at);
    t.done(OK);
  }
  assert.deepEqual(at, [0, 100, 200, 300, 400]);
  clock.t = 5000; // idle for a while: the next call goes at once, the one after it 100 ms later
  const a = await turn(clock, pacer);
  a.done(OK);
  const b = await turn(clock, pacer);
  b.done(OK);
  assert.deepEqual([a.at, b.at], [5000, 5100]);
});

test('"too often" doubles the spacing per congestion event, up to the cap; success recovers quickly, then probes slowly', async () => {
  const clock = new VirtualClock();
  const events: PacerEvent[] = [];
  const pacer = new Pacer({ callsPerSecond: 20, maxIntervalMs: 1000, now: clock.now, sleep: clock.sleep, onEvent: (e) => events.push(e) });
  assert.equal(pacer.stats().intervalMs, 50);
  const spacing: number[] = [];
  for (let i = 0; i < 6; i++) {
    (await turn(clock, pacer)).done(LIMITED);
    spacing.push(pacer.stats().intervalMs);
  }
  // nothing accepted before: the target is the current spacing / 0.9; the spacing doubles each time, capped at 1000 ms
  assert.deepEqual(spacing, [100, 200, 400, 800, 1000, 1000]);
  assert.deepEqual(
    events.map((e) => (e.type === 'backoff' ? [e.previousMs, e.intervalMs] : e.type)),
    [[50, 100], [100, 200], [200, 400], [400, 800], [800, 1000], [1000, 1000]],
  );
  const s = pacer.stats();
  assert.equal(s.rateLimited, 6);
  assert.equal(s.backoffs, 6);
  // the target came with the first refusal of a call that waited for its turn (the second: the
  // first went at once), the spacing then (100 ms) / 0.9, and stays for the refusals in a row
  assert.ok(Math.abs(s.targetMs! - 100 / 0.9) < 1e-9, `target ${s.targetMs}`);
  // success: the rate x1.5 per success up to the target rate (9/s), then +0.3 % of it per success
  const rates: number[] = [];
  for (let i = 0; i < 7; i++) {
    (await turn(clock, pacer)).done(OK);
    rates.push(Math.round((1000 / pacer.stats().intervalMs) * 1000) / 1000);
  }
  assert.deepEqual(rates, [1.5, 2.25, 3.375, 5.063, 7.594, 9, 9.027]);
});

test('a sporadic refusal while calls come slower than the pace sets no target: back to the ceiling quickly', async () => {
  const clock = new VirtualClock();
  const pacer = new Pacer({ callsPerSecond: 10, now: clock.now, sleep: clock.sleep });
  for (let i = 0; i < 3; i++) {
    (await turn(clock, pacer)).done(OK);
    clock.t += 1000; // the callers' own pace: one call a second
  }
  (await turn(clock, pacer)).done(LIMITED);
  assert.equal(pacer.stats().intervalMs, 200);
  assert.equal(pacer.stats().targetMs, undefined);
  (await turn(clock, pacer)).done(OK);
  (await turn(clock, pacer)).done(OK);
  assert.equal(pacer.stats().intervalMs, 100);
});

test('fast recovery towards the target, forgetting it once well above, back to the ceiling', async () => {
  const clock = new VirtualClock();
  const pacer = new Pacer({ callsPerSecond: 20, now: clock.now, sleep: clock.sleep });
  // 10 accepted calls at 50 ms, then one refused: a lone refusal among many accepted calls is no
  // evidence of a limit (1 of 11 < 10 %): it backs off and sets no target
  for (let i = 0; i < 10; i++) (await turn(clock, pacer)).done(OK);
  (await turn(clock, pacer)).done(LIMITED);
  assert.equal(pacer.stats().intervalMs, 100);
  assert.equal(pacer.stats().targetMs, undefined);
  // a second refusal in the same second is (2 of 12): the target is the pace then / 0.9 = 1/(0.9 x 10/s)
  (await turn(clock, pacer)).done(LIMITED);
  assert.equal(pacer.stats().intervalMs, 200);
  assert.ok(Math.abs(pacer.stats().targetMs! - 1000 / 9) < 1e-9, `target ${pacer.stats().targetMs}`);
  // growth to the target (9/s), then probing, +0.027/s per success, until 1.3 x 9/s = 11.7/s
  let probes = 0;
  while (pacer.stats().targetMs !== undefined) {
    (await turn(clock, pacer)).done(OK);
    probes++;
    assert.ok(probes < 150, 'the target is forgotten at some point');
  }
  // from 5/s: two quick steps (7.5/s, then the target 9/s), then 101 probes of +0.027/s to 11.7/s
  assert.equal(probes, 103);
  // then quick growth again, up to the ceiling
  for (let i = 0; i < 3; i++) (await turn(clock, pacer)).done(OK);
  assert.equal(pacer.stats().intervalMs, 50);
});

test('one step per congestion event: answers to calls sent before the slowdown only count', async () => {
  const clock = new VirtualClock();
  const pacer = new Pacer({ callsPerSecond: 100, concurrency: 4, now: clock.now, sleep: clock.sleep });
  const a = await turn(clock, pacer);
  const b = await turn(clock, pacer);
  const c = await turn(clock, pacer);
  a.done(LIMITED);
  b.done(LIMITED);
  c.done(LIMITED);
  const s = pacer.stats();
  assert.equal(s.rateLimited, 3);
  assert.equal(s.backoffs, 1);
  assert.equal(s.intervalMs, 20);
  // a call sent after the slowdown, refused too: a new event
  (await turn(clock, pacer)).done(LIMITED);
  assert.equal(pacer.stats().backoffs, 2);
  assert.equal(pacer.stats().intervalMs, 40);
});

test('an unpaced pacer slows down by at least MIN_BACKOFF_MS on the first refusal', async () => {
  const clock = new VirtualClock();
  const pacer = new Pacer({ callsPerSecond: 0, now: clock.now, sleep: clock.sleep });
  (await turn(clock, pacer)).done(LIMITED);
  assert.equal(pacer.stats().intervalMs, MIN_BACKOFF_MS);
  const next = await turn(clock, pacer);
  assert.equal(next.at, MIN_BACKOFF_MS);
});

test('Retry-After stops every start until then', async () => {
  const clock = new VirtualClock();
  const events: PacerEvent[] = [];
  const pacer = new Pacer({ callsPerSecond: 100, now: clock.now, sleep: clock.sleep, onEvent: (e) => events.push(e) });
  const a = await turn(clock, pacer);
  a.done({ kind: 'limited', retryAfterMs: 3000 });
  assert.deepEqual(events.map((e) => e.type), ['pause', 'backoff']);
  const b = await turn(clock, pacer);
  assert.equal(b.at, 3000);
  assert.equal(pacer.stats().pauses, 1);
});

test('other outcomes change nothing; concurrency bounds held calls, not paced-at-start ones', async () => {
  const clock = new VirtualClock();
  const pacer = new Pacer({ callsPerSecond: Infinity, concurrency: 1, now: clock.now, sleep: clock.sleep });
  const a = await turn(clock, pacer);
  let second = false;
  void pacer.acquire({ hold: true }).then((t) => {
    second = true;
    t.done(OK);
  });
  let start = false;
  // a start-only ticket behind a blocked held one waits its turn (FIFO), then goes without a slot
  void pacer.acquire({ hold: false }).then((t) => {
    start = true;
    t.done(OK);
  });
  await clock.run(() => false);
  assert.equal(second, false, 'the second held call waits for the slot');
  assert.equal(start, false);
  a.done({ kind: 'other' });
  await clock.run(() => second && start);
  assert.equal(second, true);
  assert.equal(start, true);
  assert.equal(pacer.stats().backoffs, 0);
  assert.equal(pacer.stats().intervalMs, 0);
});

test('a waiting call leaves the queue when its signal aborts; close() rejects the rest', async () => {
  const clock = new VirtualClock();
  const pacer = new Pacer({ callsPerSecond: 1, now: clock.now, sleep: clock.sleep });
  (await turn(clock, pacer)).done(OK);
  const ac = new AbortController();
  const aborted = pacer.acquire({ hold: true, signal: ac.signal });
  const closed = pacer.acquire({ hold: true });
  assert.equal(pacer.stats().waiting, 2);
  ac.abort(new Error('gone'));
  await assert.rejects(aborted, /gone/);
  assert.equal(pacer.stats().waiting, 1);
  pacer.close();
  await assert.rejects(closed, { name: 'PacerClosedError' });
  await assert.rejects(pacer.acquire({ hold: true }), { name: 'PacerClosedError' });
});

/**
 * 8 workers making `wanted` successful calls through a pacer (ceiling 20/s, 4 held) on a virtual
 * clock: each call asks `answer` (true: accepted), takes 35 ms, and a refused one is retried after
 * http.ts's jittered exponential delay. The worst spacing is read after every answer.
 */
async function simulate(wanted: number, random: () => number, answer: (t: number) => boolean) {
  const clock = new VirtualClock();
  const pacer = new Pacer({ callsPerSecond: 20, concurrency: 4, now: clock.now, sleep: clock.sleep });
  let calls = 0;
  let refused = 0;
  let worstInterval = 0;
  const worker = async (): Promise<void> => {
    while (wanted > 0) {
      wanted--;
      for (let attempt = 1; ; attempt++) {
        const ticket = await pacer.acquire({ hold: true });
        calls++;
        const ok = answer(clock.now());
        await clock.sleep(35); // latency of the answer
        ticket.done(ok ? OK : LIMITED);
        worstInterval = Math.max(worstInterval, pacer.stats().intervalMs);
        if (ok) break;
        refused++;
        await clock.sleep(Math.floor(random() * Math.min(30_000, 500 * 2 ** (attempt - 1)))); // http.ts's retry delay
      }
    }
  };
  let finished = 0;
  for (let i = 0; i < 8; i++) void worker().then(() => finished++);
  await clock.run(() => finished === 8);
  assert.equal(finished, 8);
  return { calls, refused, seconds: clock.t / 1000, worstInterval, stats: pacer.stats() };
}

test('simulation: a service allowing 10 calls/s, 8 workers, ceiling 20/s: < 10 % refused, >= 7.5 accepted calls/s', async () => {
  // the service: a sliding 1 s window over accepted calls (what the emulator's rateLimit does)
  const acceptedAt: number[] = [];
  const service = (t: number): boolean => {
    const n = acceptedAt.filter((x) => x > t - 1000).length;
    if (n >= 10) return false;
    acceptedAt.push(t);
    return true;
  };
  const { calls, refused, seconds, stats } = await simulate(600, prng(42), service); // 200 files x 3 calls
  const share = refused / calls;
  const perSecond = acceptedAt.length / seconds;
  assert.equal(acceptedAt.length, 600);
  assert.ok(share < 0.1, `refused share ${share.toFixed(3)} (${refused} of ${calls})`);
  assert.ok(perSecond >= 7.5, `accepted ${perSecond.toFixed(2)} calls/s`);
  assert.equal(stats.rateLimited, refused);
  console.log(`# simulation: ${refused} of ${calls} refused (${(share * 100).toFixed(1)} %), ${perSecond.toFixed(2)} accepted calls/s`);
});

test('simulation: a service with no limit that answers "too often" to 3 % of calls at random: the pace does not ratchet down', async () => {
  // what the emulator's fault injection does (and a service whose 31034 is not about our rate):
  // each refusal backs off, but the pacer must not keep lowering its target at every one of them
  const random = prng(7);
  const { calls, refused, seconds, worstInterval, stats } = await simulate(1200, random, () => random() >= 0.03);
  const perSecond = (calls - refused) / seconds;
  console.log(`# random refusals: ${refused} of ${calls} refused, ${perSecond.toFixed(2)} accepted calls/s, worst spacing ${worstInterval.toFixed(0)} ms, target at the end ${stats.targetMs?.toFixed(0) ?? 'none'}`);
  // the ceiling allows 20/s; 8 workers with 35 ms answers and retry delays get well over half of it
  // when each refusal costs one backoff and no lasting target
  assert.ok(perSecond >= 10, `accepted ${perSecond.toFixed(2)} calls/s`);
  assert.ok(worstInterval <= 1000, `the spacing reached ${worstInterval.toFixed(0)} ms`);
});

// ------------------------------------------------------------------ HttpCaller against a local server

let server: Server;
let base: string;
const hits: Record<string, number> = {};

function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname;
  const n = (hits[path] = (hits[path] ?? 0) + 1);
  const limitFirst = Number(url.searchParams.get('n') ?? '2');
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  // '/errno-31034/<anything>': the same answers, counted apart (each test its own path)
  switch (path.startsWith('/errno-31034') ? '/errno-31034' : path) {
    case '/errno-31034': // the first n answers: HTTP 200 errno 31034
      if (n <= limitFirst) return json(200, { errno: 31034, request_id: 1 });
      return json(200, { errno: 0, ok: true });
    case '/superfile2-31034': // the upload host's form
      if (n <= limitFirst) return json(200, { error_code: 31034, error_msg: 'hit frequency limit', request_id: 2 });
      return json(200, { md5: 'x', partseq: 0 });
    case '/429':
      if (n <= limitFirst) return json(429, { errno: 0 }, { 'retry-after': '2' });
      return json(200, { errno: 0, ok: true });
    case '/503-retry-after':
      if (n <= limitFirst) {
        res.writeHead(503, { 'retry-after': '1', 'content-type': 'text/plain' });
        return void res.end('Service Unavailable');
      }
      return json(200, { errno: 0, ok: true });
    case '/503-plain':
      if (n <= limitFirst) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        return void res.end('Service Unavailable');
      }
      return json(200, { errno: 0, ok: true });
    case '/not-found':
      return json(200, { errno: -9 });
    default:
      return json(200, { errno: 0, ok: true });
  }
}

before(async () => {
  server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** A caller on a virtual clock whose sleeps return at once (sequential calls only). */
function virtualCaller(over: ConstructorParameters<typeof HttpCaller>[0] = {}) {
  let t = 0;
  const sleeps: number[] = [];
  const events: PacerEvent[] = [];
  const h = new HttpCaller({
    retryBaseMs: 500,
    retryMaxMs: 30_000,
    maxRetries: 5,
    callsPerSecond: 10,
    random: () => 1, // full jitter at its ceiling: the delays are exact
    now: () => t,
    sleep: async (ms) => {
      sleeps.push(ms);
      t += ms;
    },
    onPacerEvent: (e) => events.push(e),
    ...over,
  });
  return { h, sleeps, events, now: () => t };
}

test('errno 31034 slows the pacer and is retried with exponential delays', async () => {
  const { h, sleeps, events } = virtualCaller();
  try {
    const res = await h.call<{ ok: boolean }>({ endpoint: 'list', method: 'GET', url: new URL('/errno-31034?n=2', base), retry: 'idempotent', expect: 'json' });
    assert.equal(res.data.ok, true);
    assert.equal(hits['/errno-31034'], 3);
    const s = h.pacerStats();
    assert.equal(s.calls, 3);
    assert.equal(s.rateLimited, 2);
    assert.equal(s.backoffs, 2);
    // retry delays 500, 1000 (full jitter at random() = 1); the pacer's spacing 100 -> 200 -> 400 ms
    assert.deepEqual(
      events.map((e) => (e.type === 'backoff' ? e.intervalMs : -1)),
      [200, 400],
    );
    assert.deepEqual(sleeps, [500, 1000]);
    // after the success the spacing recovers (the rate x1.5 per success below the target)
    assert.equal(s.intervalMs, 1000 / 3.75);
  } finally {
    await h.close();
  }
});

test('the observer hears every attempt and every wait: the pacer slowdown, then the retry delay', async () => {
  const calls: { endpoint: string; errno: number | undefined; httpStatus: number | undefined; code?: string; meaning?: string }[] = [];
  const waits: { endpoint: string; delayMs: number; reason: string }[] = [];
  const { h } = virtualCaller({
    observer: {
      apiCall: (e) => calls.push({ endpoint: e.endpoint, errno: e.errno, httpStatus: e.httpStatus, code: e.code, meaning: e.meaning }),
      backoff: (e) => waits.push(e),
    },
  });
  try {
    await h.call({ endpoint: 'list', method: 'GET', url: new URL('/errno-31034/observer?n=2', base), retry: 'idempotent', expect: 'json' });
    assert.deepEqual(calls, [
      { endpoint: 'list', errno: 31034, httpStatus: undefined, code: 'TBDAV_RETRYABLE', meaning: 'rate limited' },
      { endpoint: 'list', errno: 31034, httpStatus: undefined, code: 'TBDAV_RETRYABLE', meaning: 'rate limited' },
      { endpoint: 'list', errno: 0, httpStatus: 200, code: undefined, meaning: undefined },
    ]);
    assert.deepEqual(
      waits.map((w) => [w.reason.startsWith('pacer') ? 'pacer' : 'retry', w.delayMs]),
      [['pacer', 200], ['retry', 500], ['pacer', 400], ['retry', 1000]],
    );
  } finally {
    await h.close();
  }
});

test('superfile2 error_code 31034 counts as "too often" too', async () => {
  const { h } = virtualCaller();
  try {
    await h.call({ endpoint: 'superfile2', method: 'POST', url: new URL('/superfile2-31034?n=1', base), body: () => ({ body: 'x', headers: {} }), retry: 'idempotent', expect: 'json', pace: 'start' });
    assert.equal(h.pacerStats().rateLimited, 1);
    assert.equal(h.pacerStats().backoffs, 1);
  } finally {
    await h.close();
  }
});

test('HTTP 429 with Retry-After: every call waits that long, the retry too', async () => {
  const { h, sleeps, events } = virtualCaller();
  try {
    await h.call({ endpoint: 'create', method: 'POST', url: new URL('/429?n=1', base), form: {}, retry: 'unsafe', expect: 'json' });
    assert.equal(hits['/429'], 2);
    assert.deepEqual(events.map((e) => e.type), ['pause', 'backoff']);
    const pause = events[0] as Extract<PacerEvent, { type: 'pause' }>;
    assert.equal(pause.waitMs, 2000);
    assert.deepEqual(sleeps, [2000], 'the retry waited Retry-After; the pause had passed by then');
    assert.equal(h.pacerStats().pauses, 1);
  } finally {
    await h.close();
  }
});

test('HTTP 503 with Retry-After is "too often"; a plain 503 is only retried', async () => {
  const a = virtualCaller();
  try {
    await a.h.call({ endpoint: 'list', method: 'GET', url: new URL('/503-retry-after?n=1', base), retry: 'idempotent', expect: 'json' });
    assert.equal(a.h.pacerStats().rateLimited, 1);
    assert.equal(a.h.pacerStats().pauses, 1);
    assert.deepEqual(a.sleeps, [1000]);
  } finally {
    await a.h.close();
  }
  const b = virtualCaller();
  try {
    await b.h.call({ endpoint: 'list', method: 'GET', url: new URL('/503-plain?n=1', base), retry: 'idempotent', expect: 'json' });
    assert.equal(hits['/503-plain'], 2);
    assert.equal(b.h.pacerStats().rateLimited, 0);
    assert.equal(b.h.pacerStats().backoffs, 0);
    assert.equal(b.h.pacerStats().intervalMs, 100);
  } finally {
    await b.h.close();
  }
});

test('an answered error (errno -9) is an accepted call: no slowdown', async () => {
  const { h } = virtualCaller();
  try {
    await assert.rejects(h.call({ endpoint: 'filemetas', method: 'GET', url: new URL('/not-found', base), retry: 'idempotent', expect: 'json' }), { code: 'TBDAV_NOT_FOUND' });
    assert.equal(h.pacerStats().rateLimited, 0);
    assert.equal(h.pacerStats().calls, 1);
  } finally {
    await h.close();
  }
});

test("pace 'none' (download bytes) bypasses the pacer: not counted, not held by a pause", async () => {
  const { h, sleeps } = virtualCaller();
  try {
    await h.call({ endpoint: 'create', method: 'POST', url: new URL('/429?n=1', base), form: {}, retry: 'unsafe', expect: 'json' });
    const calls = h.pacerStats().calls;
    sleeps.length = 0;
    for (let i = 0; i < 5; i++) await h.call({ endpoint: 'dlink', method: 'GET', url: new URL('/bytes', base), retry: 'idempotent', expect: 'json', pace: 'none' });
    assert.equal(h.pacerStats().calls, calls);
    assert.deepEqual(sleeps, []);
  } finally {
    await h.close();
  }
});

test('paceOutcome classifies answers', () => {
  const e = (init: Partial<ConstructorParameters<typeof TeraboxApiError>[0]>) =>
    new TeraboxApiError({ endpoint: 'x', code: 'TBDAV_RETRYABLE', ...init } as ConstructorParameters<typeof TeraboxApiError>[0]);
  assert.deepEqual(paceOutcome(e({ errno: 31034 })), { kind: 'limited' });
  assert.deepEqual(paceOutcome(e({ errno: 42000 })), { kind: 'limited' });
  assert.deepEqual(paceOutcome(e({ httpStatus: 429 })), { kind: 'limited' });
  assert.deepEqual(paceOutcome(e({ httpStatus: 429, retryAfterSec: 3 })), { kind: 'limited', retryAfterMs: 3000 });
  assert.deepEqual(paceOutcome(e({ httpStatus: 503, retryAfterSec: 1 })), { kind: 'limited', retryAfterMs: 1000 });
  assert.deepEqual(paceOutcome(e({ httpStatus: 503 })), { kind: 'other' });
  assert.deepEqual(paceOutcome(e({ httpStatus: 502 })), { kind: 'other' });
  assert.deepEqual(paceOutcome(e({ errno: -9, code: 'TBDAV_NOT_FOUND' })), { kind: 'ok' });
  assert.deepEqual(paceOutcome(new Error('ECONNRESET')), { kind: 'other' });
});
