/**
 * OAuth of the TeraBox Open Platform: device-code login, authorization-code exchange, token
 * refresh, tokeninfo (per-user domains) and logout.
 *
 * Concurrency (shared state of this object):
 *  - `current` (the token pair in use) is replaced by `install()` and `refreshWith()`, which save
 *    to the store FIRST and then swap the field (each refresh token works once, so the new pair must
 *    be durable before anyone uses it), and by `adopt()`, which takes the pair another process saved.
 *  - Across processes on one state dir: every write of the store runs under `store.withLock` (a
 *    file lock), and a refresh re-reads the store under it first: the pair is refreshed by one
 *    process only, the others adopt the result (issue 9: no refresh token is ever sent twice).
 *  - `refreshing` makes refresh single-flight: one refresh in flight, concurrent callers await it.
 *  - `domainFetch` does the same for tokeninfo.
 *  - `loading` makes the first load from the store single-flight.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { TbdavError, abortError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { Observer } from '../../shared/observer.js';
import { registerSecret } from '../../shared/redact.js';
import {
  ENDPOINTS,
  ERRNO,
  type DeviceCodeData,
  type DeviceCodeResponse,
  type GrantType,
  type TokenInfoData,
  type TokenInfoResponse,
  type TokenResponse,
} from '../api/types.js';
import { isTeraboxApiError, TeraboxApiError } from '../errors.js';
import type { HttpCaller } from '../http.js';
import { oauthSign, unixSeconds } from './sign.js';
import type { StoredDomains, StoredTokens, TokenStore } from './token-store.js';

export interface AuthenticatorOptions {
  http: HttpCaller;
  /** Base URL of the auth host, e.g. 'https://www.terabox.com'. Its scheme is used for every domain. */
  authUrl: string;
  clientId: string;
  clientSecret: string;
  privateSecret: string;
  tokenStore: TokenStore;
  logger: Logger;
  /** Refresh this long before the access token expires (default 600 s). */
  refreshMarginSec?: number;
  /** How long tokeninfo's domains are trusted (default and maximum 1 h, per the spec). */
  domainTtlMs?: number;
  /** Clock (tests). */
  now?: () => number;
  /** Told of every refresh attempt (metrics). */
  observer?: Observer;
}

export interface CallerInfo {
  signal?: AbortSignal;
  requestId?: string;
}

/** What an API call needs: the token and where to send it. */
export interface Session {
  accessToken: string;
  /** 'https://api_domain' (scheme of authUrl). */
  apiBase: string;
  /** 'https://upload_domain'. */
  uploadBase: string;
}

export interface DeviceLoginOptions extends CallerInfo {
  /** Called once with the code to show (qrcode_url is a data: URL). */
  onCode?: (code: DeviceCodeData) => void;
  /** Called before each poll with the seconds left. */
  onTick?: (secondsLeft: number) => void;
  /** Override the service's poll interval (tests). */
  intervalMs?: number;
}

const HOUR_MS = 3600_000;

/**
 * A tokeninfo domain as we keep it: host[:port] (the spec's form, 'www.terabox.com'), or an origin
 * when the service sends one with a scheme. Undefined for anything absent, empty or malformed.
 */
