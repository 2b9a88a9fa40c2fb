/**
 * The emulator's drive: a tree of nodes indexed by path, by fs_id and by parent folder, content
 * blobs on disk (shared by copies and identical uploads, reference counted), and the metadata
 * persisted as one JSON file written atomically (shared/atomic-file.ts: temp + fsync + rename).
 *
 * Concurrency: all maps are mutated synchronously on the event loop (no await inside a mutation),
 * so a mutation is atomic with respect to other requests. A request that works with stored content
 * across an await or a removal holds a reference on it (acquireBlob/addBlob ... releaseBlob).
 * Persistence is debounced and the writes are chained on `writeChain` so that two snapshots never
 * race on the file.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../shared/atomic-file.js';
import type { Logger } from '../shared/logger.js';
import { EmulatorErrno } from './errors.js';
import { categoryOf, nowSec } from './util.js';

export { EmulatorErrno } from './errors.js';

export interface Node {
  fs_id: number;
  path: string;
  isdir: boolean;
  size: number;
  /**
   * Reported md5 (files, plain hex): content md5 for one shard; for several, md5 of the JSON shard
   * list, or the content md5 when the file was created under md5Rule 'content'.
   */
  md5?: string;
  /** Content md5 of a multi-shard file, when it was computed (md5Rule 'content'). */
  cmd5?: string;
  /** Blob id of the content (files). */
  blob?: string;
  /** Shard md5s (files). */
  blocks?: string[];
  /** Shard sizes (files): the blob is stored as one file per shard. */
  parts?: number[];
  ctime: number;
  mtime: number;
  lctime: number;
  lmtime: number;
}

/** Stored content as an upload request sees it, while it holds a reference (see acquireBlob). */
export interface BlobHandle {
  id: string;
  size: number;
  parts: number[];
  /** Content md5, when known (computed for multi-shard content under md5Rule 'content'). */
  cmd5?: string;
}

interface BlobInfo {
  size: number;
  key: string;
  refs: number;
  parts: number[];
  cmd5?: string;
}

export interface PersistSection {
  dump(): unknown;
  load(data: unknown): void;
}

export function dirnameOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}
export function basenameOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}
export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}
export function blockKey(blocks: string[]): string {
  return JSON.stringify(blocks);
}

const META_FILE = 'meta.json';

export class Store {
  private readonly byPath = new Map<string, Node>();
  private readonly byId = new Map<number, Node>();
  /** Children of each folder by name (folder path -> name -> node). */
  private readonly kids = new Map<string, Map<string, Node>>();
  private readonly blobs = new Map<string, BlobInfo>();
  private readonly blobByKey = new Map<string, string>();
  private readonly sections = new Map<string, PersistSection>();
  private nextFsId = 100_000_000_001;
  private used = 0;
  private timer: NodeJS.Timeout | undefined;
  private writeChain: Promise<void> = Promise.resolve();
  private lastSnapshotMs = 0;
  private closed = false;
  readonly blobDir: string;
  readonly uploadDir: string;

  constructor(
    readonly dataDir: string,
    private readonly logger: Logger,
  ) {
    this.blobDir = join(dataDir, 'blobs');
    this.uploadDir = join(dataDir, 'uploads');
  }

  registerSection(name: string, section: PersistSection): void {
    this.sections.set(name, section);
  }

