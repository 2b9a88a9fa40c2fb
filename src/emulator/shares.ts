/**
 * Shares (external links) of the emulated drive and the /openapi/share/* routes.
 * A share is created by the test helper EmulatorHandle.createShare(paths, pwd); verify answers
 * Set-Cookie BOXCLND=<sekey>, and that value is what the other share routes take as `sekey`/`spd`
 * (the Cookie header BOXCLND is accepted too).
 *
 * Concurrency: maps mutated synchronously on the event loop only.
 */
import type { ShareFileInfo } from '../terabox/api/types.js';
import { NotFoundError } from '../shared/errors.js';
import { type ApiRequest, type Ctx, checkPath, fileInfo, intParam, jsonParam, makeDlink, requireParam } from './context.js';
import { sendText } from './http-io.js';
import {
  type Handler,
  ERRNO_BATCH_PARTIAL,
  checkMedia,
  checkStreamType,
  listInfo,
  m3u8For,
  parseFsIds,
  placeNode,
  sortNodes,
} from './routes-files.js';
import { EmulatorErrno, type Node, type PersistSection, basenameOf, joinPath } from './store.js';
import { randomDigits, randomToken, requestId } from './util.js';

export interface Share {
  shareid: number;
  surl: string;
  pwd: string;
  fsIds: number[];
  ctime: number;
}

export interface CreatedShare {
  surl: string;
  shorturl: string;
  shareid: number;
  uk: number;
}

export const ERRNO_SHARE_LINK = 105;
export const ERRNO_SHARE_PWD = -12;

export class ShareState implements PersistSection {
  readonly bySurl = new Map<string, Share>();
  readonly byId = new Map<number, Share>();
  /** BOXCLND values -> shareid */
  readonly sekeys = new Map<string, number>();
  activated = false;

  add(s: Share): void {
    this.bySurl.set(s.surl, s);
    this.byId.set(s.shareid, s);
  }

  dump(): unknown {
    return { shares: [...this.byId.values()], sekeys: [...this.sekeys], activated: this.activated };
  }

  load(data: unknown): void {
    const d = data as { shares?: Share[]; sekeys?: [string, number][]; activated?: boolean };
    for (const s of d.shares ?? []) this.add(s);
    for (const [k, v] of d.sekeys ?? []) this.sekeys.set(k, v);
    this.activated = d.activated ?? false;
  }
}

export function createShare(ctx: Ctx, paths: string[], pwd: string): CreatedShare {
  if (pwd !== '' && !/^[0-9a-z]{4}$/.test(pwd)) throw new EmulatorErrno(2, 'share pwd must be 4 digits or lowercase letters');
  const fsIds: number[] = [];
  for (const p of paths) {
    const n = ctx.store.get(p);
    if (!n) throw new NotFoundError(`createShare ${p}: no such path`);
    fsIds.push(n.fs_id);
  }
  let surl = randomToken(16);
  while (ctx.shares.bySurl.has(surl)) surl = randomToken(16);
  const shareid = Number(randomDigits(10));
  ctx.shares.add({ shareid, surl, pwd, fsIds, ctime: Math.floor(Date.now() / 1000) });
  ctx.store.markDirty();
  return { surl, shorturl: `1${surl}`, shareid, uk: ctx.uk };
}

function roots(ctx: Ctx, s: Share): Node[] {
  const out: Node[] = [];
  for (const id of s.fsIds) {
    const n = ctx.store.getById(id);
    if (n) out.push(n);
  }
  return out;
}

function inShare(ctx: Ctx, s: Share, n: Node): boolean {
  return roots(ctx, s).some((r) => n.path === r.path || n.path.startsWith(r.path + '/'));
}

function cookieSekey(r: ApiRequest): string | undefined {
  const c = r.req.headers.cookie;
  return c ? /(?:^|;\s*)BOXCLND=([^;]+)/.exec(c)?.[1] : undefined;
}

/** The share may be read with this request: no pwd, or a sekey/spd from a verify of it (else -9). */
function checkAccess(ctx: Ctx, r: ApiRequest, s: Share, param: 'sekey' | 'spd'): void {
  if (s.pwd === '') return;
  const key = r.param(param) || cookieSekey(r);
  if (!key || ctx.shares.sekeys.get(key) !== s.shareid) throw new EmulatorErrno(-9, `${param} is not valid for this share`);
}

function shareBySurlParam(ctx: Ctx, raw: string, withLeadingOne: boolean): Share {
  const surl = withLeadingOne ? (raw.startsWith('1') ? raw.slice(1) : '\0') : raw;
  const s = ctx.shares.bySurl.get(surl);
  if (!s) throw new EmulatorErrno(ERRNO_SHARE_LINK, 'no such share link');
  return s;
}

