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
  /** Failed logins allowed per address within the window (default 10). */
  maxFailures?: number;
  /** Window and lock-out length, ms (default 60 s). */
  windowMs?: number;
  /** Addresses remembered at most (default 10 000, least recently used dropped). */
  maxAddresses?: number;
  now?: () => number;
}

/**
 * Slows password guessing: per client address, after `maxFailures` failed Basic logins within
 * `windowMs`, logins from that address are refused (429 + Retry-After) for `windowMs` without
 * checking the password. A success resets the address. Requests without credentials do not count
 * (clients probe anonymously first).
 *
 * Shared state: `entries` (LRU, bounded) — event loop only.
 */
export class LoginThrottle {
  private readonly entries: LRUCache<string, { failures: number; windowStart: number; blockedUntil: number }>;
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(opts: LoginThrottleOptions = {}) {
    this.maxFailures = opts.maxFailures ?? 10;
    this.windowMs = opts.windowMs ?? 60_000;
    this.now = opts.now ?? Date.now;
    this.entries = new LRUCache({ max: opts.maxAddresses ?? 10_000 });
  }

  /** Seconds to wait before this address may try again (0: go ahead). */
  retryAfter(address: string): number {
    const e = this.entries.get(address);
    if (!e) return 0;
    const left = e.blockedUntil - this.now();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  failed(address: string): void {
    const t = this.now();
    let e = this.entries.get(address);
    if (!e || t - e.windowStart > this.windowMs) e = { failures: 0, windowStart: t, blockedUntil: 0 };
    e.failures += 1;
    if (e.failures >= this.maxFailures) {
      e.blockedUntil = t + this.windowMs;
      e.failures = 0;
      e.windowStart = t;
    }
    this.entries.set(address, e);
  }

  succeeded(address: string): void {
    this.entries.delete(address);
  }
}
