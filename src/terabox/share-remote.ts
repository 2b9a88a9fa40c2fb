/**
 * ShareRemote: one TeraBox share link (src/terabox/share-store.ts ShareRecord) as a read-only
 * Remote, plus the CopyOut (share/transfer into the drive) and Streaming capabilities of
 * src/remote/capabilities.ts.
 *
 * Paths: '/' is the share itself; its children are the shared items (shorturlinfo, spec 3.5.2),
 * named by their server_filename (two shared items of one name: the later one gets ` (<fs_id>)`).
 * Below them, share/list (3.5.3) with `dir` = the sharer's path of the folder, paged by 1000.
 * GET: share/download's dlink (3.5.7) through the drive's DownloadReader (Range, resume, a fresh
 * dlink when refused). Writes answer TBDAV_FORBIDDEN: a share is read-only.
 *
 * The sekey (BOXCLND of share/verify) goes with every call. -9 on a share call means "sekey not
 * valid" or "not in the share" (the service uses it for both): the call is repeated once after
 * verifying again with the stored code (the new sekey is kept through `onSekey`). A second -9 is
 * "not found"; -12 on the new verify means the sharer changed the code (TBDAV_FORBIDDEN: add the
 * share again with the new code); 105 means the link is gone (TBDAV_NOT_FOUND, and the share's
 * folder disappears from the tree).
 *
 * Shared state (concurrency):
 *  - `sekey`: replaced whole by verifyAgain, read at the start of each call.
 *  - `verifying`: the one verify in flight (single flight for concurrent -9s).
 *  - `roots`: name -> shared item, replaced whole by each root listing.
 */
