/** What every method handler in src/dav/methods receives. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { CallOptions } from '../remote/types.js';
import type { FileSystem } from '../vfs/types.js';
import type { LockGate } from './lock-gate.js';

export interface DavRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Upper-case method. */
  readonly method: string;
  /** Decoded, normalised FileSystem path of the request URL. */
  readonly path: string;
  /** The request URL ended with '/'. */
  readonly trailingSlash: boolean;
  readonly requestId: string;
  /** Authenticated username (undefined without auth). */
  readonly user: string | undefined;
  /** Fires when the client goes away before the answer is complete. */
  readonly signal: AbortSignal;
  /** { signal, requestId } for every FileSystem call. */
  readonly call: CallOptions;
  /**
   * Send `100 Continue` if the client waits for it (Expect: 100-continue); call right before reading
   * the body, so that a refusal (401, 409, 423...) is answered before the client uploads anything.
   */
  continue(): void;
}

export interface DavDeps {
  /** The share as the requesting user sees it (src/dav/user-scope.ts). */
  readonly fs: FileSystem;
  readonly locks: LockGate;
  readonly logger: Logger;
  /** The requesting user may only read (OPTIONS then announces class 1 and read methods). */
  readonly readOnly?: boolean;
}

export type DavHandler = (r: DavRequest, deps: DavDeps) => Promise<void>;

/** Single-valued header (first value when repeated). */
export function header(r: DavRequest, name: string): string | undefined {
  const v = r.req.headers[name.toLowerCase()];
  if (Array.isArray(v)) return v[0];
  return v;
}

/** Answer with no body. */
export function endEmpty(r: DavRequest, status: number, headers: Record<string, string | number> = {}): void {
  r.res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) r.res.setHeader(k, v);
  if (status !== 204 && status !== 304) r.res.setHeader('Content-Length', 0);
  r.res.end();
}

/** Whether the request carries a body (Content-Length > 0 or chunked). */
export function hasBody(r: DavRequest): boolean {
  const te = r.req.headers['transfer-encoding'];
  if (te !== undefined && te !== '') return true;
  const cl = r.req.headers['content-length'];
  return cl !== undefined && Number(cl) > 0;
}

/** Read a small request body (XML), refusing more than `max` bytes. */
export async function readSmallBody(r: DavRequest, max = 1 << 20): Promise<string> {
  r.continue();
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of r.req) {
    const b = chunk as Buffer;
    total += b.length;
    if (total > max) {
      throw new TbdavError('TBDAV_TOO_LARGE', `${r.method} ${r.path}: request body over ${max} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}
