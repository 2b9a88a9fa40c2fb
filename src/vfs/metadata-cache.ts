/**
 * Metadata cache of remote entries: folder listings and single entries, each with a TTL, bounded by
 * an LRU. Only remote entries live here; local-only files (placeholders, ignored names) are merged in
 * by the Vfs from the state store.
 *
 * Rules:
 *  - A listing is fresh for `ttlMs` after it was fetched or last rewritten in full; a fresh listing
 *    answers stat of any child (present -> entry, absent -> known absent) with no remote call.
 *    Single entries (stat results, and NOT_FOUND answers as "known absent") are fresh for `ttlMs` too.
 *  - Writes update the cache at once for the paths they touched (putEntry / removeTree / moveTree),
 *    so a client sees its own writes without waiting for the TTL. Changes made elsewhere show up
 *    when the TTL has passed.
 *  - Concurrent lists of the same folder share one fetch (single flight). A fetch that started
 *    before a write to that folder completed is returned to its callers but not stored (it may
 *    predate the write).
 *
 * Concurrency: all fields are touched only from synchronous sections (no await between a read and
 * the write that depends on it); `inflight` holds at most one fetch per folder, and every mutation
 * touching that folder's listing marks its fetch stale.
 */
import { LRUCache } from 'lru-cache';
import type { Entry, MkdirResult } from '../remote/types.js';
import { baseName, isSameOrInside, parentPath, rebase } from './paths.js';

export interface MetadataCacheOptions {
  /** Time a listing/entry stays fresh, ms (default 5 min). */
  ttlMs?: number;
  /** Bound on cached entries (listings count their children; a folder with more children than this
   *  is not cached and is listed again on each request), default 100 000. */
  maxEntries?: number;
  /** Clock, ms (tests). */
  now?: () => number;
}

interface Listing {
  /** Children by name. */
  children: Map<string, Entry>;
  at: number;
}

interface Flight {
  /** A mutation touched the folder while the fetch was in flight: do not store its result. */
  stale: boolean;
  promise: Promise<Entry[]>;
}

interface Single {
  /** null: known absent (a stat answered NOT_FOUND). */
  entry: Entry | null;
  at: number;
}

export const DEFAULT_CACHE_TTL_MS = 5 * 60 * 1000;
export const DEFAULT_CACHE_MAX_ENTRIES = 100_000;

function cloneEntry(e: Entry, path?: string): Entry {
  const c = { ...e };
  if (path !== undefined) {
    c.path = path;
    c.name = baseName(path);
  }
  return c;
}

export class MetadataCache {
  readonly ttlMs: number;
  private readonly now: () => number;
  private readonly listings: LRUCache<string, Listing>;
  private readonly singles: LRUCache<string, Single>;
  private readonly inflight = new Map<string, Flight>();
  /**
   * Change counter and the last change per path, kept only while stats are in flight (see
   * statThrough): a change older than every reader in flight can no longer matter and is dropped,
   * so the map stays small even when reads never pause.
   */
  private version = 0;
  private readonly changed = new Map<string, number>();
  /** Readers in flight: their start version -> how many. */
  private readonly active = new Map<number, number>();

  constructor(options: MetadataCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? DEFAULT_CACHE_TTL_MS;
    this.now = options.now ?? Date.now;
    const max = Math.max(16, options.maxEntries ?? DEFAULT_CACHE_MAX_ENTRIES);
    this.listings = new LRUCache<string, Listing>({ maxSize: max, sizeCalculation: (l) => l.children.size + 1 });
    this.singles = new LRUCache<string, Single>({ max });
  }

  private fresh(at: number): boolean {
    return this.now() - at < this.ttlMs;
  }

  /** Record a change at `path` (and so under it) for stats in flight. */
  private touch(path: string): void {
    if (this.active.size > 0) this.changed.set(path, ++this.version);
  }

  /** A reader starts: its token is the current version. */
  private enter(): number {
    const token = this.version;
    this.active.set(token, (this.active.get(token) ?? 0) + 1);
    return token;
  }

