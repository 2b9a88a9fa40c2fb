/**
 * What the vfs remembers of the content it uploaded: the backend's hash of a file (Entry.hash, e.g.
 * TeraBox's md5 of the block list) -> the md5 of its content, which the vfs computed while spooling.
 * With it a stored file keeps the ETag it had while pending (the content md5), also after a cache
 * refresh, a restart, or a copy on the remote (same content, same hash).
 *
 * Keyed by hash and size, so it follows content, not paths: nothing to update on move, copy or
 * delete; an entry whose file is gone is merely unused. Hashes equal to the content md5 are kept
 * too: the vfs cannot know that a backend's hash is a content md5 (TeraBox's is for one shard
 * only), and PROPFIND offers the content md5 as a checksum (oc:checksums) where it knows it.
 *
 * Persistence: an append-only log `<stateDir>/content-md5.log`, one `hash size md5` line per
 * upload, fsynced (a lost line would change an ETag once after a crash). Lines remembered while a
 * write is in flight go together in the next one (one append and one fsync for many uploads); the
 * caller need not wait for it (the map answers at once). At open the log is read, and rewritten
 * atomically when it holds many stale or surplus lines. At most `maxEntries` (default 50 000) are
 * kept; the oldest go first.
 *
 * Concurrency: `known` changes synchronously; `buffered` gathers lines until the next write takes
 * them all; writes are chained on `tail`, so lines land in order and a compaction never overlaps an
 * append. Event loop only.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../shared/atomic-file.js';
import type { Logger } from '../shared/logger.js';

const FILE = 'content-md5.log';
const LINE_RE = /^([A-Za-z0-9._-]{1,128}) (\d{1,16}) ([0-9a-f]{32})$/;

export class ContentMd5Memory {
  private readonly known = new Map<string, string>();
  private tail: Promise<void> = Promise.resolve();
  private lines = 0;
  private buffered: string[] = [];
  /** The write that will take the buffered lines (undefined: none scheduled). */
  private scheduled: Promise<void> | undefined;

  private constructor(
    private readonly file: string,
    private readonly maxEntries: number,
    private readonly logger: Logger | undefined,
  ) {}

  static async open(stateDir: string, opts: { maxEntries?: number; logger?: Logger } = {}): Promise<ContentMd5Memory> {
    const m = new ContentMd5Memory(join(stateDir, FILE), Math.max(1, opts.maxEntries ?? 50_000), opts.logger);
    let text = '';
    try {
      text = await readFile(m.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      opts.logger?.debug(`content md5s: no ${FILE} yet`);
    }
    for (const line of text.split('\n')) {
      if (line === '') continue;
      m.lines++;
      const r = LINE_RE.exec(line);
      if (!r) continue; // a line cut by a crash: skipped (and dropped by the next compaction)
      m.set(`${r[2]}:${r[1]}`, r[3]!);
    }
    if (m.lines > 2 * m.known.size + 100) await m.compact();
    return m;
  }

  private set(key: string, md5: string): void {
    this.known.delete(key);
    this.known.set(key, md5);
    while (this.known.size > this.maxEntries) this.known.delete(this.known.keys().next().value!);
  }

  /** The content md5 of a file with this backend hash and size, when we uploaded such content. */
  lookup(hash: string | undefined, size: number): string | undefined {
    return hash === undefined ? undefined : this.known.get(`${size}:${hash}`);
  }

  /**
   * Remember that content of `size` bytes with md5 `contentMd5` is reported by the backend as
   * `hash`. Known at once; the promise (which never rejects: a failed write is logged) says when it
   * is on disk.
   */
  remember(hash: string | undefined, size: number, contentMd5: string): Promise<void> {
    if (hash === undefined || !LINE_RE.test(`${hash} ${size} ${contentMd5}`)) return Promise.resolve();
    const key = `${size}:${hash}`;
    if (this.known.get(key) === contentMd5) return this.scheduled ?? Promise.resolve();
    this.set(key, contentMd5);
    this.buffered.push(`${hash} ${size} ${contentMd5}\n`);
    if (!this.scheduled) {
      const write = this.tail.then(() => this.writeBuffered());
      this.scheduled = write.catch((err: unknown) => this.logger?.warn(`content md5s: cannot record what was uploaded`, { error: String(err) }));
      this.tail = this.scheduled;
    }
    return this.scheduled;
  }

  /** Append every buffered line with one write and one fsync. */
  private async writeBuffered(): Promise<void> {
    const lines = this.buffered;
    this.buffered = [];
    this.scheduled = undefined; // lines remembered from now on go in the next write
    const fh = await open(this.file, 'a', 0o600);
    try {
      await fh.appendFile(lines.join(''));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    this.lines += lines.length;
    if (this.lines > 2 * this.maxEntries) await this.compact();
  }

  /** Rewrite the log with the live entries only. */
  private async compact(): Promise<void> {
    const text = [...this.known].map(([k, md5]) => {
      const i = k.indexOf(':');
      return `${k.slice(i + 1)} ${k.slice(0, i)} ${md5}\n`;
    });
    await writeFileAtomic(this.file, text.join(''), { mode: 0o600, logger: this.logger });
    this.lines = this.known.size;
  }

  /** Wait for the appends in flight. */
  async flush(): Promise<void> {
    await this.tail;
  }
}
