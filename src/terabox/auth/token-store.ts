/**
 * Where the token pair lives between runs. FileTokenStore keeps TOKEN_FILE (`tokens.json`, mode 0600) in the
 * state dir, written atomically (shared/atomic-file.ts: temp file, fsync, rename, fsync of the folder)
 * so that a crash never leaves half a file: each refresh token works once, so losing the new pair would force a new login.
 *
 * One token owner across processes (issue 9): `serve` and a CLI command (or two `serve`s) on one
 * state dir share the file. `withLock` holds a file lock (proper-lockfile: a `tokens.json.lock`
 * directory made atomically, refreshed while held, taken over when stale after a crash) around
 * every read-modify-write of the pair; the Authenticator re-reads the file under it before it
 * refreshes, so a refresh token is never sent twice.
 *
 * Concurrency: one writer at a time per store (`chain` serialises save/clear); `withLock` also
 * serialises the callers of one store in this process (`lockChain`) before taking the file lock.
 */
import { readFile, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { TbdavError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { withFileLock } from '../file-lock.js';

/** Name of the token file in the state dir (the one place it is written down). */
export const TOKEN_FILE = 'tokens.json';

/** Where FileTokenStore keeps the tokens of a state dir. */
export function tokenFilePath(stateDir: string): string {
  return join(stateDir, TOKEN_FILE);
}

export interface StoredDomains {
  /** host[:port] for every openapi call. */
  apiDomain: string;
  /** host[:port] for superfile2. */
  uploadDomain: string;
  /** When tokeninfo was asked, ms since epoch (cache at most 1 h). */
  fetchedAt: number;
}

export interface StoredTokens {
  accessToken: string;
  refreshToken: string;
  /** When the access token expires, ms since epoch. */
  expiresAt: number;
  /** When this pair was obtained, ms since epoch. */
  obtainedAt: number;
  domains?: StoredDomains;
}

export interface TokenStore {
  /** The saved tokens, or null when not logged in. */
  load(): Promise<StoredTokens | null>;
  /** Save durably before returning. */
  save(tokens: StoredTokens): Promise<void>;
  /** Forget the tokens (logout). */
  clear(): Promise<void>;
  /**
   * Run `fn` holding the store's lock: no other holder (in this process or another one on the same
   * store) runs meanwhile. `fn` may load and save; it must not call withLock again.
   */
  withLock<T>(fn: () => Promise<T>): Promise<T>;
}

/** How long a held token lock may go without being refreshed before another process takes it over. */
export const TOKEN_LOCK_STALE_MS = 20_000;
/** How long withLock waits for another holder (a refresh takes one API call; a stuck one goes stale). */
const TOKEN_LOCK_RETRIES = { retries: 80, factor: 1.3, minTimeout: 25, maxTimeout: 1000, randomize: true };

function validate(value: unknown, where: string): StoredTokens {
  const v = value as Partial<StoredTokens> | null;
  if (!v || typeof v.accessToken !== 'string' || typeof v.refreshToken !== 'string' || typeof v.expiresAt !== 'number') {
    throw new TbdavError('TBDAV_AUTH', `token store ${where}: unreadable token file, log in again`);
  }
  return {
    accessToken: v.accessToken,
    refreshToken: v.refreshToken,
    expiresAt: v.expiresAt,
    obtainedAt: typeof v.obtainedAt === 'number' ? v.obtainedAt : 0,
    // domains without a usable api_domain are dropped (asked again); a missing upload_domain means api_domain
    ...(v.domains && typeof v.domains.apiDomain === 'string' && v.domains.apiDomain !== '' && typeof v.domains.fetchedAt === 'number'
      ? { domains: { apiDomain: v.domains.apiDomain, uploadDomain: typeof v.domains.uploadDomain === 'string' && v.domains.uploadDomain !== '' ? v.domains.uploadDomain : v.domains.apiDomain, fetchedAt: v.domains.fetchedAt } }
      : {}),
  };
}

export interface FileTokenStoreOptions {
  /** For a lock found compromised (taken over as stale while held): logged, not thrown. */
  logger?: Logger;
}

export class FileTokenStore implements TokenStore {
  readonly file: string;
  private chain: Promise<unknown> = Promise.resolve();
  private lockChain: Promise<unknown> = Promise.resolve();
  private readonly logger: Logger | undefined;

  constructor(
    readonly stateDir: string,
    opts: FileTokenStoreOptions = {},
  ) {
    this.file = tokenFilePath(stateDir);
    this.logger = opts.logger;
  }

  withLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lockChain.then(() => this.underFileLock(fn));
    this.lockChain = run.catch(() => undefined); // the caller gets the error through `run`
    return run;
  }

  private underFileLock<T>(fn: () => Promise<T>): Promise<T> {
    return withFileLock(this.file, { staleMs: TOKEN_LOCK_STALE_MS, retries: TOKEN_LOCK_RETRIES, what: 'token store', ...(this.logger ? { logger: this.logger } : {}) }, fn);
  }

  async load(): Promise<StoredTokens | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new TbdavError('TBDAV_AUTH', `token store ${this.file}: cannot read`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new TbdavError('TBDAV_AUTH', `token store ${this.file}: not JSON, log in again`, { cause: err });
    }
    return validate(parsed, this.file);
  }

  save(tokens: StoredTokens): Promise<void> {
    const next = this.chain.then(() => this.writeAtomic(JSON.stringify(tokens, null, 2) + '\n'));
    this.chain = next.catch(() => undefined); // the caller gets the error through `next`
    return next;
  }

  clear(): Promise<void> {
    const next = this.chain.then(() => rm(this.file, { force: true }));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async writeAtomic(text: string): Promise<void> {
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file, text, { mode: 0o600 });
  }
}

/** Keeps tokens in memory only (tests, one-shot commands). */
export class MemoryTokenStore implements TokenStore {
  private tokens: StoredTokens | null;
  constructor(initial: StoredTokens | null = null) {
    this.tokens = initial ? { ...initial } : null;
  }
  async load(): Promise<StoredTokens | null> {
    return this.tokens ? { ...this.tokens } : null;
  }
  async save(tokens: StoredTokens): Promise<void> {
    this.tokens = { ...tokens };
  }
  async clear(): Promise<void> {
    this.tokens = null;
  }
  withLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lockChain.then(fn);
    this.lockChain = run.catch(() => undefined);
    return run;
  }
  private lockChain: Promise<unknown> = Promise.resolve();
}
