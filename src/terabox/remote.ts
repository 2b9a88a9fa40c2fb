/**
 * TeraboxRemote: the Remote contract (src/remote/types.ts) over TeraboxClient.
 *
 * Paths: a share path '/a/b' maps onto `root + '/a/b'` on the drive ('/' is the root itself).
 * Errors follow the contract (and MemoryRemote, the reference): NOT_FOUND, EXISTS, CONFLICT
 * (parent missing or wrong kind), BAD_REQUEST (root removal, onto itself), RANGE, INTEGRITY.
 *
 * Shared state (concurrency):
 *  - `reader`: the download reader (download.ts: dlink cache, open-at-offset, resume), see its header.
 *  - `uploads`: a p-queue bounding concurrent shard uploads over all writes (uploadConcurrency).
 */
import { Readable } from 'node:stream';
import PQueue from 'p-queue';
import type { ByteRange, CallOptions, Entry, MkdirResult, MoveOptions, Quota, Remote, SpooledFile, WriteOptions, WriteResult } from '../remote/types.js';
import { EMPTY_MD5 } from '../remote/hash.js';
import { baseName, isInside, parentPath } from '../remote/paths.js';
import { TbdavError, abortError, isTbdavError, type ErrorCode } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { silentLogger } from '../shared/logger.js';
import { ERRNO, type CreateResponse, type FileInfo, type FileMeta, type PrecreateResponse } from './api/types.js';
import type { TeraboxClient } from './client.js';
import { DownloadReader, type DownloadReaderOptions } from './download.js';
import { drivePath, drivePathProblem, normaliseRoot, rootWarning } from './drive-path.js';
import { TeraboxApiError, isTeraboxApiError, relabelError } from './errors.js';
import { isHexMd5 } from './md5.js';
import { MetaLookup } from './metas.js';
import { decodeResumeToken, encodeResumeToken, serviceMd5, shardSizeFor, type UploadSession } from './shards.js';

/** The download reader's options (dlink TTL, resume policy) plus the remote's own. */
export interface TeraboxRemoteOptions extends DownloadReaderOptions {
  /** Drive folder the share maps to, e.g. '/From: Other Applications/terabox-dav'. */
  root: string;
  /** Shards uploaded at once, over all writes (default 4). */
  uploadConcurrency?: number;
}

/** Fresh upload sessions a write may open after its first fresh one when the service forgets them. */
export const SESSION_RESTARTS = 2;

/**
 * Refusals of superfile2/create that are NOT about the upload session (issue 9): auth (the client
 * refreshed already), rate limits and transient faults (retried by the pacer/http), quota, names,
 * conflicts, sizes, our own checks. Every other refusal of an upload id we hold (31190, 31363,
 * 31355, 31023, errno 2, an HTTP 4xx without errno, ...) means "this session is gone".
 */
const NOT_ABOUT_THE_SESSION: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'TBDAV_AUTH',
  'TBDAV_NOT_LOGGED_IN',
  'TBDAV_RETRYABLE',
  'TBDAV_QUOTA',
  'TBDAV_INVALID_NAME',
  'TBDAV_EXISTS',
  'TBDAV_TOO_LARGE',
  'TBDAV_ABORTED',
  'TBDAV_INTEGRITY',
  'TBDAV_BAD_REQUEST',
]);
const SHARD_SIZE_ERRNOS: ReadonlySet<number> = new Set<number>([ERRNO.SHARD_SIZE, ERRNO.SHARD_SIZE_31364]);

/** A refusal by superfile2 or create that means the upload session is gone: open a fresh one. */
export function isSessionGone(err: unknown): err is TeraboxApiError {
  return (
    isTeraboxApiError(err) &&
    (err.endpoint === 'superfile2' || err.endpoint === 'create') &&
    !NOT_ABOUT_THE_SESSION.has(err.code) &&
    !(err.errno !== undefined && SHARD_SIZE_ERRNOS.has(err.errno))
  );
}

/** Two drive paths name the same place (the service may answer another Unicode normalisation). */
function samePath(a: string, b: string): boolean {
  return a.normalize('NFC') === b.normalize('NFC');
}

