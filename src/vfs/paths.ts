/**
 * Share paths: absolute, '/'-separated, NFC Unicode, no empty segments, no trailing slash but for
 * the root '/'. Everything entering the vfs goes through normalizePath once.
 *
 * Refusals:
 *  - TBDAV_BAD_REQUEST  '.' or '..' segments, path longer than MAX_PATH_BYTES UTF-8 bytes, not a string
 *  - TBDAV_INVALID_NAME a segment with NUL or backslash, or longer than MAX_NAME_BYTES UTF-8 bytes
 */
import { TbdavError } from '../shared/errors.js';

export const MAX_NAME_BYTES = 255;
export const MAX_PATH_BYTES = 4096;

/** Normalise a share path; a missing leading '/' is added. */
export function normalizePath(input: string): string {
  if (typeof input !== 'string') throw new TbdavError('TBDAV_BAD_REQUEST', 'path: not a string');
  const nfc = input.normalize('NFC');
  const segments: string[] = [];
  for (const seg of nfc.split('/')) {
    if (seg === '') continue;
    if (seg === '.' || seg === '..') throw new TbdavError('TBDAV_BAD_REQUEST', `path ${JSON.stringify(input)}: '${seg}' segments are not allowed`);
    if (seg.includes('\0')) throw new TbdavError('TBDAV_INVALID_NAME', `path ${JSON.stringify(input)}: NUL in a name`);
    if (seg.includes('\\')) throw new TbdavError('TBDAV_INVALID_NAME', `path ${JSON.stringify(input)}: backslash in a name`);
    if (Buffer.byteLength(seg, 'utf8') > MAX_NAME_BYTES) {
      throw new TbdavError('TBDAV_INVALID_NAME', `path ${JSON.stringify(input.slice(0, 64))}...: a name is longer than ${MAX_NAME_BYTES} bytes`);
    }
    segments.push(seg);
  }
  const out = '/' + segments.join('/');
  if (Buffer.byteLength(out, 'utf8') > MAX_PATH_BYTES) {
    throw new TbdavError('TBDAV_BAD_REQUEST', `path ${JSON.stringify(input.slice(0, 64))}...: longer than ${MAX_PATH_BYTES} bytes`);
  }
  return out;
}

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
