/**
 * Upload routes: precreate and create (api_domain) and superfile2 (upload_domain only).
 *
 * Rules enforced (see docs/protocol-notes.md "upload rules" and "md5 rule"):
 *  - block_list is a JSON array of 32-hex md5s, 1..MAX_SHARDS entries;
 *  - superfile2 refuses a shard smaller than minShardBytes unless partseq is the last index (31299),
 *    and a shard over maxShardBytes (31364);
 *  - create checks the block_list equals precreate's (31355), every shard is there with that md5
 *    (31363), and the shard sizes add up to `size` (31355);
 *  - the reported md5 is the content md5 for one shard; for several, md5(JSON.stringify(block_list))
 *    (md5Rule 'blocklist', default) or the content md5 (md5Rule 'content');
 *  - an unknown, expired or committed uploadid answers the variant's sessionGoneErrno (31190).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type ApiRequest, type Ctx, type UploadSession, checkPath, fileInfo, intParam, jsonParam, requireParam, requiredInt } from './context.js';
import { multipartBoundary, receiveMultipartFile } from './http-io.js';
import type { Handler, RouteDef } from './routes-files.js';
import { type BlobHandle, EmulatorErrno, type Node, blockKey, dirnameOf, joinPath } from './store.js';
import { EMPTY_MD5, md5Hex, randomToken, requestId } from './util.js';
import { md5ForWire } from './variants.js';
import { MAX_SHARDS, type WireCreateAnswer, type WirePrecreateAnswer, type WirePrecreateRapidAnswer, type WireSuperfile2Answer } from './wire.js';

/** create: block_list / size / path do not match precreate and the shards (xpan "param exception"). */
export const ERRNO_UPLOAD_MISMATCH = 31355;
/** Default errno of an unknown uploadid (the variant's sessionGoneErrno decides; see variants.ts). */
export const ERRNO_UPLOADID = 31190;
export const ERRNO_SHARD_MISSING = 31363;
export const ERRNO_SHARD_SMALL = 31299;
export const ERRNO_SHARD_LARGE = 31364;
export const ERRNO_PCS_PARAM = 31023;
/** refuseZeroByte: the errno a 0-byte precreate/create gets (xpan "param error"; unverified). */
export const ERRNO_ZERO_BYTE = 2;

/** The md5 of the block-list rule: the content md5 for one shard, md5 of the JSON block list otherwise. */
export function reportedMd5(blocks: string[]): string {
  return blocks.length === 1 ? blocks[0]! : md5Hex(JSON.stringify(blocks));
}

async function contentMd5(ctx: Ctx, blob: BlobHandle): Promise<string> {
  const h = createHash('md5');
  for (let i = 0; i < blob.parts.length; i++) {
    for await (const chunk of createReadStream(ctx.store.partPath(blob.id, i))) h.update(chunk as Buffer);
  }
  return h.digest('hex');
}

/**
 * The md5 a new file of this content gets (plain hex) under the md5Rule in force, and its content
 * md5 when that was computed (kept on the blob: computed once per content).
 */
async function fileMd5(ctx: Ctx, blocks: string[], blob: BlobHandle): Promise<{ md5: string; cmd5?: string }> {
  if (blocks.length === 1 || ctx.opts.variant.md5Rule === 'blocklist') return { md5: reportedMd5(blocks), ...(blob.cmd5 ? { cmd5: blob.cmd5 } : {}) };
  const cmd5 = blob.cmd5 ?? (await contentMd5(ctx, blob));
  ctx.store.setBlobContentMd5(blob.id, cmd5);
  return { md5: cmd5, cmd5 };
}

function sessionGone(ctx: Ctx, msg: string): EmulatorErrno {
  return new EmulatorErrno(ctx.opts.variant.sessionGoneErrno, msg);
}

function isMd5List(v: unknown): v is string[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string' && /^[0-9a-fA-F]{32}$/.test(x));
}

function blockListParam(r: ApiRequest): string[] {
  const blocks = jsonParam(r, 'block_list', isMd5List).map((s) => s.toLowerCase());
  if (blocks.length > MAX_SHARDS) throw new EmulatorErrno(31365, `more than ${MAX_SHARDS} shards`);
  return blocks;
}

/** rtype: mandatory for create (table 3.4.3), optional (default 1) for precreate, whose table lacks it (xpan's). */
function rtypeParam(r: ApiRequest, mandatory: boolean): 0 | 1 | 2 | 3 {
  const v = intParam(r, 'rtype', mandatory ? requiredInt : 1);
  if (v < 0 || v > 3) throw new EmulatorErrno(2, 'rtype must be 0..3');
  return v as 0 | 1 | 2 | 3;
}

