/**
 * Optional capabilities of a Remote beyond the contract in types.ts. A remote offers one by
 * having its methods; the vfs tests for them with the guards below, never by the remote's class.
 *
 *  - CopyOut: a server-side copy of the remote's files or folders into the drive this remote was
 *    built for, without a byte passing through the bridge (TeraBox share/transfer: a share into
 *    the user's drive; rclone calls this a server-side copy across remotes of one backend).
 *  - Streaming: online playback. The service makes an HLS playlist of a video; the bridge serves
 *    it with segment URLs of its own and relays the segments (players need no TeraBox token).
 *
 * Errors: as in types.ts (TbdavError with a stable code).
 */
import type { Readable } from 'node:stream';
import type { ByteRange, CallOptions } from './types.js';

/** A server-side copy under way. */
export interface CopyOutHandle {
  /** Settles once the whole copy is in the drive (or failed). Never rejects unhandled: callers await it. */
  readonly done: Promise<void>;
}

export interface CopyOut {
  /**
   * Copy `from` (a file or folder of this remote) to `to` (a path of the drive remote whose parent
   * exists). With `overwrite`, what is at `to` is replaced once the copy is complete (it stays
   * until then, and when the copy fails); without it, nothing may be at `to`. Resolves once the
   * service accepted the copy; `done` settles when it is complete.
   */
  copyOut(from: string, to: string, opts?: CallOptions & { overwrite?: boolean }): Promise<CopyOutHandle>;
}

/** What a relayed HLS segment answered. */
export interface SegmentResponse {
  /** 200, 206 or 416 (another status is an error). */
  status: number;
  contentLength?: number;
  contentRange?: string;
  contentType?: string;
  /** The body (empty for 416); destroy it to stop the transfer. */
  body: Readable;
}

export interface MediaInfo {
  /** Seconds. */
  durationSec: number;
  width?: number;
  height?: number;
}

export interface Streaming {
  /** The service's HLS playlist (m3u8 text) of a video or audio file at `path` of this remote. */
  playlist(path: string, type: string, opts?: CallOptions): Promise<string>;
  /** Open one segment URL named by such a playlist, with an optional byte range. */
  openSegment(url: string, range: ByteRange | undefined, opts?: CallOptions): Promise<SegmentResponse>;
  /** Duration (and picture size) of a media file, when the service tells; undefined when not. */
  mediaInfo?(path: string, opts?: CallOptions): Promise<MediaInfo | undefined>;
}

export function hasCopyOut(r: object): r is CopyOut {
  return typeof (r as Partial<CopyOut>).copyOut === 'function';
}

export function hasStreaming(r: object): r is Streaming {
  return typeof (r as Partial<Streaming>).playlist === 'function' && typeof (r as Partial<Streaming>).openSegment === 'function';
}
