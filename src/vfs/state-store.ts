/**
 * Local persistent state under `stateDir`:
 *  - dead properties per path (`{ns}name` -> raw inner XML),
 *  - local-only files: 0-byte placeholders (the remote refused an empty file) and ignored names
 *    (._*, .DS_Store ...), whose content lives in `<stateDir>/local/<blob>`,
 *  - modification times given by clients (X-OC-Mtime).
 *
 * Everything is kept in memory and written to `<stateDir>/state.json` atomically
 * (shared/atomic-file.ts: temp file + fsync + rename + fsync of the folder). Mutations return the
 * promise of the write that will contain them; writes are debounced (`debounceMs`) and never overlap.
 *
 * Concurrency: the maps are mutated only synchronously; `scheduled` is the next write not yet
 * started (every mutation joins it); `chain` orders writes one after the other. A write snapshots the
 * maps synchronously when it starts, so a mutation made during a write is carried by the next one.
 */
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../shared/atomic-file.js';
import { TbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { DeadProps } from './types.js';
import { isSameOrInside, parentPath, rebase } from './paths.js';

export interface LocalFile {
  path: string;
  kind: 'placeholder' | 'ignored';
  size: number;
  mtime: number;
  ctime: number;
  contentMd5: string;
  /** File name under `<stateDir>/local/` holding the content (absent for empty files). */
  blob?: string;
}

interface StateFile {
  version: 1;
  props: Record<string, DeadProps>;
  local: Record<string, LocalFile>;
  mtimes: Record<string, number>;
}

export interface StateStoreOptions {
  logger?: Logger;
  /** Delay that groups several mutations into one write, ms (default 20). */
  debounceMs?: number;
}

const FILE = 'state.json';

export class StateStore {
  readonly stateDir: string;
  readonly blobDir: string;
  private readonly logger: Logger | undefined;
  private readonly debounceMs: number;
  private readonly props = new Map<string, DeadProps>();
  private readonly local = new Map<string, LocalFile>();
  private readonly mtimes = new Map<string, number>();
  private scheduled: Promise<void> | undefined;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(stateDir: string, options: StateStoreOptions) {
    this.stateDir = stateDir;
    this.blobDir = join(stateDir, 'local');
    this.logger = options.logger;
    this.debounceMs = options.debounceMs ?? 20;
  }

  /** Load (or start) the state under `stateDir`. */
  static async open(stateDir: string, options: StateStoreOptions = {}): Promise<StateStore> {
    const store = new StateStore(stateDir, options);
    await mkdir(store.blobDir, { recursive: true });
    let text: string | undefined;
    try {
      text = await readFile(join(stateDir, FILE), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new TbdavError('TBDAV_FATAL', `state ${stateDir}: cannot read ${FILE}`, { cause: err });
      }
      store.logger?.debug(`state ${stateDir}: no ${FILE} yet, starting empty`);
    }
    if (text !== undefined) {
      let data: StateFile;
      try {
        data = JSON.parse(text) as StateFile;
      } catch (err) {
        throw new TbdavError('TBDAV_FATAL', `state ${stateDir}: ${FILE} is not valid JSON`, { cause: err });
      }
      for (const [k, v] of Object.entries(data.props ?? {})) store.props.set(k, { ...v });
      for (const [k, v] of Object.entries(data.local ?? {})) store.local.set(k, { ...v });
      for (const [k, v] of Object.entries(data.mtimes ?? {})) store.mtimes.set(k, v);
    }
    return store;
  }

  // ------------------------------------------------------------------ persistence

  private persist(): Promise<void> {
    if (this.closed) return Promise.reject(new TbdavError('TBDAV_FATAL', `state ${this.stateDir}: store is closed`));
    if (this.scheduled) return this.scheduled;
    const next = this.chain
      .then(() => new Promise<void>((r) => setTimeout(r, this.debounceMs)))
      .then(() => {
        this.scheduled = undefined;
        return this.writeNow();
      });
    this.scheduled = next;
    this.chain = next.catch((err: unknown) => {
      this.logger?.error(`state ${this.stateDir}: write failed`, { error: String(err) });
    });
    return next;
  }

  private snapshot(): string {
    const data: StateFile = {
      version: 1,
      props: Object.fromEntries(this.props),
      local: Object.fromEntries(this.local),
      mtimes: Object.fromEntries(this.mtimes),
    };
    return JSON.stringify(data);
  }

  private async writeNow(): Promise<void> {
    try {
      await writeFileAtomic(join(this.stateDir, FILE), this.snapshot(), { mode: 0o600, logger: this.logger });
    } catch (err) {
      throw new TbdavError('TBDAV_FATAL', `state ${this.stateDir}: cannot write ${FILE}`, { cause: err });
    }
  }

  /** Wait until every mutation made so far is on disk. */
  async flush(): Promise<void> {
    if (this.scheduled) await this.scheduled;
    await this.chain;
  }

  /** Flush and refuse further mutations. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  // ------------------------------------------------------------------ dead properties

  getProps(path: string): DeadProps {
    return { ...(this.props.get(path) ?? {}) };
  }

  /** Set (string) or remove (null) properties of one path, all at once. */
  patchProps(path: string, patch: Record<string, string | null>): Promise<void> {
    for (const [k, v] of Object.entries(patch)) {
      if (typeof k !== 'string' || k.length === 0) throw new TbdavError('TBDAV_BAD_REQUEST', `PROPPATCH ${path}: empty property name`);
      if (v !== null && typeof v !== 'string') throw new TbdavError('TBDAV_BAD_REQUEST', `PROPPATCH ${path}: property ${k} is not a string`);
    }
    const next = { ...(this.props.get(path) ?? {}) };
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete next[k];
      else next[k] = v;
    }
    if (Object.keys(next).length === 0) this.props.delete(path);
    else this.props.set(path, next);
    return this.persist();
  }

  // ------------------------------------------------------------------ local files

  getLocal(path: string): LocalFile | undefined {
    const f = this.local.get(path);
    return f ? { ...f } : undefined;
  }

  /** Local files directly inside `folder`. */
  listLocal(folder: string): LocalFile[] {
    const out: LocalFile[] = [];
    for (const f of this.local.values()) if (f.path !== '/' && parentPath(f.path) === folder) out.push({ ...f });
    return out;
  }

  /** Local files at or under `path`. */
  localUnder(path: string): LocalFile[] {
    return [...this.local.values()].filter((f) => isSameOrInside(f.path, path)).map((f) => ({ ...f }));
  }

  /** Path of a blob under the state dir. */
  blobPath(blob: string): string {
    return join(this.blobDir, blob);
  }

  /** Move a finished file (e.g. a spool file) into the blob folder; returns the blob name. */
  async adoptBlob(localPath: string): Promise<string> {
    const blob = randomUUID();
    const dest = this.blobPath(blob);
    try {
      await rename(localPath, dest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      this.logger?.debug(`state: ${localPath} is on another device, copying`);
      await copyFile(localPath, dest);
    }
    return blob;
  }

  /** Record a local file (replacing any at the same path; its old blob is removed). */
  async setLocal(file: LocalFile): Promise<void> {
    const old = this.local.get(file.path);
    this.local.set(file.path, { ...file });
    const saved = this.persist();
    if (old?.blob && old.blob !== file.blob) {
      await saved;
      await this.removeBlob(old.blob);
    }
    return saved;
  }

  /** Forget the local file at `path` (if any) and remove its blob. */
  async deleteLocal(path: string): Promise<void> {
    const old = this.local.get(path);
    if (!old) return;
    this.local.delete(path);
    await this.persist();
    if (old.blob) await this.removeBlob(old.blob);
  }

  /** Remove blobs no local file refers to (left by a crash between adoptBlob and setLocal). */
  async removeOrphanBlobs(): Promise<number> {
    const used = new Set<string>();
    for (const f of this.local.values()) if (f.blob) used.add(f.blob);
    let removed = 0;
    for (const name of await readdir(this.blobDir)) {
      if (used.has(name)) continue;
      await this.removeBlob(name);
      removed++;
    }
    if (removed > 0) this.logger?.info(`state ${this.stateDir}: removed ${removed} orphan local file(s)`);
    return removed;
  }

  private async removeBlob(blob: string): Promise<void> {
    try {
      await rm(this.blobPath(blob), { force: true });
    } catch (err) {
      this.logger?.debug(`state: removing blob ${blob} failed`, { error: String(err) });
    }
  }

  // ------------------------------------------------------------------ modification times

  getMtime(path: string): number | undefined {
    return this.mtimes.get(path);
  }

  setMtime(path: string, mtime: number | undefined): Promise<void> {
    if (mtime === undefined) this.mtimes.delete(path);
    else this.mtimes.set(path, mtime);
    return this.persist();
  }

  // ------------------------------------------------------------------ tree operations

  /** Drop everything recorded at or under `path` (props, local files with their blobs, mtimes). */
  async deleteTree(path: string): Promise<void> {
    const blobs: string[] = [];
    let changed = false;
    for (const k of [...this.props.keys()]) if (isSameOrInside(k, path)) changed = this.props.delete(k) || changed;
    for (const k of [...this.mtimes.keys()]) if (isSameOrInside(k, path)) changed = this.mtimes.delete(k) || changed;
    for (const [k, f] of [...this.local.entries()]) {
      if (isSameOrInside(k, path)) {
        this.local.delete(k);
        if (f.blob) blobs.push(f.blob);
        changed = true;
      }
    }
    if (!changed) return;
    await this.persist();
    for (const b of blobs) await this.removeBlob(b);
  }

  /** Rebase everything at or under `from` onto `to` (the destination's old records are dropped first). */
  async moveTree(from: string, to: string): Promise<void> {
    await this.deleteTree(to);
    let changed = false;
    for (const [k, v] of [...this.props.entries()]) {
      if (isSameOrInside(k, from)) {
        this.props.delete(k);
        this.props.set(rebase(k, from, to), v);
        changed = true;
      }
    }
    for (const [k, v] of [...this.mtimes.entries()]) {
      if (isSameOrInside(k, from)) {
        this.mtimes.delete(k);
        this.mtimes.set(rebase(k, from, to), v);
        changed = true;
      }
    }
    for (const [k, f] of [...this.local.entries()]) {
      if (isSameOrInside(k, from)) {
        this.local.delete(k);
        const np = rebase(k, from, to);
        this.local.set(np, { ...f, path: np });
        changed = true;
      }
    }
    if (changed) await this.persist();
  }

  /**
   * Copy the records at `from` (and under it when `deep`) to `to`; local blobs are duplicated.
   * The destination's old records are dropped first.
   */
  async copyTree(from: string, to: string, deep: boolean): Promise<void> {
    await this.deleteTree(to);
    const match = (k: string): boolean => (deep ? isSameOrInside(k, from) : k === from);
    let changed = false;
    for (const [k, v] of [...this.props.entries()]) {
      if (match(k)) {
        this.props.set(rebase(k, from, to), { ...v });
        changed = true;
      }
    }
    for (const [k, v] of [...this.mtimes.entries()]) {
      if (match(k)) {
        this.mtimes.set(rebase(k, from, to), v);
        changed = true;
      }
    }
    for (const [k, f] of [...this.local.entries()]) {
      if (!match(k)) continue;
      const np = rebase(k, from, to);
      const copy: LocalFile = { ...f, path: np };
      if (f.blob) {
        const blob = randomUUID();
        await copyFile(this.blobPath(f.blob), this.blobPath(blob));
        copy.blob = blob;
      }
      this.local.set(np, copy);
      changed = true;
    }
    if (changed) await this.persist();
  }
}
