/**
 * The storage contract between the filesystem layer (vfs) and a storage backend (terabox, memory).
 *
 * Paths are absolute within the remote's own root: '/' is the root the WebDAV share maps to,
 * '/a/b.txt' a file in it. They are normalised (no trailing slash but for '/', no '.' or '..',
 * NFC Unicode). A backend maps them onto its storage (TeraboxRemote prefixes terabox.root).
 *
 * Errors: every method rejects with TbdavError (src/shared/errors.ts):
 *  - TBDAV_NOT_FOUND    the path (or, for list, the folder) does not exist
 *  - TBDAV_EXISTS       the target exists and overwrite was not asked
 *  - TBDAV_CONFLICT     a parent folder is missing, or the path names a file where a folder is needed
 *  - TBDAV_INVALID_NAME the backend refuses the name
 *  - TBDAV_QUOTA / TBDAV_TOO_LARGE / TBDAV_AUTH / TBDAV_RETRYABLE / TBDAV_ABORTED / TBDAV_FATAL
 */
import type { Readable } from 'node:stream';

export interface Entry {
  /** Absolute path within the remote root. */
  path: string;
  /** Last path segment ('' for the root). */
  name: string;
  isDir: boolean;
  /** Bytes; 0 for folders. */
  size: number;
  /** Modification time, ms since epoch. */
  mtime: number;
  /** Creation time, ms since epoch. */
  ctime: number;
  /**
   * The backend's own checksum of the content (TeraBox: the md5 it reports; MemoryRemote: the
   * content md5). The same content gives the same hash; it need not be a checksum anyone else
   * could compute.
   */
  hash?: string;
  /** Backend id (TeraBox fs_id), opaque. */
  id?: string;
}

/** What mkdir answers: the new folder's entry. */
export interface MkdirResult extends Entry {
  /** Creation was inferred, not seen: the folder may already hold entries. */
  maybeNotEmpty?: boolean;
}

/** Inclusive byte range; `end` omitted means to the end of the file. */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Request id carried from the WebDAV request into logs of every API call. */
  requestId?: string;
}

/**
 * A body spooled to local disk, with the md5 of the whole content and of each shard computed in
 * the pass that received it (src/vfs/spool.ts). The shards are cut at the size the backend asked
 * for (Remote.shardSizeFor; the whole body is one shard for a backend that does not ask). The
 * backend uploads from the file; it must not modify or delete it.
 */
export interface SpooledFile {
  /** Local path of the spool file. */
  localPath: string;
  size: number;
  /** Bytes per shard (the last shard may be shorter). */
  shardSize: number;
  /** md5 (hex) of each shard, in order; one entry (EMPTY_MD5) for 0 bytes. */
  blockMd5s: string[];
  /** md5 (hex) of the whole content. */
  contentMd5: string;
}

/**
 * A backend's own record of an upload in progress, opaque to everyone else. Write-back journals
 * the latest one it was given (WriteOptions.onResumeToken) and hands it back after a restart.
 */
export type ResumeToken = string;

export interface WriteOptions extends CallOptions {
  /** Replace an existing file (true) or fail with TBDAV_EXISTS (false). */
  overwrite: boolean;
  /** Modification time to record, ms, where the backend supports it. */
  mtime?: number;
  /**
   * Optional: a resume token this backend reported (onResumeToken) for an earlier attempt to
   * write the same content to the same path. A backend that can continues that upload, skipping
   * what the service already has; when the service no longer knows it (or the token is not one of
   * its own) it starts anew. Others ignore it.
   */
  resume?: ResumeToken;
  /** Optional: called with a new resume token whenever the upload progressed (backends may never call it). */
  onResumeToken?(token: ResumeToken): void;
  /**
   * Optional: the caller has just established that the parent folder exists, that no folder is at
   * the path and whether a file is (`overwrite` set accordingly), e.g. the vfs from its metadata
   * cache. A backend may then skip its own existence checks (TeraboxRemote: one filemetas call
   * less per PUT). Should that knowledge be stale, a file that appeared meanwhile is still refused
   * with EXISTS when overwrite is false; a parent removed meanwhile may be made again by the service.
   */
  checked?: boolean;
}

export interface WriteResult {
  entry: Entry;
  /** True when the backend already had the content and no bytes were sent (TeraBox rapid upload). */
  rapid: boolean;
}

export interface MoveOptions extends CallOptions {
  /** Replace an existing destination (true) or fail with TBDAV_EXISTS (false). */
  overwrite: boolean;
}

export interface Quota {
  total: number;
  used: number;
}

export interface Remote {
  /** Human name for logs, e.g. 'terabox' or 'memory'. */
  readonly name: string;

  /**
   * Optional: the shard size this backend uploads a body of `size` bytes in (a positive integer).
   * The spool hashes each shard of that size while receiving the body (SpooledFile.blockMd5s), so
   * that write() need not read the file a second time. A write() given another cut may hash again.
   */
  shardSizeFor?(size: number): number;

  /** Entries directly inside a folder (not recursive). */
  list(path: string, opts?: CallOptions): Promise<Entry[]>;

  /** One entry. */
  stat(path: string, opts?: CallOptions): Promise<Entry>;

  /**
   * Open a file for reading, optionally a byte range. The stream ends after exactly the bytes
   * asked (or the rest of the file). Destroying it stops the transfer upstream.
   * `entry` may be passed when the caller has it, to save a stat.
   */
  openRead(path: string, range?: ByteRange, opts?: CallOptions & { entry?: Entry }): Promise<Readable>;

  /** Upload a spooled file to `path`; the parent folder must exist. The answer's entry reports what the backend says of the file. */
  write(path: string, file: SpooledFile, opts: WriteOptions): Promise<WriteResult>;

  /**
   * Create a folder; the parent must exist; TBDAV_EXISTS if something is there. The answer's
   * `maybeNotEmpty` is true when creation was only inferred (e.g. the folder was found after a retry
   * whose first try may or may not have made it): then it may already hold entries, and callers must
   * not assume it is empty.
   */
  mkdir(path: string, opts?: CallOptions): Promise<MkdirResult>;

  /** Remove a file or a folder with everything in it. */
  remove(path: string, opts?: CallOptions): Promise<void>;

  /** Move or rename (folders with their content). Destination parent must exist. */
  move?(from: string, to: string, opts: MoveOptions): Promise<void>;

  /** Copy (folders with their content). Destination parent must exist. */
  copy?(from: string, to: string, opts: MoveOptions): Promise<void>;

  /** Space of the drive. */
  quota?(opts?: CallOptions): Promise<Quota>;
}
