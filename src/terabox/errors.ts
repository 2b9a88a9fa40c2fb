/**
 * errno / HTTP status -> our error, in ONE table. This is the first of the two error translations
 * of the project (the second, our code -> HTTP status, lives in src/dav/errors.ts).
 *
 * Each errno gets the TbdavError `code` that says what the caller may do about it (TBDAV_RETRYABLE,
 * TBDAV_AUTH, TBDAV_NOT_FOUND, ...): callers match on `code` (and on `errno` where one number
 * matters), never on the message.
 */
import { TbdavError, type ErrorCode } from '../shared/errors.js';
import { redact } from '../shared/redact.js';
import { ERRNO } from './api/types.js';

interface ErrnoInfo {
  code: ErrorCode;
  meaning: string;
}

/**
 * The one errno table: the spec's codes plus the Baidu-family ones public clients report.
 * Unknown errnos are TBDAV_FATAL (not retried, not the caller's fault).
 */
export const ERRNO_TABLE: ReadonlyMap<number, ErrnoInfo> = new Map<number, ErrnoInfo>([
  // rate limiting: back off and retry
  [ERRNO.RATE_LIMIT, { code: 'TBDAV_RETRYABLE', meaning: 'rate limited' }],
  [ERRNO.RATE_LIMIT_42000, { code: 'TBDAV_RETRYABLE', meaning: 'rate limited' }],
  [ERRNO.CODE_RATE, { code: 'TBDAV_RETRYABLE', meaning: 'code exchange too frequent' }],
  [ERRNO.INTERNAL, { code: 'TBDAV_RETRYABLE', meaning: 'internal service error' }],
  // upload sessions
  [ERRNO.SHARD_MISSING, { code: 'TBDAV_FATAL', meaning: 'shard missing (upload session forgotten)' }],
  [ERRNO.UPLOADID_INVALID, { code: 'TBDAV_FATAL', meaning: 'upload id invalid' }],
  [ERRNO.SHARD_SIZE, { code: 'TBDAV_FATAL', meaning: 'shard size invalid' }],
  [ERRNO.SHARD_SIZE_31364, { code: 'TBDAV_FATAL', meaning: 'shard size invalid' }],
  [ERRNO.FILE_TOO_LARGE, { code: 'TBDAV_TOO_LARGE', meaning: 'file too large' }],
  [ERRNO.FILE_TOO_LARGE_58, { code: 'TBDAV_TOO_LARGE', meaning: 'file too large' }],
  // space
  [ERRNO.QUOTA_EXCEEDED, { code: 'TBDAV_QUOTA', meaning: 'quota exceeded' }],
  [ERRNO.QUOTA_31112, { code: 'TBDAV_QUOTA', meaning: 'quota exceeded' }],
  // paths
  [ERRNO.INVALID_NAME, { code: 'TBDAV_INVALID_NAME', meaning: 'invalid file name' }],
  [ERRNO.FILE_EXISTS, { code: 'TBDAV_EXISTS', meaning: 'file already exists' }],
  [ERRNO.FILE_NOT_FOUND, { code: 'TBDAV_NOT_FOUND', meaning: 'file does not exist' }],
  [ERRNO.SHARE_LINK_ERROR, { code: 'TBDAV_NOT_FOUND', meaning: 'share link error' }],
  // identity (openapi)
  [ERRNO.ACCESS_DENIED, { code: 'TBDAV_AUTH', meaning: 'identity check failed' }],
  [ERRNO.TOKEN_INVALID_111, { code: 'TBDAV_AUTH', meaning: 'access token invalid' }],
  [ERRNO.SHARE_PWD_WRONG, { code: 'TBDAV_FORBIDDEN', meaning: 'share extraction code wrong' }],
  // oauth
  [ERRNO.INVALID_CLIENT, { code: 'TBDAV_AUTH', meaning: 'client_id or client_secret invalid' }],
  [ERRNO.INVALID_CODE, { code: 'TBDAV_AUTH', meaning: 'code invalid or expired' }],
  [ERRNO.UNSUPPORTED_GRANT, { code: 'TBDAV_FATAL', meaning: 'unsupported grant_type' }],
  [ERRNO.INVALID_ACCESS_TOKEN, { code: 'TBDAV_AUTH', meaning: 'access token invalid' }],
  [ERRNO.ACCESS_TOKEN_EXPIRED, { code: 'TBDAV_AUTH', meaning: 'access token expired' }],
  [ERRNO.INVALID_REFRESH_TOKEN, { code: 'TBDAV_AUTH', meaning: 'refresh token invalid' }],
  [ERRNO.REFRESH_TOKEN_EXPIRED, { code: 'TBDAV_AUTH', meaning: 'refresh token expired' }],
  [ERRNO.AUTH_PENDING, { code: 'TBDAV_AUTH', meaning: 'authorization pending' }],
  // bad parameters: our bug, do not retry
  [ERRNO.PARAM_MISSING, { code: 'TBDAV_FATAL', meaning: 'parameter missing' }],
  [ERRNO.PARAM_ERROR, { code: 'TBDAV_FATAL', meaning: 'parameter error' }],
]);

