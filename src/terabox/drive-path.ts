/**
 * Drive paths: the ONE join of `terabox.root` and a Remote path, and the check that every path the
 * client sends is well formed (absolute, no empty segment — so no `//` and no trailing `/` —, no
 * `.` or `..` segment, no NUL). The service refuses malformed paths (and the emulator does, as the
 * spec wants), so a malformed path is our bug: it is refused here, before any request.
 */
import { TbdavError } from '../shared/errors.js';

/** Where the service confines an app's files: `/From: Other Applications/<app>/` (spec 3.1 1.3). */
export const APP_FOLDER_PARENT = '/From: Other Applications';

/** Why `p` is not a well-formed drive path, or undefined when it is. */
export function drivePathProblem(p: string): string | undefined {
  if (typeof p !== 'string' || p === '') return 'empty';
  if (!p.startsWith('/')) return 'not absolute';
  if (p === '/') return undefined;
  if (p.endsWith('/')) return 'trailing slash';
  if (p.includes('\0')) return 'NUL character';
  for (const seg of p.slice(1).split('/')) {
    if (seg === '') return 'empty segment (//)';
    if (seg === '.' || seg === '..') return `'${seg}' segment`;
  }
  return undefined;
}

/** `p` when it is a well-formed drive path, else TBDAV_BAD_REQUEST naming `what`. */
export function checkDrivePath(p: string, what: string): string {
  const problem = drivePathProblem(p);
  if (problem) throw new TbdavError('TBDAV_BAD_REQUEST', `${what}: malformed drive path ${JSON.stringify(p)} (${problem})`);
  return p;
}

/**
 * `terabox.root` as a drive path: leading `/` added, runs of `/` collapsed, trailing `/` dropped
 * (`''`, `'/'` and `'//'` are all the drive's top). `.`/`..` segments are refused.
 */
export function normaliseRoot(root: string): string {
  const collapsed = ('/' + root).replace(/\/{2,}/g, '/');
  const trimmed = collapsed.length > 1 ? collapsed.replace(/\/+$/, '') : collapsed;
  return checkDrivePath(trimmed === '' ? '/' : trimmed, 'terabox.root');
}

/**
 * The drive path of Remote path `path` (absolute, `/` = the root itself) under the normalised
 * `root`. The result is checked: a malformed Remote path is refused, never sent.
 */
export function drivePath(root: string, path: string): string {
  checkDrivePath(path, 'path');
  const joined = path === '/' ? root : root === '/' ? path : root + path;
  return checkDrivePath(joined, 'path');
}

/**
 * A warning for a root outside the app folder, or undefined. The client does not know the app's
 * name, so it can only tell whether the root lies under `/From: Other Applications/<something>`.
 */
export function rootWarning(root: string): string | undefined {
  const r = normaliseRoot(root);
  const prefix = APP_FOLDER_PARENT + '/';
  if (r.startsWith(prefix) && r.length > prefix.length) return undefined;
  return (
    `terabox.root ${JSON.stringify(r)} is not inside the app folder: the service confines an app to ` +
    `"${APP_FOLDER_PARENT}/<app name>/" (spec 3.1) and refuses paths elsewhere (errno -7). ` +
    `Set terabox.root to "${APP_FOLDER_PARENT}/<your app's name>" or a folder below it.`
  );
}
