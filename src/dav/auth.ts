/**
 * HTTP Basic authentication against configured users. Passwords are plain or scrypt hashes in the
 * format of src/shared/password.ts (`terabox-dav hash-password`); comparisons are constant-time.
 *
 * Shared state: `verified` (a small cache of successful scrypt checks, keyed by a sha256 of the
 * credentials, so that a client's every request does not pay an scrypt) — event loop only.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { ConfigError } from '../shared/errors.js';
import { isPasswordHash, parsePasswordHash, verifyPassword } from '../shared/password.js';

export interface BridgeUser {
  username: string;
  /** Plain, or 'scrypt$N$r$p$saltB64$hashB64'. */
  password: string;
  /** Writes answer 403. */
  readOnly?: boolean;
  /** A folder of the share this user sees as '/' (default '/'). */
  root?: string;
}

/** Parse an Authorization header; undefined when absent, not Basic, or malformed. */
export function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  if (!header) return undefined;
  const m = /^\s*basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!m) return undefined;
  // Node's base64 decoder takes the standard (+ /) and the URL-safe (- _) alphabets alike.
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

const CACHE_MAX = 256;
const CACHE_TTL_MS = 10 * 60_000;

export class BasicAuthenticator {
  private readonly users: ReadonlyMap<string, string>;
  private readonly verified = new Map<string, number>();

  constructor(users: BridgeUser[]) {
    const map = new Map<string, string>();
    for (const u of users) {
      if (!u.username || u.username.includes(':')) throw new ConfigError('server.users', 'a username is empty or contains ":"');
      if (isPasswordHash(u.password) && !parsePasswordHash(u.password)) {
        throw new ConfigError('server.users', `malformed scrypt hash for user ${u.username}`);
      }
      map.set(u.username, u.password);
    }
    this.users = map;
  }

  /** The authenticated username, or undefined when the credentials are missing or wrong. */
  async check(header: string | undefined): Promise<string | undefined> {
    const cred = parseBasic(header);
    if (!cred) return undefined;
    const stored = this.users.get(cred.username);
    if (stored === undefined) {
      // Unknown users pay a comparison too, so that timing does not tell which names exist.
      await verifyPassword(cred.password, '\u0000');
      return undefined;
    }
    if (!isPasswordHash(stored)) return (await verifyPassword(cred.password, stored)) ? cred.username : undefined;
    const key = createHash('sha256').update(cred.username).update('\u0000').update(cred.password).update('\u0000').update(stored).digest();
    const cacheKey = key.toString('base64');
    const until = this.verified.get(cacheKey);
    if (until !== undefined && until > Date.now()) return cred.username;
    if (!(await verifyPassword(cred.password, stored))) return undefined;
    if (this.verified.size >= CACHE_MAX) this.verified.clear();
    this.verified.set(cacheKey, Date.now() + CACHE_TTL_MS);
    return cred.username;
  }
}

export interface LoginThrottleOptions {
  /** Failed logins of one (address, user name) answered without delay (default 5). */
  freeFailures?: number;
  /** Failed logins of one address, all user names together, answered without delay (default 20). */
  freeFailuresPerAddress?: number;
  /** Delay of the first slowed failure, ms; it doubles with each further failure (default 1000). */
  baseDelayMs?: number;
  /** Longest delay of a failed answer, ms (default 30 000). */
  maxDelayMs?: number;
  /** Failures are forgotten after this long without a new one, ms (default 15 min). */
  forgetAfterMs?: number;
  /** Delayed failed answers held at once per (address, user name); more are refused (default 8). */
  maxHeldPerKey?: number;
  /** Delayed failed answers held at once per address (default 64). */
  maxHeldPerAddress?: number;
  /** Keys (address, address+name) remembered at most (default 20 000, least recently used dropped). */
  maxEntries?: number;
  now?: () => number;
}

interface Counter {
  failures: number;
  last: number;
  held: number;
  /** When the last held answer of this key is due (for Retry-After). */
  heldUntil: number;
}

/** What to do with a request that carries credentials, before its password is checked. */
export type ThrottleGate = { check: true } | { check: false; retryAfterSec: number };

/** A failed login: hold its 401 for `delayMs` (0: answer now), then call release(). */
export interface ThrottledFailure {
  delayMs: number;
  /** Held too many answers already: answer 429 now instead of holding this one. */
  refuse: boolean;
  retryAfterSec: number;
  release(): void;
}