function shareById(ctx: Ctx, r: ApiRequest): Share {
  const id = intParam(r, 'shareid', -1);
  const s = ctx.shares.byId.get(id);
  if (!s) throw new EmulatorErrno(ERRNO_SHARE_LINK, 'no such share');
  const uk = r.param('uk') ?? r.param('from');
  if (uk !== undefined && uk !== String(ctx.uk)) throw new EmulatorErrno(ERRNO_SHARE_LINK, 'uk does not own the share');
  return s;
}

function asStrings(fi: ReturnType<typeof fileInfo>): ShareFileInfo {
  const out: ShareFileInfo = {
    category: String(fi.category),
    fs_id: String(fi.fs_id),
    isdir: String(fi.isdir),
    local_ctime: String(fi.local_ctime),
    local_mtime: String(fi.local_mtime),
    path: fi.path,
    server_ctime: String(fi.server_ctime),
    server_filename: fi.server_filename,
    server_mtime: String(fi.server_mtime),
    size: String(fi.size),
  };
  if (fi.md5) out.md5 = fi.md5;
  return out;
}

const verify: Handler = (ctx, r) => {
  const s = shareBySurlParam(ctx, requireParam(r, 'surl'), false);
  const pwd = r.param('pwd') ?? '';
  if (s.pwd !== '' && pwd !== s.pwd) throw new EmulatorErrno(ERRNO_SHARE_PWD, 'wrong extraction code');
  const sekey = randomToken(36);
  ctx.shares.sekeys.set(sekey, s.shareid);
  ctx.store.markDirty();
  r.res.setHeader('Set-Cookie', `BOXCLND=${encodeURIComponent(sekey)}; Path=/; HttpOnly`);
  return { randsk: randomToken(36), show_msg: 'Request Success' };
};

const shorturlinfo: Handler = (ctx, r) => {
  const s = shareBySurlParam(ctx, requireParam(r, 'shorturl'), true);
  checkAccess(ctx, r, s, 'spd');
  const list = roots(ctx, s).map((n) => ({ ...asStrings(fileInfo(n)), dlink: '' }));
  return {
    shareid: s.shareid,
    uk: ctx.uk,
    uk_str: String(ctx.uk),
    share_username: 'em***or',
    head_url: '',
    vip_type: 0,
    page: 1,
    root: 1,
    fcount: list.length,
    ctime: s.ctime,
    expiredtype: 0,
    list,
  };
};

const shareList: Handler = (ctx, r) => {
  const s = shareBySurlParam(ctx, requireParam(r, 'shorturl'), false);
  checkAccess(ctx, r, s, 'sekey');
  const page = intParam(r, 'page', 1);
  const num = Math.min(intParam(r, 'num', 100), 1000);
  if (page < 1 || num < 1) throw new EmulatorErrno(2, 'page and num start at 1');
  const order = r.param('order') ?? 'desc';
  if (order !== 'asc' && order !== 'desc') throw new EmulatorErrno(2, 'order must be asc or desc');
  const by = r.param('by') ?? 'name';
  if (by !== 'name' && by !== 'time' && by !== 'size') throw new EmulatorErrno(2, 'by must be name, time or size');
  let nodes: Node[];
  if (r.param('root') === '1' || !r.param('dir')) {
    nodes = roots(ctx, s);
  } else {
    const d = ctx.store.get(r.param('dir')!);
    if (!d || !d.isdir || !inShare(ctx, s, d)) throw new EmulatorErrno(-9, 'no such folder in the share');
    nodes = ctx.store.children(d.path);
  }
  sortNodes(nodes, by, order === 'desc');
  const list = nodes.slice((page - 1) * num, page * num).map((n) => listInfo(ctx, n, false));
  return { share_id: s.shareid, uk: ctx.uk, list, newno: '', show_msg: '' };
};

function shareFile(ctx: Ctx, s: Share, id: number): Node {
  const n = ctx.store.getById(id);
  if (!n || !inShare(ctx, s, n)) throw new EmulatorErrno(-9, `no such file ${id} in the share`);
  return n;
}

const shareDownload: Handler = (ctx, r) => {
  const s = shareById(ctx, r);
  checkAccess(ctx, r, s, 'sekey');
  const raw = jsonParam(r, 'fid_list', (v): v is unknown[] => parseFsIds(v) !== undefined);
  const list: ShareFileInfo[] = [];
  for (const id of parseFsIds(raw)!) {
    const n = shareFile(ctx, s, id);
    list.push({ ...asStrings(fileInfo(n)), dlink: n.isdir ? '' : makeDlink(ctx, n) });
  }
  return { shareid: s.shareid, uk: ctx.uk, sign: randomToken(20), timestamp: Math.floor(Date.now() / 1000), list };
};

