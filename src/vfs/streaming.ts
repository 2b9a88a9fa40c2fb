/**
 * StreamingFs: virtual HLS playlists next to videos. Wraps a FileSystem (the MountFs): next to
 * each video `<name>` (by extension) whose storage can stream (the drive, a share) the listing
 * shows a read-only `<name>.m3u8`. Nothing is ever uploaded for it, and writes to it answer
 * TBDAV_FORBIDDEN. A real file of that name wins over the virtual one.
 *
 * The virtual file is a small HLS master playlist whose one variant points back at the bridge:
 *   `<../ to the root>.terabox-dav/hls/<sig>/<path>/index.m3u8`
 * (relative, so it works behind a reverse proxy that mounts the bridge under a prefix). `<path>`
 * is the video's tree path (base64url) and `<sig>` an HMAC of it with a per-process secret: the
 * URL is the capability, and players fetch it and the segments without credentials or a TeraBox
 * token. Its content depends on the path only, so its size is known without asking the service
 * (PROPFIND lists it for free).
 *
 * The bridge's HLS route (src/dav/hls.ts) calls `hlsPlaylist` (the service's playlist of the video,
 * from streaming / share/streaming, with each segment URL replaced by `seg/<n>.ts`) and
 * `hlsSegment` (segment n relayed from the service with Range). Playlists are cached
 * `playlistTtlMs` (segment URLs expire); a refused segment URL fetches the playlist again once.
 * The duration the service reports (mediameta / filemetas) is a dead property of the .m3u8 file:
 * `{urn:terabox-dav:}duration` (seconds), for players that ask by PROPFIND; the playlist's
 * #EXTINF lines carry the segments' durations for the others.
 *
 * Concurrency: `playlists` and `media` are LRU caches of promises (one fetch per path at a time);
 * entries are replaced whole.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { TbdavError, isTbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { silentLogger } from '../shared/logger.js';
import type { ByteRange, CallOptions, Quota } from '../remote/types.js';
import type { MediaInfo, SegmentResponse, Streaming } from '../remote/capabilities.js';
import { clampRange } from '../remote/range.js';
import { baseName, normalizePath, parentPath } from './paths.js';
import type { CopyMoveResult, DeadProps, FileSystem, OpenReadResult, PutOptions, PutResult, VfsEntry } from './types.js';

/** URL path prefix of the bridge's HLS route. */
export const HLS_PREFIX = '/.terabox-dav/hls/';

/** Dead property of a virtual playlist: the video's duration in seconds. */
export const DURATION_PROP = '{urn:terabox-dav:}duration';

/** Videos by extension (TeraBox's category 1). */
export const VIDEO_EXTENSIONS: ReadonlySet<string> = new Set(['mp4', 'mkv', 'avi', 'mov', 'wmv', 'flv', 'webm', 'm4v', '3gp', 'ts', 'mpg', 'mpeg', 'rmvb', 'rm', 'vob', 'm2ts']);

const BANDWIDTH: Record<string, number> = { M3U8_AUTO_480: 1_200_000, M3U8_AUTO_720: 2_500_000, M3U8_AUTO_1080: 5_000_000, M3U8_MP3_128: 128_000 };

export function isVideoName(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return dot > 0 && VIDEO_EXTENSIONS.has(name.slice(dot + 1).toLowerCase());
}

export interface StreamSource {
  streaming: Streaming;
  /** The video's path in that storage. */
  path: string;
}

/** What the HLS route needs (src/dav/hls.ts). */
export interface HlsService {
  hlsPlaylist(sig: string, encodedPath: string, opts?: CallOptions): Promise<string>;
  hlsSegment(sig: string, encodedPath: string, index: number, range: ByteRange | undefined, opts?: CallOptions): Promise<SegmentResponse>;
}

export interface StreamingFsOptions {
  inner: FileSystem;
  /** Where the video at a tree path can be streamed from; undefined: not there. */
  sourceFor(path: string): Promise<StreamSource | undefined>;
  /** Stream type asked of the service (e.g. M3U8_AUTO_720). */
  type: string;
  /** HMAC key of the playlist URLs (default: random per process). */
  secret?: Buffer;
  /** How long a fetched playlist is reused (default 10 min). */
  playlistTtlMs?: number;
  /** How long a duration is remembered (default 1 h). */
  mediaTtlMs?: number;
  logger?: Logger;
}

interface Fetched {
  text: string;
  uris: string[];
}

export class StreamingFs implements FileSystem, HlsService {
  readonly inner: FileSystem;
  private readonly opts: StreamingFsOptions;
  private readonly secret: Buffer;
  private readonly logger: Logger;
  private readonly playlists: LRUCache<string, Promise<Fetched>>;
  private readonly media: LRUCache<string, Promise<MediaInfo | null>>;

  constructor(opts: StreamingFsOptions) {
    this.inner = opts.inner;
    this.opts = opts;
    this.secret = opts.secret ?? randomBytes(32);
    this.logger = opts.logger ?? silentLogger();
    this.playlists = new LRUCache({ max: 1000, ttl: opts.playlistTtlMs ?? 10 * 60_000 });
    this.media = new LRUCache({ max: 10_000, ttl: opts.mediaTtlMs ?? 3600_000 });
  }