/**
 * Where a new file goes given rtype: a free path, or an existing node to answer with (rtype 2 and
 * the same content). Throws -8 on conflict with rtype 0 (or overwrite of a folder).
 */
export function resolveConflict(ctx: Ctx, path: string, rtype: number, blocks: string[] | undefined): { path: string } | { existing: Node } {
  const existing = ctx.store.get(path);
  if (!existing) return { path };
  if (rtype === 0) throw new EmulatorErrno(-8, 'file exists');
  if (rtype === 3) {
    if (existing.isdir !== (blocks === undefined)) throw new EmulatorErrno(-8, 'a file and a folder cannot replace each other');
    ctx.store.remove(existing);
    return { path };
  }
  if (rtype === 2 && blocks && !existing.isdir && blockKey(existing.blocks ?? []) === blockKey(blocks)) return { existing };
  const dir = dirnameOf(path);
  return { path: joinPath(dir, ctx.store.freeName(dir, path.slice(dir.length + 1))) };
}

function fileAnswer(ctx: Ctx, n: Node): WireCreateAnswer {
  const fi = fileInfo(n);
  return {
    fs_id: n.fs_id,
    md5: md5ForWire(ctx.opts.variant, n.md5!, 'create'),
    server_filename: fi.server_filename,
    category: fi.category,
    path: n.path,
    size: n.size,
    ctime: n.ctime,
    mtime: n.mtime,
    isdir: 0,
    from_type: 1,
    name: n.path,
  };
}

function checkQuota(ctx: Ctx, size: number): void {
  if (ctx.store.usedBytes + size > ctx.opts.quotaTotalBytes) throw new EmulatorErrno(-10, 'no space left');
}

function localTimes(r: ApiRequest): { lctime?: number; lmtime?: number } {
  const out: { lctime?: number; lmtime?: number } = {};
  const c = intParam(r, 'local_ctime', -1);
  const m = intParam(r, 'local_mtime', -1);
  if (c >= 0) out.lctime = c;
  if (m >= 0) out.lmtime = m;
  return out;
}

const precreate: Handler = async (ctx, r): Promise<WirePrecreateAnswer | WirePrecreateRapidAnswer> => {
  const path = checkPath(ctx, requireParam(r, 'path'));
  if (requireParam(r, 'autoinit') !== '1') throw new EmulatorErrno(2, 'autoinit must be 1');
  const blocks = blockListParam(r);
  const sizeRaw = r.param('size');
  const size = sizeRaw === undefined || sizeRaw === '' ? undefined : intParam(r, 'size', 0);
  if (size !== undefined && size < 0) throw new EmulatorErrno(2, 'size must be >= 0');
  const rtype = rtypeParam(r, false);
  const zero = size === 0 || (blocks.length === 1 && blocks[0] === EMPTY_MD5);
  if (ctx.opts.refuseZeroByte && zero) throw new EmulatorErrno(ERRNO_ZERO_BYTE, 'empty files are not accepted');
  if (size !== undefined) checkQuota(ctx, size);
  const blob = ctx.store.acquireBlob(blocks, size);
  if (blob) {
    // rapid upload: the content is in the drive already; the file is created at path now. The hold
    // keeps the content alive while rtype 3 removes the old file, which may be its last other user.
    let n: Node;
    try {
      checkQuota(ctx, blob.size);
      const md5 = await fileMd5(ctx, blocks, blob);
      const place = resolveConflict(ctx, path, rtype, blocks);
      n = 'existing' in place ? place.existing : ctx.store.addFile(place.path, { size: blob.size, ...md5, blob: blob.id, blocks, parts: blob.parts, ...localTimes(r) });
    } finally {
      ctx.store.releaseBlob(blob.id);
    }
    const rid = requestId();
    return {
      return_type: 2,
      info: { size: n.size, category: fileInfo(n).category, isdir: 0, request_id: rid, path: n.path, fs_id: n.fs_id, md5: md5ForWire(ctx.opts.variant, n.md5!, 'precreate'), ctime: n.ctime, mtime: n.mtime },
      request_id: rid,
    };
  }
  const uploadid = `N1-${Buffer.from(`127.0.0.1:${Math.floor(Date.now() / 1000)}:${randomToken(12)}`).toString('base64')}`;
  const dir = join(ctx.store.uploadDir, randomToken(12));
  await mkdir(dir, { recursive: true });
  const s: UploadSession = { uploadid, path, blocks, dir, parts: new Map(), committing: false, rtype };
  if (size !== undefined) s.size = size;
  ctx.uploads.set(uploadid, s);
  return { path, uploadid, return_type: 1, block_list: blocks.map((_, i) => i) };
};

/** superfile2 answers in the PCS shape: error_code/error_msg (errno too, for one check path). */
function pcsError(errno: number, msg: string): EmulatorErrno {
  return new EmulatorErrno(errno, msg);
}

