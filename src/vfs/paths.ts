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

export { parentPath, baseName, joinPath, isInside, isSameOrInside, rebase } from '../remote/paths.js';