/** The fields of a listed item (drive list/filemetas, share list) that make an Entry. */
export interface ListedItem {
  isdir: number | string;
  size: number | string;
  server_mtime: number | string;
  server_ctime: number | string;
  md5?: string;
  fs_id: number | string;
}

/** The Entry at `path` of an item the service listed (the drive's and the shares' listings alike). */
export function entryOfItem(path: string, info: ListedItem): Entry {
  const isDir = Number(info.isdir) === 1;
  const e: Entry = {
    path,
    name: baseName(path),
    isDir,
    size: isDir ? 0 : Number(info.size) || 0,
    mtime: (Number(info.server_mtime) || 0) * 1000,
    ctime: (Number(info.server_ctime) || 0) * 1000,
    id: String(info.fs_id),
  };
  if (!isDir && typeof info.md5 === 'string' && info.md5) e.hash = info.md5;
  return e;
}

/** Which md5 the service reports for a multi-shard file (see TeraboxRemote.fileMd5Rule). */
export type FileMd5Rule = 'blocklist' | 'content';

export class TeraboxRemote implements Remote {
  readonly name = 'terabox';
  private readonly root: string;
  private readonly logger: Logger;
  private readonly uploads: PQueue;
  private readonly reader: DownloadReader;
  /** Batched filemetas lookups (issue 10): lookups within a few ms share one call. */
  private readonly metas: MetaLookup;
  private md5Rule: FileMd5Rule | undefined;
  private md5RuleMixed = false;
  private unknownMd5Warned = false;

  constructor(
    private readonly client: TeraboxClient,
    opts: TeraboxRemoteOptions,
  ) {
    this.root = normaliseRoot(opts.root);
    this.logger = opts.logger ?? client.logger ?? silentLogger();
    const warning = rootWarning(this.root);
    if (warning) this.logger.warn(warning);
    this.uploads = new PQueue({ concurrency: opts.uploadConcurrency ?? 4 });
    this.reader = new DownloadReader(client, { ...opts, logger: this.logger });
    this.metas = new MetaLookup(client);
  }

  /** The Remote contract's cut of a body: TeraBox's shard rule (src/terabox/shards.ts). */
  shardSizeFor(size: number): number {
    return shardSizeFor(size);
  }

  // ---------------------------------------------------------------- mapping

  /** The drive path of a share path (the one join: drive-path.ts; never `//`, never malformed). */
  private full(path: string): string {
    return drivePath(this.root, path);
  }

  private entryOf(path: string, info: ListedItem): Entry {
    return entryOfItem(path, info);
  }

  // ---------------------------------------------------------------- reads

  async list(path: string, opts: CallOptions = {}): Promise<Entry[]> {
    let items: FileInfo[];
    try {
      items = await this.client.listAll(this.full(path), opts);
    } catch (err) {
      if (isTeraboxApiError(err) && err.code === 'TBDAV_NOT_FOUND') {
        if (path === '/') throw new TbdavError('TBDAV_NOT_FOUND', `list /: the drive folder ${this.root} does not exist`, { cause: err });
        const e = await this.lookup(path, opts);
        if (e && !e.isDir) throw new TbdavError('TBDAV_CONFLICT', `list ${path}: not a folder`);
        throw new TbdavError('TBDAV_NOT_FOUND', `list ${path}: no such folder`, { cause: err });
      }
      throw relabelError('list', path, err);
    }
    if (items.length === 0 && path !== '/') {
      // an empty answer is also what some services give for a file or a missing folder
      const e = await this.lookup(path, opts);
      if (!e) throw new TbdavError('TBDAV_NOT_FOUND', `list ${path}: no such folder`);
      if (!e.isDir) throw new TbdavError('TBDAV_CONFLICT', `list ${path}: not a folder`);
    }
    const base = path === '/' ? '' : path;
    const entries = items
      .map((i) => this.entryOf(`${base}/${i.server_filename}`, i))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    // files read one after the other from a listed folder get their dlinks in one call
    this.reader.links.neighbours.setFolder(path, entries.flatMap((e) => (!e.isDir && e.id ? [{ name: e.name, id: e.id }] : [])));
    return entries;
  }

