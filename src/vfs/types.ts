/**
 * The filesystem the WebDAV layer (src/dav) talks to. Implemented by Vfs (src/vfs/vfs.ts) over any
 * Remote. All paths are WebDAV-share paths: absolute, normalised, '/' = the share root.
 * Errors are TbdavError (src/shared/errors.ts); src/dav maps their codes to HTTP statuses.
 */
import type { Readable } from 'node:stream';
import type { ByteRange, CallOptions, Entry, Quota } from '../remote/types.js';

export interface VfsEntry extends Entry {
  /**
   * The md5 of the content when the vfs knows it: pending and local files, files it uploaded
   * (remembered by their service hash). The ETag is this when known, else the backend's hash.
   */
  contentMd5?: string;
  /** Listed from local state only: a 0-byte placeholder or an ignored file (._*, .DS_Store...). */
  local?: boolean;
  /** A write-back upload is pending for this file (issue 5). */
  pending?: boolean;
}

export interface OpenReadResult {
  entry: VfsEntry;
  /** Exactly the bytes of the range asked (or the whole file). Destroy it to stop the upstream read. */
  stream: Readable;
}

export interface PutOptions extends CallOptions {
  /** Whether an existing file may be replaced (false: TBDAV_EXISTS when one is there). */
  overwrite: boolean;
  /** The size announced by the client (Content-Length or X-Expected-Entity-Length), if any. */
  expectedSize?: number;
  /** Modification time to keep (X-OC-Mtime), ms. */
  mtime?: number;
}

export interface PutResult {
  entry: VfsEntry;
  /** True when nothing was at the path before (WebDAV 201), false when replaced (204). */
  created: boolean;
}

export interface CopyMoveResult {
  /** True when the destination did not exist before (WebDAV 201), false when replaced (204). */
  created: boolean;
  /** The copy goes on in the background (a server-side copy out of a share): WebDAV 202. */
  accepted?: boolean;
}

/** Dead properties of one resource: key is `{namespace}localName`, value the raw inner XML. */
export type DeadProps = Record<string, string>;

export interface FileSystem {
  /** One entry (cache first). TBDAV_NOT_FOUND when absent. */
  stat(path: string, opts?: CallOptions): Promise<VfsEntry>;
  /** Entries directly inside a folder (cache first); TBDAV_NOT_FOUND / TBDAV_CONFLICT (a file). */
  list(path: string, opts?: CallOptions): Promise<VfsEntry[]>;
  /** Read a file or a range of it; TBDAV_RANGE when the range cannot be satisfied. */
  openRead(path: string, range?: ByteRange, opts?: CallOptions): Promise<OpenReadResult>;
  /** Store a body: spooled to disk while hashing, uploaded, and answered once the cloud has it. */
  put(path: string, body: Readable, opts: PutOptions): Promise<PutResult>;
  /** Create a folder: TBDAV_CONFLICT without parent, TBDAV_EXISTS if something is there. */
  mkdir(path: string, opts?: CallOptions): Promise<VfsEntry>;
  /** Delete a file or folder (recursively) with its dead properties. */
  remove(path: string, opts?: CallOptions): Promise<void>;
  /** Move/rename; dead properties follow. `mtime` (X-OC-Mtime, ms) is recorded for the destination. */
  move(from: string, to: string, opts: { overwrite: boolean; mtime?: number } & CallOptions): Promise<CopyMoveResult>;
  /** Copy; depth 0 copies a folder without its members. Dead properties follow. `mtime` as for move. */
  copy(from: string, to: string, opts: { overwrite: boolean; depth: 0 | 'infinity'; mtime?: number } & CallOptions): Promise<CopyMoveResult>;
  /** Space of the drive (cached briefly). */
  quota(opts?: CallOptions): Promise<Quota>;
  /** Dead properties (persisted in the local state store under the state dir). */
  getProps(path: string): Promise<DeadProps>;
  /** Set (value string) or remove (value null) dead properties, all or nothing. */
  patchProps(path: string, patch: Record<string, string | null>): Promise<void>;
  /** Flush state and stop background work. */
  close(): Promise<void>;
}
