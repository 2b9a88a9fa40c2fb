/**
 * TeraboxClient: one method per endpoint of the TeraBox Open Platform (ENDPOINTS in api/types.ts),
 * all going through the one call path (http.ts) and the Authenticator (auth/).
 *
 * Token parameter: the spec passes the token as query `access_tokens` on openapi calls (its
 * curl examples sometimes show `access_token`). We send `access_tokens` everywhere except where an
 * endpoint's own parameter table says `access_token`: share/streaming (3.5.5), share/mediameta
 * (3.5.6) and share/download (3.5.7); tokeninfo takes `access_token` as a form field (1.4.2.2).
 *
 * Auth errors: a call refused for its access token (errno -6, 111, 200002, 200003) refreshes the
 * token (single-flight in the Authenticator) and is repeated; again while each refusal is of a
 * newer token, up to AUTH_REPEATS times. The service refused it, so repeating is safe for every call.
 *
 * Shared state: none of its own beyond `auth` (see its header) and `http` (its pacer).
 */
import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Agent } from 'undici';
import type { CallOptions } from '../remote/types.js';
import { TbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { Observer } from '../shared/observer.js';
import { silentLogger } from '../shared/logger.js';
import { redactUrl, registerSecret } from '../shared/redact.js';
import {
  APP_ID,
  ENDPOINTS,
  ERRNO,
  type ActiveResponse,
  type CreateResponse,
  type DeviceCodeData,
  type DownloadResponse,
  type EndpointName,
  type FileInfo,
  type FileManagerItemCopyMove,
  type FileManagerItemRename,
  type FileManagerOpera,
  type FileManagerResponse,
  type FileMeta,
  type FileMetasResponse,
  type ListResponse,
  type PrecreateResponse,
  type QuotaResponse,
  type RType,
  type SearchResponse,
  type ShareDownloadResponse,
  type ShareListResponse,
  type ShareMediaMetaResponse,
  type ShareTransferResponse,
  type ShareVerifyResponse,
  type ShortUrlInfoResponse,
  type StreamType,
  type Superfile2Response,
  type TokenInfoData,
  type UinfoResponse,
} from './api/types.js';
import { Authenticator, type DeviceLoginOptions } from './auth/authenticator.js';
import type { StoredTokens, TokenStore } from './auth/token-store.js';
import { ACCESS_TOKEN_ERRNOS, TeraboxApiError, isTeraboxApiError } from './errors.js';
import { checkDrivePath } from './drive-path.js';
import { decodeAnswerMd5s } from './md5.js';
import { HttpCaller, refusedBeforeActing, type HttpCallerOptions, type HttpResponse, type RetryPolicy, type BodyFactory } from './http.js';

/** The HttpCaller's options (concurrency, rate, retries, timeouts, logger) plus the client's own. */
export interface TeraboxClientOptions extends Omit<HttpCallerOptions, 'random'> {
  authUrl: string;
  clientId: string;
  clientSecret: string;
  privateSecret: string;
  tokenStore: TokenStore;
  refreshMarginSec?: number;
  /**
   * Time for one shard upload (default: requestTimeoutMs plus the time to send the shard at
   * 64 KiB/s, so a stalled shard fails fast and is retried) and for the headers of a download
   * (default 60 s; a stalled download body fails after the same time without data).
   */
  transferTimeoutMs?: number;
  /**
   * Connections per host of the download pool (dlink and CDN hosts; default 32). Download hops
   * are not API calls: they use this pool of their own and never wait for the API pacer.
   */
  downloadPoolConnections?: number;
}

export interface ListOptions extends CallOptions {
  /** 1-based page (default 1). */
  page?: number;
  /** Entries per page (default 1000). */
  num?: number;
  order?: 'time' | 'name' | 'size';
  desc?: boolean;
}

export interface SearchOptions extends CallOptions {
  dir?: string;
  page?: number;
  num?: number;
  order?: string;
  desc?: boolean;
  recursion?: boolean;
}

/** A byte range of a local file, streamed as superfile2's `file` field. */
export interface FileRange {
  localPath: string;
  start: number;
  length: number;
}

export interface FileManagerOptions extends CallOptions {
  /** 0 synchronous (default), 1 adaptive, 2 asynchronous. */
  async?: 0 | 1 | 2;
  ondup?: 'fail' | 'newcopy' | 'overwrite' | 'skip';
}

export interface DlinkResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /**
   * The URL that answered, when the dlink redirected (the CDN's): later ranges of the same read may
   * ask it directly (openResolved), one hop less. Holds signatures: never logged unredacted.
   */
  resolvedUrl?: string;
}