  /** A reader ends: forget the changes no reader still in flight can be affected by. */
  private leave(token: number): void {
    const n = (this.active.get(token) ?? 1) - 1;
    if (n > 0) this.active.set(token, n);
    else this.active.delete(token);
    if (this.active.size === 0) {
      this.changed.clear();
      return;
    }
    if (this.changed.size < 64) return; // pruning is a scan: only once there is something to gain
    let oldest = Infinity;
    for (const t of this.active.keys()) if (t < oldest) oldest = t;
    for (const [k, v] of this.changed) if (v <= oldest) this.changed.delete(k);
  }

  /** Changes recorded for readers in flight (tests: it must stay bounded). */
  get trackedChanges(): number {
    return this.changed.size;
  }

  /** Whether something strictly under `path` changed after `token`. */
  private changedUnder(path: string, token: number): boolean {
    for (const [k, v] of this.changed) if (v > token && k !== path && isSameOrInside(k, path)) return true;
    return false;
  }

  private changedSince(path: string, token: number): boolean {
    for (let p = path; ; p = parentPath(p)) {
      if ((this.changed.get(p) ?? -1) > token) return true;
      if (p === '/') return false;
    }
  }

  /**
   * Ask the remote about one path (`fetch` answers the entry, or null for NOT_FOUND) and remember the
   * answer, unless a write touched the path (or a folder above it) while the fetch was in flight:
   * then the answer may predate that write, and what the write left in the cache is returned.
   */
  async statThrough(path: string, fetch: () => Promise<Entry | null>): Promise<Entry | null> {
    const token = this.enter();
    try {
      const e = await fetch();
      if (this.changedSince(path, token)) {
        const now = this.lookup(path);
        return now === undefined ? e : now;
      }
      if (e) this.putEntry(e);
      else this.putAbsent(path);
      return e ? cloneEntry(e) : null;
    } finally {
      this.leave(token);
    }
  }

  /**
   * Make a folder (`make` answers its entry) and remember it. Its listing is seeded empty only when
   * it is certainly new (`maybeNotEmpty` not set) and nothing was written at or under it while
   * `make` ran (a concurrent MKCOL answered "exists" and a PUT stored a file in it): otherwise the
   * next list asks the remote.
   */
  async mkdirThrough(path: string, make: () => Promise<MkdirResult>): Promise<Entry> {
    const token = this.enter();
    try {
      const { maybeNotEmpty, ...e } = await make();
      const touched = this.changedUnder(path, token);
      this.putEntry(e);
      if (maybeNotEmpty || touched) this.listings.delete(path);
      else this.setListing(path, []);
      return cloneEntry(e);
    } finally {
      this.leave(token);
    }
  }

  /** A mutation touched `folder`: a listing fetch in flight for it may predate it. */
  private bump(folder: string): void {
    const f = this.inflight.get(folder);
    if (f) f.stale = true;
  }

  /** Fresh listing of a folder, or undefined. */
  getListing(folder: string): Entry[] | undefined {
    const l = this.listings.get(folder);
    if (!l) return undefined;
    if (!this.fresh(l.at)) {
      this.listings.delete(folder);
      return undefined;
    }
    return [...l.children.values()].map((e) => cloneEntry(e));
  }

  /**
   * What the cache knows of one path: the entry, null when a fresh parent listing says it is absent,
   * undefined when it does not know.
   */
  lookup(path: string): Entry | null | undefined {
    if (path !== '/') {
      const l = this.listings.get(parentPath(path));
      if (l && this.fresh(l.at)) {
        const e = l.children.get(baseName(path));
        return e ? cloneEntry(e) : null;
      }
    }
    const s = this.singles.get(path);
    if (s && this.fresh(s.at)) return s.entry === null ? null : cloneEntry(s.entry);
    if (s) this.singles.delete(path);
    return undefined;
  }

