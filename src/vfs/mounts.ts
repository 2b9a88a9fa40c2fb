/**
 * MountFs: one FileSystem (types.ts) made of the main tree (the Vfs over the drive) and read-only
 * mounts (TeraBox shares, each a ReadOnlyFs) shown as folders under one mount folder, e.g.
 * `/Shared with me/<share name>/...`. The WebDAV layer sees one tree; vfs.ts knows nothing of it.
 *
 *  - The mount folder appears (in its parent's listing and on stat) while at least one mount is
 *    configured; it shadows a drive folder of the same name. Folders above it that the drive lacks
 *    (shares.folder = /TeraBox/shares) appear too, empty but for the way down. A mount whose root answers NOT_FOUND
 *    (the share's link expired) is left out of the listing and answers 404.
 *  - Writes inside the mount folder (PUT, MKCOL, DELETE, PROPPATCH, MOVE from or into it, COPY
 *    into it) answer TBDAV_FORBIDDEN with a message saying why (WebDAV 403).
 *  - COPY from a mount into the main tree is a server-side copy (the mount's CopyOut capability:
 *    share/transfer): no byte passes through the bridge. It is answered once complete, or after
 *    `copyWaitMs` with `accepted: true` (WebDAV 202) and an entry in the TransferLog that follows
 *    it to the end. Either way the main tree forgets what it cached at the destination
 *    (`onMainChanged`).
 *  - Names of the main tree for which `hide` says true (staging folders of transfers under way)
 *    are left out of listings.
 *
 * Why a wrapper and not a special case in Vfs or a `copyFrom` on the drive's Remote: the mount is
 * a fact of the tree, not of the drive (the share is not in the drive), and the server-side copy
 * needs both trees' paths; keeping both here leaves Vfs and TeraboxRemote unchanged, and the
 * capability stays with the remote that has it (the share knows how to give its files away).
 *
 * Concurrency: no state of its own but the remembered NOT_FOUND mounts (`gone`, a Set touched
 * synchronously); the mounts list is asked from `mounts()` on each call.
 */