const superfile2: Handler = async (ctx, r): Promise<WireSuperfile2Answer> => {
  const q = (n: string): string => {
    const v = r.url.searchParams.get(n);
    if (v === null || v === '') throw pcsError(ERRNO_PCS_PARAM, `missing parameter ${n}`);
    return v;
  };
  if (q('method') !== 'upload') throw pcsError(ERRNO_PCS_PARAM, 'method must be upload');
  if (q('app_id') !== '250528') throw pcsError(ERRNO_PCS_PARAM, 'bad app_id');
  const path = q('path');
  const uploadid = q('uploadid');
  const partseqRaw = q('partseq');
  if (!/^\d{1,5}$/.test(partseqRaw)) throw pcsError(ERRNO_PCS_PARAM, 'bad partseq');
  const partseq = Number(partseqRaw);
  const s = ctx.uploads.get(uploadid);
  if (!s || s.committing) throw sessionGone(ctx, 'unknown uploadid');
  let normPath: string;
  try {
    normPath = checkPath(ctx, path);
  } catch {
    throw pcsError(ERRNO_PCS_PARAM, 'bad path');
  }
  if (normPath !== s.path) throw pcsError(ERRNO_PCS_PARAM, 'path differs from precreate');
  if (partseq >= s.blocks.length) throw pcsError(ERRNO_PCS_PARAM, 'partseq out of range');
  const boundary = multipartBoundary(r.req.headers['content-type']);
  if (!boundary) throw pcsError(ERRNO_PCS_PARAM, 'body must be multipart/form-data');
  const tmp = join(s.dir, `${partseq}.${randomToken(6)}.tmp`);
  const drop = (): Promise<void> => rm(tmp, { force: true });
  let got: Awaited<ReturnType<typeof receiveMultipartFile>>;
  try {
    got = await receiveMultipartFile(r.req, boundary, 'file', tmp, {
      rate: () => ctx.opts.throughputBytesPerSec,
      onBytes: () => undefined,
    });
  } catch (err) {
    await drop();
    if (r.req.destroyed) throw err; // the client went away
    if (ctx.uploads.get(uploadid) !== s) throw sessionGone(ctx, 'upload session expired meanwhile');
    throw pcsError(ERRNO_PCS_PARAM, `malformed multipart body: ${(err as Error).message}`);
  }
  if (!got.found) {
    await drop();
    throw pcsError(ERRNO_PCS_PARAM, 'no file field');
  }
  // the query parameters belong in the query only (3.4.2), not among the body's parts
  const misplaced = got.fields.filter((f) => SUPERFILE2_QUERY.includes(f));
  if (misplaced.length > 0) {
    await drop();
    throw pcsError(ERRNO_PCS_PARAM, `parameter ${misplaced.join(', ')} belongs in the query`);
  }
  ctx.counters.bytesUploaded += got.size;
  const last = partseq === s.blocks.length - 1;
  if (!last && got.size < ctx.opts.minShardBytes) {
    await drop();
    throw pcsError(ERRNO_SHARD_SMALL, `shard ${partseq} is smaller than ${ctx.opts.minShardBytes} bytes and not the last`);
  }
  if (got.size > ctx.opts.maxShardBytes) {
    await drop();
    throw pcsError(ERRNO_SHARD_LARGE, `shard ${partseq} is larger than ${ctx.opts.maxShardBytes} bytes`);
  }
  if (ctx.uploads.get(uploadid) !== s || s.committing) {
    await drop();
    throw sessionGone(ctx, 'upload finished or expired meanwhile');
  }
  const file = join(s.dir, String(partseq));
  await rename(tmp, file);
  s.parts.set(partseq, { md5: got.md5, size: got.size, file });
  return { md5: got.md5, partseq, uploadid, request_id: requestId() };
};

/**
 * Move the shard files into a new blob (one file per shard: no copy, whatever the size), or take
 * the stored content with the same block_list. Either way the caller holds a reference on the
 * returned blob and must releaseBlob it.
 */
async function assemble(ctx: Ctx, s: UploadSession, size: number): Promise<BlobHandle> {
  const existing = ctx.store.acquireBlob(s.blocks, size);
  if (existing) return existing;
  const id = randomToken(16);
  await mkdir(ctx.store.blobPath(id));
  const parts: number[] = [];
  try {
    for (let i = 0; i < s.blocks.length; i++) {
      const p = s.parts.get(i)!;
      await rename(p.file, ctx.store.partPath(id, i));
      parts.push(p.size);
    }
  } catch (err) {
    await rm(ctx.store.blobPath(id), { recursive: true, force: true });
    throw err;
  }
  // another upload of the same content may have finished meanwhile: keep one copy of it
  const raced = ctx.store.acquireBlob(s.blocks, size);
  if (raced) {
    await rm(ctx.store.blobPath(id), { recursive: true, force: true });
    return raced;
  }
  ctx.store.addBlob(id, size, s.blocks, parts);
  return { id, size, parts };
}