  /** List a folder through the cache: fresh listing, else one shared fetch. */
  async list(folder: string, fetch: () => Promise<Entry[]>): Promise<Entry[]> {
    const cached = this.getListing(folder);
    if (cached) return cached;
    let flight = this.inflight.get(folder);
    if (!flight) {
      const f: Flight = { stale: false, promise: Promise.resolve([]) };
      f.promise = (async () => {
        try {
          const entries = await fetch();
          if (!f.stale) this.setListing(folder, entries);
          return entries;
        } finally {
          this.inflight.delete(folder);
        }
      })();
      flight = f;
      this.inflight.set(folder, f);
    }
    const entries = await flight.promise;
    return entries.map((e) => cloneEntry(e));
  }

  /** Store a complete, fresh listing of a folder (e.g. an empty one right after mkdir). */
  setListing(folder: string, entries: Entry[]): void {
    const children = new Map<string, Entry>();
    for (const e of entries) children.set(e.name, cloneEntry(e));
    this.listings.set(folder, { children, at: this.now() });
  }

  /** Remember one entry (stat result or a write's result) and insert it into its parent's listing. */
  putEntry(entry: Entry): void {
    const e = cloneEntry(entry);
    this.touch(e.path);
    this.singles.set(e.path, { entry: e, at: this.now() });
    if (e.path === '/') return;
    const parent = parentPath(e.path);
    this.bump(parent);
    const l = this.listings.get(parent);
    if (l) l.children.set(e.name, e);
  }

  /** Remember that a path does not exist (a stat answered NOT_FOUND); fresh for the TTL. */
  putAbsent(path: string): void {
    this.touch(path);
    if (path !== '/') this.singles.set(path, { entry: null, at: this.now() });
  }

  /** Drop what is cached at or under `path` (its parent's listing is left alone). */
  forget(path: string): void {
    this.touch(path);
    for (const k of [...this.singles.keys()]) if (isSameOrInside(k, path)) this.singles.delete(k);
    for (const k of [...this.listings.keys()]) if (isSameOrInside(k, path)) this.listings.delete(k);
    for (const [k, f] of this.inflight) if (isSameOrInside(k, path)) f.stale = true;
  }

  /**
   * A write at `path` failed with an unknown outcome (it may have happened): forget what is cached at
   * or under it and drop its parent's listing, so the next look asks the remote.
   */
  unsure(path: string): void {
    this.forget(path);
    if (path === '/') return;
    const parent = parentPath(path);
    this.touch(parent);
    this.bump(parent);
    this.listings.delete(parent);
  }

  /** A path and everything under it are gone: forget them, take the path out of its parent's listing. */
  removeTree(path: string): void {
    this.forget(path);
    if (path === '/') return;
    const parent = parentPath(path);
    this.bump(parent);
    const l = this.listings.get(parent);
    if (l) l.children.delete(baseName(path));
  }

  /**
   * A move: entries and listings at/under `from` are rebased onto `to` (their age kept), the
   * destination's old subtree is dropped, and both parents' listings are updated. `top` is the
   * moved entry as known before the move.
   */
  moveTree(from: string, to: string, top: Entry): void {
    const singles: [string, Single][] = [];
    for (const [k, v] of this.singles.entries()) {
      if (isSameOrInside(k, from) && v.entry) singles.push([rebase(k, from, to), { entry: cloneEntry(v.entry, rebase(k, from, to)), at: v.at }]);
    }
    const listings: [string, Listing][] = [];
    for (const [k, v] of this.listings.entries()) {
      if (!isSameOrInside(k, from)) continue;
      const nk = rebase(k, from, to);
      const children = new Map<string, Entry>();
      for (const [name, e] of v.children) children.set(name, cloneEntry(e, nk === '/' ? '/' + name : nk + '/' + name));
      listings.push([nk, { children, at: v.at }]);
    }
    this.removeTree(from);
    this.removeTree(to);
    for (const [k, v] of singles) this.singles.set(k, v);
    for (const [k, v] of listings) {
      this.listings.set(k, v);
      this.bump(k);
    }
    this.putEntry(cloneEntry(top, to));
    this.putAbsent(from);
  }

  /** Forget everything. */
  clear(): void {
    this.touch('/');
    for (const f of this.inflight.values()) f.stale = true;
    this.listings.clear();
    this.singles.clear();
  }
}