/**
 * errnos meaning "this access token is not usable": an API call that gets one refreshes the
 * token once and is retried. (Refresh-token errors 200004/200005 are not in here: they need login.)
 */
export const ACCESS_TOKEN_ERRNOS: ReadonlySet<number> = new Set<number>([
  ERRNO.ACCESS_DENIED,
  ERRNO.TOKEN_INVALID_111,
  ERRNO.INVALID_ACCESS_TOKEN,
  ERRNO.ACCESS_TOKEN_EXPIRED,
]);

export function errnoCode(errno: number): ErrorCode {
  return ERRNO_TABLE.get(errno)?.code ?? 'TBDAV_FATAL';
}

/** Code of an HTTP status that carried no errno. */
export function httpStatusCode(status: number): ErrorCode {
  if (status === 429 || status === 408 || status >= 500) return 'TBDAV_RETRYABLE';
  if (status === 401 || status === 403) return 'TBDAV_AUTH';
  if (status === 404 || status === 410) return 'TBDAV_NOT_FOUND';
  if (status === 413) return 'TBDAV_TOO_LARGE';
  return 'TBDAV_FATAL';
}

export interface TeraboxApiErrorInit {
  code: ErrorCode;
  endpoint: string;
  errno?: number;
  httpStatus?: number;
  requestId?: string;
  /** Extra words for the message (redacted here). */
  message?: string;
  cause?: unknown;
  /** Seconds from a Retry-After header, if any. */
  retryAfterSec?: number;
}

export class TeraboxApiError extends TbdavError {
  override readonly name = 'TeraboxApiError';
  readonly errno: number | undefined;
  readonly endpoint: string;
  /** The service's request_id, if the answer had one. */
  readonly requestId: string | undefined;
  readonly httpStatus: number | undefined;
  readonly retryAfterSec: number | undefined;

  constructor(init: TeraboxApiErrorInit) {
    const parts = [init.endpoint + ':'];
    if (init.message) parts.push(init.message);
    else if (init.errno !== undefined) parts.push(ERRNO_TABLE.get(init.errno)?.meaning ?? 'error');
    else parts.push('request failed');
    if (init.errno !== undefined) parts.push(`(errno ${init.errno})`);
    if (init.httpStatus !== undefined) parts.push(`(HTTP ${init.httpStatus})`);
    super(init.code, redact(parts.join(' ')), {
      cause: init.cause,
      detail: {
        errno: init.errno,
        endpoint: init.endpoint,
        requestId: init.requestId,
        httpStatus: init.httpStatus,
      },
    });
    this.errno = init.errno;
    this.endpoint = init.endpoint;
    this.requestId = init.requestId;
    this.httpStatus = init.httpStatus;
    this.retryAfterSec = init.retryAfterSec;
  }
}

/** Build the error for an answer with a non-zero errno. */
export function errnoError(endpoint: string, errno: number, extra: Omit<TeraboxApiErrorInit, 'code' | 'endpoint' | 'errno'> = {}): TeraboxApiError {
  return new TeraboxApiError({ ...extra, endpoint, errno, code: errnoCode(errno) });
}

export function isTeraboxApiError(err: unknown): err is TeraboxApiError {
  return err instanceof TeraboxApiError;
}

/**
 * An API error re-labelled with the operation and path it served (`list /a: ...`), keeping its code;
 * our own TbdavErrors (already labelled) and foreign errors pass unchanged.
 */
export function relabelError(op: string, path: string, err: unknown): unknown {
  if (isTeraboxApiError(err)) return new TbdavError(err.code, `${op} ${path}: ${err.message}`, { cause: err, detail: err.detail });
  return err;
}
