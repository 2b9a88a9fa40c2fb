/**
 * Per-user views of the share (server.users[].root and .readOnly, issue 11).
 *
 * `root`: a folder of the share that the user sees as `/`. The user's paths are prefixed on the way
 * in and the entries' paths stripped on the way out; the folder is created on first use when
 * missing. Locks stay in one table in the share's namespace (LockTable.scoped), so that two users
 * whose folders overlap see each other's locks.
 *
 * `readOnly`: every write answers 403 (the bridge refuses write methods before reading a body;
 * this wrapper refuses again so that no handler can write by mistake).
 *
 * Shared state: `ensured` (per view, the creation of its root folder in flight or done) — event
 * loop only.
 */
import type { Readable } from 'node:stream';
import { TbdavError, isTbdavError } from '../shared/errors.js';
import type { ByteRange, CallOptions, Quota } from '../remote/types.js';
import type { CopyMoveResult, DeadProps, FileSystem, OpenReadResult, PutOptions, PutResult, VfsEntry } from '../vfs/types.js';

/** Path mapping between a user's view and the share. */
export class PathScope {
  /** `root`: normalised share path of the user's folder ('/' for the whole share). */
  constructor(readonly root: string) {}

  get isWhole(): boolean {
    return this.root === '/';
  }

  /** User path -> share path. */
  toShare(p: string): string {
    if (this.isWhole) return p;
    return p === '/' ? this.root : this.root + p;
  }

  /** Share path -> user path; undefined when outside the user's folder. */
  toUser(p: string): string | undefined {
    if (this.isWhole) return p;
    if (p === this.root) return '/';
    return p.startsWith(this.root + '/') ? p.slice(this.root.length) : undefined;
  }
}

/** Methods that change something (answered 403 for read-only users). */
export const WRITE_METHODS: ReadonlySet<string> = new Set(['PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE', 'PROPPATCH', 'LOCK', 'UNLOCK']);

export function readOnlyError(what: string): TbdavError {
  return new TbdavError('TBDAV_FORBIDDEN', `${what}: this user may only read`);
}

/** A FileSystem as one user sees it. `scopeFileSystem(fs, '/', false)` is `fs` itself. */
export function scopeFileSystem(fs: FileSystem, scope: PathScope, readOnly: boolean): FileSystem {
  if (scope.isWhole && !readOnly) return fs;
  return new ScopedFileSystem(fs, scope, readOnly);
}

class ScopedFileSystem implements FileSystem {
  private ensured: Promise<void> | undefined;

  constructor(
    private readonly fs: FileSystem,
    private readonly scope: PathScope,
    private readonly readOnly: boolean,
  ) {}

  private out<T extends VfsEntry>(e: T): T {
    return { ...e, path: this.scope.toUser(e.path) ?? '/', name: e.path === this.scope.root ? '' : e.name };
  }

  /** Create the user's folder (and missing parents) once; a failure is retried on the next call. */
  private ensureRoot(opts?: CallOptions): Promise<void> {
    if (this.scope.isWhole) return Promise.resolve();
    this.ensured ??= (async () => {
      try {
        const e = await this.fs.stat(this.scope.root, opts);
        if (!e.isDir) throw new TbdavError('TBDAV_CONFLICT', `user folder ${this.scope.root} is a file`);
        return;
      } catch (err) {
        if (!isTbdavError(err, 'TBDAV_NOT_FOUND')) throw err;
      }
      let p = '';
      for (const seg of this.scope.root.split('/').filter(Boolean)) {
        p += '/' + seg;
        try {
          await this.fs.mkdir(p, opts);
        } catch (err) {
          if (!isTbdavError(err, 'TBDAV_EXISTS')) throw err;
        }
      }
    })().catch((err: unknown) => {
      this.ensured = undefined;
      throw err;
    });
    return this.ensured;
  }

  private write(what: string): void {
    if (this.readOnly) throw readOnlyError(what);
  }

  async stat(path: string, opts?: CallOptions): Promise<VfsEntry> {
    await this.ensureRoot(opts);
    return this.out(await this.fs.stat(this.scope.toShare(path), opts));
  }

  async list(path: string, opts?: CallOptions): Promise<VfsEntry[]> {
    await this.ensureRoot(opts);
    return (await this.fs.list(this.scope.toShare(path), opts)).map((e) => this.out(e));
  }

  async openRead(path: string, range?: ByteRange, opts?: CallOptions): Promise<OpenReadResult> {
    await this.ensureRoot(opts);
    const r = await this.fs.openRead(this.scope.toShare(path), range, opts);
    return { ...r, entry: this.out(r.entry) };
  }

  async put(path: string, body: Readable, opts: PutOptions): Promise<PutResult> {
    this.write(`PUT ${path}`);
    await this.ensureRoot(opts);
    const r = await this.fs.put(this.scope.toShare(path), body, opts);
    return { ...r, entry: this.out(r.entry) };
  }

  async mkdir(path: string, opts?: CallOptions): Promise<VfsEntry> {
    this.write(`MKCOL ${path}`);
    await this.ensureRoot(opts);
    return this.out(await this.fs.mkdir(this.scope.toShare(path), opts));
  }

  async remove(path: string, opts?: CallOptions): Promise<void> {
    this.write(`DELETE ${path}`);
    await this.ensureRoot(opts);
    await this.fs.remove(this.scope.toShare(path), opts);
  }

  async move(from: string, to: string, opts: { overwrite: boolean; mtime?: number } & CallOptions): Promise<CopyMoveResult> {
    this.write(`MOVE ${from}`);
    await this.ensureRoot(opts);
    return this.fs.move(this.scope.toShare(from), this.scope.toShare(to), opts);
  }

  async copy(from: string, to: string, opts: { overwrite: boolean; depth: 0 | 'infinity'; mtime?: number } & CallOptions): Promise<CopyMoveResult> {
    this.write(`COPY ${from}`);
    await this.ensureRoot(opts);
    return this.fs.copy(this.scope.toShare(from), this.scope.toShare(to), opts);
  }

  quota(opts?: CallOptions): Promise<Quota> {
    return this.fs.quota(opts);
  }

  async getProps(path: string): Promise<DeadProps> {
    return this.fs.getProps(this.scope.toShare(path));
  }

  async patchProps(path: string, patch: Record<string, string | null>): Promise<void> {
    this.write(`PROPPATCH ${path}`);
    await this.fs.patchProps(this.scope.toShare(path), patch);
  }

  /** The share's FileSystem is closed by its owner, not through a view. */
  async close(): Promise<void> {}
}