import { TbdavError, isTbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { silentLogger } from '../shared/logger.js';
import type { ByteRange, CallOptions, Quota } from '../remote/types.js';
import type { CopyOut, CopyOutHandle, Streaming } from '../remote/capabilities.js';
import { baseName, isInside, joinPath, normalizePath, parentPath } from './paths.js';
import type { TransferLog } from './transfers.js';
import type { CopyMoveResult, DeadProps, FileSystem, OpenReadResult, PutOptions, PutResult, VfsEntry } from './types.js';
import type { Readable } from 'node:stream';

export interface Mount {
  readonly name: string;
  readonly fs: FileSystem;
  /** Server-side copy of the mount's files into the main tree. */
  readonly copyOut?: CopyOut;
  /** Online playback of the mount's videos (StreamingFs). */
  readonly streaming?: Streaming;
}

export interface MountFsOptions {
  main: FileSystem;
  /** The mount folder, e.g. '/Shared with me' (not '/'). */
  folder: string;
  /** The mounts now (the caller keeps them in step with its configuration). */
  mounts(): Promise<Mount[]>;
  /** A server-side copy changed the main tree at `path`: forget what is cached there. */
  onMainChanged?(path: string): void;
  /** Main-tree names left out of listings (transfer staging folders). */
  hide?(name: string): boolean;
  transfers?: TransferLog;
  /** How long a COPY out of a mount waits for the copy before answering 202 (default 60 s). */
  copyWaitMs?: number;
  logger?: Logger;
  now?: () => number;
}

type Where = { kind: 'main'; path: string } | { kind: 'folder' } | { kind: 'mount'; mount: Mount; path: string } | { kind: 'missing'; path: string };

export const DEFAULT_COPY_WAIT_MS = 60_000;

export class MountFs implements FileSystem {
  readonly main: FileSystem;
  readonly folder: string;
  private readonly opts: MountFsOptions;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly startedAt: number;

  constructor(opts: MountFsOptions) {
    this.opts = opts;
    this.main = opts.main;
    this.folder = normalizePath(opts.folder);
    if (this.folder === '/') throw new TbdavError('TBDAV_CONFIG', 'mount folder: it cannot be the root');
    this.logger = opts.logger ?? silentLogger();
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
  }

  // ------------------------------------------------------------------ where a path lives

  private async where(path: string): Promise<Where> {
    const p = normalizePath(path);
    if (p !== this.folder && !isInside(p, this.folder)) return { kind: 'main', path: p };
    const mounts = await this.opts.mounts();
    if (mounts.length === 0) return { kind: 'main', path: p };
    if (p === this.folder) return { kind: 'folder' };
    const rest = p.slice(this.folder.length + 1);
    const slash = rest.indexOf('/');
    const name = slash < 0 ? rest : rest.slice(0, slash);
    const mount = mounts.find((m) => m.name === name);
    if (!mount) return { kind: 'missing', path: p };
    return { kind: 'mount', mount, path: slash < 0 ? '/' : rest.slice(slash) };
  }

  private mountPath(mount: Mount, inner: string): string {
    const top = joinPath(this.folder, mount.name);
    return inner === '/' ? top : top + inner;
  }

  private mapEntry(mount: Mount, e: VfsEntry): VfsEntry {
    const path = this.mountPath(mount, e.path);
    return { ...e, path, name: baseName(path) };
  }

  private folderEntry(): VfsEntry {
    return { path: this.folder, name: baseName(this.folder), isDir: true, size: 0, mtime: this.startedAt, ctime: this.startedAt };
  }

  private forbidden(op: string, path: string, why: string): TbdavError {
    return new TbdavError('TBDAV_FORBIDDEN', `${op} ${path}: ${why}`);
  }

  private readOnlyWhy(w: Where): string {
    if (w.kind === 'mount') return `${this.mountPath(w.mount, '/')} is a read-only TeraBox share; copy files out of it (COPY) into your drive instead`;
    return `${this.folder} holds the TeraBox shares you added (terabox-dav share add); it is read-only`;
  }

  private notFound(op: string, path: string): TbdavError {
    return new TbdavError('TBDAV_NOT_FOUND', `${op} ${path}: no such share`);
  }

  /** A folder on the way to the mount folder (e.g. /TeraBox for /TeraBox/shares) that the drive lacks. */
  private virtualAncestor(path: string): VfsEntry {
    return { path, name: baseName(path), isDir: true, size: 0, mtime: this.startedAt, ctime: this.startedAt };
  }

  /**
   * Main-tree listing with hidden names left out and, in the mount folder's parent and the folders
   * above it, the next folder on the way to the mount folder (virtual where the drive has none).
   */
  private async mainList(path: string, opts?: CallOptions): Promise<VfsEntry[]> {
    const onTheWay = isInside(this.folder, path) && (await this.opts.mounts()).length > 0;
    let entries: VfsEntry[];
    try {
      entries = await this.main.list(path, opts);
    } catch (err) {
      if (!onTheWay || !isTbdavError(err, 'TBDAV_NOT_FOUND')) throw err;
      entries = [];
    }
    if (this.opts.hide) entries = entries.filter((e) => !this.opts.hide!(e.name));
    if (onTheWay) {
      const next = joinPath(path, this.folder.slice(path === '/' ? 1 : path.length + 1).split('/')[0]!);
      const name = baseName(next);
      const real = entries.find((e) => e.name === name);
      if (next === this.folder || !real?.isDir) {
        entries = entries.filter((e) => e.name !== name);
        entries.push(next === this.folder ? this.folderEntry() : this.virtualAncestor(next));
        entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      }
    }
    return entries;
  }

  /** The mounts whose roots answer (a share whose link expired is left out). */
  private async liveMounts(opts?: CallOptions): Promise<VfsEntry[]> {
    const mounts = await this.opts.mounts();
    const out: VfsEntry[] = [];
    await Promise.all(
      mounts.map(async (m) => {
        try {
          out.push(this.mapEntry(m, await m.fs.stat('/', opts)));
        } catch (err) {
          if (isTbdavError(err, 'TBDAV_NOT_FOUND')) {
            this.logger.debug(`mounts: ${m.name} is gone (${err.message})`);
            return;
          }
          // shown (so the user finds it and gets the reason when opening it)
          this.logger.debug(`mounts: ${m.name} does not answer`, { error: String(err) });
          out.push({ path: joinPath(this.folder, m.name), name: m.name, isDir: true, size: 0, mtime: this.startedAt, ctime: this.startedAt });
        }
      }),
    );
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  // ------------------------------------------------------------------ reads

  async stat(path: string, opts?: CallOptions): Promise<VfsEntry> {
    const w = await this.where(path);
    if (w.kind === 'main') {
      const p = w.path;
      if (p !== '/' && this.opts.hide?.(baseName(p))) throw new TbdavError('TBDAV_NOT_FOUND', `stat ${p}: not found`);
      if (!isInside(this.folder, p)) return this.main.stat(p, opts);
      // a folder on the way to the mount folder: the drive's, else a virtual one while shares exist
      try {
        const e = await this.main.stat(p, opts);
        if (e.isDir || (await this.opts.mounts()).length === 0) return e;
      } catch (err) {
        if (!isTbdavError(err, 'TBDAV_NOT_FOUND') || (await this.opts.mounts()).length === 0) throw err;
      }
      return this.virtualAncestor(p);
    }
    if (w.kind === 'folder') return this.folderEntry();
    if (w.kind === 'missing') throw this.notFound('stat', w.path);
    return this.mapEntry(w.mount, await w.mount.fs.stat(w.path, opts));
  }

  async list(path: string, opts?: CallOptions): Promise<VfsEntry[]> {
    const w = await this.where(path);
    if (w.kind === 'main') return this.mainList(w.path, opts);
    if (w.kind === 'folder') return this.liveMounts(opts);
    if (w.kind === 'missing') throw this.notFound('list', w.path);
    const m = w.mount;
    return (await m.fs.list(w.path, opts)).map((e) => this.mapEntry(m, e));
  }

  async openRead(path: string, range?: ByteRange, opts?: CallOptions): Promise<OpenReadResult> {
    const w = await this.where(path);
    if (w.kind === 'main') return this.main.openRead(w.path, range, opts);
    if (w.kind === 'folder') throw new TbdavError('TBDAV_CONFLICT', `openRead ${this.folder}: is a folder`);
    if (w.kind === 'missing') throw this.notFound('openRead', w.path);
    const r = await w.mount.fs.openRead(w.path, range, opts);
    return { entry: this.mapEntry(w.mount, r.entry), stream: r.stream };
  }

  // ------------------------------------------------------------------ writes

  async put(path: string, body: Readable, opts: PutOptions): Promise<PutResult> {
    const w = await this.where(path);
    if (w.kind === 'main') return this.main.put(w.path, body, opts);
    body.resume(); // nobody reads it: let the request end
    throw this.forbidden('PUT', normalizePath(path), this.readOnlyWhy(w));
  }

  async mkdir(path: string, opts?: CallOptions): Promise<VfsEntry> {
    const w = await this.where(path);
    if (w.kind === 'main') return this.main.mkdir(w.path, opts);
    throw this.forbidden('MKCOL', normalizePath(path), this.readOnlyWhy(w));
  }

  async remove(path: string, opts?: CallOptions): Promise<void> {
    const w = await this.where(path);
    if (w.kind === 'main') return this.main.remove(w.path, opts);
    if (w.kind === 'mount' && w.path === '/') {
      throw this.forbidden('DELETE', normalizePath(path), `shares are removed with \`terabox-dav share remove ${w.mount.name}\`, not over WebDAV`);
    }
    throw this.forbidden('DELETE', normalizePath(path), this.readOnlyWhy(w));
  }

  async patchProps(path: string, patch: Record<string, string | null>): Promise<void> {
    const w = await this.where(path);
    if (w.kind === 'main') return this.main.patchProps(w.path, patch);
    throw this.forbidden('PROPPATCH', normalizePath(path), this.readOnlyWhy(w));
  }

  async move(from: string, to: string, opts: { overwrite: boolean; mtime?: number } & CallOptions): Promise<CopyMoveResult> {
    const [a, b] = await Promise.all([this.where(from), this.where(to)]);
    if (a.kind === 'main' && b.kind === 'main') return this.main.move(a.path, b.path, opts);
    if (a.kind !== 'main') throw this.forbidden('MOVE', normalizePath(from), `${this.readOnlyWhy(a)} (MOVE would delete from the share: use COPY)`);
    throw this.forbidden('MOVE', normalizePath(to), this.readOnlyWhy(b));
  }

  async copy(from: string, to: string, opts: { overwrite: boolean; depth: 0 | 'infinity'; mtime?: number } & CallOptions): Promise<CopyMoveResult> {
    const [a, b] = await Promise.all([this.where(from), this.where(to)]);
    if (b.kind !== 'main') throw this.forbidden('COPY', normalizePath(to), this.readOnlyWhy(b));
    if (a.kind === 'main') return this.main.copy(a.path, b.path, opts);
    if (a.kind === 'missing') throw this.notFound('COPY', a.path);
    if (a.kind === 'folder') throw this.forbidden('COPY', this.folder, 'copy one share (or a file or folder in it), not the folder of all shares');
    return this.copyOut(a.mount, a.path, b.path, opts);
  }

  /** COPY out of a mount: a server-side copy into the main tree, followed up to copyWaitMs. */
  private async copyOut(mount: Mount, inner: string, to: string, opts: { overwrite: boolean; depth: 0 | 'infinity' } & CallOptions): Promise<CopyMoveResult> {
    const from = this.mountPath(mount, inner);
    const src = await mount.fs.stat(inner, opts);
    const parent = parentPath(to);
    const pe = await this.main.stat(parent, opts).catch((err: unknown) => {
      if (isTbdavError(err, 'TBDAV_NOT_FOUND')) return undefined;
      throw err;
    });
    if (!pe || !pe.isDir) throw new TbdavError('TBDAV_CONFLICT', `COPY ${from} -> ${to}: parent folder ${parent} missing`);
    const existing = await this.main.stat(to, opts).catch((err: unknown) => {
      if (isTbdavError(err, 'TBDAV_NOT_FOUND')) return undefined;
      throw err;
    });
    if (existing && !opts.overwrite) throw new TbdavError('TBDAV_PRECONDITION', `COPY ${from} -> ${to}: destination exists`);
    const created = existing === undefined;
    // A drive entry is replaced by the service once the copy is complete (kept if it fails); a
    // local or pending one (placeholder, write-back upload) is removed first, through the Vfs.
    let replace = false;
    if (existing) {
      if (existing.local || existing.pending || inner === '/' || (src.isDir && opts.depth === 0)) await this.main.remove(to, opts);
      else replace = true;
    }
    if (src.isDir && opts.depth === 0) {
      await this.main.mkdir(to, opts);
      return { created };
    }
    const copier = mount.copyOut;
    if (!copier) throw this.forbidden('COPY', from, `${mount.name} cannot be copied out of`);
    const call: CallOptions = { requestId: opts.requestId };
    let handle: CopyOutHandle;
    if (inner === '/') {
      // a whole share: a folder of its name holding each shared item
      await this.main.mkdir(to, opts);
      const items = await mount.fs.list('/', opts);
      const handles: CopyOutHandle[] = [];
      for (const it of items) handles.push(await copier.copyOut(it.path, joinPath(to, it.name), call));
      handle = { done: Promise.all(handles.map((h) => h.done)).then(() => undefined) };
    } else {
      handle = await copier.copyOut(inner, to, { ...call, overwrite: replace });
    }
    this.opts.onMainChanged?.(to);
    const waitMs = this.opts.copyWaitMs ?? DEFAULT_COPY_WAIT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), waitMs);
    });
    try {
      const first = await Promise.race([handle.done.then(() => 'done' as const), timedOut]);
      if (first === 'done') {
        this.opts.onMainChanged?.(to);
        return { created };
      }
    } finally {
      clearTimeout(timer);
    }
    const ticket = this.opts.transfers?.start(from, to);
    this.logger.info(`COPY ${from} -> ${to}: still running after ${waitMs} ms; answered 202, followed in the background${ticket ? ` (${ticket.id})` : ''}`, {
      requestId: opts.requestId,
    });
    handle.done.then(
      () => {
        this.opts.onMainChanged?.(to);
        ticket?.finish();
        this.logger.info(`COPY ${from} -> ${to}: complete${ticket ? ` (${ticket.id})` : ''}`);
      },
      (err: unknown) => {
        this.opts.onMainChanged?.(to);
        ticket?.finish(err);
        this.logger.warn(`COPY ${from} -> ${to}: failed in the background${ticket ? ` (${ticket.id})` : ''}`, { error: String(err) });
      },
    );
    return { created, accepted: true };
  }

  // ------------------------------------------------------------------ the rest

  async quota(opts?: CallOptions): Promise<Quota> {
    return this.main.quota(opts);
  }

  async getProps(path: string): Promise<DeadProps> {
    const w = await this.where(path);
    if (w.kind === 'main') return this.main.getProps(w.path);
    if (w.kind === 'mount') return w.mount.fs.getProps(w.path);
    return {};
  }

  /** Where a tree path lives, for layers that add to the tree (streaming): the main tree or a mount. */
  async resolve(path: string): Promise<{ kind: 'main'; path: string } | { kind: 'mount'; mount: Mount; path: string } | undefined> {
    const w = await this.where(path);
    return w.kind === 'main' || w.kind === 'mount' ? w : undefined;
  }

  async close(): Promise<void> {
    await this.main.close();
  }
}
