/** The ONE place where our error codes become HTTP statuses. Tables, not if-chains. */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { isTbdavError, TbdavError, type ErrorCode } from '../shared/errors.js';
import { redact } from '../shared/redact.js';

/** Default HTTP status of each code. */
const STATUS: Record<ErrorCode, number> = {
  TBDAV_NOT_FOUND: 404,
  TBDAV_EXISTS: 412, // MKCOL overrides to 405 (see BY_METHOD)
  TBDAV_CONFLICT: 409,
  TBDAV_INVALID_NAME: 400,
  TBDAV_QUOTA: 507,
  TBDAV_TOO_LARGE: 413,
  TBDAV_AUTH: 503, // the bridge cannot reach the drive: not the WebDAV client's credentials
  TBDAV_NOT_LOGGED_IN: 503, // the same, before any login
  TBDAV_RETRYABLE: 503,
  TBDAV_BAD_REQUEST: 400,
  TBDAV_RANGE: 416,
  TBDAV_LOCKED: 423,
  TBDAV_FORBIDDEN: 403, // the message says why (read-only share, virtual playlist)
  TBDAV_PRECONDITION: 412,
  TBDAV_INSUFFICIENT_STORAGE: 507,
  TBDAV_ABORTED: 400, // the client went away; nobody reads this answer
  TBDAV_INTEGRITY: 502,
  TBDAV_CONFIG: 500,
  TBDAV_FATAL: 500,
};

/** Per-method exceptions to STATUS. */
const BY_METHOD: Record<string, Partial<Record<ErrorCode, number>>> = {
  MKCOL: { TBDAV_EXISTS: 405 },
  PUT: { TBDAV_EXISTS: 405 }, // PUT over a folder
};

/** Codes whose message is not shown to the client (internal detail). */
const HIDDEN: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['TBDAV_FATAL', 'TBDAV_CONFIG']);

/** Text shown for codes where the message alone would puzzle a user. */
const HINT: Partial<Record<ErrorCode, string>> = {
  TBDAV_AUTH: 'the bridge is not logged in to TeraBox (run `terabox-dav login`)',
  TBDAV_NOT_LOGGED_IN: 'the bridge is not logged in to TeraBox (run `terabox-dav login`)',
  TBDAV_RETRYABLE: 'TeraBox is busy or unreachable, try again later',
  TBDAV_QUOTA: 'the TeraBox drive is full',
  TBDAV_INSUFFICIENT_STORAGE: 'the bridge has no local spool space left',
  TBDAV_INVALID_NAME: 'TeraBox refuses this name',
};

/** An error that carries its own HTTP status (for the few answers no code maps to, e.g. 502). */
export class DavStatusError extends TbdavError {
  override readonly name = 'DavStatusError';
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

export interface HttpError {
  status: number;
  /** Plain-text body: never a stack, never a secret. */
  message: string;
  headers: Record<string, string>;
}

export function httpErrorFor(err: unknown, method: string): HttpError {
  if (isTbdavError(err)) {
    const status = err instanceof DavStatusError ? err.status : (BY_METHOD[method]?.[err.code] ?? STATUS[err.code]);
    const headers: Record<string, string> = {};
    if (err.code === 'TBDAV_RETRYABLE' || err.code === 'TBDAV_AUTH' || err.code === 'TBDAV_NOT_LOGGED_IN') headers['Retry-After'] = '30';
    const hint = HINT[err.code];
    const text = HIDDEN.has(err.code) ? 'internal error' : redact(err.message);
    return { status, message: hint ? `${hint}: ${text}` : text, headers };
  }
  return { status: 500, message: 'internal error', headers: {} };
}

/** Answer an error (if the headers are not sent yet; otherwise cut the connection). */
export function sendError(res: ServerResponse, err: HttpError, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${err.status} ${STATUS_CODES[err.status] ?? ''}: ${err.message} (request ${requestId})\n`;
  res.statusCode = err.status;
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}
