/**
 * The byte range an openRead serves, as the Remote contract defines it (src/remote/types.ts): one
 * rule for every Remote, so MemoryRemote (the reference) and TeraboxRemote cannot drift apart.
 */
import { TbdavError } from '../shared/errors.js';
import type { ByteRange } from './types.js';

/**
 * Inclusive [start, end] of `range` within a file of `size` bytes (the whole file without a range;
 * an end past the file is clamped). TBDAV_RANGE for a malformed range or one that starts beyond a
 * non-empty file. `end < start` in the answer means nothing to send (an empty file).
 */
export function clampRange(op: string, path: string, size: number, range?: ByteRange): { start: number; end: number } {
  if (!range) return { start: 0, end: size - 1 };
  if (!Number.isSafeInteger(range.start) || range.start < 0 || (range.end !== undefined && (!Number.isSafeInteger(range.end) || range.end < range.start))) {
    throw new TbdavError('TBDAV_RANGE', `${op} ${path}: bad range`);
  }
  if (range.start >= size && size > 0) throw new TbdavError('TBDAV_RANGE', `${op} ${path}: range starts beyond ${size} bytes`);
  return { start: Math.min(range.start, size), end: range.end === undefined ? size - 1 : Math.min(range.end, size - 1) };
}