  /** The entry at `path`, or undefined. */
  private async lookup(path: string, opts: CallOptions): Promise<Entry | undefined> {
    return (await this.lookupMany([path], opts))[0];
  }

  /**
   * Entries at several paths (undefined where nothing is), through the batched lookup (metas.ts):
   * these paths, and any others asked within a few milliseconds, share one filemetas call.
   */
  private async lookupMany(paths: string[], opts: CallOptions): Promise<(Entry | undefined)[]> {
    return Promise.all(
      paths.map(async (p) => {
        try {
          const m = await this.metas.get(this.full(p), opts);
          const e = m ? this.entryOf(p, m) : undefined;
          if (e && !e.isDir && e.id) this.reader.links.neighbours.add(p, e.id);
          return e;
        } catch (err) {
          throw relabelError('stat', p, err);
        }
      }),
    );
  }

  async stat(path: string, opts: CallOptions = {}): Promise<Entry> {
    const e = await this.lookup(path, opts);
    if (e) return e;
    throw new TbdavError('TBDAV_NOT_FOUND', `stat ${path}: not found`);
  }

  async openRead(path: string, range?: ByteRange, opts: CallOptions & { entry?: Entry } = {}): Promise<Readable> {
    if (!opts.entry) return this.openEntry(path, await this.stat(path, opts), range, opts);
    try {
      return await this.openEntry(path, opts.entry, range, opts);
    } catch (err) {
      // the caller's entry may be stale (the file was replaced: new fs_id): look again once
      if (!isTbdavError(err, 'TBDAV_NOT_FOUND')) throw err;
      this.logger.debug(`openRead ${path}: file id ${opts.entry.id ?? '-'} gone, stat again`, { requestId: opts.requestId });
      const rest: CallOptions = { signal: opts.signal, requestId: opts.requestId };
      return this.openEntry(path, await this.stat(path, rest), range, rest);
    }
  }

  private async openEntry(path: string, entry: Entry, range: ByteRange | undefined, opts: CallOptions): Promise<Readable> {
    if (entry.isDir) throw new TbdavError('TBDAV_CONFLICT', `openRead ${path}: is a folder`);
    return this.reader.open(path, entry, range, opts);
  }

  // ---------------------------------------------------------------- writes

  /**
   * The rule the service follows for the md5 of a multi-shard file, once learned from a create or a
   * rapid upload: md5 of the JSON of the block list, or the content md5 (issue 9; the spec's
   * share/transfer example follows the block-list rule). Undefined until a multi-shard file showed it.
   */
  get fileMd5Rule(): FileMd5Rule | undefined {
    return this.md5Rule;
  }

  /** Parent must be a folder (the service would make it: the contract says it must exist). */
  private checkParent(op: string, path: string, parent: Entry | undefined): void {
    if (parentPath(path) === '/') return;
    if (!parent || !parent.isDir) throw new TbdavError('TBDAV_CONFLICT', `${op} ${path}: parent folder missing`);
  }

  /** The entry at `path` and at its parent, in one call. */
  private async withParent(path: string, opts: CallOptions): Promise<{ entry: Entry | undefined; parent: Entry | undefined }> {
    const parent = parentPath(path);
    if (parent === '/') return { entry: await this.lookup(path, opts), parent: undefined };
    const [entry, p] = await this.lookupMany([path, parent], opts);
    return { entry, parent: p };
  }