import type { Readable } from 'node:stream';
import type { ByteRange, CallOptions, Entry, MkdirResult, Remote, SpooledFile, WriteOptions, WriteResult } from '../remote/types.js';
import type { CopyOut, CopyOutHandle, MediaInfo, SegmentResponse, Streaming } from '../remote/capabilities.js';
import { baseName } from '../remote/paths.js';
import { TbdavError, isTbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { silentLogger } from '../shared/logger.js';
import { ERRNO, type ShareTransferResponse, type StreamType } from './api/types.js';
import type { TeraboxClient } from './client.js';
import { DownloadReader, type DownloadReaderOptions } from './download.js';
import { entryOfItem } from './remote.js';
import { isTeraboxApiError, relabelError } from './errors.js';
import type { ShareRecord } from './share-store.js';
import { type ShareTransferOptions, startShareTransfer } from './share-transfer.js';
import { isStreamType, openSegment } from './streaming.js';

/** errno of streaming/mediameta for a file that is not audio or video (the emulator's choice; unverified). */
const ERRNO_NOT_MEDIA = 31339;

/** Entries asked per share/list page. */
export const SHARE_LIST_PAGE = 1000;

export interface ShareRemoteOptions {
  /** The drive folder (terabox.root) that paths given to copyOut are relative to. */
  driveRoot: string;
  logger?: Logger;
  /** Keep a new sekey after verifying again (the share store). */
  onSekey?(sekey: string): Promise<void>;
  download?: DownloadReaderOptions;
  transfer?: ShareTransferOptions;
  /** Entries asked per share/list page (default SHARE_LIST_PAGE; tests use small pages). */
  listPageSize?: number;
}

interface RootItem {
  sharerPath: string;
  entry: Entry;
}

/** The errno of an API error, if it is one. */
function errnoOf(err: unknown): number | undefined {
  return isTeraboxApiError(err) ? err.errno : undefined;
}

export class ShareRemote implements Remote, CopyOut, Streaming {
  readonly name: string;
  readonly record: Readonly<ShareRecord>;
  private readonly logger: Logger;
  private readonly reader: DownloadReader;
  private sekey: string;
  private verifying: Promise<void> | undefined;
  private roots: Map<string, RootItem> | undefined;

  constructor(
    readonly client: TeraboxClient,
    record: ShareRecord,
    private readonly opts: ShareRemoteOptions,
  ) {
    this.record = { ...record };
    this.name = `share ${record.name}`;
    this.sekey = record.sekey;
    this.logger = opts.logger ?? client.logger ?? silentLogger();
    this.reader = new DownloadReader(
      {
        logger: this.logger,
        download: (fsIds, o) => this.dlinks(fsIds, o),
        openDlink: (dlink, range, signal, requestId) => client.openDlink(dlink, range, signal, requestId),
      },
      { ...opts.download, logger: this.logger },
    );
  }

  get driveRoot(): string {
    return this.opts.driveRoot;
  }

  // ---------------------------------------------------------------- the sekey

  /** share/verify again with the stored code (single flight); `used` is the sekey that was refused. */
  private async verifyAgain(used: string, opts: CallOptions): Promise<void> {
    if (this.sekey !== used) return; // someone verified meanwhile
    if (!this.verifying) {
      this.verifying = (async () => {
        this.logger.info(`${this.name}: the service refused the share key (-9), verifying the link again`, { requestId: opts.requestId });
        let v;
        try {
          v = await this.client.shareVerify(this.record.surl, this.record.pwd, { requestId: opts.requestId });
        } catch (err) {
          throw this.translate('verify', '/', err);
        }
        this.sekey = v.sekey;
        if (this.opts.onSekey) {
          try {
            await this.opts.onSekey(v.sekey);
          } catch (err) {
            // the new key works in this process; the next start verifies again
            this.logger.warn(`${this.name}: could not save the new share key`, { error: String(err) });
          }
        }
      })().finally(() => {
        this.verifying = undefined;
      });
    }
    await this.verifying;
  }

  /** Our error for a failed share call. */
  private translate(op: string, path: string, err: unknown): unknown {
    const errno = errnoOf(err);
    if (errno === ERRNO.SHARE_LINK_ERROR) {
      return new TbdavError('TBDAV_NOT_FOUND', `${this.name}: the share link is invalid or has expired (${op} ${path})`, { cause: err });
    }
    if (errno === ERRNO.SHARE_PWD_WRONG) {
      return new TbdavError(
        'TBDAV_FORBIDDEN',
        `${this.name}: the extraction code is no longer accepted (the sharer changed it?): run \`terabox-dav share remove ${this.record.name}\` and add the link again with the new code`,
        { cause: err },
      );
    }
    if (errno === ERRNO.FILE_NOT_FOUND) return new TbdavError('TBDAV_NOT_FOUND', `${op} ${path}: not found in ${this.name}`, { cause: err });
    return relabelError(`${op}`, `${path} (${this.name})`, err);
  }

  /** One share call with the current sekey; on -9, verify again once and repeat. */
  private async withKey<T>(op: string, path: string, opts: CallOptions, fn: (sekey: string) => Promise<T>): Promise<T> {
    const used = this.sekey;
    try {
      return await fn(used);
    } catch (err) {
      if (errnoOf(err) !== ERRNO.FILE_NOT_FOUND) throw this.translate(op, path, err);
      await this.verifyAgain(used, opts);
      try {
        return await fn(this.sekey);
      } catch (err2) {
        throw this.translate(op, path, err2);
      }
    }
  }

  // ---------------------------------------------------------------- listing

  private async listRoot(opts: CallOptions): Promise<Entry[]> {
    const info = await this.withKey('list', '/', opts, (spd) => this.client.shortUrlInfo(this.record.shorturl, spd, opts));
    const roots = new Map<string, RootItem>();
    for (const item of info.list ?? []) {
      let name = String(item.server_filename);
      if (roots.has(name)) name = `${name} (${String(item.fs_id)})`;
      roots.set(name, { sharerPath: String(item.path), entry: entryOfItem(`/${name}`, item) });
    }
    this.roots = roots;
    return [...roots.values()].map((r) => ({ ...r.entry }));
  }

  /** The sharer's path of a share path (below '/'), learning the shared items when needed. */
  private async sharerPathOf(path: string, opts: CallOptions): Promise<{ sharerPath: string; top: RootItem }> {
    const [first, ...rest] = path.slice(1).split('/');
    let top = this.roots?.get(first!);
    if (!top) {
      await this.listRoot(opts);
      top = this.roots?.get(first!);
    }
    if (!top) throw new TbdavError('TBDAV_NOT_FOUND', `${path}: not found in ${this.name}`);
    return { sharerPath: rest.length ? `${top.sharerPath}/${rest.join('/')}` : top.sharerPath, top };
  }

  async list(path: string, opts: CallOptions = {}): Promise<Entry[]> {
    if (path === '/') return this.listRoot(opts);
    const { sharerPath, top } = await this.sharerPathOf(path, opts);
    if (path === top.entry.path && !top.entry.isDir) throw new TbdavError('TBDAV_CONFLICT', `list ${path}: not a folder`);
    const out: Entry[] = [];
    const pageSize = this.opts.listPageSize ?? SHARE_LIST_PAGE;
    for (let page = 1; ; page++) {
      const res = await this.withKey('list', path, opts, (sekey) =>
        this.client.shareList(this.record.surl, sekey, { ...opts, dir: sharerPath, page, num: pageSize, order: 'asc', by: 'name' }),
      );
      const items = res.list ?? [];
      for (const i of items) out.push(entryOfItem(`${path}/${String(i.server_filename)}`, i));
      if (items.length < pageSize) break;
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async stat(path: string, opts: CallOptions = {}): Promise<Entry> {
    if (path === '/') {
      const items = await this.listRoot(opts); // also tells whether the link still works
      const mtime = Math.max(this.record.addedAt, ...items.map((e) => e.mtime));
      return { path: '/', name: '', isDir: true, size: 0, mtime, ctime: this.record.addedAt };
    }
    const parent = path.slice(0, path.lastIndexOf('/')) || '/';
    const name = baseName(path);
    const found = (await this.list(parent, opts)).find((e) => e.name === name);
    if (!found) throw new TbdavError('TBDAV_NOT_FOUND', `stat ${path}: not found in ${this.name}`);
    return found;
  }

  // ---------------------------------------------------------------- reading

  /** share/download: dlinks by fs_id (for the DownloadReader). */
  private async dlinks(fsIds: string[], opts: CallOptions = {}): Promise<{ fs_id: string; dlink: string }[]> {
    const res = await this.withKey('openRead', `id ${fsIds.join(',')}`, opts, (sekey) =>
      this.client.shareDownload(this.record.shareid, this.record.uk, fsIds, sekey, opts),
    );
    return (res.list ?? []).filter((i) => typeof i.dlink === 'string' && i.dlink !== '').map((i) => ({ fs_id: String(i.fs_id), dlink: i.dlink! }));
  }

  async openRead(path: string, range?: ByteRange, opts: CallOptions & { entry?: Entry } = {}): Promise<Readable> {
    const { entry, ...rest } = opts;
    const e = entry ?? (await this.stat(path, rest));
    if (e.isDir) throw new TbdavError('TBDAV_CONFLICT', `openRead ${path}: is a folder`);
    return this.reader.open(path, e, range, rest);
  }

  // ---------------------------------------------------------------- read-only

  private readOnly(op: string, path: string): TbdavError {
    return new TbdavError('TBDAV_FORBIDDEN', `${op} ${path}: ${this.name} is a read-only TeraBox share (copy files out of it into your drive instead)`);
  }

  async write(path: string, _file: SpooledFile, _opts: WriteOptions): Promise<WriteResult> {
    throw this.readOnly('write', path);
  }

  async mkdir(path: string, _opts?: CallOptions): Promise<MkdirResult> {
    throw this.readOnly('mkdir', path);
  }

  async remove(path: string, _opts?: CallOptions): Promise<void> {
    throw this.readOnly('remove', path);
  }

  // ---------------------------------------------------------------- capabilities

  /** share/transfer of fs_ids into the drive folder `destAbs` (absolute on the drive). */
  async transferCall(fsIds: string[], destAbs: string, async: 0 | 1 | 2, opts: CallOptions = {}): Promise<ShareTransferResponse> {
    return this.withKey('copy', `id ${fsIds.join(',')}`, opts, (sekey) =>
      this.client.shareTransfer(this.record.shareid, this.record.uk, sekey, { fsIds, path: destAbs, ondup: 'fail', async }, opts),
    );
  }

  copyOut(from: string, to: string, opts: CallOptions & { overwrite?: boolean } = {}): Promise<CopyOutHandle> {
    return startShareTransfer(this, from, to, { logger: this.logger, ...this.opts.transfer }, opts);
  }

  async playlist(path: string, type: string, opts: CallOptions = {}): Promise<string> {
    if (!isStreamType(type)) throw new TbdavError('TBDAV_BAD_REQUEST', `playlist ${path}: unknown stream type ${type}`);
    const e = await this.stat(path, opts);
    if (e.isDir || !e.id) throw new TbdavError('TBDAV_CONFLICT', `playlist ${path}: not a file`);
    const fid = e.id;
    return this.withKey('playlist', path, opts, (sekey) => this.client.shareStreaming(this.record.shareid, this.record.uk, fid, type as StreamType, sekey, opts));
  }

  openSegment(url: string, range: ByteRange | undefined, opts: CallOptions = {}): Promise<SegmentResponse> {
    return openSegment(this.client, url, range, opts);
  }

  async mediaInfo(path: string, opts: CallOptions = {}): Promise<MediaInfo | undefined> {
    const e = await this.stat(path, opts);
    if (e.isDir || !e.id) return undefined;
    const fid = e.id;
    try {
      const m = await this.withKey('mediameta', path, opts, (sekey) => this.client.shareMediaMeta(this.record.shareid, this.record.uk, fid, sekey, opts));
      const d = Number(m.duration);
      if (!Number.isFinite(d) || d <= 0) return undefined;
      const info: MediaInfo = { durationSec: d };
      if (Number(m.width) > 0) info.width = Number(m.width);
      if (Number(m.height) > 0) info.height = Number(m.height);
      return info;
    } catch (err) {
      if (isTbdavError(err) && isTeraboxApiError((err as TbdavError).cause) && ((err as TbdavError).cause as { errno?: number }).errno === ERRNO_NOT_MEDIA) return undefined;
      throw err;
    }
  }
}
