/** COPY and MOVE (RFC 4918 §9.8, §9.9). */
import { TbdavError } from '../../shared/errors.js';
import { DavStatusError } from '../errors.js';
import { clientInfo } from '../client-info.js';
import { endEmpty, header, type DavDeps, type DavRequest } from '../context.js';
import type { LockTarget } from '../lock-gate.js';
import { decodePath, isSameOrInside, pathOfTarget } from '../paths.js';
import { ocMtime, requireParentFolder, statOrUndefined } from './write.js';

/** Destination header -> FileSystem path; 400 when malformed, 502 for another host (RFC 4918 §9.8.5). */
export function destinationPath(r: DavRequest): string {
  const dest = header(r, 'destination')?.trim();
  if (!dest) throw new TbdavError('TBDAV_BAD_REQUEST', `${r.method} ${r.path}: Destination header missing`);
  if (/^[a-z][a-z0-9+.-]*:/i.test(dest)) {
    let url: URL;
    let own: URL;
    try {
      url = new URL(dest);
      // Behind a trusted proxy, the host the client used (X-Forwarded-Host / Forwarded host=).
      own = new URL(`${url.protocol}//${clientInfo(r.req).host ?? ''}/`);
    } catch {
      throw new TbdavError('TBDAV_BAD_REQUEST', `${r.method} ${r.path}: malformed Destination`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TbdavError('TBDAV_BAD_REQUEST', `${r.method} ${r.path}: Destination is not an http(s) URL`);
    }
    if (url.host.toLowerCase() !== own.host.toLowerCase()) {
      throw new DavStatusError(502, 'TBDAV_BAD_REQUEST', `${r.method} ${r.path}: Destination is on another server`);
    }
    // url.pathname keeps the percent-encoding as sent (only dot segments resolved: refuse those ourselves).
    const rawPath = dest.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '') || '/';
    return decodePath(pathOfTarget(rawPath)).path;
  }
  return decodePath(pathOfTarget(dest)).path;
}

function overwriteOf(r: DavRequest): boolean {
  const v = header(r, 'overwrite')?.trim().toUpperCase();
  if (v === undefined || v === 'T') return true;
  if (v === 'F') return false;
  throw new TbdavError('TBDAV_BAD_REQUEST', `${r.method} ${r.path}: Overwrite must be T or F`);
}

export async function handleCopyMove(r: DavRequest, deps: DavDeps): Promise<void> {
  const isMove = r.method === 'MOVE';
  const to = destinationPath(r);
  const overwrite = overwriteOf(r);
  const depthRaw = header(r, 'depth')?.trim().toLowerCase();
  let depth: 0 | 'infinity' = 'infinity';
  if (depthRaw !== undefined && depthRaw !== 'infinity') {
    if (isMove || depthRaw !== '0') {
      throw new TbdavError('TBDAV_BAD_REQUEST', `${r.method} ${r.path}: Depth ${depthRaw} not allowed`);
    }
    depth = 0;
  }
  const src = await deps.fs.stat(r.path, r.call);
  if (to === r.path) return endEmpty(r, 403);
  if (src.isDir && isSameOrInside(to, r.path)) return endEmpty(r, 403);
  if (r.path === '/') return endEmpty(r, 403);
  await requireParentFolder(deps, to, r);
  const existing = await statOrUndefined(deps, to, r);
  if (existing && !overwrite) return endEmpty(r, 412);
  const targets: LockTarget[] = [{ path: to, deep: true, membership: !existing }];
  if (isMove) targets.push({ path: r.path, deep: true, membership: true });
  await deps.locks.checkWrite(r.req, targets);
  const mtime = ocMtime(r);
  const extra = mtime !== undefined ? { mtime } : {};
  const result = isMove
    ? await deps.fs.move(r.path, to, { ...r.call, ...extra, overwrite })
    : await deps.fs.copy(r.path, to, { ...r.call, ...extra, overwrite, depth });
  if (isMove) deps.locks.forgetTree(r.path);
  // 202: a server-side copy out of a share still running (followed in the background, status page)
  endEmpty(r, result.accepted ? 202 : result.created && !existing ? 201 : 204);
}