  async write(path: string, file: SpooledFile, opts: WriteOptions): Promise<WriteResult> {
    if (path === '/') throw new TbdavError('TBDAV_CONFLICT', 'write /: is a folder');
    if (opts.signal?.aborted) throw abortError(`write ${path}`, opts.signal);
    if (!opts.checked) {
      // the caller did not just look (checked: it did, e.g. the vfs from its cache): one filemetas
      const { entry: existing, parent } = await this.withParent(path, opts);
      this.checkParent('write', path, parent);
      if (existing?.isDir) throw new TbdavError('TBDAV_CONFLICT', `write ${path}: a folder is there`);
      if (existing && !opts.overwrite) throw new TbdavError('TBDAV_EXISTS', `write ${path}: exists`);
    }
    const blockMd5s = file.blockMd5s.length > 0 ? file.blockMd5s : [EMPTY_MD5];
    try {
      const done = await this.upload(path, file, blockMd5s, opts);
      if (done.entry.id) this.reader.links.neighbours.add(path, done.entry.id); // its dlink may come with its neighbours'
      return done;
    } catch (err) {
      if (opts.signal?.aborted) throw abortError(`write ${path}`, opts.signal);
      throw relabelError('write', path, err);
    }
  }

  /**
   * Upload through a session: the journalled one first (opts.resume), then fresh ones from
   * precreate. A session the service refuses (isSessionGone: any refusal of superfile2/create that
   * is not about auth, rate, quota, name, conflict or size) is replaced by a fresh one, at most
   * SESSION_RESTARTS times after the first fresh session; then TBDAV_RETRYABLE (a write-back
   * upload is tried again later, a PUT answers 503).
   */
  private async upload(path: string, file: SpooledFile, blockMd5s: string[], opts: WriteOptions): Promise<WriteResult> {
    const target = this.full(path);
    let gone: TeraboxApiError | undefined;
    const resume = this.usableResume(path, opts, blockMd5s.length);
    if (resume) {
      // continue the journalled session: only the shards not confirmed yet, then create
      const wanted = blockMd5s.map((_, i) => i).filter((i) => !resume.doneShards.includes(i));
      this.logger.info(`write ${path}: resuming upload session (${resume.doneShards.length} of ${blockMd5s.length} shards done)`, { requestId: opts.requestId });
      try {
        return await this.session(path, target, resume.uploadId, wanted, resume.doneShards, file, blockMd5s, opts);
      } catch (err) {
        if (opts.signal?.aborted || !isSessionGone(err)) throw err;
        gone = err;
        this.logger.info(`write ${path}: the service refused the resumed session (${err.endpoint} errno ${err.errno ?? '-'}), starting a fresh upload`, {
          requestId: opts.requestId,
        });
      }
    }
    for (let fresh = 1; fresh <= 1 + SESSION_RESTARTS; fresh++) {
      const pre: PrecreateResponse = await this.client.precreate(target, blockMd5s, file.size, { ...opts, rtype: opts.overwrite ? 3 : 0 });
      if (pre.return_type === 2) return this.finishRapid(path, file, blockMd5s, pre, opts);
      const uploadid = pre.uploadid;
      if (!uploadid) throw new TbdavError('TBDAV_FATAL', `write ${path}: precreate gave no upload id`);
      const wanted = pre.block_list && pre.block_list.length > 0 ? pre.block_list : [0];
      const done = blockMd5s.map((_, i) => i).filter((i) => !wanted.includes(i));
      this.progress(path, opts, uploadid, done);
      try {
        return await this.session(path, target, uploadid, wanted, done, file, blockMd5s, opts);
      } catch (err) {
        if (opts.signal?.aborted || !isSessionGone(err)) throw err;
        gone = err;
        this.logger.info(`write ${path}: the service forgot upload session ${fresh} (${err.endpoint} errno ${err.errno ?? '-'}), starting a fresh one`, {
          requestId: opts.requestId,
        });
      }
    }
    throw new TbdavError(
      'TBDAV_RETRYABLE',
      `write ${path}: the service refused ${1 + SESSION_RESTARTS} fresh upload sessions in a row (last: ${gone?.message ?? '-'}); try again later`,
      { cause: gone },
    );
  }

  /** The session in opts.resume when it can apply to this file (an upload id, shard numbers within the file). */
  private usableResume(path: string, opts: WriteOptions, shards: number): UploadSession | undefined {
    const r = opts.resume;
    if (r === undefined) return undefined;
    const s = typeof r === 'string' ? decodeResumeToken(r, shards) : undefined;
    if (!s) this.logger.debug(`write ${path}: resume information unusable, starting a fresh upload`, { requestId: opts.requestId });
    return s;
  }

