/**
 * The bridge's HLS route (streaming.enabled): GET/HEAD under `/.terabox-dav/hls/`:
 *   <sig>/<path>/index.m3u8   the video's playlist, segment URLs pointing at the next form
 *   <sig>/<path>/seg/<n>.ts   segment n relayed from TeraBox (Range relayed as asked)
 * `<sig>` is the capability (an HMAC of the path, src/vfs/streaming.ts): these requests need no
 * Basic auth, so players that do not send credentials for the segments of a playlist (most) play.
 * A wrong signature answers 404 like an unknown path. Errors go through dav/errors.ts.
 *
 * No shared state.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { ByteRange } from '../remote/types.js';
import type { Logger } from '../shared/logger.js';
import { redact } from '../shared/redact.js';
import { HLS_PREFIX, type HlsService } from '../vfs/streaming.js';
import { httpErrorFor, sendError } from './errors.js';

export { HLS_PREFIX };

/** A single `bytes=a-b` / `bytes=a-` range to relay (others: the whole segment). */
function rangeOf(header: string | undefined): ByteRange | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(\d+)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined;
  const start = Number(m[1]);
  if (m[2] === '') return { start };
  const end = Number(m[2]);
  return end >= start ? { start, end } : undefined;
}

export function isHlsRequest(url: string): boolean {
  return url.startsWith(HLS_PREFIX);
}

export async function handleHls(req: IncomingMessage, res: ServerResponse, hls: HlsService, logger: Logger, requestId: string): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  try {
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendError(res, { status: 405, message: `method ${method} not supported here`, headers: {} }, requestId);
      return;
    }
    const rest = (req.url ?? '').slice(HLS_PREFIX.length).split('?')[0]!;
    const m = /^([A-Za-z0-9_-]{1,64})\/([A-Za-z0-9_-]{1,8192})\/(?:(index\.m3u8)|seg\/(\d{1,6})\.ts)$/.exec(rest);
    if (!m) {
      sendError(res, { status: 404, message: 'no such stream', headers: {} }, requestId);
      return;
    }
    const [, sig, encoded, index, seg] = m;
    const call = { requestId };
    if (index) {
      const text = await hls.hlsPlaylist(sig!, encoded!, call);
      res.statusCode = 200;
      res.setHeader('Content-Type', 'application/vnd.apple.mpegurl');
      res.setHeader('Cache-Control', 'no-cache');
      res.setHeader('Content-Length', Buffer.byteLength(text));
      res.end(method === 'HEAD' ? undefined : text);
      return;
    }
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort(new Error('client closed the connection'));
    });
    const up = await hls.hlsSegment(sig!, encoded!, Number(seg), rangeOf(req.headers.range as string | undefined), { ...call, signal: ac.signal });
    res.statusCode = up.status;
    res.setHeader('Content-Type', 'video/mp2t');
    res.setHeader('Accept-Ranges', 'bytes');
    if (up.contentLength !== undefined) res.setHeader('Content-Length', up.contentLength);
    if (up.contentRange) res.setHeader('Content-Range', up.contentRange);
    if (method === 'HEAD') {
      up.body.destroy();
      res.end();
      return;
    }
    await pipeline(up.body, res);
  } catch (err) {
    if (res.headersSent) {
      logger.debug(`hls ${redact(req.url ?? '')}: relay broke: ${redact(String((err as Error)?.message ?? err))}`, { requestId });
      res.destroy();
      return;
    }
    const he = httpErrorFor(err, method);
    if (he.status >= 500) logger.warn(`hls: ${he.status}: ${he.message}`, { requestId });
    sendError(res, he, requestId);
  }
}
