/**
 * Request URL <-> FileSystem path. A request path is percent-decoded exactly once, segment by
 * segment; traversal ('.', '..'), NUL, encoded '/' and bad encodings are refused (400).
 * Hrefs in answers are percent-encoded per segment.
 */
import { TbdavError } from '../shared/errors.js';
export { isSameOrInside, joinPath, parentPath } from '../remote/paths.js';

function bad(what: string): TbdavError {
  return new TbdavError('TBDAV_BAD_REQUEST', `bad request path: ${what}`);
}

export interface DecodedPath {
  /** Normalised FileSystem path ('/' = share root, no trailing slash). */
  path: string;
  /** The URL ended with '/'. */
  trailingSlash: boolean;
}

/** Path part of a request target (origin-form or absolute-form), query removed; a fragment is 400. */
export function pathOfTarget(target: string): string {
  let t = target;
  if (!t.startsWith('/')) {
    if (t === '*') return '/';
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(t);
    if (!m) throw bad('not a path');
    t = t.slice(m[0].length) || '/';
  }
  // A raw '#' cannot appear in a request-target (RFC 9112 §3.2); names with '#' come as %23.
  if (t.includes('#')) throw bad('fragment in the request target');
  const q = t.indexOf('?');
  return q === -1 ? t : t.slice(0, q);
}

/** Decode a raw (still percent-encoded) URL path into a FileSystem path. */
export function decodePath(raw: string): DecodedPath {
  if (!raw.startsWith('/')) throw bad('not absolute');
  const segments: string[] = [];
  for (const seg of raw.split('/')) {
    if (seg === '') continue;
    let name: string;
    try {
      name = decodeURIComponent(seg);
    } catch {
      throw bad('invalid percent-encoding');
    }
    if (name === '.' || name === '..') throw bad('traversal');
    if (name.includes('/') || name.includes('\\')) throw bad('encoded separator');
    // C0 controls (NUL included) and DEL are never valid in a stored name.
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(name)) throw bad('control character');
    segments.push(name.normalize('NFC'));
  }
  return { path: '/' + segments.join('/'), trailingSlash: raw.length > 1 && raw.endsWith('/') };
}

/** Percent-encode one path segment (UTF-8; only unreserved characters and !'()* kept). */
export function encodeSegment(seg: string): string {
  return encodeURIComponent(seg);
}

/** Href for a FileSystem path: encoded per segment, folders with a trailing slash. */
export function hrefFor(path: string, isDir: boolean): string {
  if (path === '/') return '/';
  const enc = path
    .split('/')
    .map((s) => (s === '' ? '' : encodeSegment(s)))
    .join('/');
  return isDir ? enc + '/' : enc;
}
