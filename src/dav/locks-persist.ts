/**
 * Persistence of WebDAV locks in a small JSON state file, so that locks survive a restart of the
 * bridge (a client holding a token keeps writing after a restart instead of meeting 412s).
 *
 * The lock table (src/dav/lock-gate.ts) stays the authority in memory; it hands a snapshot of its
 * records to `save()` after each change and reads `load()` once at start.
 *
 * Concurrency: `save()` is synchronous and only records the newest snapshot; one write runs at a
 * time (`writing`), and a snapshot that arrives meanwhile replaces the `pending` one (latest wins).
 * Writes are atomic (shared/atomic-file.ts: temp file in the same folder, fsync, rename, fsync of
 * the folder). Event loop only.
 */
import { mkdir, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../shared/atomic-file.js';
import { TbdavError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';

export interface PersistedLock {
  token: string;
  /** Share path the lock was taken on. */
  root: string;
  rootIsDir: boolean;
  depth: 0 | 'infinity';
  scope: 'exclusive' | 'shared';
  /** Owner as self-contained XML (may be empty). */
  ownerXml: string;
  /** ms since epoch. */
  expiresAt: number;
}

export interface LockFileOptions {
  /** The state file, e.g. `<stateDir>/locks.json`. */
  file: string;
  logger?: Logger;
  now?: () => number;
}

const VERSION = 1;

function isPersistedLock(v: unknown): v is PersistedLock {
  if (!v || typeof v !== 'object') return false;
  const l = v as Record<string, unknown>;
  return (
    typeof l.token === 'string' &&
    l.token.length > 0 &&
    typeof l.root === 'string' &&
    l.root.startsWith('/') &&
    typeof l.rootIsDir === 'boolean' &&
    (l.depth === 0 || l.depth === 'infinity') &&
    (l.scope === 'exclusive' || l.scope === 'shared') &&
    typeof l.ownerXml === 'string' &&
    typeof l.expiresAt === 'number' &&
    Number.isFinite(l.expiresAt)
  );
}

export class LockFile {
  private readonly file: string;
  private readonly logger: Logger;
  private readonly now: () => number;
  /** Newest snapshot not yet written. */
  private pending: PersistedLock[] | undefined;
  /** The write in progress (and the ones it chains to). */
  private writing: Promise<void> | undefined;
  private lastError: unknown;

  constructor(opts: LockFileOptions) {
    this.file = opts.file;
    this.logger = opts.logger ?? silentLogger();
    this.now = opts.now ?? Date.now;
  }

  /**
   * Locks still alive in the file. A missing file is an empty table; an unreadable or corrupt one
   * is logged, moved aside to `<file>.corrupt` and read as empty (a restart must not fail on it).
   */
  async load(): Promise<PersistedLock[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new TbdavError('TBDAV_FATAL', `lock state ${this.file}: cannot read`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      this.logger.warn(`lock state ${this.file}: not JSON, starting without locks`, { error: (err as Error).message });
      await rename(this.file, `${this.file}.corrupt`);
      return [];
    }
    const locks = (parsed as { version?: unknown; locks?: unknown }).locks;
    if ((parsed as { version?: unknown }).version !== VERSION || !Array.isArray(locks)) {
      this.logger.warn(`lock state ${this.file}: unknown layout, starting without locks`);
      await rename(this.file, `${this.file}.corrupt`);
      return [];
    }
    const t = this.now();
    const out: PersistedLock[] = [];
    for (const l of locks) {
      if (!isPersistedLock(l)) {
        this.logger.warn(`lock state ${this.file}: dropping a malformed record`);
        continue;
      }
      if (l.expiresAt > t) out.push(l);
    }
    return out;
  }

  /** Record the whole current table; written soon, atomically. Expired records are left out. */
  save(locks: readonly PersistedLock[]): void {
    const t = this.now();
    this.pending = locks.filter((l) => l.expiresAt > t).map((l) => ({ ...l }));
    if (!this.writing) this.writing = this.drain();
  }

  /** Wait until every snapshot handed to save() is on disk; rejects with the last write error. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.lastError !== undefined) {
      const err = this.lastError;
      this.lastError = undefined;
      throw new TbdavError('TBDAV_FATAL', `lock state ${this.file}: write failed`, { cause: err });
    }
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending) {
        const snapshot = this.pending;
        this.pending = undefined;
        try {
          await this.write(snapshot);
          this.lastError = undefined;
        } catch (err) {
          // Kept for flush(); the next save() tries again with a newer snapshot.
          this.lastError = err;
          this.logger.warn(`lock state ${this.file}: write failed`, { error: (err as Error).message });
        }
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async write(locks: PersistedLock[]): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    await writeFileAtomic(this.file, JSON.stringify({ version: VERSION, locks }, null, 1), { mode: 0o600, logger: this.logger });
  }
}