  /** Tell the caller the session and its confirmed shards (a throwing callback does not stop the upload). */
  private progress(path: string, opts: WriteOptions, uploadId: string, done: Iterable<number>): void {
    if (!opts.onResumeToken) return;
    try {
      opts.onResumeToken(encodeResumeToken({ uploadId, doneShards: [...done] }));
    } catch (err) {
      this.logger.debug(`write ${path}: onResumeToken failed`, { requestId: opts.requestId, error: String(err) });
    }
  }

  /** Send the `wanted` shards of an open session, then create the file from it. */
  private async session(
    path: string,
    target: string,
    uploadid: string,
    wanted: number[],
    alreadyDone: number[],
    file: SpooledFile,
    blockMd5s: string[],
    opts: WriteOptions,
  ): Promise<WriteResult> {
    const done = new Set(alreadyDone);
    const onShard = (i: number): void => {
      done.add(i);
      this.progress(path, opts, uploadid, done);
    };
    let created: CreateResponse;
    let shardsVerified: boolean;
    try {
      shardsVerified = await this.uploadShards(path, target, uploadid, wanted, file, blockMd5s, opts, onShard);
      created = await this.client.create(target, file.size, uploadid, blockMd5s, opts.overwrite ? 3 : 0, opts);
    } catch (err) {
      if (isTeraboxApiError(err) && err.errno === ERRNO.FILE_EXISTS) {
        throw new TbdavError('TBDAV_EXISTS', `write ${path}: exists`, { cause: err });
      }
      throw err;
    }
    const made = typeof created.path === 'string' && created.path !== '' ? created.path : target;
    const hash = await this.checkMade(path, file, blockMd5s, made, created.size, created.md5, created.fs_id, shardsVerified, opts);
    await this.putInPlace(path, made, created.fs_id, opts);
    const entry = this.entryOf(path, {
      isdir: 0,
      size: file.size,
      server_mtime: created.mtime,
      server_ctime: created.ctime,
      md5: hash ?? serviceMd5(blockMd5s),
      fs_id: created.fs_id,
    });
    return { entry, rapid: false };
  }

  /**
   * Send the shards, several at once (the shared `uploads` queue). The first failure stops the
   * others of this session (queued ones never start, running ones are aborted), so that a restart
   * or the caller's error does not race with leftovers. Resolves true when every shard sent was
   * acknowledged with our md5 (false when some answer carried no comparable md5).
   */
  private async uploadShards(
    path: string,
    target: string,
    uploadid: string,
    wanted: number[],
    file: SpooledFile,
    blockMd5s: string[],
    opts: WriteOptions,
    onShard: (i: number) => void,
  ): Promise<boolean> {
    const stop = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
    const shardOpts: WriteOptions = { ...opts, signal };
    let verified = true;
    const results = await Promise.allSettled(
      wanted.map((i) =>
        this.uploads.add(async () => {
          if (signal.aborted) throw abortError(`write ${path}: shard ${i}`, signal);
          try {
            if (!(await this.uploadShard(path, target, uploadid, i, file, blockMd5s, shardOpts))) verified = false;
          } catch (err) {
            stop.abort(err);
            throw err;
          }
          onShard(i); // confirmed: reported even if a sibling fails later
        }),
      ),
    );
    if (results.every((r) => r.status === 'fulfilled')) return verified;
    // report the first real failure, not the aborts it caused
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    throw failures.find((e) => !isTbdavError(e, 'TBDAV_ABORTED')) ?? failures[0];
  }

