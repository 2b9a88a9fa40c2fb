/**
 * OAuth state of the emulator: device codes, authorization codes, access and refresh tokens.
 * Rules (spec 1.4.2, 2.2.1): refresh tokens are single-use; after a refresh the old access token
 * lives `refreshGraceSec` more; the new refresh token keeps the old one's expiry; authorization
 * codes are single-use and live 5 minutes; device codes live `deviceCodeTtlSec`.
 * Every token belongs to a family (one login: a code or device-code exchange, and every refresh
 * descending from it); with refreshReuse 'revoke' a spent refresh token presented again kills its
 * whole family (RFC 6819 5.2.2.3).
 *
 * Concurrency: maps are mutated synchronously on the event loop only.
 */
import { randomToken, nowSec } from './util.js';
import type { PersistSection } from './store.js';

export interface AuthTimes {
  accessTokenTtlSec: number;
  refreshTokenTtlSec: number;
  refreshGraceSec: number;
  deviceCodeTtlSec: number;
  autoApproveAfterPolls: number;
  variant: { refreshReuse: 'refuse' | 'revoke' };
}

interface DeviceCode {
  expiresAt: number;
  polls: number;
  approved: boolean;
  lastPollMs: number;
}
interface AccessToken {
  expiresAt: number;
  createdAt: number;
  /** Login family (absent in data written before families existed: a family of its own). */
  family?: string;
}
interface RefreshToken {
  expiresAt: number;
  used: boolean;
  access: string;
  family?: string;
}

export type TokenCheck = { ok: true; token: AccessToken } | { ok: false; reason: 'invalid' | 'expired' };

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

export class AuthState implements PersistSection {
  private readonly deviceCodes = new Map<string, DeviceCode>();
  private readonly authCodes = new Map<string, { expiresAt: number }>();
  private readonly access = new Map<string, AccessToken>();
  private readonly refresh = new Map<string, RefreshToken>();
  readonly userId: number;

  constructor(
    private readonly times: () => AuthTimes,
    userId: number,
  ) {
    this.userId = userId;
  }

  newDeviceCode(): { device_code: string; expires_in: number } {
    const code = randomToken(12);
    const ttl = this.times().deviceCodeTtlSec;
    this.deviceCodes.set(code, { expiresAt: nowSec() + ttl, polls: 0, approved: false, lastPollMs: 0 });
    return { device_code: code, expires_in: ttl };
  }

  approveDevice(code?: string): void {
    for (const [k, d] of this.deviceCodes) if (code === undefined || code === k) d.approved = true;
  }

  /**
   * Poll a device code: 'invalid' (unknown, used or expired -> 100002), 'pending' (400001),
   * 'too-fast' (300001, only when the poll interval is enforced) or a token pair.
   */
  pollDevice(code: string, minIntervalMs: number): 'invalid' | 'pending' | 'too-fast' | TokenPair {
    const d = this.deviceCodes.get(code);
    if (!d || d.expiresAt <= nowSec()) return 'invalid';
    const now = Date.now();
    if (minIntervalMs > 0 && d.lastPollMs > 0 && now - d.lastPollMs < minIntervalMs) {
      d.lastPollMs = now;
      return 'too-fast';
    }
    d.lastPollMs = now;
    if (!d.approved) {
      d.polls++;
      const n = this.times().autoApproveAfterPolls;
      if (n > 0 && d.polls >= n) d.approved = true;
      return 'pending';
    }
    this.deviceCodes.delete(code);
    return this.issuePair();
  }

  issueAuthorizationCode(): string {
    const code = randomToken(8);
    this.authCodes.set(code, { expiresAt: nowSec() + 300 });
    return code;
  }

  /** Single use: a second call with the same code is 'invalid'. */
  redeemAuthorizationCode(code: string): TokenPair | 'invalid' {
    const c = this.authCodes.get(code);
    if (!c) return 'invalid';
    this.authCodes.delete(code);
    if (c.expiresAt <= nowSec()) return 'invalid';
    return this.issuePair();
  }

  /** A new token pair: of a new login family, or (refresh) of `family` keeping `refreshExpiresAt`. */
  issuePair(refreshExpiresAt?: number, family: string = randomToken(9)): TokenPair {
    const t = this.times();
    const access = randomToken(48);
    const refresh = randomToken(48);
    const now = nowSec();
    this.access.set(access, { createdAt: now, expiresAt: now + t.accessTokenTtlSec, family });
    this.refresh.set(refresh, { expiresAt: refreshExpiresAt ?? now + t.refreshTokenTtlSec, used: false, access, family });
    return { access_token: access, refresh_token: refresh, expires_in: t.accessTokenTtlSec };
  }

  checkAccess(token: string | undefined): TokenCheck {
    if (!token) return { ok: false, reason: 'invalid' };
    const a = this.access.get(token);
    if (!a) return { ok: false, reason: 'invalid' };
    if (a.expiresAt <= Date.now() / 1000) return { ok: false, reason: 'expired' };
    return { ok: true, token: a };
  }

  /**
   * 'invalid' (unknown -> 200004), 'reused' (spent already -> 200004; with refreshReuse 'revoke'
   * its whole family is revoked first), 'expired' (200005) or the new pair.
   */
  refreshPair(token: string): TokenPair | 'invalid' | 'reused' | 'expired' {
    const r = this.refresh.get(token);
    if (!r) return 'invalid';
    if (r.used) {
      if (this.times().variant.refreshReuse === 'revoke') this.revokeFamily(r.family ?? token);
      return 'reused';
    }
    if (r.expiresAt <= nowSec()) return 'expired';
    r.used = true;
    const old = this.access.get(r.access);
    const graceEnd = Date.now() / 1000 + this.times().refreshGraceSec;
    if (old && old.expiresAt > graceEnd) old.expiresAt = graceEnd;
    return this.issuePair(r.expiresAt, r.family ?? randomToken(9));
  }

  /**
   * Forget every access and refresh token of a login family (they answer as unknown tokens after).
   * Spent refresh tokens of the family stay known as spent, so that presenting one again still
   * counts as reuse.
   */
  revokeFamily(family: string): void {
    for (const [k, a] of this.access) if ((a.family ?? k) === family) this.access.delete(k);
    for (const [k, r] of this.refresh) {
      if ((r.family ?? k) !== family) continue;
      if (r.used) r.access = '';
      else this.refresh.delete(k);
    }
  }

  expireAccessTokens(): void {
    const now = nowSec() - 1;
    for (const a of this.access.values()) a.expiresAt = Math.min(a.expiresAt, now);
  }

  dump(): unknown {
    return { access: [...this.access], refresh: [...this.refresh] };
  }

  load(data: unknown): void {
    const d = data as { access?: [string, AccessToken][]; refresh?: [string, RefreshToken][] };
    for (const [k, v] of d.access ?? []) this.access.set(k, v);
    for (const [k, v] of d.refresh ?? []) this.refresh.set(k, v);
  }
}
