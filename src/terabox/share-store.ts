/**
 * The shares a user added (`terabox-dav share add`): `shares.json` (mode 0600) in the state dir,
 * replaced atomically (shared/atomic-file.ts). It holds each share's extraction code and the
 * BOXCLND value (`sekey`) from share/verify: secrets, hence the mode; the sekey is registered for
 * redaction when read.
 *
 * Two processes use it: the CLI (`share add/remove`) and `serve` (which reads it, notices changes
 * by the file's mtime and size, and writes a new sekey after verifying again). Every change is a
 * read-modify-write of the current file under a file lock (file-lock.ts: `shares.json.lock`), so a
 * change made by one process is never lost to another's made in the same instant.
 *
 * Concurrency (in one process): `chain` serialises the read-modify-write of changes.
 */
import { readFile, stat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../shared/atomic-file.js';
import { withFileLock } from './file-lock.js';
import { TbdavError } from '../shared/errors.js';
import { registerSecret } from '../shared/redact.js';

export const SHARES_FILE = 'shares.json';
/** A held shares lock not refreshed for this long is taken over (a change is one read and one write). */
const SHARES_LOCK_STALE_MS = 10_000;
const SHARES_LOCK_RETRIES = { retries: 60, factor: 1.3, minTimeout: 10, maxTimeout: 500, randomize: true };

export interface ShareRecord {
  /** The share's folder name under shares.folder (unique, one path segment). */
  name: string;
  /** The link as given. */
  link: string;
  /** The part after /s/1. */
  surl: string;
  /** The part after /s/. */
  shorturl: string;
  /** Extraction code ('' = none). */
  pwd: string;
  /** BOXCLND value of the last share/verify (`spd` / `sekey`). */
  sekey: string;
  shareid: string;
  /** The sharer's uk. */
  uk: string;
  /** When it was added, ms since epoch. */
  addedAt: number;
}

interface FileShape {
  version: 1;
  shares: ShareRecord[];
}

/** A share folder name: one path segment a WebDAV client can show. */
export function checkShareName(name: string): void {
  // eslint-disable-next-line no-control-regex
  if (name === '' || /^\.+$/.test(name) || /[/\\\u0000-\u001f\u007f]/.test(name) || Buffer.byteLength(name) > 255 || name !== name.trim()) {
    throw new TbdavError('TBDAV_BAD_REQUEST', `share name ${JSON.stringify(name.slice(0, 100))}: not a usable folder name (no / or \\, not only dots, no surrounding spaces)`);
  }
}

function validRecord(r: unknown): r is ShareRecord {
  const o = r as Partial<ShareRecord> | null;
  return (
    !!o &&
    typeof o.name === 'string' &&
    typeof o.link === 'string' &&
    typeof o.surl === 'string' &&
    typeof o.shorturl === 'string' &&
    typeof o.pwd === 'string' &&
    typeof o.sekey === 'string' &&
    typeof o.shareid === 'string' &&
    typeof o.uk === 'string' &&
    typeof o.addedAt === 'number'
  );
}

export class ShareStore {
  readonly file: string;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly dir: string) {
    this.file = join(dir, SHARES_FILE);
  }

  /** The file's identity (mtime + size), to notice a change made by another process. */
  async version(): Promise<string> {
    try {
      const s = await stat(this.file);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
      throw err;
    }
  }

  /** Every share, in the order added ([] when the file does not exist). */
  async load(): Promise<ShareRecord[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new TbdavError('TBDAV_CONFIG', `shares file ${this.file}: unreadable (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new TbdavError('TBDAV_CONFIG', `shares file ${this.file}: not JSON; fix or delete it`, { cause: err });
    }
    const d = data as Partial<FileShape> | null;
    if (!d || d.version !== 1 || !Array.isArray(d.shares) || !d.shares.every(validRecord)) {
      throw new TbdavError('TBDAV_CONFIG', `shares file ${this.file}: unexpected content; fix or delete it`);
    }
    for (const s of d.shares) if (s.sekey) registerSecret(s.sekey);
    return d.shares;
  }

  private async save(shares: ShareRecord[]): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const data: FileShape = { version: 1, shares };
    await writeFileAtomic(this.file, JSON.stringify(data, null, 2) + '\n', { mode: 0o600 });
  }

  /** Apply `change` to the current list and save it; serialised within this process. */
  private update<T>(change: (shares: ShareRecord[]) => T): Promise<T> {
    const run = this.chain.then(() =>
      withFileLock(this.file, { staleMs: SHARES_LOCK_STALE_MS, retries: SHARES_LOCK_RETRIES, what: 'shares file' }, async () => {
        const shares = await this.load();
        const out = change(shares);
        await this.save(shares);
        return out;
      }),
    );
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Add a share; TBDAV_EXISTS when the name is taken. */
  add(record: ShareRecord): Promise<void> {
    checkShareName(record.name);
    return this.update((shares) => {
      if (shares.some((s) => s.name === record.name)) throw new TbdavError('TBDAV_EXISTS', `share ${record.name}: a share of that name exists (choose another with --name)`);
      shares.push(record);
    });
  }

  /** Remove a share by name; false when there was none. */
  remove(name: string): Promise<boolean> {
    return this.update((shares) => {
      const i = shares.findIndex((s) => s.name === name);
      if (i < 0) return false;
      shares.splice(i, 1);
      return true;
    });
  }

  /** Record a new sekey (after verifying again); ignored when the share was removed meanwhile. */
  setSekey(name: string, surl: string, sekey: string): Promise<void> {
    registerSecret(sekey);
    return this.update((shares) => {
      const s = shares.find((x) => x.name === name && x.surl === surl);
      if (s) s.sekey = sekey;
    });
  }
}