const shareTransfer: Handler = (ctx, r) => {
  const s = shareById(ctx, r);
  checkAccess(ctx, r, s, 'sekey');
  const ondupRaw = r.param('ondup') ?? 'fail';
  if (ondupRaw !== 'fail' && ondupRaw !== 'newcopy') throw new EmulatorErrno(2, 'ondup must be fail or newcopy');
  const dest = checkPath(ctx, r.param('path') || ctx.appRoot, true);
  let items: Node[] = [];
  const errors: { errno: number; fsid: string; path: string }[] = [];
  if (r.param('fsidlist') !== undefined) {
    const raw = jsonParam(r, 'fsidlist', (v): v is unknown[] => parseFsIds(v) !== undefined);
    for (const id of parseFsIds(raw)!) {
      const n = ctx.store.getById(id);
      if (n && inShare(ctx, s, n)) items.push(n);
      else errors.push({ errno: -9, fsid: String(id), path: '' });
    }
  } else if (r.param('filelist') !== undefined) {
    const paths = jsonParam(r, 'filelist', (v): v is string[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string'));
    for (const p of paths) {
      const n = ctx.store.get(p);
      if (n && inShare(ctx, s, n)) items.push(n);
      else errors.push({ errno: -9, fsid: '0', path: p });
    }
  } else {
    throw new EmulatorErrno(2, 'fsidlist or filelist is required');
  }
  items = [...new Set(items)];
  ctx.store.mkdirp(dest);
  const info = [...errors];
  const extra: { from: string; from_fs_id: number; to: string; to_fs_id: number }[] = [];
  for (const n of items) {
    const target = joinPath(dest, basenameOf(n.path));
    const before = new Set(ctx.store.children(dest).map((c) => c.fs_id));
    const errno = placeNode(ctx, n, target, ondupRaw, 'copy');
    info.push({ errno, fsid: String(n.fs_id), path: n.path });
    if (errno === 0) {
      const created = ctx.store.children(dest).find((c) => !before.has(c.fs_id));
      if (created) extra.push({ from: n.path, from_fs_id: n.fs_id, to: created.path, to_fs_id: created.fs_id });
    }
  }
  const failed = info.some((i) => i.errno !== 0);
  const asyncMode = intParam(r, 'async', 0);
  const taskId = asyncMode === 2 ? Number(randomDigits(15)) : 0;
  return { errno: failed ? ERRNO_BATCH_PARTIAL : 0, info, extra: { list: extra }, task_id: taskId, data: { task_id: String(taskId), tkbind_errno: 0 }, request_id: requestId() };
};

const shareStreaming: Handler = (ctx, r) => {
  const s = shareById(ctx, r);
  checkAccess(ctx, r, s, 'sekey');
  checkStreamType(r);
  if (requireParam(r, 'channel') !== 'dubox') throw new EmulatorErrno(2, 'channel must be dubox');
  if (requireParam(r, 'clienttype') !== '0') throw new EmulatorErrno(2, 'clienttype must be 0');
  const n = checkMedia(shareFile(ctx, s, intParam(r, 'fid', -1)));
  sendText(r.res, 200, m3u8For(ctx, n), 'application/vnd.apple.mpegurl');
  return undefined;
};

const shareMediaMeta: Handler = (ctx, r) => {
  const s = shareById(ctx, r);
  checkAccess(ctx, r, s, 'sekey');
  if (requireParam(r, 'clienttype') !== '0') throw new EmulatorErrno(2, 'clienttype must be 0');
  const n = checkMedia(shareFile(ctx, s, intParam(r, 'fid', -1)));
  const video = fileInfo(n).category === 1;
  return { duration: Math.max(1, Math.floor(n.size / 250_000)), height: video ? 720 : 0, width: video ? 1280 : 0, rotate: 0, newno: '', show_msg: '' };
};

export const shareRoutes: Record<string, { method: 'GET' | 'POST'; handler: Handler }> = {
  '/openapi/share/verify': { method: 'POST', handler: verify },
  '/openapi/api/shorturlinfo': { method: 'GET', handler: shorturlinfo },
  '/openapi/share/list': { method: 'GET', handler: shareList },
  '/openapi/share/download': { method: 'GET', handler: shareDownload },
  '/openapi/share/transfer': { method: 'POST', handler: shareTransfer },
  '/openapi/share/streaming': { method: 'GET', handler: shareStreaming },
  '/openapi/share/mediameta': { method: 'GET', handler: shareMediaMeta },
};