  /**
   * One shard; true when the service acknowledged it with our md5, false when its answer carried
   * no md5 we can compare (absent, or in a form md5.ts cannot decode). A different md5 is sent
   * again once, then TBDAV_INTEGRITY.
   */
  private async uploadShard(path: string, target: string, uploadid: string, i: number, file: SpooledFile, blockMd5s: string[], opts: WriteOptions): Promise<boolean> {
    const start = i * file.shardSize;
    const length = Math.max(0, Math.min(file.shardSize, file.size - start));
    const want = blockMd5s[i];
    if (want === undefined) throw new TbdavError('TBDAV_FATAL', `write ${path}: the service asks for shard ${i} of ${blockMd5s.length}`);
    for (let attempt = 1; ; attempt++) {
      const res = await this.client.superfile2(target, uploadid, i, { localPath: file.localPath, start, length }, opts);
      if (!isHexMd5(res.md5)) return false;
      if (res.md5 === want) return true;
      if (attempt >= 2) throw new TbdavError('TBDAV_INTEGRITY', `write ${path}: shard ${i} arrived with md5 ${res.md5}, expected ${want}`);
      this.logger.warn(`write ${path}: shard ${i} md5 mismatch, sending it again`, { requestId: opts.requestId });
    }
  }

  /**
   * Check what the service made (create, or precreate's rapid upload) against what we sent.
   * Refused (TBDAV_INTEGRITY, and the file removed): only a size that differs. The file md5 is
   * accepted by either rule (content md5, or md5 of the JSON of the block list; the rule is learned
   * and logged once); an md5 that follows neither, or that is not hex, never refuses the file (its
   * size matched and its shards were acknowledged): it is recorded (it becomes the entry's hash,
   * as the service will list it) and warned about once. Returns the md5 to record, if any.
   */
  private async checkMade(
    path: string,
    file: SpooledFile,
    blockMd5s: string[],
    made: string,
    reportedSize: number | string | undefined,
    reportedMd5: string | undefined,
    fsId: number | string | undefined,
    shardsVerified: boolean,
    opts: CallOptions,
  ): Promise<string | undefined> {
    const size = reportedSize === undefined || reportedSize === null || reportedSize === '' ? undefined : Number(reportedSize);
    if (size !== undefined && Number.isFinite(size) && size !== file.size) {
      await this.discard(path, made, fsId, opts);
      throw new TbdavError('TBDAV_INTEGRITY', `write ${path}: the service made a file of ${size} bytes, we sent ${file.size}; removed it`);
    }
    if (typeof reportedMd5 !== 'string' || reportedMd5 === '') return undefined;
    const byBlocks = serviceMd5(blockMd5s);
    if (isHexMd5(reportedMd5) && (reportedMd5 === byBlocks || reportedMd5 === file.contentMd5)) {
      if (blockMd5s.length > 1) this.learnRule(reportedMd5 === byBlocks ? 'blocklist' : 'content', path);
      return reportedMd5;
    }
    if (!this.unknownMd5Warned) {
      this.unknownMd5Warned = true;
      this.logger.warn(
        `write ${path}: the service reports md5 ${reportedMd5}, which is neither the content md5 (${file.contentMd5}) nor md5 of the block list (${byBlocks}); ` +
          `the size matches${shardsVerified ? ' and every shard was acknowledged with its md5' : ''}, so the file is kept and its md5 recorded as the service reports it (warned once)`,
        { requestId: opts.requestId },
      );
    } else {
      this.logger.debug(`write ${path}: service md5 ${reportedMd5} follows an unknown rule, recorded`, { requestId: opts.requestId });
    }
    return reportedMd5;
  }

  private learnRule(rule: FileMd5Rule, path: string): void {
    if (this.md5Rule === rule) return;
    if (this.md5Rule === undefined) {
      this.md5Rule = rule;
      this.logger.info(`terabox: the service reports the md5 of a multi-shard file as ${rule === 'blocklist' ? 'md5 of the JSON of its block list' : 'its content md5'} (learned from ${path})`);
      return;
    }
    if (!this.md5RuleMixed) {
      this.md5RuleMixed = true;
      this.logger.warn(`terabox: the service reported a multi-shard md5 by the ${rule} rule after the ${this.md5Rule} rule (${path}); both are accepted`);
    }
  }

