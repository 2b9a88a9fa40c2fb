/**
 * Helpers for the normalised paths of the Remote contract (src/remote/types.ts): absolute,
 * '/'-separated, no trailing slash but for the root. Pure string functions, no validation
 * (src/vfs/paths.ts normalises and refuses bad input before a path reaches a Remote).
 */

/** Parent of a normalised path ('/' for '/' and for top-level names). */
export function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** Last segment of a normalised path ('' for '/'). */
export function baseName(path: string): string {
  return path === '/' ? '' : path.slice(path.lastIndexOf('/') + 1);
}

/** Join a normalised folder path and one name. */
export function joinPath(folder: string, name: string): string {
  return folder === '/' ? '/' + name : folder + '/' + name;
}

/** True when `path` lies strictly inside `folder`. */
export function isInside(path: string, folder: string): boolean {
  return folder === '/' ? path !== '/' : path.startsWith(folder + '/');
}

/** True when `path` is `folder` or lies inside it. */
export function isSameOrInside(path: string, folder: string): boolean {
  return path === folder || isInside(path, folder);
}

/** Rebase `path` (at or under `from`) onto `to`. */
export function rebase(path: string, from: string, to: string): string {
  if (path === from) return to;
  const rest = from === '/' ? path : path.slice(from.length);
  return to === '/' ? rest : to + rest;
}
