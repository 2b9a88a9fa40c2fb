/** PUT, MKCOL, DELETE. Answers are sent only once the FileSystem call resolved. */
import { isTbdavError, TbdavError } from '../../shared/errors.js';
import type { VfsEntry } from '../../vfs/types.js';
import { etagOf, evaluateConditions, httpDate } from '../conditional.js';
import { endEmpty, hasBody, header, type DavDeps, type DavRequest } from '../context.js';
import { parentPath } from '../paths.js';

/** stat, with NOT_FOUND turned into undefined. */
export async function statOrUndefined(deps: DavDeps, path: string, r: DavRequest): Promise<VfsEntry | undefined> {
  try {
    return await deps.fs.stat(path, r.call);
  } catch (err) {
    if (isTbdavError(err, 'TBDAV_NOT_FOUND')) return undefined;
    throw err;
  }
}

/** The parent folder must exist and be a folder (409 otherwise). */
export async function requireParentFolder(deps: DavDeps, path: string, r: DavRequest): Promise<void> {
  const parent = await statOrUndefined(deps, parentPath(path), r);
  if (!parent || !parent.isDir) {
    throw new TbdavError('TBDAV_CONFLICT', `${r.method} ${path}: parent folder ${parentPath(path)} does not exist`);
  }
}

function expectedSize(r: DavRequest): number | undefined {
  const chunked = r.req.headers['transfer-encoding'] !== undefined;
  const cl = header(r, 'content-length');
  const xe = header(r, 'x-expected-entity-length');
  const pick = !chunked && cl !== undefined ? cl : xe;
  if (pick === undefined) return undefined;
  const n = Number(pick);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** X-OC-Mtime (seconds, ownCloud/rclone) in ms. */
export function ocMtime(r: DavRequest): number | undefined {
  const v = header(r, 'x-oc-mtime');
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? Math.round(n * 1000) : undefined;
}

export async function handlePut(r: DavRequest, deps: DavDeps): Promise<void> {
  if (r.path === '/' || r.trailingSlash) {
    throw new TbdavError('TBDAV_EXISTS', `PUT ${r.path}: cannot PUT to a folder`);
  }
  if (header(r, 'content-range') !== undefined) {
    // RFC 9110 §14.4: a server that does not support partial PUT must refuse it.
    throw new TbdavError('TBDAV_BAD_REQUEST', `PUT ${r.path}: partial PUT (Content-Range) is not supported`);
  }
  const existing = await statOrUndefined(deps, r.path, r);
  if (existing?.isDir) throw new TbdavError('TBDAV_EXISTS', `PUT ${r.path}: a folder is there`);
  if (!existing) await requireParentFolder(deps, r.path, r);
  if (evaluateConditions(r.req.headers, existing, false) !== 'ok') {
    return endEmpty(r, 412);
  }
  await deps.locks.checkWrite(r.req, [{ path: r.path, membership: !existing }]);
  const mtime = ocMtime(r);
  const size = expectedSize(r);
  r.continue();
  const result = await deps.fs.put(r.path, r.req, {
    ...r.call,
    overwrite: true,
    ...(size !== undefined ? { expectedSize: size } : {}),
    ...(mtime !== undefined ? { mtime } : {}),
  });
  const headers: Record<string, string> = {
    ETag: etagOf(result.entry),
    'Last-Modified': httpDate(result.entry.mtime),
  };
  if (mtime !== undefined) headers['X-OC-Mtime'] = 'accepted';
  endEmpty(r, result.created ? 201 : 204, headers);
}

export async function handleMkcol(r: DavRequest, deps: DavDeps): Promise<void> {
  if (hasBody(r)) {
    r.req.resume();
    return endEmpty(r, 415);
  }
  if (r.path === '/') throw new TbdavError('TBDAV_EXISTS', 'MKCOL /: the share root exists');
  await deps.locks.checkWrite(r.req, [{ path: r.path, membership: true }]);
  await deps.fs.mkdir(r.path, r.call);
  endEmpty(r, 201);
}

export async function handleDelete(r: DavRequest, deps: DavDeps): Promise<void> {
  if (r.path === '/') {
    return endEmpty(r, 403);
  }
  const entry = await deps.fs.stat(r.path, r.call);
  const depth = header(r, 'depth')?.trim().toLowerCase();
  if (entry.isDir && depth !== undefined && depth !== 'infinity') {
    throw new TbdavError('TBDAV_BAD_REQUEST', `DELETE ${r.path}: Depth must be infinity for a folder`);
  }
  if (evaluateConditions(r.req.headers, entry, false) !== 'ok') return endEmpty(r, 412);
  await deps.locks.checkWrite(r.req, [{ path: r.path, deep: true, membership: true }]);
  await deps.fs.remove(r.path, r.call);
  deps.locks.forgetTree(r.path);
  endEmpty(r, 204);
}