  /**
   * The service made the file at `made`; put it at the asked path. A service that renamed it (the
   * rtype it was sent not honoured, or another path convention) is detected and repaired: when the
   * file (by fs_id) is at the asked path after all, nothing is done; when it is at `made`, it is
   * moved into place (replacing what is there when overwriting); when the move fails, the stray
   * copy is removed and the write fails. It is never reported as written at a path it is not at.
   */
  private async putInPlace(path: string, made: string, fsId: number | string | undefined, opts: WriteOptions): Promise<void> {
    const target = this.full(path);
    if (samePath(made, target)) return;
    const madeOk = drivePathProblem(made) === undefined;
    const metas = await this.client.filemetas(madeOk ? [target, made] : [target], opts);
    const at = (p: string): FileMeta | undefined => metas.find((m) => Number(m.errno ?? 0) === 0 && typeof m.path === 'string' && samePath(m.path, p));
    const sameFile = (m: FileMeta | undefined): boolean => m !== undefined && Number(m.isdir) !== 1 && (fsId === undefined || String(m.fs_id) === String(fsId));
    if (fsId !== undefined && sameFile(at(target))) {
      this.logger.debug(`write ${path}: the service named the file ${made}, and it is at ${target}`, { requestId: opts.requestId });
      return;
    }
    if (!madeOk || !sameFile(at(made))) {
      throw new TbdavError('TBDAV_FATAL', `write ${path}: the service reports the new file at ${JSON.stringify(made)}, and it is not at ${target} either`);
    }
    this.logger.warn(`write ${path}: the service created the file as ${made}, not ${target}; moving it into place`, { requestId: opts.requestId });
    try {
      if (opts.overwrite) {
        try {
          await this.client.filemanager('delete', [target], opts);
        } catch (err) {
          if (!isTbdavError(err, 'TBDAV_NOT_FOUND')) throw err;
        }
      }
      if (parentPath(made) === parentPath(target)) await this.client.filemanager('rename', [{ path: made, newname: baseName(target) }], opts);
      else await this.client.filemanager('move', [{ path: made, dest: parentPath(target), newname: baseName(target), ondup: 'fail' }], opts);
    } catch (err) {
      await this.discard(path, made, fsId, opts);
      if (isTeraboxApiError(err) && err.errno === ERRNO.FILE_EXISTS) {
        throw new TbdavError('TBDAV_EXISTS', `write ${path}: exists (the service had put the upload at ${made}; removed)`, { cause: err });
      }
      throw err;
    }
  }

  /** Remove a file we made but cannot keep (best effort: a failure is logged, the caller's error stands). */
  private async discard(path: string, made: string, fsId: number | string | undefined, opts: CallOptions): Promise<void> {
    if (drivePathProblem(made) !== undefined) return;
    try {
      if (fsId !== undefined) {
        const [m] = await this.client.filemetas([made], opts);
        if (!m || Number(m.errno ?? 0) !== 0 || String(m.fs_id) !== String(fsId)) return; // not ours (any more)
      }
      await this.client.filemanager('delete', [made], opts);
    } catch (err) {
      this.logger.warn(`write ${path}: could not remove ${made}`, { requestId: opts.requestId, error: err instanceof Error ? err.message : String(err) });
    }
  }

  /**
   * The service already had the content (return_type 2) and made the file from it. precreate got
   * rtype 3 (overwrite) or 0 (fail on conflict), so it should be at the path; one that landed
   * elsewhere is put in place (putInPlace). The entry comes from precreate's `info` when it has one.
   */
  private async finishRapid(path: string, file: SpooledFile, blockMd5s: string[], pre: PrecreateResponse, opts: WriteOptions): Promise<WriteResult> {
    const target = this.full(path);
    const info = pre.info;
    if (info && info.fs_id !== undefined && Number(info.isdir) !== 1) {
      const made = typeof info.path === 'string' && info.path !== '' ? info.path : target;
      // the block list matched content the service holds: that is its acknowledgement of the shards
      const hash = await this.checkMade(path, file, blockMd5s, made, info.size, info.md5, info.fs_id, true, opts);
      await this.putInPlace(path, made, info.fs_id, opts);
      const e = this.entryOf(path, { isdir: 0, size: file.size, server_mtime: info.mtime, server_ctime: info.ctime, md5: hash ?? serviceMd5(blockMd5s), fs_id: info.fs_id });
      return { entry: e, rapid: true };
    }
    // no description of the file in the answer: look at the path
    const e = await this.lookup(path, opts);
    if (!e || e.isDir) throw new TbdavError('TBDAV_RETRYABLE', `write ${path}: rapid upload did not show up`);
    const hash = await this.checkMade(path, file, blockMd5s, target, e.size, e.hash, e.id, true, opts);
    if (hash !== undefined) e.hash = hash;
    return { entry: e, rapid: true };
  }

