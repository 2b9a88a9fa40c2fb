/** OPTIONS: class 1 and 2, the methods we answer, MS-Author-Via for Microsoft clients. */
import { endEmpty, type DavDeps, type DavRequest } from '../context.js';

export const ALLOWED_METHODS = 'OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK';
/** For read-only users: no write method, and class 1 (no LOCK), so that Finder mounts read-only. */
export const READ_ONLY_METHODS = 'OPTIONS, GET, HEAD, PROPFIND';

export async function handleOptions(r: DavRequest, deps: DavDeps): Promise<void> {
  r.req.resume();
  endEmpty(r, 200, {
    DAV: deps.readOnly ? '1' : '1, 2',
    Allow: deps.readOnly ? READ_ONLY_METHODS : ALLOWED_METHODS,
    'MS-Author-Via': 'DAV',
    'Accept-Ranges': 'bytes',
  });
}
