/**
 * One error base for the whole project. Match on `code`, never on message text.
 * Messages name the operation and the path and never carry secrets (see redact.ts).
 */
export type ErrorCode =
  | 'TBDAV_NOT_FOUND' // the path does not exist
  | 'TBDAV_EXISTS' // the destination exists and may not be replaced
  | 'TBDAV_CONFLICT' // a parent folder is missing (WebDAV 409)
  | 'TBDAV_INVALID_NAME' // the service refuses the name
  | 'TBDAV_QUOTA' // no space left on the drive
  | 'TBDAV_TOO_LARGE' // file larger than the service accepts
  | 'TBDAV_AUTH' // the service refuses our credentials or tokens (a new login may be needed)
  | 'TBDAV_NOT_LOGGED_IN' // no saved login at all: run the login command
  | 'TBDAV_RETRYABLE' // transient: rate limit, 5xx, reset; retries exhausted
  | 'TBDAV_BAD_REQUEST' // the caller sent something malformed
  | 'TBDAV_RANGE' // unsatisfiable range
  | 'TBDAV_LOCKED' // a lock forbids the operation
  | 'TBDAV_FORBIDDEN' // never allowed here, whoever asks: a read-only share or virtual file (the message says why)
  | 'TBDAV_PRECONDITION' // a condition (If-Match, Overwrite: F...) failed
  | 'TBDAV_INSUFFICIENT_STORAGE' // local spool is full
  | 'TBDAV_ABORTED' // the caller's signal fired
  | 'TBDAV_INTEGRITY' // a checksum the service reported does not match ours
  | 'TBDAV_CONFIG' // bad configuration
  | 'TBDAV_FATAL'; // anything else: not retryable, not the caller's fault

export interface TbdavErrorOptions {
  cause?: unknown;
  /** Extra structured detail (never secrets). */
  detail?: Record<string, unknown>;
}

export class TbdavError extends Error {
  override readonly name: string = 'TbdavError';
  readonly code: ErrorCode;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: TbdavErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.detail = options.detail;
  }
}

export class NotFoundError extends TbdavError {
  override readonly name = 'NotFoundError';
  constructor(message: string, options?: TbdavErrorOptions) {
    super('TBDAV_NOT_FOUND', message, options);
  }
}

export class ConfigError extends TbdavError {
  override readonly name = 'ConfigError';
  /** The configuration key at fault, e.g. `server.port`. */
  readonly key: string;
  constructor(key: string, message: string, options?: TbdavErrorOptions) {
    super('TBDAV_CONFIG', `config ${key}: ${message}`, options);
    this.key = key;
  }
}

export function isTbdavError(err: unknown, code?: ErrorCode): err is TbdavError {
  return err instanceof TbdavError && (code === undefined || err.code === code);
}

/** Build an error for a caller's AbortSignal. */
export function abortError(what: string, signal?: AbortSignal): TbdavError {
  return new TbdavError('TBDAV_ABORTED', `${what}: aborted`, { cause: signal?.reason });
}