  // ------------------------------------------------------------------ virtual files

  private sign(videoPath: string): string {
    return createHmac('sha256', this.secret).update(`hls:${this.opts.type}:${videoPath}`).digest('base64url').slice(0, 22);
  }

  /** The master playlist of a video (what the virtual .m3u8 holds). */
  masterPlaylist(videoPath: string): string {
    const depth = parentPath(videoPath) === '/' ? 0 : parentPath(videoPath).split('/').length - 1;
    const url = `${'../'.repeat(depth)}${HLS_PREFIX.slice(1)}${this.sign(videoPath)}/${Buffer.from(videoPath).toString('base64url')}/index.m3u8`;
    const bw = BANDWIDTH[this.opts.type] ?? 2_500_000;
    return `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=${bw}\n${url}\n`;
  }

  private virtualEntry(video: VfsEntry): VfsEntry {
    const path = `${video.path}.m3u8`;
    const text = this.masterPlaylist(video.path);
    return { path, name: baseName(path), isDir: false, size: Buffer.byteLength(text), mtime: video.mtime, ctime: video.ctime, hash: `hls-${this.sign(video.path)}` };
  }

  /** The video a virtual playlist path stands for, if the path is one (no real file there). */
  private async virtualOf(path: string, opts?: CallOptions): Promise<VfsEntry | undefined> {
    if (!path.endsWith('.m3u8') || !isVideoName(baseName(path).slice(0, -5))) return undefined;
    try {
      await this.inner.stat(path, opts);
      return undefined; // a real file of that name
    } catch (err) {
      if (!isTbdavError(err, 'TBDAV_NOT_FOUND')) throw err;
    }
    let video: VfsEntry;
    try {
      video = await this.inner.stat(path.slice(0, -5), opts);
    } catch (err) {
      if (isTbdavError(err, 'TBDAV_NOT_FOUND')) return undefined;
      throw err;
    }
    if (video.isDir || !(await this.opts.sourceFor(video.path))) return undefined;
    return video;
  }

  private refuse(op: string, path: string): TbdavError {
    return new TbdavError('TBDAV_FORBIDDEN', `${op} ${path}: a virtual playlist of the bridge (streaming.enabled): read-only, never uploaded`);
  }

  // ------------------------------------------------------------------ FileSystem

  async stat(path: string, opts?: CallOptions): Promise<VfsEntry> {
    const p = normalizePath(path);
    const video = await this.virtualOf(p, opts);
    if (video) return this.virtualEntry(video);
    return this.inner.stat(p, opts);
  }