export interface ShareVerifyResult {
  randsk: string;
  /** The BOXCLND cookie value: `spd` / `sekey` of the following share calls. */
  sekey: string;
}

/**
 * Refreshes (and repeats) one call may go through when its access token is refused, each for another
 * token: on a busy machine with short-lived tokens a repeat can meet its fresh token expired too.
 */
export const AUTH_REPEATS = 3;

/** A dlink refused with 403/410 (expired or signature no longer valid): ask a fresh one. */
export class DlinkExpiredError extends TeraboxApiError {
  readonly dlinkExpired = true;
}

interface ApiSpec {
  method: 'GET' | 'POST';
  query?: Record<string, string | number | undefined>;
  form?: Record<string, string | number | undefined>;
  body?: BodyFactory;
  retry: RetryPolicy;
  expect?: 'json' | 'text';
  host?: 'api' | 'upload';
  tokenParam?: 'access_tokens' | 'access_token';
  pace?: 'hold' | 'start';
  timeoutMs?: number;
  errnoFrom?: (json: unknown) => number;
  onRetry?: (err: unknown) => void;
}

function compact(o: Record<string, string | number | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o ?? {})) if (v !== undefined) out[k] = String(v);
  return out;
}

/** The paths and names of a filemanager list are well formed (drive-path.ts), before any request. */
function checkFileList(opera: FileManagerOpera, filelist: (string | FileManagerItemCopyMove | FileManagerItemRename)[]): void {
  const what = `filemanager ${opera}`;
  for (const item of filelist) {
    if (typeof item === 'string') {
      checkDrivePath(item, what);
      continue;
    }
    checkDrivePath(item.path, what);
    // the spec's copy example sends dest "" (the source's folder)
    if ('dest' in item && item.dest !== '') checkDrivePath(item.dest, what);
    if (typeof item.newname !== 'string' || item.newname === '' || item.newname.includes('/') || item.newname === '.' || item.newname === '..') {
      throw new TbdavError('TBDAV_BAD_REQUEST', `${what}: malformed new name ${JSON.stringify(item.newname)}`);
    }
  }
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export class TeraboxClient {
  readonly http: HttpCaller;
  readonly auth: Authenticator;
  readonly logger: Logger;
  private readonly observer: Observer | undefined;
  private readonly transferTimeoutMs: number | undefined;
  private readonly requestTimeoutMs: number;
  private paging: 'unknown' | 'fills' | 'short' = 'unknown';
  /** The download pool: dlink and CDN hops only (see openDlink). */
  private readonly downloadPool: Agent;

  constructor(opts: TeraboxClientOptions) {
    this.logger = opts.logger ?? silentLogger();
    this.observer = opts.observer;
    this.http = new HttpCaller({
      logger: this.logger,
      concurrency: opts.concurrency,
      callsPerSecond: opts.callsPerSecond,
      maxRetries: opts.maxRetries,
      retryBaseMs: opts.retryBaseMs,
      retryMaxMs: opts.retryMaxMs,
      requestTimeoutMs: opts.requestTimeoutMs,
      observer: opts.observer,
    });
    this.auth = new Authenticator({
      http: this.http,
      authUrl: opts.authUrl,
      clientId: opts.clientId,
      clientSecret: opts.clientSecret,
      privateSecret: opts.privateSecret,
      tokenStore: opts.tokenStore,
      logger: this.logger,
      observer: opts.observer,
      refreshMarginSec: opts.refreshMarginSec,
    });
    this.transferTimeoutMs = opts.transferTimeoutMs;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.downloadPool = new Agent({ keepAliveTimeout: 10_000, connections: Math.max(1, opts.downloadPoolConnections ?? 32) });
  }

  async close(): Promise<void> {
    await this.http.close();
    await this.downloadPool.close();
  }

  // ================================================================ oauth (auth host)

  /** GET /oauth/devicecode. */
  deviceCode(opts: CallOptions = {}): Promise<DeviceCodeData> {
    return this.auth.requestDeviceCode(opts);
  }

  /** POST /oauth/gettoken with grant device_code, once; errno 400001 while not approved. Saves on success. */
  pollDeviceToken(deviceCode: string, opts: CallOptions = {}): Promise<StoredTokens> {
    return this.auth.pollDeviceToken(deviceCode, opts);
  }

  /** Device-code login loop (poll until approved or expired). */
  loginWithDeviceCode(opts: DeviceLoginOptions = {}): Promise<StoredTokens> {
    return this.auth.loginWithDeviceCode(opts);
  }

  /** POST /oauth/gettoken with grant authorization_code. Saves on success. */
  exchangeCode(code: string, opts: CallOptions = {}): Promise<StoredTokens> {
    return this.auth.exchangeCode(code, opts);
  }

  /** POST /oauth/tokeninfo. */
  tokenInfo(opts: CallOptions = {}): Promise<TokenInfoData> {
    return this.auth.tokenInfo(undefined, opts);
  }

  /** POST /oauth/refreshtoken (single-flight). */
  refresh(opts: CallOptions = {}): Promise<StoredTokens> {
    return this.auth.refresh(opts);
  }

  /** Delete the stored tokens. */
  logout(): Promise<void> {
    return this.auth.logout();
  }

  // ================================================================ the authenticated call

  /**
   * One openapi/pcs call: session (token + domains), the one call path, and on an access-token
   * error a refresh and a repeat — again while each refusal is of another token than the last one
   * (the repeat waited in the pacer long enough for the new token to expire too, or it adopted a
   * pair another process had refreshed a while ago), at most AUTH_REPEATS times.
   */
  private async api<T>(name: EndpointName, spec: ApiSpec, opts: CallOptions): Promise<HttpResponse<T>> {
    let refreshes = 0;
    let lastRefused: string | undefined;
    for (;;) {
      const before = (await this.auth.tokens())?.accessToken;
      let used = before;
      try {
        const session = await this.auth.session(opts);
        used = session.accessToken;
        const base = spec.host === 'upload' ? session.uploadBase : session.apiBase;
        const url = new URL(ENDPOINTS[name], base);
        for (const [k, v] of Object.entries(compact(spec.query))) url.searchParams.set(k, v);
        url.searchParams.set(spec.tokenParam ?? 'access_tokens', session.accessToken);
        const res = await this.http.call<T>({
          endpoint: name,
          method: spec.method,
          url,
          ...(spec.form ? { form: compact(spec.form) } : {}),
          ...(spec.body ? { body: spec.body } : {}),
          retry: spec.retry,
          expect: spec.expect ?? 'json',
          requestId: opts.requestId,
          signal: opts.signal,
          pace: spec.pace,
          timeoutMs: spec.timeoutMs,
          errnoFrom: spec.errnoFrom,
          onRetry: spec.onRetry,
        });
        // the one place where md5s of answers are decoded (md5.ts): the same content gets the
        // same md5 whichever endpoint reported it, in whichever form
        if ((spec.expect ?? 'json') === 'json') decodeAnswerMd5s(res.data);
        return res;
      } catch (err) {
        const tokenError =
          isTeraboxApiError(err) && ((err.errno !== undefined && ACCESS_TOKEN_ERRNOS.has(err.errno)) || (err.errno === undefined && err.httpStatus === 401));
        if (!tokenError || used === undefined || used === lastRefused || refreshes >= AUTH_REPEATS) throw err;
        refreshes++;
        lastRefused = used;
        this.logger.debug(`${name}: access token refused, refreshing (${refreshes} of at most ${AUTH_REPEATS})`, { requestId: opts.requestId, errno: (err as TeraboxApiError).errno });
        await this.auth.onAuthFailure(used, opts);
      }
    }
  }

  // ================================================================ user and quota

  /** GET /openapi/uinfo. */
  async uinfo(opts: CallOptions = {}): Promise<UinfoResponse> {
    return (await this.api<UinfoResponse>('uinfo', { method: 'GET', retry: 'idempotent' }, opts)).data;
  }

  /** GET /openapi/active (external-link share activation). Repeating it is harmless. */
  async active(opts: CallOptions = {}): Promise<ActiveResponse> {
    return (await this.api<ActiveResponse>('active', { method: 'GET', retry: 'idempotent' }, opts)).data;
  }

  /** GET /openapi/api/quota. */
  async quota(opts: CallOptions = {}): Promise<QuotaResponse> {
    return (await this.api<QuotaResponse>('quota', { method: 'GET', retry: 'idempotent' }, opts)).data;
  }

  // ================================================================ files

  /** GET /openapi/api/list: one page. */
  async list(dir: string, opts: ListOptions = {}): Promise<FileInfo[]> {
    return (await this.listPage(dir, opts)).items;
  }

  /**
   * One page of /openapi/api/list with what the answer says about the rest. The array is read
   * under `list` (the spec's example) or `info` (the spec's table); `has_more`, when the service
   * sends it (search does; list's table does not name it), is passed on.
   */
  async listPage(dir: string, opts: ListOptions = {}): Promise<{ items: FileInfo[]; hasMore?: boolean }> {
    checkDrivePath(dir, 'list');
    const res = await this.api<ListResponse>(
      'list',
      {
        method: 'GET',
        retry: 'idempotent',
        query: {
          dir,
          page: opts.page ?? 1,
          num: opts.num ?? 1000,
          order: opts.order,
          desc: opts.desc === undefined ? undefined : opts.desc ? 1 : 0,
        },
      },
      opts,
    );
    const d = res.data;
    const items = Array.isArray(d.list) ? d.list : Array.isArray(d.info) ? d.info : [];
    const more = d.has_more;
    return more === undefined || more === null ? { items } : { items, hasMore: Number(more) === 1 || more === true };
  }

  /**
   * How this service pages /openapi/api/list, learned from its answers (issue 9; the spec does
   * not say whether a page shorter than `num` is the last one):
   *  - 'unknown' until a folder showed it: a short non-empty page is followed by one more request;
   *  - 'fills': that request came back empty, so this service fills its pages: a short page is the
   *    end (one list call per folder of fewer than `num` entries, as before);
   *  - 'short': it came back with entries: pages may be short before the end, so the listing goes
   *    on until an empty page (one more call per folder: the price of not losing entries).
   * A page that says `has_more` settles it for that page whatever was learned.
   */
  get listPaging(): 'unknown' | 'fills' | 'short' {
    return this.paging;
  }

  /** Every entry of a folder: pages of `num` (default 1000), as long as the service has more (see listPaging). */
  async listAll(dir: string, opts: CallOptions & { num?: number } = {}): Promise<FileInfo[]> {
    const num = opts.num ?? 1000;
    const out: FileInfo[] = [];
    let probing = false; // the page asked after a short page while the paging is unknown
    for (let page = 1; ; page++) {
      const { items, hasMore } = await this.listPage(dir, { ...opts, page, num, order: 'name' });
      if (probing) {
        probing = false;
        this.learnPaging(items.length === 0 ? 'fills' : 'short', dir);
      }
      out.push(...items);
      if (hasMore !== undefined) {
        if (!hasMore) return out;
        continue;
      }
      if (items.length === 0) return out;
      if (items.length >= num) continue;
      // a short page: the end, unless this service is known (or may be) to cut pages short
      if (this.paging === 'fills') return out;
      if (this.paging === 'unknown') probing = true;
    }
  }

  private learnPaging(how: 'fills' | 'short', dir: string): void {
    if (this.paging === how) return;
    if (this.paging === 'short') return; // once seen, short pages stay possible
    this.paging = how;
    this.logger.info(
      how === 'fills'
        ? `list: this service fills its pages (a short page of ${dir} was the last): a short page ends a listing from now on`
        : `list: this service answers pages shorter than asked before the end (${dir}): listings go on until an empty page`,
    );
  }

  /** GET /openapi/api/filemetas for absolute paths. */
  async filemetas(paths: string[], opts: CallOptions & { dlink?: boolean } = {}): Promise<FileMeta[]> {
    for (const p of paths) checkDrivePath(p, 'filemetas');
    const res = await this.api<FileMetasResponse>(
      'filemetas',
      { method: 'GET', retry: 'idempotent', query: { target: JSON.stringify(paths), dlink: opts.dlink ? 1 : 0 } },
      opts,
    );
    return res.data.info ?? [];
  }

  /** GET /openapi/api/search. */
  async search(key: string, opts: SearchOptions = {}): Promise<SearchResponse> {
    if (opts.dir !== undefined) checkDrivePath(opts.dir, 'search');
    const res = await this.api<SearchResponse>(
      'search',
      {
        method: 'GET',
        retry: 'idempotent',
        query: {
          key,
          dir: opts.dir,
          page: opts.page,
          num: opts.num,
          order: opts.order,
          desc: opts.desc === undefined ? undefined : opts.desc ? 1 : 0,
          recursion: opts.recursion === false ? 0 : 1,
        },
      },
      opts,
    );
    return res.data;
  }

  /** GET /openapi/api/download: dlinks of files by fs_id. */
  async download(fsIds: (number | string)[], opts: CallOptions = {}): Promise<{ fs_id: string; dlink: string }[]> {
    const res = await this.api<DownloadResponse>(
      'download',
      { method: 'GET', retry: 'idempotent', query: { fidlist: `[${fsIds.map(String).join(',')}]`, type: 'dlink' } },
      opts,
    );
    return (res.data.dlink ?? []).map((d) => ({ fs_id: String(d.fs_id), dlink: d.dlink }));
  }

  /** GET /openapi/api/streaming: the m3u8 text. */
  async streaming(path: string, type: StreamType, opts: CallOptions = {}): Promise<string> {
    checkDrivePath(path, 'streaming');
    const res = await this.api<string>('streaming', { method: 'GET', retry: 'idempotent', expect: 'text', query: { path, type } }, opts);
    return res.data;
  }

  /**
   * POST /openapi/api/precreate (opts.rtype: conflict policy of a rapid upload). Idempotent: it only opens an upload session; a repeat opens
   * another one and the first is abandoned by the service.
   */
  async precreate(path: string, blockList: string[], size?: number, opts: CallOptions & { rtype?: RType } = {}): Promise<PrecreateResponse> {
    checkDrivePath(path, 'precreate');
    const res = await this.api<PrecreateResponse>(
      'precreate',
      {
        method: 'POST',
        retry: 'idempotent',
        form: {
          path,
          autoinit: 1,
          block_list: JSON.stringify(blockList),
          ...(size !== undefined ? { size, isdir: 0 } : {}),
          // rtype is not in the spec's table for precreate but the Baidu-family service takes it:
          // it decides what a rapid upload (return_type 2) does when something is at the path
          rtype: opts.rtype,
        },
      },
      opts,
    );
    return res.data;
  }

  /**
   * POST /rest/2.0/pcs/superfile2 on upload_domain: one shard, streamed from a file range as the
   * multipart field `file` (never buffered). Idempotent: the same partseq replaces the shard.
   */
  async superfile2(path: string, uploadid: string, partseq: number, file: FileRange, opts: CallOptions = {}): Promise<Superfile2Response> {
    checkDrivePath(path, 'superfile2');
    const boundary = `----terabox-dav-${randomBytes(12).toString('hex')}`;
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const body: BodyFactory = () => ({
      body: Readable.from(
        (async function* () {
        yield head;
        if (file.length > 0) {
          for await (const chunk of createReadStream(file.localPath, { start: file.start, end: file.start + file.length - 1, highWaterMark: 256 * 1024 })) {
            yield chunk as Buffer;
          }
        }
        yield tail;
      })(),
      ),
      headers: {
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': String(head.length + file.length + tail.length),
      },
    });
    const res = await this.api<Superfile2Response>(
      'superfile2',
      {
        method: 'POST',
        host: 'upload',
        retry: 'idempotent',
        pace: 'start',
        timeoutMs: this.transferTimeoutMs ?? this.requestTimeoutMs + Math.ceil(file.length / 65_536) * 1000,
        query: { method: 'upload', app_id: APP_ID, path, uploadid, partseq },
        body,
      },
      opts,
    );
    this.observer?.transfer?.({ direction: 'up', bytes: file.length });
    return res.data;
  }

  /**
   * POST /openapi/api/create: commit an upload. rtype 3 (overwrite) is idempotent; other rtypes
   * are repeated only when the service confirms nothing happened (a repeat of rtype 0 after a
   * lost answer would fail with "exists", of rtype 1 would make a renamed copy).
   */
  async create(path: string, size: number, uploadid: string, blockList: string[], rtype: RType, opts: CallOptions = {}): Promise<CreateResponse> {
    checkDrivePath(path, 'create');
    const res = await this.api<CreateResponse>(
      'create',
      {
        method: 'POST',
        retry: rtype === 3 ? 'idempotent' : 'unsafe',
        form: { path, size, isdir: 0, uploadid, block_list: JSON.stringify(blockList), rtype },
      },
      opts,
    );
    return res.data;
  }

  /**
   * POST /openapi/api/create with isdir=1: make a folder (the service makes missing parents).
   * Retried as idempotent; when a repeat answers "exists" (-8) after a lost first answer, the
   * folder is ours: that counts as success and its metadata is fetched.
   */
  async createDir(path: string, opts: CallOptions = {}): Promise<CreateResponse & { foundAfterRetry?: boolean }> {
    checkDrivePath(path, 'create');
    let retried = false;
    try {
      const res = await this.api<CreateResponse>(
        'create',
        {
          method: 'POST',
          retry: 'idempotent',
          form: { path, size: 0, isdir: 1, block_list: '[]', rtype: 0 },
          onRetry: (err) => {
            // a refused attempt (31034, 429, not sent) made nothing: an "exists" after it is not ours
            if (!refusedBeforeActing(err)) retried = true;
          },
        },
        opts,
      );
      return res.data;
    } catch (err) {
      if (retried && isTeraboxApiError(err) && err.errno === ERRNO.FILE_EXISTS) {
        const [meta] = await this.filemetas([path], opts);
        if (meta && meta.isdir === 1) {
          this.logger.debug(`createDir ${path}: exists after a retry, taken as created`, { requestId: opts.requestId });
          return {
            errno: 0,
            fs_id: meta.fs_id,
            server_filename: meta.server_filename,
            category: meta.category,
            path: meta.path,
            size: 0,
            ctime: meta.server_ctime,
            mtime: meta.server_mtime,
            isdir: 1,
            // made by our first try, or by someone else meanwhile: it may not be empty
            foundAfterRetry: true,
          };
        }
      }
      throw err;
    }
  }

  /**
   * POST /openapi/api/filemanager. delete is idempotent (retried; the remote treats a
   * not-found after a retry as done); copy/move/rename are 'unsafe' (a repeat after a lost
   * answer could copy twice or fail on the moved source). Per-item errnos are errors too.
   */
  async filemanager(
    opera: FileManagerOpera,
    filelist: (string | FileManagerItemCopyMove | FileManagerItemRename)[],
    opts: FileManagerOptions = {},
  ): Promise<FileManagerResponse> {
    checkFileList(opera, filelist);
    let retried = false;
    const call = this.api<FileManagerResponse>(
      'filemanager',
      {
        method: 'POST',
        retry: opera === 'delete' ? 'idempotent' : 'unsafe',
        onRetry: (err) => {
          // a refused attempt (31034, 429, not sent) removed nothing: a "not found" after it is real
          if (!refusedBeforeActing(err)) retried = true;
        },
        // spec 3.4.4: opera and async are query parameters, filelist the only body parameter
        // (ondup, not in the spec's table, goes with them; items carry their own ondup)
        query: { opera, async: opts.async ?? 0, ondup: opts.ondup },
        form: { filelist: JSON.stringify(filelist) },
        errnoFrom: (json) => {
          const o = json as { errno?: number; info?: { errno?: number }[] } | undefined;
          const item = o?.info?.find((i) => Number(i.errno ?? 0) !== 0);
          if (item) return Number(item.errno);
          return Number(o?.errno ?? 0);
        },
      },
      opts,
    );
    try {
      return (await call).data;
    } catch (err) {
      // a repeated delete that finds nothing: the first try did it
      if (opera === 'delete' && retried && isTeraboxApiError(err) && err.errno === ERRNO.FILE_NOT_FOUND) {
        this.logger.debug('filemanager delete: not found after a retry, taken as done', { requestId: opts.requestId });
        return { errno: 0, info: [] };
      }
      throw err;
    }
  }

  // ================================================================ shares

  /**
   * POST /openapi/share/verify: check a share's extraction code; keeps the BOXCLND cookie as sekey.
   * Retried as idempotent: checking a code changes nothing (a repeat only issues another cookie).
   */
  async shareVerify(surl: string, pwd: string, opts: CallOptions = {}): Promise<ShareVerifyResult> {
    const res = await this.api<ShareVerifyResponse>('shareVerify', { method: 'POST', retry: 'idempotent', query: { surl }, form: { pwd } }, opts);
    const cookies = res.headers['set-cookie'];
    const list = Array.isArray(cookies) ? cookies : cookies ? [cookies] : [];
    let sekey = '';
    for (const c of list) {
      const m = /(?:^|;\s*)BOXCLND=([^;]*)/.exec(c);
      if (m) sekey = decodeURIComponent(m[1]!);
    }
    registerSecret(sekey);
    const randsk = typeof res.data.randsk === 'string' ? res.data.randsk : JSON.stringify(res.data.randsk ?? '');
    return { randsk, sekey };
  }

  /** GET /openapi/api/shorturlinfo. `shorturl` is the part after /s/. */
  async shortUrlInfo(shorturl: string, spd: string, opts: CallOptions = {}): Promise<ShortUrlInfoResponse> {
    return (await this.api<ShortUrlInfoResponse>('shortUrlInfo', { method: 'GET', retry: 'idempotent', query: { shorturl, root: 1, spd } }, opts)).data;
  }

  /** GET /openapi/share/list: root (no dir) or a folder of the share. */
  async shareList(
    shorturl: string,
    sekey: string,
    opts: CallOptions & { dir?: string; page?: number; num?: number; order?: 'asc' | 'desc'; by?: 'time' | 'name' | 'size' } = {},
  ): Promise<ShareListResponse> {
    const query = {
      shorturl,
      sekey,
      page: opts.page ?? 1,
      num: opts.num ?? 100,
      ...(opts.dir ? { dir: opts.dir } : { root: 1 }),
      order: opts.order,
      by: opts.by,
    };
    return (await this.api<ShareListResponse>('shareList', { method: 'GET', retry: 'idempotent', query }, opts)).data;
  }

  /** GET /openapi/share/download (its table names the token `access_token`). */
  async shareDownload(shareid: number | string, uk: number | string, fsIds: (number | string)[], sekey: string, opts: CallOptions = {}): Promise<ShareDownloadResponse> {
    const query = { shareid, uk, fid_list: `[${fsIds.map(String).join(',')}]`, sekey };
    return (await this.api<ShareDownloadResponse>('shareDownload', { method: 'GET', retry: 'idempotent', tokenParam: 'access_token', query }, opts)).data;
  }

  /**
   * POST /openapi/share/transfer: copy share files into the drive folder `path` (absolute).
   * Query: shareid, from (the sharer's uk, as the spec's example), async, ondup, sekey; body:
   * fsidlist or filelist, path. 'unsafe' (a repeat could copy twice). A failed item's errno is the
   * call's error (-8 exists, -9 not in the share), as for filemanager.
   */
  async shareTransfer(
    shareid: number | string,
    from: number | string,
    sekey: string,
    what: { fsIds?: (number | string)[]; filelist?: string[]; path: string; ondup?: 'fail' | 'newcopy'; async: 0 | 1 | 2 },
    opts: CallOptions = {},
  ): Promise<ShareTransferResponse> {
    checkDrivePath(what.path, 'share/transfer'); // the destination is a drive folder: never a malformed path
    const form: Record<string, string | undefined> = {
      fsidlist: what.fsIds ? JSON.stringify(what.fsIds.map(String)) : undefined,
      filelist: what.filelist ? JSON.stringify(what.filelist) : undefined,
      path: what.path,
    };
    const query = { shareid, from, sekey, async: what.async, ondup: what.ondup };
    const errnoFrom = (json: unknown): number => {
      const o = json as { errno?: number; info?: { errno?: number }[] } | undefined;
      const item = o?.info?.find((i) => Number(i.errno ?? 0) !== 0);
      return item ? Number(item.errno) : Number(o?.errno ?? 0);
    };
    return (await this.api<ShareTransferResponse>('shareTransfer', { method: 'POST', retry: 'unsafe', query, form, errnoFrom }, opts)).data;
  }

  /** GET /openapi/share/streaming: m3u8 text (its table names the token `access_token`). */
  async shareStreaming(shareid: number | string, uk: number | string, fid: number | string, type: StreamType, sekey: string, opts: CallOptions = {}): Promise<string> {
    const query = { shareid, uk, fid, type, channel: 'dubox', clienttype: 0, sekey };
    return (await this.api<string>('shareStreaming', { method: 'GET', retry: 'idempotent', expect: 'text', tokenParam: 'access_token', query }, opts)).data;
  }

  /** GET /openapi/share/mediameta (its table names the token `access_token`). */
  async shareMediaMeta(shareid: number | string, uk: number | string, fid: number | string, sekey: string, opts: CallOptions = {}): Promise<ShareMediaMetaResponse> {
    const query = { clienttype: 0, uk, shareid, fid, sekey };
    return (await this.api<ShareMediaMetaResponse>('shareMediaMeta', { method: 'GET', retry: 'idempotent', tokenParam: 'access_token', query }, opts)).data;
  }

  // ================================================================ download

  /**
   * Open a dlink: appends the access token, follows up to three redirects (http/https only, the
   * token never added to the next hop) to the CDN, sends Range, and returns the answer with its
   * body as a stream (destroy it to stop the transfer). A 403/410 rejects with DlinkExpiredError:
   * ask a fresh dlink and try again. The hops go through the download pool, not the API pacer.
   */
  async openDlink(dlink: string, range?: { start: number; end?: number }, signal?: AbortSignal, requestId?: string): Promise<DlinkResponse> {
    const first = new URL(dlink);
    if (first.protocol !== 'http:' && first.protocol !== 'https:') {
      throw new TeraboxApiError({ endpoint: 'dlink', code: 'TBDAV_FATAL', message: `unsupported dlink scheme ${first.protocol}` });
    }
    const headers: Record<string, string> = {};
    if (range) headers.range = `bytes=${range.start}-${range.end ?? ''}`;
    let refreshed = false;
    restart: for (;;) {
      const session = await this.auth.session({ signal, requestId });
      let url = new URL(first);
      url.searchParams.set('access_tokens', session.accessToken);
      for (let hop = 0; hop < 4; hop++) {
        const res = await this.downloadHostGet(url, headers, 'idempotent', signal, requestId);
        const status = res.status;
        if (status >= 300 && status < 400) {
          const location = firstHeader(res.headers.location);
          await this.drain(res.data);
          if (!location) throw new TeraboxApiError({ endpoint: 'dlink', code: 'TBDAV_FATAL', httpStatus: status, message: 'redirect without location' });
          const next = new URL(location, url);
          if (next.protocol !== 'http:' && next.protocol !== 'https:') {
            throw new TeraboxApiError({ endpoint: 'dlink', code: 'TBDAV_FATAL', httpStatus: status, message: `refusing redirect to ${next.protocol}` });
          }
          this.logger.debug(`dlink: redirected to ${redactUrl(next)}`, { requestId });
          url = next;
          continue;
        }
        if (status === 401 || status === 403 || status === 410) {
          const errno = await this.errnoOfBody(res.data);
          // the access token (not the link) was refused: refresh once and start again
          if (hop === 0 && !refreshed && errno !== undefined && ACCESS_TOKEN_ERRNOS.has(errno)) {
            refreshed = true;
            this.logger.debug('dlink: access token refused, refreshing once', { requestId, errno });
            await this.auth.onAuthFailure(session.accessToken, { signal, requestId });
            continue restart;
          }
          throw new DlinkExpiredError({ endpoint: 'dlink', code: 'TBDAV_RETRYABLE', httpStatus: status, errno, message: 'download link refused or expired' });
        }
        return { statusCode: status, headers: res.headers, body: res.data, ...(hop > 0 ? { resolvedUrl: url.href } : {}) };
      }
      throw new TeraboxApiError({ endpoint: 'dlink', code: 'TBDAV_FATAL', message: 'too many redirects' });
    }
  }

  /**
   * A GET on the download hosts (dlink, redirect hops, the CDN): not an API call, so no pacer, and a
   * pool of its own (a seek never waits behind API calls); redirects and refusals are passed back.
   */
  private downloadHostGet(url: URL, headers: Record<string, string>, retry: 'idempotent' | 'unsafe', signal: AbortSignal | undefined, requestId: string | undefined) {
    return this.http.call<Readable & { dump?: () => Promise<void>; text?: () => Promise<string> }>({
      endpoint: 'dlink',
      method: 'GET',
      url,
      headers,
      retry,
      expect: 'stream',
      pace: 'none',
      dispatcher: this.downloadPool,
      timeoutMs: this.transferTimeoutMs ?? Math.max(this.requestTimeoutMs, 60_000),
      passStatuses: [301, 302, 303, 307, 308, 401, 403, 410],
      signal,
      requestId,
    });
  }

  /**
   * One GET of a URL a dlink redirected to (DlinkResponse.resolvedUrl), for later ranges of the
   * same read: nothing appended, no redirect followed, retried only when nothing was sent. A
   * redirect or a refusal (401/403/410) is a DlinkExpiredError; the caller goes back to the dlink
   * on any failure.
   */
  async openResolved(resolved: string, range?: { start: number; end?: number }, signal?: AbortSignal, requestId?: string): Promise<DlinkResponse> {
    const url = new URL(resolved);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TeraboxApiError({ endpoint: 'dlink', code: 'TBDAV_FATAL', message: `unsupported download URL scheme ${url.protocol}` });
    }
    const headers: Record<string, string> = {};
    if (range) headers.range = `bytes=${range.start}-${range.end ?? ''}`;
    const res = await this.downloadHostGet(url, headers, 'unsafe', signal, requestId);
    if ((res.status >= 300 && res.status < 400) || res.status === 401 || res.status === 403 || res.status === 410) {
      await this.drain(res.data);
      throw new DlinkExpiredError({ endpoint: 'dlink', code: 'TBDAV_RETRYABLE', httpStatus: res.status, message: 'resolved download URL refused or moved' });
    }
    return { statusCode: res.status, headers: res.headers, body: res.data };
  }

  /** The errno of a small JSON error body (undefined when there is none). */
  private async errnoOfBody(body: Readable & { text?: () => Promise<string> }): Promise<number | undefined> {
    try {
      const text = typeof body.text === 'function' ? await body.text() : '';
      if (!/^\s*\{/.test(text)) return undefined;
      const o = JSON.parse(text) as { errno?: unknown; error_code?: unknown };
      const n = Number(o.errno ?? o.error_code);
      return Number.isFinite(n) ? n : undefined;
    } catch (err) {
      this.logger.debug('dlink: error body unreadable', { error: String(err) });
      return undefined;
    }
  }

  private async drain(body: Readable & { dump?: () => Promise<void> }): Promise<void> {
    try {
      if (typeof body.dump === 'function') await body.dump();
      else body.destroy();
    } catch (err) {
      this.logger.debug('dlink: discarding a body failed', { error: String(err) });
    }
  }
}
