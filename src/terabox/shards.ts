/**
 * TeraBox's shard rule, in one place: how a file is cut for upload (precreate's block_list,
 * superfile2's partseq), the md5 the service reports for a file made of those shards, and the
 * resume token of an upload session (what write-back journals to continue after a restart).
 *
 * The rest of the code speaks of content: the vfs asks the Remote how it wants a body cut
 * (`Remote.shardSizeFor`, answered here) and hashes each piece while receiving it; it never knows
 * the numbers below.
 */
import { createHash } from 'node:crypto';
import { EMPTY_MD5 } from '../remote/hash.js';
import { MAX_SHARDS, SHARD_MIN_BYTES } from './api/types.js';

/**
 * Shard size for a file of `size` bytes: SHARD_MIN_BYTES (4 MiB) unless the file would need more
 * than `maxShards` shards; then the smallest multiple of 4 MiB that fits in `maxShards`.
 */
export function shardSizeFor(size: number, maxShards: number = MAX_SHARDS): number {
  if (!Number.isFinite(size) || size < 0) throw new RangeError(`shard size for ${size} bytes: bad size`);
  const perShard = Math.ceil(size / maxShards);
  return Math.max(1, Math.ceil(perShard / SHARD_MIN_BYTES)) * SHARD_MIN_BYTES;
}

/**
 * The md5 TeraBox reports for a file with these shard md5s (the Baidu-family rule, confirmed by
 * the spec's decoded examples): the content md5 for one shard (EMPTY_MD5 for none), md5 of
 * JSON.stringify(blockMd5s) for several.
 */
export function serviceMd5(blockMd5s: readonly string[]): string {
  if (blockMd5s.length <= 1) return blockMd5s[0] ?? EMPTY_MD5;
  return createHash('md5').update(JSON.stringify(blockMd5s)).digest('hex');
}

/** Where an upload session stands: the service's uploadid and the shards it confirmed. */
export interface UploadSession {
  uploadId: string;
  doneShards: number[];
}

/** The opaque resume token of the Remote contract (WriteOptions.resume) for a session. */
export function encodeResumeToken(s: UploadSession): string {
  return JSON.stringify({ uploadId: s.uploadId, doneShards: [...s.doneShards].sort((a, b) => a - b) });
}

/**
 * The session in a resume token, with shard numbers kept to `0..shards-1`; undefined when the
 * token is not one of ours (garbage, or from another version): the upload then starts anew.
 */
export function decodeResumeToken(token: string, shards: number): UploadSession | undefined {
  let v: unknown;
  try {
    v = JSON.parse(token);
  } catch {
    return undefined; // not ours: the caller starts a fresh session (and logs it)
  }
  const s = v as Partial<UploadSession> | null;
  if (!s || typeof s.uploadId !== 'string' || s.uploadId === '' || !Array.isArray(s.doneShards)) return undefined;
  const done = [...new Set(s.doneShards.filter((i): i is number => Number.isInteger(i) && i >= 0 && i < shards))].sort((a, b) => a - b);
  return { uploadId: s.uploadId, doneShards: done };
}
