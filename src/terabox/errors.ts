/**
 * errno / HTTP status -> our error, in ONE table. This is the first of the two error translations
 * of the project (the second, our code -> HTTP status, lives in src/dav/errors.ts).
 *
 * The category says what the caller may do about it; it maps 1:1 onto the TbdavError `code`.
 */
import { TbdavError, type ErrorCode } from '../shared/errors.js';
import { redact } from '../shared/redact.js';
import { ERRNO } from './api/types.js';

export type ErrorCategory =
  | 'retryable'
  | 'auth'
  | 'not-found'
  | 'exists'
  | 'invalid-name'
  | 'quota'
  | 'too-large'
  | 'fatal';

export const CATEGORY_CODE: Readonly<Record<ErrorCategory, ErrorCode>> = {
  retryable: 'TBDAV_RETRYABLE',
  auth: 'TBDAV_AUTH',
  'not-found': 'TBDAV_NOT_FOUND',
  exists: 'TBDAV_EXISTS',
  'invalid-name': 'TBDAV_INVALID_NAME',
  quota: 'TBDAV_QUOTA',
  'too-large': 'TBDAV_TOO_LARGE',
  fatal: 'TBDAV_FATAL',
};

interface ErrnoInfo {
  category: ErrorCategory;
  meaning: string;
}

/**
 * The one errno table: the spec's codes plus the Baidu-family ones public clients report.
 * Unknown errnos are 'fatal' (not retried, not the caller's fault).
 */
export const ERRNO_TABLE: ReadonlyMap<number, ErrnoInfo> = new Map<number, ErrnoInfo>([
  // rate limiting: back off and retry
  [ERRNO.RATE_LIMIT, { category: 'retryable', meaning: 'rate limited' }],
  [ERRNO.RATE_LIMIT_42000, { category: 'retryable', meaning: 'rate limited' }],
  [ERRNO.CODE_RATE, { category: 'retryable', meaning: 'code exchange too frequent' }],
  [ERRNO.INTERNAL, { category: 'retryable', meaning: 'internal service error' }],
  // upload sessions
  [ERRNO.SHARD_MISSING, { category: 'fatal', meaning: 'shard missing (upload session forgotten)' }],
  [ERRNO.UPLOADID_INVALID, { category: 'fatal', meaning: 'upload id invalid' }],
  [ERRNO.SHARD_SIZE, { category: 'fatal', meaning: 'shard size invalid' }],
  [ERRNO.SHARD_SIZE_31364, { category: 'fatal', meaning: 'shard size invalid' }],
  [ERRNO.FILE_TOO_LARGE, { category: 'too-large', meaning: 'file too large' }],
  [ERRNO.FILE_TOO_LARGE_58, { category: 'too-large', meaning: 'file too large' }],
  // space
  [ERRNO.QUOTA_EXCEEDED, { category: 'quota', meaning: 'quota exceeded' }],
  [ERRNO.QUOTA_31112, { category: 'quota', meaning: 'quota exceeded' }],
  // paths
  [ERRNO.INVALID_NAME, { category: 'invalid-name', meaning: 'invalid file name' }],
  [ERRNO.FILE_EXISTS, { category: 'exists', meaning: 'file already exists' }],
  [ERRNO.FILE_NOT_FOUND, { category: 'not-found', meaning: 'file does not exist' }],
  [ERRNO.SHARE_LINK_ERROR, { category: 'not-found', meaning: 'share link error' }],
  // identity (openapi)
  [ERRNO.ACCESS_DENIED, { category: 'auth', meaning: 'identity check failed' }],
  [ERRNO.TOKEN_INVALID_111, { category: 'auth', meaning: 'access token invalid' }],
  [ERRNO.SHARE_PWD_WRONG, { category: 'auth', meaning: 'share extraction code wrong' }],
  // oauth
  [ERRNO.INVALID_CLIENT, { category: 'auth', meaning: 'client_id or client_secret invalid' }],
  [ERRNO.INVALID_CODE, { category: 'auth', meaning: 'code invalid or expired' }],
  [ERRNO.UNSUPPORTED_GRANT, { category: 'fatal', meaning: 'unsupported grant_type' }],
  [ERRNO.INVALID_ACCESS_TOKEN, { category: 'auth', meaning: 'access token invalid' }],
  [ERRNO.ACCESS_TOKEN_EXPIRED, { category: 'auth', meaning: 'access token expired' }],
  [ERRNO.INVALID_REFRESH_TOKEN, { category: 'auth', meaning: 'refresh token invalid' }],
  [ERRNO.REFRESH_TOKEN_EXPIRED, { category: 'auth', meaning: 'refresh token expired' }],
  [ERRNO.AUTH_PENDING, { category: 'auth', meaning: 'authorization pending' }],
  // bad parameters: our bug, do not retry
  [ERRNO.PARAM_MISSING, { category: 'fatal', meaning: 'parameter missing' }],
  [ERRNO.PARAM_ERROR, { category: 'fatal', meaning: 'parameter error' }],
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

/** errnos that mean the upload session (uploadid) is gone: restart from precreate. */
export const UPLOAD_SESSION_ERRNOS: ReadonlySet<number> = new Set<number>([
  ERRNO.SHARD_MISSING,
  ERRNO.UPLOADID_INVALID,
]);

export function errnoCategory(errno: number): ErrorCategory {
  return ERRNO_TABLE.get(errno)?.category ?? 'fatal';
}

/** Category of an HTTP status that carried no errno. */
export function httpStatusCategory(status: number): ErrorCategory {
  if (status === 429 || status === 408 || status >= 500) return 'retryable';
  if (status === 401 || status === 403) return 'auth';
  if (status === 404 || status === 410) return 'not-found';
  if (status === 413) return 'too-large';
  return 'fatal';
}

export interface TeraboxApiErrorInit {
  category: ErrorCategory;
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
  readonly category: ErrorCategory;
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
    else parts.push(init.category);
    if (init.errno !== undefined) parts.push(`(errno ${init.errno})`);
    if (init.httpStatus !== undefined) parts.push(`(HTTP ${init.httpStatus})`);
    super(CATEGORY_CODE[init.category], redact(parts.join(' ')), {
      cause: init.cause,
      detail: {
        errno: init.errno,
        endpoint: init.endpoint,
        requestId: init.requestId,
        httpStatus: init.httpStatus,
      },
    });
    this.category = init.category;
    this.errno = init.errno;
    this.endpoint = init.endpoint;
    this.requestId = init.requestId;
    this.httpStatus = init.httpStatus;
    this.retryAfterSec = init.retryAfterSec;
  }
}

/** Build the error for an answer with a non-zero errno. */
export function errnoError(endpoint: string, errno: number, extra: Omit<TeraboxApiErrorInit, 'category' | 'endpoint' | 'errno'> = {}): TeraboxApiError {
  return new TeraboxApiError({ ...extra, endpoint, errno, category: errnoCategory(errno) });
}

export function isTeraboxApiError(err: unknown): err is TeraboxApiError {
  return err instanceof TeraboxApiError;
}