  async mkdir(path: string, opts: CallOptions = {}): Promise<MkdirResult> {
    if (path === '/') throw new TbdavError('TBDAV_EXISTS', 'mkdir /: exists');
    const { entry: existing, parent } = await this.withParent(path, opts);
    if (existing) throw new TbdavError('TBDAV_EXISTS', `mkdir ${path}: exists`);
    this.checkParent('mkdir', path, parent);
    try {
      const c = await this.client.createDir(this.full(path), opts);
      const e: MkdirResult = this.entryOf(path, { isdir: 1, size: 0, server_mtime: c.mtime, server_ctime: c.ctime, fs_id: c.fs_id });
      if (c.foundAfterRetry) e.maybeNotEmpty = true;
      return e;
    } catch (err) {
      throw relabelError('mkdir', path, err);
    }
  }

  async remove(path: string, opts: CallOptions = {}): Promise<void> {
    if (path === '/') throw new TbdavError('TBDAV_BAD_REQUEST', 'remove /: the root cannot be removed');
    try {
      await this.client.filemanager('delete', [this.full(path)], opts);
    } catch (err) {
      throw relabelError('remove', path, err);
    }
    this.reader.links.neighbours.remove(path);
  }

  private async transfer(op: 'move' | 'copy', from: string, to: string, opts: MoveOptions): Promise<void> {
    if (from === '/' || from === to || isInside(to, from)) {
      throw new TbdavError('TBDAV_BAD_REQUEST', `${op} ${from} -> ${to}: onto itself or into its own subtree`);
    }
    if (isInside(from, to)) throw new TbdavError('TBDAV_BAD_REQUEST', `${op} ${from} -> ${to}: destination contains the source`);
    const toParent = parentPath(to);
    const [src, dst, parent] = await this.lookupMany(toParent === '/' ? [from, to] : [from, to, toParent], opts);
    if (!src) throw new TbdavError('TBDAV_NOT_FOUND', `${op} ${from}: not found`);
    this.checkParent(op, to, parent);
    if (dst && !opts.overwrite) throw new TbdavError('TBDAV_EXISTS', `${op} ${from} -> ${to}: destination exists`);
    try {
      // WebDAV overwrite = delete the destination first (a folder is replaced, not merged)
      if (dst) await this.client.filemanager('delete', [this.full(to)], opts);
      const source = this.full(from);
      const destDir = this.full(parentPath(to));
      if (op === 'move' && parentPath(from) === parentPath(to)) {
        await this.client.filemanager('rename', [{ path: source, newname: baseName(to) }], opts);
      } else {
        await this.client.filemanager(op, [{ path: source, dest: destDir, newname: baseName(to), ondup: 'fail' }], opts);
      }
    } catch (err) {
      if (isTeraboxApiError(err) && err.errno === ERRNO.FILE_EXISTS) {
        throw new TbdavError('TBDAV_EXISTS', `${op} ${from} -> ${to}: destination exists`, { cause: err });
      }
      throw relabelError(op, from, err);
    }
    if (op === 'move') this.reader.links.neighbours.remove(from);
  }

  move(from: string, to: string, opts: MoveOptions): Promise<void> {
    return this.transfer('move', from, to, opts);
  }

  copy(from: string, to: string, opts: MoveOptions): Promise<void> {
    return this.transfer('copy', from, to, opts);
  }

  async quota(opts: CallOptions = {}): Promise<Quota> {
    try {
      const q = await this.client.quota(opts);
      return { total: Number(q.total), used: Number(q.used) };
    } catch (err) {
      throw relabelError('quota', '/', err);
    }
  }
}
