/**
 * Online playback of the emulated drive: /openapi/api/streaming (spec 3.4.9) and the playlist
 * that share/streaming (3.5.5, in shares.ts) answers too.
 *
 * The emulator does not transcode. Its playlist cuts the stored file into about ten slices on the
 * download host (signed `/content/<fs_id>?range=a-b` URLs, each served as a resource of its own),
 * with slice boundaries on multiples of 188 bytes, the MPEG-TS packet size: a stored MPEG-TS file
 * thus makes a playlist that players (ffprobe) open and whose segments each begin on a packet.
 * Durations: an estimate from the size (DURATION_BYTES_PER_SEC), spread over the slices by size;
 * share/mediameta answers the same estimate.
 *
 * Parameters (spec 3.4.9, all query, all mandatory): path, type.
 */
import { type ApiRequest, type Ctx, checkPath, makeContentUrl } from './context.js';
import { sendText } from './http-io.js';
import { EmulatorErrno, type Node, basenameOf } from './store.js';
import { categoryOf } from './util.js';

/** errno for streaming / mediameta of a file that is not audio or video (unverified choice). */
export const ERRNO_NOT_MEDIA = 31339;

/** The stream types of the spec's tables (3.4.9, 3.5.5). */
export const STREAM_TYPES: readonly string[] = ['M3U8_AUTO_480', 'M3U8_AUTO_720', 'M3U8_AUTO_1080', 'M3U8_MP3_128'];

/** Assumed bitrate of stored media for the duration estimate (mediameta, EXTINF): 2 Mbit/s. */
export const DURATION_BYTES_PER_SEC = 250_000;

/** MPEG-TS packet size: segment boundaries fall on multiples of it. */
export const TS_PACKET = 188;

/** The duration the emulator reports for a media file, seconds (at least 1). */
export function mediaDurationSec(n: Node): number {
  return Math.max(1, Math.floor(n.size / DURATION_BYTES_PER_SEC));
}

/** An HLS playlist whose segments are 188-byte aligned slices of the file on the download host. */
export function m3u8For(ctx: Ctx, n: Node): string {
  const packets = Math.ceil(n.size / TS_PACKET);
  const segBytes = Math.max(TS_PACKET * 64, Math.ceil(packets / 10) * TS_PACKET);
  const total = n.size / DURATION_BYTES_PER_SEC;
  const segs: { start: number; end: number; dur: number }[] = [];
  for (let start = 0; start < n.size; start += segBytes) {
    const end = Math.min(n.size, start + segBytes) - 1;
    segs.push({ start, end, dur: Math.max(0.001, (total * (end - start + 1)) / n.size) });
  }
  const target = Math.max(1, Math.ceil(Math.max(...segs.map((s) => s.dur))));
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', `#EXT-X-TARGETDURATION:${target}`, '#EXT-X-MEDIA-SEQUENCE:0', '#EXT-X-DISCONTINUITY'];
  for (const s of segs) lines.push(`#EXTINF:${s.dur.toFixed(3)},`, makeContentUrl(ctx, n, { start: s.start, end: s.end }));
  lines.push('#EXT-X-ENDLIST', '');
  return lines.join('\n');
}

/** `type` from the query: one of STREAM_TYPES (else errno 2). */
export function checkStreamType(r: ApiRequest): void {
  const type = r.query('type');
  if (type === undefined || type === '') throw new EmulatorErrno(2, 'missing parameter type');
  if (!STREAM_TYPES.includes(type)) throw new EmulatorErrno(2, 'unknown stream type');
}

/** A playable node: an audio or video file by extension, not empty (31339 otherwise; -9 absent). */
export function checkMedia(n: Node | undefined): Node {
  if (!n || n.isdir) throw new EmulatorErrno(-9, 'no such file');
  const cat = categoryOf(basenameOf(n.path));
  if ((cat !== 1 && cat !== 2) || n.size === 0) throw new EmulatorErrno(ERRNO_NOT_MEDIA, 'not an audio or video file');
  return n;
}

export function sendPlaylist(ctx: Ctx, r: ApiRequest, n: Node): undefined {
  sendText(r.res, 200, m3u8For(ctx, n), 'application/vnd.apple.mpegurl');
  return undefined;
}

/** GET /openapi/api/streaming (3.4.9): query path, type. */
export function streaming(ctx: Ctx, r: ApiRequest): undefined {
  const raw = r.query('path');
  if (raw === undefined || raw === '') throw new EmulatorErrno(2, 'missing parameter path');
  const path = checkPath(ctx, raw);
  checkStreamType(r);
  return sendPlaylist(ctx, r, checkMedia(ctx.store.get(path)));
}

export const streamingRoutes: Record<string, { method: 'GET' | 'POST'; handler: (ctx: Ctx, r: ApiRequest) => undefined }> = {
  '/openapi/api/streaming': { method: 'GET', handler: streaming },
};
