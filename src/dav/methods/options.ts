/** OPTIONS: class 1 and 2, the methods we answer, MS-Author-Via for Microsoft clients. */
import { endEmpty, type DavDeps, type DavRequest } from '../context.js';

export const ALLOWED_METHODS = 'OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK';

export async function handleOptions(r: DavRequest, _deps: DavDeps): Promise<void> {
  r.req.resume();
  endEmpty(r, 200, {
    DAV: '1, 2',
    Allow: ALLOWED_METHODS,
    'MS-Author-Via': 'DAV',
    'Accept-Ranges': 'bytes',
  });
}