  async load(): Promise<void> {
    await mkdir(this.blobDir, { recursive: true });
    await rm(this.uploadDir, { recursive: true, force: true });
    await mkdir(this.uploadDir, { recursive: true });
    let text: string | undefined;
    try {
      text = await readFile(join(this.dataDir, META_FILE), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.logger.debug('emulator store: no metadata yet, starting empty', { dataDir: this.dataDir });
    }
    this.insert({ fs_id: 1, path: '/', isdir: true, size: 0, ctime: nowSec(), mtime: nowSec(), lctime: nowSec(), lmtime: nowSec() });
    if (text !== undefined) {
      const data = JSON.parse(text) as { nextFsId: number; nodes: Node[]; sections?: Record<string, unknown> };
      this.nextFsId = data.nextFsId;
      const nodes = [...data.nodes].sort((a, b) => a.path.split('/').length - b.path.split('/').length);
      for (const n of nodes) {
        if (n.path === '/') continue;
        this.insert(n);
        if (n.blob) {
          const b = this.blobs.get(n.blob);
          const key = blockKey(n.blocks ?? []);
          if (b) {
            b.refs++;
            b.cmd5 ??= n.cmd5;
          } else this.blobs.set(n.blob, { size: n.size, key, refs: 1, parts: n.parts ?? [n.size], ...(n.cmd5 ? { cmd5: n.cmd5 } : {}) });
          if (!this.blobByKey.has(key)) this.blobByKey.set(key, n.blob);
        }
      }
      for (const [name, sec] of this.sections) {
        if (data.sections?.[name] !== undefined) sec.load(data.sections[name]);
      }
    }
    // drop blobs no node refers to (left by a crash between blob write and metadata write)
    for (const f of await readdir(this.blobDir)) {
      if (!this.blobs.has(f)) await rm(join(this.blobDir, f), { recursive: true, force: true });
    }
  }

  // ---------------------------------------------------------------- persistence

  /** Schedule a snapshot: 50 ms after the change, or longer when snapshots get expensive (big drives). */
  markDirty(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch((err: unknown) => this.logger.error('emulator store: metadata write failed', { err }));
    }, Math.max(50, this.lastSnapshotMs * 10));
  }

  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const sections: Record<string, unknown> = {};
    for (const [name, sec] of this.sections) sections[name] = sec.dump();
    const nodes = [...this.byId.values()].filter((n) => n.path !== '/');
    const t0 = Date.now();
    const text = JSON.stringify({ version: 1, nextFsId: this.nextFsId, nodes, sections });
    this.lastSnapshotMs = Date.now() - t0;
    const file = join(this.dataDir, META_FILE);
    this.writeChain = this.writeChain.then(() => writeFileAtomic(file, text, { logger: this.logger }));
    return this.writeChain;
  }

  /** Final snapshot; later changes are not persisted (the emulator is shutting down). */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  // ---------------------------------------------------------------- reads

  get(path: string): Node | undefined {
    return this.byPath.get(path);
  }
  getById(id: number): Node | undefined {
    return this.byId.get(id);
  }
  children(dir: string): Node[] {
    const m = this.kids.get(dir);
    return m ? [...m.values()] : [];
  }
  hasChildren(dir: string): boolean {
    return (this.kids.get(dir)?.size ?? 0) > 0;
  }
  /** Every node below `dir` (depth first). */
  *walk(dir: string): Generator<Node> {
    const m = this.kids.get(dir);
    if (!m) return;
    for (const n of m.values()) {
      yield n;
      if (n.isdir) yield* this.walk(n.path);
    }
  }
  get usedBytes(): number {
    return this.used;
  }
  category(n: Node): number {
    return n.isdir ? 6 : categoryOf(basenameOf(n.path));
  }
  /** A blob is a folder holding one file per shard, named 0, 1, ... */
  blobPath(id: string): string {
    return join(this.blobDir, id);
  }
  partPath(id: string, i: number): string {
    return join(this.blobDir, id, String(i));
  }

  // ---------------------------------------------------------------- writes

  private insert(n: Node): void {
    this.byPath.set(n.path, n);
    this.byId.set(n.fs_id, n);
    if (n.path !== '/') {
      const dir = dirnameOf(n.path);
      let m = this.kids.get(dir);
      if (!m) this.kids.set(dir, (m = new Map()));
      m.set(basenameOf(n.path), n);
    }
    if (!n.isdir) this.used += n.size;
  }

  private detach(n: Node): void {
    this.byPath.delete(n.path);
    this.byId.delete(n.fs_id);
    const m = this.kids.get(dirnameOf(n.path));
    m?.delete(basenameOf(n.path));
    if (!n.isdir) this.used -= n.size;
  }

  private newId(): number {
    return this.nextFsId++;
  }

  private touchParent(path: string): void {
    const p = this.byPath.get(dirnameOf(path));
    if (p) p.mtime = nowSec();
  }

  /** Create the folder and any missing parents; -8 when a component is a file. */
  mkdirp(path: string): Node {
    const existing = this.byPath.get(path);
    if (existing) {
      if (!existing.isdir) throw new EmulatorErrno(-8, `mkdir ${path}: a file has this path`);
      return existing;
    }
    this.mkdirp(dirnameOf(path));
    const t = nowSec();
    const n: Node = { fs_id: this.newId(), path, isdir: true, size: 0, ctime: t, mtime: t, lctime: t, lmtime: t };
    this.insert(n);
    this.touchParent(path);
    this.markDirty();
    return n;
  }

  /**
   * Content reference counting. `refs` of a blob = the file nodes pointing at it + the holds that
   * upload requests have taken while they work with it (acquireBlob / addBlob, ended by
   * releaseBlob). The blob is freed (forgotten, then its folder removed) when `refs` reaches 0, so
   * content that a request is about to give to a new file survives the removal of the last old
   * file that had it (rtype 3 over the same content). Holds live in memory only: after a restart
   * `refs` is recounted from the nodes (load), which is exact since no request is in flight then.
   */

  /** Take a hold on the stored content with this block_list (and size, when given), if there is one. */
  acquireBlob(blocks: string[], size?: number): BlobHandle | undefined {
    const id = this.blobByKey.get(blockKey(blocks));
    const b = id ? this.blobs.get(id) : undefined;
    if (!id || !b || (size !== undefined && b.size !== size)) return undefined;
    b.refs++;
    return { id, size: b.size, parts: b.parts, ...(b.cmd5 ? { cmd5: b.cmd5 } : {}) };
  }

  /** Remember the content md5 of a blob (computed once, kept by every file of that content). */
  setBlobContentMd5(id: string, cmd5: string): void {
    const b = this.blobs.get(id);
    if (b) b.cmd5 = cmd5;
  }

  /**
   * Register a new blob (its shard files already under blobPath(id)); the caller holds it (refs 1)
   * until releaseBlob. When content with the same block_list is registered already (another upload
   * of it won the race), that blob stays the one rapid upload finds.
   */
  addBlob(id: string, size: number, blocks: string[], parts: number[]): void {
    const key = blockKey(blocks);
    this.blobs.set(id, { size, key, refs: 1, parts });
    if (!this.blobByKey.has(key)) this.blobByKey.set(key, id);
  }

  /** End a hold taken by acquireBlob or addBlob; frees the blob when nothing else refers to it. */
  releaseBlob(id: string): void {
    this.unref(id);
  }

  private ref(id: string): void {
    const b = this.blobs.get(id);
    // a node must never point at content that is gone: that is the data-loss bug this guards
    if (!b) throw new Error(`emulator store: reference to unknown blob ${id}`);
    b.refs++;
  }

  private unref(id: string): void {
    const b = this.blobs.get(id);
    if (!b) {
      this.logger.error('emulator store: release of unknown blob', { id });
      return;
    }
    b.refs--;
    if (b.refs > 0) return;
    this.blobs.delete(id);
    if (this.blobByKey.get(b.key) === id) {
      this.blobByKey.delete(b.key);
      // another blob with the same block_list (two concurrent uploads of it) takes over the key
      for (const [other, ob] of this.blobs) {
        if (ob.key === b.key) {
          this.blobByKey.set(b.key, other);
          break;
        }
      }
    }
    rm(this.blobPath(id), { recursive: true, force: true }).catch((err: unknown) => this.logger.debug('emulator store: remove blob failed', { id, err }));
  }

  addFile(path: string, f: { size: number; md5: string; cmd5?: string; blob: string; blocks: string[]; parts: number[]; lctime?: number; lmtime?: number }): Node {
    this.mkdirp(dirnameOf(path));
    const t = nowSec();
    const n: Node = {
      fs_id: this.newId(),
      path,
      isdir: false,
      size: f.size,
      md5: f.md5,
      ...(f.cmd5 ? { cmd5: f.cmd5 } : {}),
      blob: f.blob,
      blocks: f.blocks,
      parts: f.parts,
      ctime: t,
      mtime: t,
      lctime: f.lctime ?? t,
      lmtime: f.lmtime ?? t,
    };
    this.ref(f.blob);
    this.insert(n);
    this.touchParent(path);
    this.markDirty();
    return n;
  }

  /** Remove a node (folders recursively). */
  remove(n: Node): void {
    if (n.isdir) for (const c of this.children(n.path)) this.remove(c);
    this.detach(n);
    if (n.blob) this.unref(n.blob);
    this.kids.delete(n.path);
    this.touchParent(n.path);
    this.markDirty();
  }

  /** Move (or rename) a node and its subtree to `dest` (which must be free). */
  move(n: Node, dest: string): Node {
    const subtree = n.isdir ? [...this.walk(n.path)] : [];
    const oldPrefix = n.path;
    this.touchParent(n.path);
    for (const c of subtree) this.detach(c);
    this.detach(n);
    for (const c of subtree) this.kids.delete(c.path);
    const oldKids = this.kids.get(oldPrefix);
    this.kids.delete(oldPrefix);
    n.path = dest;
    n.mtime = nowSec();
    this.insert(n);
    if (oldKids) this.kids.set(dest, new Map());
    for (const c of subtree) {
      c.path = dest + c.path.slice(oldPrefix.length);
      this.insert(c);
    }
    this.touchParent(dest);
    this.markDirty();
    return n;
  }

  /** Copy a node (folders recursively) to `dest` (which must be free); blobs are shared. */
  copy(n: Node, dest: string): Node {
    const t = nowSec();
    const c: Node = { ...n, fs_id: this.newId(), path: dest, ctime: t, mtime: t };
    if (c.blocks) c.blocks = [...c.blocks];
    if (c.parts) c.parts = [...c.parts];
    if (c.blob) this.ref(c.blob);
    this.insert(c);
    if (n.isdir) for (const k of this.children(n.path)) this.copy(k, joinPath(dest, basenameOf(k.path)));
    this.touchParent(dest);
    this.markDirty();
    return c;
  }

  /**
   * A free name in `dir` for `name`, the way the service renames on conflict:
   * `name_YYYYMMDD_HHMMSS.ext` (spec 3.4.3 example), then `name_YYYYMMDD_HHMMSS(1).ext`, ...
   */
  freeName(dir: string, name: string): string {
    const d = new Date();
    const pad = (v: number): string => String(v).padStart(2, '0');
    const stamp = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}_${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
    const dot = name.lastIndexOf('.');
    const base = dot > 0 ? name.slice(0, dot) : name;
    const ext = dot > 0 ? name.slice(dot) : '';
    let candidate = `${base}_${stamp}${ext}`;
    for (let i = 1; this.byPath.has(joinPath(dir, candidate)); i++) candidate = `${base}_${stamp}(${i})${ext}`;
    return candidate;
  }
}
