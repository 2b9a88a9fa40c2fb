/**
 * The write-back journal: one small JSON file per pending upload under `<dir>/`, each written
 * atomically and durably (shared/atomic-file.ts: temp file, fsync, rename, fsync of the folder) so
 * that after a crash (kill -9, power loss) every entry is either the old or the new version, never
 * half a file.
 *
 * An entry says everything needed to finish the upload after a restart: the target path, the spool
 * file holding the body, its size, shard size and shard md5s, the content md5, and how far the
 * backend got (its opaque resume token).
 *
 * Concurrency: writes of one entry are chained (`chains`, per id) so that a later state of an entry
 * always lands after an earlier one; different entries are written independently. Event loop only.
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir, writeFileAtomic } from '../shared/atomic-file.js';
import { TbdavError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { ResumeToken } from '../remote/types.js';

export const JOURNAL_VERSION = 1;

export interface JournalEntry {
  version: number;
  /** Unique id of this upload (also names its spool file). */
  id: string;
  /** Order of arrival: a later PUT to the same path has a larger seq and wins. */
  seq: number;
  /** Target path (remote/vfs path). */
  path: string;
  /** Absolute path of the spool file holding the body. */
  spoolFile: string;
  size: number;
  shardSize: number;
  blockMd5s: string[];
  contentMd5: string;
  /** Modification time asked by the client (X-OC-Mtime), ms. */
  mtime?: number;
  /** When the PUT was accepted, ms. */
  createdAt: number;
  /** The backend's latest resume token for this upload (WriteOptions.onResumeToken). */
  resume?: ResumeToken;
  /** Failed attempts so far (kept across restarts: the backoff goes on growing). */
  attempts: number;
  /** Code of the last failure (never a message: messages could carry paths of others). */
  lastError?: string;
  /** When the next attempt is due after a failure, ms since epoch (a restart waits for it too). */
  nextAttemptAt?: number;
  /**
   * Set when the service refused the file for good (quota full, invalid name, too large...): the
   * upload stops until the user retries or removes it (`terabox-dav uploads`); the body stays and
   * the file stays readable at its path.
   */
  failed?: { code: string; at: number };
}

const ENTRY_RE = /^[A-Za-z0-9-]{1,64}\.json$/;

function validEntry(v: unknown): v is JournalEntry {
  const e = v as Partial<JournalEntry> | null;
  return (
    !!e &&
    e.version === JOURNAL_VERSION &&
    typeof e.id === 'string' &&
    typeof e.seq === 'number' &&
    typeof e.path === 'string' &&
    e.path.startsWith('/') &&
    typeof e.spoolFile === 'string' &&
    Number.isSafeInteger(e.size) &&
    (e.size as number) >= 0 &&
    Number.isSafeInteger(e.shardSize) &&
    Array.isArray(e.blockMd5s) &&
    e.blockMd5s.every((m) => typeof m === 'string') &&
    typeof e.contentMd5 === 'string' &&
    typeof e.attempts === 'number' &&
    (e.resume === undefined || typeof e.resume === 'string') &&
    (e.nextAttemptAt === undefined || typeof e.nextAttemptAt === 'number') &&
    (e.failed === undefined || (typeof e.failed === 'object' && e.failed !== null && typeof e.failed.code === 'string'))
  );
}

/**
 * Entries written before resume tokens were opaque carry `progress` (an object): keep it as the
 * token its JSON text is; the backend decides whether it can use it.
 */
function upgrade(e: JournalEntry & { progress?: unknown }): JournalEntry {
  if (e.progress === undefined) return e;
  const { progress, ...rest } = e;
  return e.resume === undefined && progress && typeof progress === 'object' ? { ...rest, resume: JSON.stringify(progress) } : rest;
}

export class Journal {
  private readonly chains = new Map<string, Promise<void>>();

  private constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /** Open (create) the journal folder. */
  static async open(dir: string, opts: { logger?: Logger } = {}): Promise<Journal> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new Journal(dir, opts.logger ?? silentLogger());
  }

  private fileOf(id: string): string {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) throw new TbdavError('TBDAV_FATAL', `journal: bad entry id ${id}`);
    return join(this.dir, `${id}.json`);
  }

  /**
   * Every readable entry, oldest first. Temp files of interrupted writes are removed; unreadable
   * entries are renamed `*.corrupt` (kept for a human) and skipped.
   */
  async load(): Promise<JournalEntry[]> {
    const out: JournalEntry[] = [];
    for (const name of await readdir(this.dir)) {
      const file = join(this.dir, name);
      if (name.endsWith('.tmp')) {
        this.logger.debug(`journal: removing ${name} left by an interrupted write`);
        await rm(file, { force: true });
        continue;
      }
      if (!ENTRY_RE.test(name)) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readFile(file, 'utf8'));
      } catch (err) {
        parsed = undefined;
        this.logger.debug(`journal: ${name} unreadable`, { error: String(err) });
      }
      if (!validEntry(parsed) || `${parsed.id}.json` !== name) {
        this.logger.error(`journal: ${name} is not a valid entry; set aside as ${name}.corrupt`);
        await rename(file, `${file}.corrupt`).catch((err: unknown) => this.logger.debug(`journal: set aside ${name} failed`, { error: String(err) }));
        continue;
      }
      out.push(upgrade(parsed));
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** Write (create or replace) an entry durably; resolves once it is on disk. */
  put(entry: JournalEntry): Promise<void> {
    const file = this.fileOf(entry.id);
    const text = JSON.stringify(entry);
    return this.chain(entry.id, () => writeFileAtomic(file, text, { mode: 0o600, logger: this.logger }));
  }

  /** Remove an entry durably (no error when absent). */
  remove(id: string): Promise<void> {
    const file = this.fileOf(id);
    return this.chain(id, async () => {
      await rm(file, { force: true });
      await syncDir(this.dir, this.logger);
    });
  }

  private chain(id: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    const tail = next.catch(() => undefined);
    this.chains.set(id, tail);
    void tail.then(() => {
      if (this.chains.get(id) === tail) this.chains.delete(id);
    });
    return next;
  }

  /** Wait for every write in flight. */
  async flush(): Promise<void> {
    await Promise.all([...this.chains.values()]);
  }
}
