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
   * The backend's own checksum (TeraBox: content md5 for one shard, md5 of the JSON array of shard
   * md5s for several). Stable for the same content: good for ETags, not a content checksum.
   */
  hash?: string;
  /** The content md5 when known for certain (e.g. computed while spooling). */
  contentMd5?: string;
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
 * A file spooled to local disk with its shard md5s computed in the same pass (vfs/spool).
 * The backend uploads from it; it must not modify or delete it.
 */
export interface SpooledFile {
  /** Local path of the spool file. */
  localPath: string;
  size: number;
  /** Shard size used to compute blockMd5s (4 MiB unless the file needs more than 1024 shards). */
  shardSize: number;
  /** md5 (hex) of each shard, in order; one entry ('d41d8cd98f00b204e9800998ecf8427e') for 0 bytes. */
  blockMd5s: string[];
  /** md5 (hex) of the whole content. */
  contentMd5: string;
}

/** Where a sharded upload session stands (write-back journals it to resume after a restart). */
export interface UploadProgress {
  /** The service's upload session id (TeraBox uploadid). */
  uploadId: string;
  /** Indexes of the shards the service has confirmed. */
  doneShards: number[];
}

export interface WriteOptions extends CallOptions {
  /** Replace an existing file (true) or fail with TBDAV_EXISTS (false). */
  overwrite: boolean;
  /** Modification time to record, ms, where the backend supports it. */
  mtime?: number;
  /**
   * Optional: continue an upload session begun earlier (write-back after a restart). A backend
   * that supports it reuses the session and skips the confirmed shards when the service still
   * accepts it, and starts anew otherwise; others ignore it.
   */
  resume?: UploadProgress;
  /** Optional: called when a session is opened and after each confirmed shard (backends may ignore). */
  onProgress?(progress: UploadProgress): void;
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

  /** Upload a spooled file to `path`; the parent folder must exist. */
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