/**
 * Slows password guessing without locking the owner out (issue 11). Failed Basic logins are counted
 * per (client address, user name) and per address; after a few free failures, the 401 of each
 * further failure is HELD for a growing delay (1 s, 2 s, 4 s ... 30 s): a guesser waits, while a
 * request with the right password is never delayed nor refused for failures of others, and a
 * success does not reset the count (else an owner's client polling every few seconds would give an
 * attacker at the same address fresh free guesses).
 *
 * A guesser sending in parallel is bounded by how many held answers a key (8) or an address (64)
 * may have: beyond that, requests with credentials for that key are answered 429 + Retry-After
 * without checking the password. A user name with no failures of its own at the address is always
 * checked, so the owner of another account behind the same proxy is never refused. The one refusal
 * an owner can meet: a flood for HIS name from HIS address holding 8 answers at that very moment.
 *
 * Requests without credentials do not count (clients probe anonymously first).
 *
 * Shared state: `entries` (LRU, bounded) — event loop only.
 */
export class LoginThrottle {
  private readonly entries: LRUCache<string, Counter>;
  private readonly o: Required<Omit<LoginThrottleOptions, 'now' | 'maxEntries'>>;
  private readonly now: () => number;

  constructor(opts: LoginThrottleOptions = {}) {
    this.o = {
      freeFailures: opts.freeFailures ?? 5,
      freeFailuresPerAddress: opts.freeFailuresPerAddress ?? 20,
      baseDelayMs: opts.baseDelayMs ?? 1000,
      maxDelayMs: opts.maxDelayMs ?? 30_000,
      forgetAfterMs: opts.forgetAfterMs ?? 15 * 60_000,
      maxHeldPerKey: opts.maxHeldPerKey ?? 8,
      maxHeldPerAddress: opts.maxHeldPerAddress ?? 64,
    };
    this.now = opts.now ?? Date.now;
    this.entries = new LRUCache({ max: opts.maxEntries ?? 20_000 });
  }

  private counter(key: string, create: boolean): Counter | undefined {
    let c = this.entries.get(key);
    if (c && c.held === 0 && this.now() - c.last > this.o.forgetAfterMs) {
      this.entries.delete(key);
      c = undefined;
    }
    if (!c && create) {
      c = { failures: 0, last: this.now(), held: 0, heldUntil: 0 };
      this.entries.set(key, c);
    }
    return c;
  }

  private retryAfter(...cs: (Counter | undefined)[]): number {
    const until = Math.max(0, ...cs.map((c) => c?.heldUntil ?? 0));
    return Math.max(1, Math.ceil((until - this.now()) / 1000));
  }

  /** Before the password check. */
  gate(address: string, user: string): ThrottleGate {
    const key = this.counter(`${address}\u0000${user}`, false);
    if (!key || key.failures === 0) return { check: true };
    const addr = this.counter(address, false);
    if (key.held >= this.o.maxHeldPerKey || (addr && addr.held >= this.o.maxHeldPerAddress)) {
      return { check: false, retryAfterSec: this.retryAfter(key, addr) };
    }
    return { check: true };
  }

  private delayFor(failures: number, free: number): number {
    const over = failures - free;
    if (over <= 0) return 0;
    return Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** Math.min(over - 1, 30));
  }

  /** After a failed password check: how long to hold the 401. */
  failed(address: string, user: string): ThrottledFailure {
    const t = this.now();
    const key = this.counter(`${address}\u0000${user}`, true)!;
    const addr = this.counter(address, true)!;
    key.failures += 1;
    addr.failures += 1;
    key.last = addr.last = t;
    const delayMs = Math.max(this.delayFor(key.failures, this.o.freeFailures), this.delayFor(addr.failures, this.o.freeFailuresPerAddress));
    if (delayMs === 0) return { delayMs: 0, refuse: false, retryAfterSec: 0, release: () => undefined };
    if (key.held >= this.o.maxHeldPerKey || addr.held >= this.o.maxHeldPerAddress) {
      return { delayMs: 0, refuse: true, retryAfterSec: this.retryAfter(key, addr), release: () => undefined };
    }
    key.held += 1;
    addr.held += 1;
    key.heldUntil = Math.max(key.heldUntil, t + delayMs);
    addr.heldUntil = Math.max(addr.heldUntil, t + delayMs);
    let released = false;
    return {
      delayMs,
      refuse: false,
      retryAfterSec: 0,
      release: () => {
        if (released) return;
        released = true;
        key.held -= 1;
        addr.held -= 1;
        // Refresh the LRU position of what is still in use.
        this.entries.set(`${address}\u0000${user}`, key);
        this.entries.set(address, addr);
      },
    };
  }

  /** Failures counted for (address, user), or for the address (tests, status page). */
  failures(address: string, user?: string): number {
    return this.counter(user === undefined ? address : `${address}\u0000${user}`, false)?.failures ?? 0;
  }

  /** Failed answers being held for (address, user), or for the address. */
  held(address: string, user?: string): number {
    return this.counter(user === undefined ? address : `${address}\u0000${user}`, false)?.held ?? 0;
  }
}
