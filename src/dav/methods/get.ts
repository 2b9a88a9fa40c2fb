/**
 * GET and HEAD: validators, conditional headers, one byte range pushed down to fs.openRead.
 * Multi-range requests are answered 200 with the whole body (RFC 9110 allows ignoring Range).
 * A 206 is only ever sent to a request that carried a satisfiable Range (davfs2 relies on it).
 * GET on a folder answers 200 with a small HTML listing.
 */
import { pipeline } from 'node:stream/promises';
import type { ByteRange } from '../../remote/types.js';
import type { VfsEntry } from '../../vfs/types.js';
import { etagOf, evaluateConditions, httpDate, ifRangeAllows, parseRange } from '../conditional.js';
import { endEmpty, header, type DavDeps, type DavRequest } from '../context.js';
import { contentTypeFor } from '../mime.js';
import { hrefFor, joinPath, parentPath } from '../paths.js';
import { escapeXml, xmlSafe } from '../xml.js';

function validators(entry: VfsEntry): Record<string, string> {
  return { ETag: etagOf(entry), 'Last-Modified': httpDate(entry.mtime) };
}

async function folderListing(r: DavRequest, deps: DavDeps, entry: VfsEntry): Promise<void> {
  const head = r.method === 'HEAD';
  const entries = head ? [] : await deps.fs.list(r.path, r.call);
  const title = escapeXml(xmlSafe(r.path));
  const rows = entries
    .slice()
    .sort((a, b) => (a.isDir === b.isDir ? a.name.localeCompare(b.name) : a.isDir ? -1 : 1))
    .map((e) => {
      const href = escapeXml(hrefFor(joinPath(r.path, e.name), e.isDir));
      const name = escapeXml(xmlSafe(e.name)) + (e.isDir ? '/' : '');
      return `<tr><td><a href="${href}">${name}</a></td><td>${e.isDir ? '' : e.size}</td><td>${httpDate(e.mtime)}</td></tr>`;
    })
    .join('\n');
  const up = r.path === '/' ? '' : `<p><a href="${escapeXml(hrefFor(parentPath(r.path), true))}">..</a></p>`;
  const body = `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${up}<table>\n${rows}\n</table></body></html>\n`;
  r.res.statusCode = 200;
  r.res.setHeader('Content-Type', 'text/html; charset=utf-8');
  r.res.setHeader('Last-Modified', httpDate(entry.mtime));
  r.res.setHeader('Cache-Control', 'no-cache');
  if (head) {
    r.res.end();
    return;
  }
  r.res.setHeader('Content-Length', Buffer.byteLength(body));
  r.res.end(body);
}

export async function handleGet(r: DavRequest, deps: DavDeps): Promise<void> {
  const entry = await deps.fs.stat(r.path, r.call);
  if (header(r, 'if') !== undefined) await deps.locks.checkConditions(r.req, r.path);
  if (entry.isDir) return folderListing(r, deps, entry);

  const cond = evaluateConditions(r.req.headers, entry, true);
  if (cond === 'precondition-failed') return endEmpty(r, 412, validators(entry));
  if (cond === 'not-modified') return endEmpty(r, 304, validators(entry));

  const size = entry.size;
  const base: Record<string, string | number> = {
    ...validators(entry),
    'Accept-Ranges': 'bytes',
    'Content-Type': contentTypeFor(entry.name),
  };
  let range: ByteRange | undefined;
  let status = 200;
  let length = size;
  const rangeHeader = header(r, 'range');
  if (rangeHeader !== undefined && ifRangeAllows(r.req.headers, entry)) {
    const pr = parseRange(rangeHeader, size);
    if (pr.kind === 'unsatisfiable') {
      return endEmpty(r, 416, { ...base, 'Content-Range': `bytes */${size}` });
    }
    if (pr.kind === 'range') {
      range = { start: pr.start, end: pr.end };
      status = 206;
      length = pr.end - pr.start + 1;
      base['Content-Range'] = `bytes ${pr.start}-${pr.end}/${size}`;
    }
  }
  base['Content-Length'] = length;
  if (r.method === 'HEAD') {
    r.res.statusCode = status;
    for (const [k, v] of Object.entries(base)) r.res.setHeader(k, v);
    r.res.end();
    return;
  }
  if (length === 0) {
    r.res.statusCode = status;
    for (const [k, v] of Object.entries(base)) r.res.setHeader(k, v);
    r.res.end();
    return;
  }
  const { stream } = await deps.fs.openRead(r.path, range, r.call);
  r.res.statusCode = status;
  for (const [k, v] of Object.entries(base)) r.res.setHeader(k, v);
  // pipeline destroys the upstream stream when the client goes away (response closed early).
  // Bytes are counted by a second 'data' listener, not by a Transform: one stream stage less per
  // chunk on the hot path (bench get-1g; bench/README.md).
  let sent = 0;
  stream.on('data', (chunk: Buffer) => {
    sent += chunk.length;
  });
  await pipeline(stream, r.res, { end: false });
  if (sent !== length) {
    // An upstream body shorter (or longer) than announced: cut the connection rather than leave the
    // client waiting for bytes that will not come.
    deps.logger.warn(`GET ${r.path}: upstream gave ${sent} bytes, ${length} announced; connection cut`, { requestId: r.requestId });
    r.res.destroy();
    return;
  }
  r.res.end();
}
