/**
 * Online playback over TeraboxClient (the Streaming capability of src/remote/capabilities.ts):
 * DriveStreaming for files of the drive (streaming, 3.4.9; filemetas for the duration) and
 * openSegment, shared with ShareRemote (share/streaming, 3.5.5), which relays one segment URL of a
 * playlist with Range.
 *
 * Segment URLs: the service's playlists name signed URLs on its video hosts. They are opened like
 * dlinks (client.openDlink: the token is appended, redirects followed, Range sent); the spec does
 * not say whether they need the token, and a signed URL ignores a parameter it does not use.
 *
 * No shared state.
 */
import type { ByteRange, CallOptions } from '../remote/types.js';
import type { MediaInfo, SegmentResponse, Streaming } from '../remote/capabilities.js';
import { TbdavError, isTbdavError } from '../shared/errors.js';
import type { StreamType } from './api/types.js';
import type { TeraboxClient } from './client.js';
import { isTeraboxApiError } from './errors.js';

export const STREAM_TYPES: readonly StreamType[] = ['M3U8_AUTO_480', 'M3U8_AUTO_720', 'M3U8_AUTO_1080', 'M3U8_MP3_128'];

export function isStreamType(v: string): v is StreamType {
  return (STREAM_TYPES as readonly string[]).includes(v);
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Open one segment URL of a playlist, relaying Range (200/206/416 answered as they come). */
export async function openSegment(client: TeraboxClient, url: string, range: ByteRange | undefined, opts: CallOptions = {}): Promise<SegmentResponse> {
  let res;
  try {
    res = await client.openDlink(url, range, opts.signal, opts.requestId);
  } catch (err) {
    if (isTeraboxApiError(err) && err.httpStatus === 416) {
      throw new TbdavError('TBDAV_RANGE', 'stream segment: range not satisfiable', { cause: err });
    }
    if (isTbdavError(err)) throw new TbdavError(err.code, `stream segment: ${err.message}`, { cause: err });
    throw err;
  }
  const out: SegmentResponse = { status: res.statusCode, body: res.body };
  const cl = Number(header(res.headers['content-length']));
  if (header(res.headers['content-length']) !== undefined && Number.isSafeInteger(cl)) out.contentLength = cl;
  const cr = header(res.headers['content-range']);
  if (cr) out.contentRange = cr;
  const ct = header(res.headers['content-type']);
  if (ct) out.contentType = ct;
  if (out.status !== 200 && out.status !== 206) {
    res.body.destroy();
    throw new TbdavError('TBDAV_RETRYABLE', `stream segment: the service answered HTTP ${out.status}`);
  }
  return out;
}

/** Streaming of files in the drive: paths are the drive remote's ('/' = `root`). */
export class DriveStreaming implements Streaming {
  private readonly root: string;

  constructor(
    private readonly client: TeraboxClient,
    root: string,
  ) {
    const r = root.replace(/\/+$/, '');
    this.root = r.startsWith('/') ? r : '/' + r;
  }

  private full(path: string): string {
    return path === '/' ? this.root : this.root + path;
  }

  async playlist(path: string, type: string, opts: CallOptions = {}): Promise<string> {
    if (!isStreamType(type)) throw new TbdavError('TBDAV_BAD_REQUEST', `playlist ${path}: unknown stream type ${type}`);
    try {
      return await this.client.streaming(this.full(path), type, opts);
    } catch (err) {
      if (isTbdavError(err)) throw new TbdavError(err.code, `playlist ${path}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  openSegment(url: string, range: ByteRange | undefined, opts: CallOptions = {}): Promise<SegmentResponse> {
    return openSegment(this.client, url, range, opts);
  }

  /** filemetas' `duration` (spec 3.4.6 lists it for videos); undefined when the service gives none. */
  async mediaInfo(path: string, opts: CallOptions = {}): Promise<MediaInfo | undefined> {
    const metas = await this.client.filemetas([this.full(path)], opts);
    const m = metas[0] as { errno?: number; duration?: unknown; width?: unknown; height?: unknown } | undefined;
    if (!m || Number(m.errno ?? 0) !== 0) return undefined;
    const d = Number(m.duration);
    if (!Number.isFinite(d) || d <= 0) return undefined;
    const info: MediaInfo = { durationSec: d };
    const w = Number(m.width);
    const h = Number(m.height);
    if (Number.isFinite(w) && w > 0) info.width = w;
    if (Number.isFinite(h) && h > 0) info.height = h;
    return info;
  }
}