  async list(path: string, opts?: CallOptions): Promise<VfsEntry[]> {
    const p = normalizePath(path);
    const entries = await this.inner.list(p, opts);
    const names = new Set(entries.map((e) => e.name));
    const videos = entries.filter((e) => !e.isDir && isVideoName(e.name) && !names.has(`${e.name}.m3u8`));
    if (videos.length === 0 || !(await this.opts.sourceFor(videos[0]!.path))) return entries;
    const out = [...entries, ...videos.map((v) => this.virtualEntry(v))];
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async openRead(path: string, range?: ByteRange, opts?: CallOptions): Promise<OpenReadResult> {
    const p = normalizePath(path);
    const video = await this.virtualOf(p, opts);
    if (!video) return this.inner.openRead(p, range, opts);
    const entry = this.virtualEntry(video);
    const body = Buffer.from(this.masterPlaylist(video.path));
    const { start, end } = clampRange('openRead', p, body.length, range);
    return { entry, stream: Readable.from([body.subarray(start, end + 1)]) };
  }

  async put(path: string, body: Readable, opts: PutOptions): Promise<PutResult> {
    const p = normalizePath(path);
    if (await this.virtualOf(p, opts)) {
      body.resume();
      throw this.refuse('PUT', p);
    }
    return this.inner.put(p, body, opts);
  }

  async mkdir(path: string, opts?: CallOptions): Promise<VfsEntry> {
    const p = normalizePath(path);
    if (await this.virtualOf(p, opts)) throw this.refuse('MKCOL', p);
    return this.inner.mkdir(p, opts);
  }

  async remove(path: string, opts?: CallOptions): Promise<void> {
    const p = normalizePath(path);
    if (await this.virtualOf(p, opts)) throw this.refuse('DELETE', p);
    return this.inner.remove(p, opts);
  }

  async move(from: string, to: string, opts: { overwrite: boolean; mtime?: number } & CallOptions): Promise<CopyMoveResult> {
    const f = normalizePath(from);
    const t = normalizePath(to);
    if (await this.virtualOf(f, opts)) throw this.refuse('MOVE', f);
    if (await this.virtualOf(t, opts)) throw this.refuse('MOVE', t);
    return this.inner.move(f, t, opts);
  }

  async copy(from: string, to: string, opts: { overwrite: boolean; depth: 0 | 'infinity'; mtime?: number } & CallOptions): Promise<CopyMoveResult> {
    const f = normalizePath(from);
    const t = normalizePath(to);
    if (await this.virtualOf(f, opts)) throw this.refuse('COPY', f);
    if (await this.virtualOf(t, opts)) throw this.refuse('COPY', t);
    return this.inner.copy(f, t, opts);
  }

  async quota(opts?: CallOptions): Promise<Quota> {
    return this.inner.quota(opts);
  }

  async getProps(path: string): Promise<DeadProps> {
    const p = normalizePath(path);
    const video = await this.virtualOf(p);
    if (!video) return this.inner.getProps(p);
    const info = await this.mediaInfo(video.path);
    return info ? { [DURATION_PROP]: String(Math.round(info.durationSec)) } : {};
  }

  async patchProps(path: string, patch: Record<string, string | null>): Promise<void> {
    const p = normalizePath(path);
    if (await this.virtualOf(p)) throw this.refuse('PROPPATCH', p);
    return this.inner.patchProps(p, patch);
  }

  async close(): Promise<void> {
    await this.inner.close();
  }

  // ------------------------------------------------------------------ the service side

  private async mediaInfo(videoPath: string): Promise<MediaInfo | undefined> {
    let p = this.media.get(videoPath);
    if (!p) {
      p = (async () => {
        const src = await this.opts.sourceFor(videoPath);
        if (!src?.streaming.mediaInfo) return null;
        return (await src.streaming.mediaInfo(src.path)) ?? null;
      })();
      this.media.set(videoPath, p);
      p.catch((err: unknown) => {
        // not remembered: asked again next time
        this.media.delete(videoPath);
        this.logger.debug(`streaming: duration of ${videoPath} unknown`, { error: String(err) });
      });
    }
    try {
      return (await p) ?? undefined;
    } catch {
      return undefined; // a PROPFIND shows no duration rather than failing (logged above)
    }
  }

  /** The video path of a signed HLS URL (TBDAV_NOT_FOUND when the signature does not match). */
  private videoPathOf(sig: string, encodedPath: string): string {
    let path: string;
    try {
      path = Buffer.from(encodedPath, 'base64url').toString('utf8');
    } catch {
      throw new TbdavError('TBDAV_NOT_FOUND', 'hls: no such stream');
    }
    const want = Buffer.from(this.sign(path));
    const got = Buffer.from(sig);
    if (!path.startsWith('/') || want.length !== got.length || !timingSafeEqual(want, got)) throw new TbdavError('TBDAV_NOT_FOUND', 'hls: no such stream');
    return path;
  }

  private async source(videoPath: string): Promise<StreamSource> {
    const src = await this.opts.sourceFor(videoPath);
    if (!src) throw new TbdavError('TBDAV_NOT_FOUND', `hls ${videoPath}: no such video`);
    return src;
  }

  private fetched(videoPath: string, opts: CallOptions): Promise<Fetched> {
    let p = this.playlists.get(videoPath);
    if (!p) {
      p = (async () => {
        const src = await this.source(videoPath);
        const text = await src.streaming.playlist(src.path, this.opts.type, { requestId: opts.requestId });
        if (!/^\s*#EXTM3U/.test(text)) throw new TbdavError('TBDAV_RETRYABLE', `hls ${videoPath}: the service's playlist is not an m3u8`);
        const uris = text
          .split(/\r?\n/)
          .map((l) => l.trim())
          .filter((l) => l !== '' && !l.startsWith('#'));
        return { text, uris };
      })();
      this.playlists.set(videoPath, p);
      p.catch(() => this.playlists.delete(videoPath));
    }
    return p;
  }

  async hlsPlaylist(sig: string, encodedPath: string, opts: CallOptions = {}): Promise<string> {
    const videoPath = this.videoPathOf(sig, encodedPath);
    const { text } = await this.fetched(videoPath, opts);
    let n = 0;
    return (
      text
        .split(/\r?\n/)
        .map((l) => (l.trim() === '' || l.trim().startsWith('#') ? l : `seg/${n++}.ts`))
        .join('\n')
        .replace(/\n*$/, '\n')
    );
  }

  async hlsSegment(sig: string, encodedPath: string, index: number, range: ByteRange | undefined, opts: CallOptions = {}): Promise<SegmentResponse> {
    const videoPath = this.videoPathOf(sig, encodedPath);
    for (let attempt = 1; ; attempt++) {
      const { uris } = await this.fetched(videoPath, opts);
      const uri = uris[index];
      if (uri === undefined) throw new TbdavError('TBDAV_NOT_FOUND', `hls ${videoPath}: no segment ${index}`);
      const src = await this.source(videoPath);
      try {
        return await src.streaming.openSegment(uri, range, opts);
      } catch (err) {
        // segment URLs expire with their playlist: fetch it again once
        if (attempt > 1 || !isTbdavError(err) || err.code === 'TBDAV_RANGE' || err.code === 'TBDAV_ABORTED') throw err;
        this.logger.debug(`hls ${videoPath}: segment ${index} refused (${err.code}), fetching the playlist again`, { requestId: opts.requestId });
        this.playlists.delete(videoPath);
      }
    }
  }
}