const create: Handler = async (ctx, r): Promise<WireCreateAnswer> => {
  const path = checkPath(ctx, requireParam(r, 'path'));
  const rtype = rtypeParam(r, true);
  if (r.param('isdir') === '1') {
    const pre = ctx.store.get(path);
    let n: Node;
    if (pre?.isdir && rtype === 3) n = pre; // overwrite of a folder by a folder: keep it
    else {
      const place = resolveConflict(ctx, path, rtype, undefined);
      n = 'existing' in place ? place.existing : ctx.store.mkdirp(place.path);
    }
    return { fs_id: n.fs_id, path: n.path, server_filename: fileInfo(n).server_filename, category: 6, size: 0, ctime: n.ctime, mtime: n.mtime, isdir: 1, name: n.path };
  }
  const size = intParam(r, 'size', -1);
  if (size < 0) throw new EmulatorErrno(2, 'missing parameter size');
  const uploadid = requireParam(r, 'uploadid');
  const blocks = blockListParam(r);
  const s = ctx.uploads.get(uploadid);
  if (!s || s.committing) throw sessionGone(ctx, 'unknown uploadid');
  if (s.path !== path) throw new EmulatorErrno(ERRNO_UPLOAD_MISMATCH, 'path differs from precreate');
  if (blockKey(blocks) !== blockKey(s.blocks)) throw new EmulatorErrno(ERRNO_UPLOAD_MISMATCH, 'block_list differs from precreate');
  let total = 0;
  for (let i = 0; i < s.blocks.length; i++) {
    const p = s.parts.get(i);
    if (!p || p.md5 !== s.blocks[i]) throw new EmulatorErrno(ERRNO_SHARD_MISSING, `shard ${i} missing`);
    if (i < s.blocks.length - 1 && p.size < ctx.opts.minShardBytes) throw new EmulatorErrno(ERRNO_SHARD_SMALL, `shard ${i} too small`);
    total += p.size;
  }
  if (total !== size) throw new EmulatorErrno(ERRNO_UPLOAD_MISMATCH, 'size differs from the shards');
  if (ctx.opts.refuseZeroByte && size === 0) throw new EmulatorErrno(ERRNO_ZERO_BYTE, 'empty files are not accepted');
  checkQuota(ctx, size);
  // conflicts with rtype 0 are refused before the (possibly long) assembly
  if (rtype === 0 && ctx.store.get(path)) throw new EmulatorErrno(-8, 'file exists');
  s.committing = true;
  let blob: BlobHandle;
  try {
    blob = await assemble(ctx, s, size);
  } catch (err) {
    s.committing = false;
    throw err;
  }
  ctx.uploads.delete(uploadid);
  rm(s.dir, { recursive: true, force: true }).catch((err: unknown) => ctx.logger.debug('emulator upload: cleanup failed', { err }));
  // the hold from assemble keeps the content alive while rtype 3 removes the old file (which may
  // share it); released at the end, it frees a new blob that no file took (a conflict refused it)
  try {
    const md5 = await fileMd5(ctx, blocks, blob);
    const place = resolveConflict(ctx, path, rtype, blocks);
    if ('existing' in place) return fileAnswer(ctx, place.existing);
    return fileAnswer(ctx, ctx.store.addFile(place.path, { size, ...md5, blob: blob.id, blocks, parts: blob.parts, ...localTimes(r) }));
  } finally {
    ctx.store.releaseBlob(blob.id);
  }
};

/**
 * Parameter places: precreate and create take every parameter in the body (3.4.1, 3.4.3 "body
 * Request parameters"; size/rtype/isdir/local times of precreate and isdir/local times of create
 * are xpan's); superfile2 takes its parameters in the query and only the file in the body (3.4.2).
 */
export const uploadApiRoutes: Record<string, RouteDef> = {
  '/openapi/api/precreate': { method: 'POST', handler: precreate, params: { body: ['path', 'autoinit', 'block_list', 'size', 'rtype', 'isdir', 'local_ctime', 'local_mtime'] } },
  '/openapi/api/create': { method: 'POST', handler: create, params: { body: ['path', 'size', 'uploadid', 'block_list', 'rtype', 'isdir', 'local_ctime', 'local_mtime'] } },
};
export const SUPERFILE2_QUERY: readonly string[] = ['method', 'app_id', 'path', 'uploadid', 'partseq'];
export const superfile2Route: RouteDef = { method: 'POST', handler: superfile2, params: { query: SUPERFILE2_QUERY, body: ['file'] } };