export function domainOf(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim().replace(/\/+$/, '');
  if (v === '' || v === 'undefined' || v === 'null') return undefined;
  if (v.includes('://')) {
    if (!URL.canParse(v)) return undefined;
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : undefined;
  }
  return !/[/?#@\s]/.test(v) && URL.canParse(`http://${v}`) ? v : undefined;
}

export class Authenticator {
  private readonly http: HttpCaller;
  private readonly authBase: string;
  private readonly scheme: string;
  private readonly clientId: string;
  private readonly clientSecret: string;
  private readonly privateSecret: string;
  private readonly store: TokenStore;
  private readonly logger: Logger;
  private readonly marginMs: number;
  private readonly domainTtlMs: number;
  private readonly now: () => number;
  private readonly observer: Observer | undefined;

  private current: StoredTokens | null = null;
  private loaded = false;
  private loading: Promise<void> | null = null;
  private refreshing: Promise<StoredTokens> | null = null;
  private domainFetch: Promise<StoredDomains> | null = null;

  constructor(opts: AuthenticatorOptions) {
    this.http = opts.http;
    const url = new URL(opts.authUrl);
    this.authBase = url.origin;
    this.scheme = url.protocol; // 'https:' or 'http:'
    this.clientId = opts.clientId;
    this.clientSecret = opts.clientSecret;
    this.privateSecret = opts.privateSecret;
    this.store = opts.tokenStore;
    this.logger = opts.logger;
    this.marginMs = (opts.refreshMarginSec ?? 600) * 1000;
    this.domainTtlMs = Math.min(opts.domainTtlMs ?? HOUR_MS, HOUR_MS);
    this.now = opts.now ?? Date.now;
    this.observer = opts.observer;
    registerSecret(opts.clientSecret);
    registerSecret(opts.privateSecret);
  }

  // -------------------------------------------------------------- raw oauth endpoints

  /** GET /oauth/devicecode (2.2.1). */
  async requestDeviceCode(opts: CallerInfo = {}): Promise<DeviceCodeData> {
    const url = new URL(ENDPOINTS.deviceCode, this.authBase);
    url.searchParams.set('client_id', this.clientId);
    const res = await this.http.call<DeviceCodeResponse>({
      endpoint: 'devicecode',
      method: 'GET',
      url,
      retry: 'idempotent',
      expect: 'json',
      ...opts,
    });
    registerSecret(res.data.data.device_code);
    return res.data.data;
  }

  /**
   * POST /oauth/gettoken (1.4.2.1) once. Rejects with errno 400001 (code TBDAV_AUTH) while the
   * user has not approved a device code. Does not save: see exchangeCode / loginWithDeviceCode.
   * Retry policy 'unsafe': a code works once, so it is repeated only when the service confirms
   * that nothing happened (rate limit, connection refused).
   */
  async getToken(grantType: GrantType, code: string, opts: CallerInfo = {}): Promise<StoredTokens> {
    registerSecret(code);
    const timestamp = unixSeconds(this.now());
    const res = await this.http.call<TokenResponse>({
      endpoint: 'gettoken',
      method: 'POST',
      url: new URL(ENDPOINTS.getToken, this.authBase),
      form: {
        client_id: this.clientId,
        client_secret: this.clientSecret,
        grant_type: grantType,
        code,
        timestamp,
        sign: oauthSign(this.clientId, timestamp, this.clientSecret, this.privateSecret),
      },
      retry: 'unsafe',
      expect: 'json',
      ...opts,
    });
    return this.fromTokenData(res.data.data);
  }

  /** Authorization-code mode: exchange the code and save the pair. */
  async exchangeCode(code: string, opts: CallerInfo = {}): Promise<StoredTokens> {
    const tokens = await this.getToken('authorization_code', code, opts);
    await this.install(tokens);
    return tokens;
  }

  /** Device-code mode, one poll: save and return the pair once approved. */
  async pollDeviceToken(deviceCode: string, opts: CallerInfo = {}): Promise<StoredTokens> {
    const tokens = await this.getToken('device_code', deviceCode, opts);
    await this.install(tokens);
    return tokens;
  }

  /**
   * The whole device-code login: ask a code, show it (onCode), poll at the service's interval
   * until approved or expires_in has passed. Abortable through opts.signal.
   */
  async loginWithDeviceCode(opts: DeviceLoginOptions = {}): Promise<StoredTokens> {
    const caller: CallerInfo = { signal: opts.signal, requestId: opts.requestId };
    const code = await this.requestDeviceCode(caller);
    opts.onCode?.(code);
    const deadline = this.now() + code.expires_in * 1000;
    let intervalMs = opts.intervalMs ?? Math.max(1, code.interval) * 1000;
    for (;;) {
      const left = deadline - this.now();
      if (left <= 0) throw new TbdavError('TBDAV_AUTH', 'device login: the code expired before it was approved');
      opts.onTick?.(Math.ceil(left / 1000));
      try {
        await sleep(Math.min(intervalMs, left), undefined, opts.signal ? { signal: opts.signal } : undefined);
      } catch (err) {
        this.logger.debug('device login: wait interrupted', { requestId: opts.requestId, error: String(err) });
        throw abortError('device login', opts.signal);
      }
      try {
        return await this.pollDeviceToken(code.device_code, caller);
      } catch (err) {
        if (isTeraboxApiError(err) && err.errno === ERRNO.AUTH_PENDING) continue;
        if (isTeraboxApiError(err) && err.errno === ERRNO.CODE_RATE) {
          intervalMs = Math.min(intervalMs * 2, 30_000);
          continue;
        }
        throw err;
      }
    }
  }

  /** POST /oauth/tokeninfo (1.4.2.2) for the given (default: current) access token. */
  async tokenInfo(accessToken?: string, opts: CallerInfo = {}): Promise<TokenInfoData> {
    const token = accessToken ?? (await this.requireTokens()).accessToken;
    const res = await this.http.call<TokenInfoResponse>({
      endpoint: 'tokeninfo',
      method: 'POST',
      url: new URL(ENDPOINTS.tokenInfo, this.authBase),
      form: { access_token: token },
      retry: 'idempotent',
      expect: 'json',
      ...opts,
    });
    return res.data.data;
  }

  /**
   * POST /oauth/refreshtoken (1.4.2.3), single-flight: while one refresh runs, every caller gets
   * its result. The new pair is saved before it is used. Not retried after the request may have
   * reached the service ('unsafe'): the refresh token works only once.
   */
  refresh(opts: CallerInfo = {}): Promise<StoredTokens> {
    if (!this.refreshing) {
      // the flight must not die with the first caller's signal: others wait on it too
      this.refreshing = this.doRefresh({ requestId: opts.requestId }).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** Forget the tokens (the token file is deleted). */
  async logout(): Promise<void> {
    await this.store.withLock(() => this.store.clear());
    this.current = null;
    this.loaded = true;
  }

  /** The tokens in use, or null when not logged in. */
  async tokens(): Promise<StoredTokens | null> {
    await this.ensureLoaded();
    return this.current ? { ...this.current } : null;
  }

  // -------------------------------------------------------------- for API calls

  /**
   * Token and domains for one API call: refreshes ahead of expiry (refreshMarginSec) and asks
   * tokeninfo when the cached domains are older than 1 h.
   */
  async session(opts: CallerInfo = {}): Promise<Session> {
    let tokens = await this.requireTokens();
    if (tokens.expiresAt - this.now() < this.marginFor(tokens)) {
      try {
        tokens = await this.refresh(opts);
      } catch (err) {
        // still valid for a while: keep working with it and try again on the next call
        if (tokens.expiresAt > this.now() && !(isTeraboxApiError(err) && err.code === 'TBDAV_AUTH')) {
          this.logger.warn('auth: refresh ahead of expiry failed, keeping the current token', { requestId: opts.requestId, error: (err as Error).message });
        } else {
          throw err;
        }
      }
    }
    const domains = await this.domains(tokens, opts);
    const apiBase = this.baseOf(domains.apiDomain);
    return {
      accessToken: tokens.accessToken,
      apiBase,
      // a saved pair from before upload_domain was optional may lack it: api_domain then serves it
      uploadBase: domains.uploadDomain ? this.baseOf(domains.uploadDomain) : apiBase,
    };
  }

  /**
   * An API call was refused with `usedToken`: refresh unless someone already replaced it.
   * Concurrent failures with the same token cause exactly one refresh.
   */
  async onAuthFailure(usedToken: string, opts: CallerInfo = {}): Promise<void> {
    await this.ensureLoaded();
    if (this.current && this.current.accessToken !== usedToken) return;
    await this.refresh(opts);
  }

  // -------------------------------------------------------------- internals

  /** 'scheme://host[:port]' of a tokeninfo domain: host[:port] takes the auth URL's scheme; a full origin is kept. */
  private baseOf(domain: string): string {
    return domain.includes('://') ? new URL(domain).origin : `${this.scheme}//${domain}`;
  }

  private fromTokenData(data: { access_token: string; refresh_token: string; expires_in: number }): StoredTokens {
    registerSecret(data.access_token);
    registerSecret(data.refresh_token);
    const now = this.now();
    return {
      accessToken: data.access_token,
      refreshToken: data.refresh_token,
      expiresAt: now + data.expires_in * 1000,
      obtainedAt: now,
    };
  }

  /** Save first, then use (under the store's lock: a new login replaces whatever is there). */
  private async install(tokens: StoredTokens): Promise<void> {
    await this.store.withLock(() => this.store.save(tokens));
    this.current = tokens;
    this.loaded = true;
  }

  /** Take a pair another process saved (it refreshed, or logged in again): the store is the truth. */
  private adopt(stored: StoredTokens, why: string, opts: CallerInfo): StoredTokens {
    registerSecret(stored.accessToken);
    registerSecret(stored.refreshToken);
    this.logger.info(`auth: ${why}, using the saved pair`, { requestId: opts.requestId });
    this.current = stored;
    this.loaded = true;
    return stored;
  }

  /**
   * Refresh this long before expiry: refreshMarginSec, but at most half the token's lifetime (a
   * service handing out short-lived tokens would otherwise have every call refresh).
   */
  private marginFor(tokens: StoredTokens): number {
    const life = tokens.expiresAt - tokens.obtainedAt;
    return tokens.obtainedAt > 0 && life > 0 ? Math.min(this.marginMs, life / 2) : this.marginMs;
  }

  private async ensureLoaded(): Promise<void> {
    if (this.loaded) return;
    if (!this.loading) {
      this.loading = (async () => {
        const stored = await this.store.load();
        if (!this.loaded) {
          if (stored) {
            registerSecret(stored.accessToken);
            registerSecret(stored.refreshToken);
          }
          this.current = stored;
          this.loaded = true;
        }
      })().finally(() => {
        this.loading = null;
      });
    }
    await this.loading;
  }

  private async requireTokens(): Promise<StoredTokens> {
    await this.ensureLoaded();
    if (!this.current) throw new TbdavError('TBDAV_NOT_LOGGED_IN', 'auth: not logged in (run the login command)');
    return this.current;
  }

  /**
   * One refresh, under the store's lock, after re-reading the store: when another process (the CLI
   * beside `serve`, a second `serve`) already replaced the pair we hold, its pair is adopted and no
   * refresh token is sent; when the store is empty, the user logged out. Only when the store still
   * holds our pair is its refresh token sent, once, and the new pair saved before the lock is let go.
   */
  private async doRefresh(opts: CallerInfo): Promise<StoredTokens> {
    const old = await this.requireTokens();
    return this.store.withLock(async () => {
      const stored = await this.store.load();
      if (!stored) {
        this.current = null;
        throw new TbdavError('TBDAV_NOT_LOGGED_IN', 'auth: not logged in (the saved login was removed; run the login command)');
      }
      if (stored.refreshToken !== old.refreshToken) return this.adopt(stored, 'the token pair was replaced by another process', opts);
      return this.refreshWith(stored, opts);
    });
  }

  /** POST /oauth/refreshtoken with `old`'s refresh token (the caller holds the store's lock). */
  private async refreshWith(old: StoredTokens, opts: CallerInfo): Promise<StoredTokens> {
    const timestamp = unixSeconds(this.now());
    this.logger.info('auth: refreshing the access token', { requestId: opts.requestId });
    let res;
    try {
      res = await this.http.call<TokenResponse>({
        endpoint: 'refreshtoken',
        method: 'POST',
        url: new URL(ENDPOINTS.refreshToken, this.authBase),
        form: {
          client_id: this.clientId,
          client_secret: this.clientSecret,
          refresh_token: old.refreshToken,
          timestamp,
          sign: oauthSign(this.clientId, timestamp, this.clientSecret, this.privateSecret),
        },
        retry: 'unsafe',
        expect: 'json',
        ...opts,
      });
    } catch (err) {
      this.observer?.tokenRefresh?.({ ok: false });
      if (isTeraboxApiError(err) && err.errno === ERRNO.INVALID_REFRESH_TOKEN) {
        // a process that does not take the lock (an older version) may have used it: if the
        // store holds a newer pair now, take that one
        const stored = await this.store.load().catch((loadErr: unknown) => {
          this.logger.debug('auth: reloading the token store failed', { requestId: opts.requestId, error: String(loadErr) });
          return null;
        });
        if (stored && stored.refreshToken !== old.refreshToken) return this.adopt(stored, 'the token pair was refreshed elsewhere', opts);
      }
      if (isTeraboxApiError(err) && (err.errno === ERRNO.INVALID_REFRESH_TOKEN || err.errno === ERRNO.REFRESH_TOKEN_EXPIRED)) {
        this.logger.error('auth: the refresh token was refused, log in again', { requestId: opts.requestId, errno: err.errno });
        throw new TeraboxApiError({
          endpoint: 'refreshtoken',
          code: 'TBDAV_AUTH',
          errno: err.errno,
          requestId: err.requestId,
          message: 'refresh token refused, log in again',
          cause: err,
        });
      }
      throw err;
    }
    this.observer?.tokenRefresh?.({ ok: true });
    const next: StoredTokens = { ...this.fromTokenData(res.data.data), ...(old.domains ? { domains: old.domains } : {}) };
    await this.store.save(next);
    this.current = next;
    this.loaded = true;
    return next;
  }

  private async domains(tokens: StoredTokens, opts: CallerInfo): Promise<StoredDomains> {
    const d = tokens.domains;
    if (d && this.now() - d.fetchedAt < this.domainTtlMs && d.fetchedAt <= this.now()) return d;
    if (!this.domainFetch) {
      this.domainFetch = (async () => {
        const info = await this.tokenInfo(tokens.accessToken, { requestId: opts.requestId });
        // the table lists upload_domain, the spec's example has none: superfile2 then goes to
        // api_domain (issue 9). A missing or malformed api_domain is an error, never cached.
        const apiDomain = domainOf(info.api_domain);
        if (!apiDomain) {
          throw new TeraboxApiError({ endpoint: 'tokeninfo', code: 'TBDAV_RETRYABLE', message: 'the answer names no usable api_domain' });
        }
        const uploadDomain = domainOf(info.upload_domain);
        if (!uploadDomain) this.logger.info('auth: tokeninfo names no upload_domain: shards go to api_domain', { requestId: opts.requestId });
        const domains: StoredDomains = { apiDomain, uploadDomain: uploadDomain ?? apiDomain, fetchedAt: this.now() };
        // saved with the pair the store holds now: never over a newer pair another process saved
        await this.store.withLock(async () => {
          const cur = this.current ?? tokens;
          const stored = await this.store.load();
          if (stored && stored.refreshToken !== cur.refreshToken) {
            this.adopt(stored, 'the token pair was replaced by another process', opts);
            if (stored.domains) return;
            await this.store.save({ ...stored, domains });
            this.current = { ...stored, domains };
            return;
          }
          if (!stored) return; // logged out meanwhile: nothing to add the domains to
          await this.store.save({ ...cur, domains });
          this.current = { ...cur, domains };
        });
        return domains;
      })().finally(() => {
        this.domainFetch = null;
      });
    }
    return this.domainFetch;
  }
}
