/**
 * Validators (ETag, Last-Modified) and the HTTP conditional headers of RFC 9110 §13:
 * If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, If-Range.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { VfsEntry } from '../vfs/types.js';

/**
 * Strong ETag, stable for the same content: the content md5 when the vfs knows it (pending and
 * local files, files it uploaded: see VfsEntry.contentMd5), else the backend's hash, else size +
 * mtime. So a file keeps its ETag when its write-back upload lands and when the cache is
 * refreshed (docs/architecture.md, "ETags").
 */
export function etagOf(entry: VfsEntry): string {
  if (entry.isDir) return `"d-${Math.floor(entry.mtime).toString(16)}"`;
  const h = entry.contentMd5 ?? entry.hash;
  if (h) return `"${h.replace(/[^A-Za-z0-9._-]/g, '')}"`;
  return `"${entry.size.toString(16)}-${Math.floor(entry.mtime).toString(16)}"`;
}

/** RFC 1123 date. */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** ISO 8601 / RFC 3339 UTC, whole seconds (independent of TZ). */
export function isoDate(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function parseDate(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

function tags(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

function strongMatch(list: string, etag: string): boolean {
  return tags(list).some((t) => t === '*' || (!t.startsWith('W/') && t === etag));
}

function weakMatch(list: string, etag: string): boolean {
  const bare = etag.replace(/^W\//, '');
  return tags(list).some((t) => t === '*' || t.replace(/^W\//, '') === bare);
}

export type ConditionResult = 'ok' | 'not-modified' | 'precondition-failed';

/**
 * Evaluate the conditional headers for a resource (`entry` undefined: it does not exist).
 * `safe` is true for GET/HEAD (If-None-Match/If-Modified-Since give 304 there, 412 elsewhere).
 */
export function evaluateConditions(headers: IncomingHttpHeaders, entry: VfsEntry | undefined, safe: boolean): ConditionResult {
  const etag = entry ? etagOf(entry) : undefined;
  const mtimeSec = entry ? Math.floor(entry.mtime / 1000) * 1000 : 0;
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    if (!etag || !strongMatch(ifMatch, etag)) return 'precondition-failed';
  } else {
    const ius = parseDate(headers['if-unmodified-since']);
    if (ius !== undefined && entry && mtimeSec > ius) return 'precondition-failed';
  }
  const inm = headers['if-none-match'];
  if (inm !== undefined) {
    if (etag && weakMatch(inm, etag)) return safe ? 'not-modified' : 'precondition-failed';
  } else if (safe && entry) {
    const ims = parseDate(headers['if-modified-since']);
    if (ims !== undefined && mtimeSec <= ims) return 'not-modified';
  }
  return 'ok';
}

/** If-Range: true when the Range header may be honoured. */
export function ifRangeAllows(headers: IncomingHttpHeaders, entry: VfsEntry): boolean {
  const v = headers['if-range'];
  if (v === undefined) return true;
  const t = String(v).trim();
  if (t.startsWith('"') || t.startsWith('W/')) return !t.startsWith('W/') && t === etagOf(entry);
  const d = parseDate(t);
  return d !== undefined && d === Math.floor(entry.mtime / 1000) * 1000;
}

export type RangeResult =
  | { kind: 'none' }
  | { kind: 'unsatisfiable' }
  | { kind: 'range'; start: number; end: number };

/**
 * Parse a Range header against a size. Syntax errors and multi-range requests are ignored
 * (answered 200 with the whole body, as RFC 9110 §14.2 permits).
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (!header) return { kind: 'none' };
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!m) return { kind: 'none' };
  const specs = m[1]!.split(',').map((s) => s.trim()).filter(Boolean);
  if (specs.length !== 1) return { kind: 'none' };
  const r = /^(\d*)\s*-\s*(\d*)$/.exec(specs[0]!);
  if (!r || (r[1] === '' && r[2] === '')) return { kind: 'none' };
  if (r[1] === '') {
    const suffix = Number(r[2]);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(r[1]);
  let end = r[2] === '' ? size - 1 : Number(r[2]);
  if (r[2] !== '' && end < start) return { kind: 'none' };
  if (start >= size) return { kind: 'unsatisfiable' };
  if (end >= size) end = size - 1;
  return { kind: 'range', start, end };
}
