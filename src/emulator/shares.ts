/**
 * Shares (external links) of the emulated drive and the share routes (spec 3.5):
 * share/verify, shorturlinfo, share/list, share/download, share/transfer, share/streaming,
 * share/mediameta. Wire shapes are this file's own (the emulator imports nothing from
 * src/terabox/): the string-typed items of shorturlinfo/share/download as in the spec's examples,
 * the number-typed items of share/list as in its example.
 *
 * Strictness (spec tables): every parameter is read only where the table puts it (query, or body
 * for the "body Parameters" tables of verify and transfer); every mandatory one must be there
 * (errno 2 otherwise). `sekey`/`spd` is mandatory on every call after verify, also for a share
 * without extraction code (verify with an empty `pwd` issues one); a value that verify did not
 * issue for this share answers -9 (spec 3.5.2). An unknown link, shareid or a uk that is not the
 * sharer's answers 105; a wrong extraction code -12.
 *
 * A share is made by the test helper EmulatorHandle.createShare(paths, pwd); removeShare and
 * setSharePwd (which forgets every sekey of the share, as a changed password would) act out a link
 * that expires and a share whose password changed.
 *
 * share/transfer async: 0 synchronous; 2 asynchronous; 1 ("intelligent") asynchronous when the
 * selection holds a folder, synchronous for files only. An asynchronous transfer answers at once
 * with a task_id and lands whole `shareTransferAsyncMs` later (the spec has no task query endpoint:
 * the client learns completion by listing the destination). Its item failures are not reported.
 *
 * Concurrency: maps mutated synchronously on the event loop; `timers` holds the pending async
 * transfers (cleared by stop()).
 */
import { type ApiRequest, type Ctx, checkPath, makeDlink } from './context.js';
import { EmulatorUsageError } from './errors.js';
import { ERRNO_BATCH_PARTIAL, placeNode, sortNodes } from './routes-files.js';
import { EmulatorErrno, type Node, type PersistSection, basenameOf, joinPath } from './store.js';
import { checkMedia, checkStreamType, mediaDurationSec, sendPlaylist } from './streaming.js';
import { categoryOf, randomDigits, randomToken, requestId } from './util.js';
import { md5ForWire } from './variants.js';

export interface Share {
  shareid: number;
  surl: string;
  pwd: string;
  fsIds: number[];
  ctime: number;
}

export interface CreatedShare {
  /** The link's part after `/s/1` (share/verify `surl`, share/list `shorturl`). */
  surl: string;
  /** The link's part after `/s/` ('1' + surl; shorturlinfo `shorturl`). */
  shorturl: string;
  shareid: number;
  uk: number;
}

export const ERRNO_SHARE_LINK = 105;
export const ERRNO_SHARE_PWD = -12;
export const ERRNO_SHARE_KEY = -9;

/** share/list pages hold at most this many entries (larger `num` is clamped, as list does). */
export const SHARE_LIST_MAX_NUM = 1000;

/** Items of shorturlinfo and share/download: numbers as strings (spec examples 3.5.2, 3.5.7). */
interface WireShareItemStrings {
  category: string;
  fs_id: string;
  isdir: string;
  local_ctime: string;
  local_mtime: string;
  md5?: string;
  path: string;
  server_ctime: string;
  server_filename: string;
  server_mtime: string;
  size: string;
  dlink: string;
}

/** Items of share/list: numbers as numbers (spec example 3.5.3). */
interface WireShareItemNumbers {
  category: number;
  fs_id: number;
  isdir: number;
  local_ctime: number;
  local_mtime: number;
  md5?: string;
  path: string;
  server_ctime: number;
  server_filename: string;
  server_mtime: number;
  size: number;
  play_forbid: number;
}

interface WireTransferInfo {
  errno: number;
  fsid: string;
  path: string;
}

interface WireTransferExtra {
  from: string;
  from_fs_id: number;
  to: string;
  to_fs_id: number;
}

type Answer = Record<string, unknown> | undefined;
type Handler = (ctx: Ctx, r: ApiRequest) => Answer;

export class ShareState implements PersistSection {
  readonly bySurl = new Map<string, Share>();
  readonly byId = new Map<number, Share>();
  /** BOXCLND values -> shareid */
  readonly sekeys = new Map<string, number>();
  /** Asynchronous share/transfer jobs not landed yet. */
  readonly timers = new Set<NodeJS.Timeout>();
  activated = false;

  add(s: Share): void {
    this.bySurl.set(s.surl, s);
    this.byId.set(s.shareid, s);
  }

  remove(shareid: number): boolean {
    const s = this.byId.get(shareid);
    if (!s) return false;
    this.byId.delete(shareid);
    this.bySurl.delete(s.surl);
    this.forgetKeys(shareid);
    return true;
  }

  forgetKeys(shareid: number): void {
    for (const [k, id] of this.sekeys) if (id === shareid) this.sekeys.delete(k);
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
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

const PWD_RE = /^[0-9a-z]{4}$/;

export function createShare(ctx: Ctx, paths: string[], pwd: string): CreatedShare {
  if (pwd !== '' && !PWD_RE.test(pwd)) throw new EmulatorErrno(2, 'share pwd must be 4 digits or lowercase letters');
  const fsIds: number[] = [];
  for (const p of paths) {
    const n = ctx.store.get(p);
    if (!n) throw new EmulatorUsageError(`createShare ${p}: no such path`);
    fsIds.push(n.fs_id);
  }
  let surl = randomToken(16);
  while (ctx.shares.bySurl.has(surl)) surl = randomToken(16);
  const shareid = Number(randomDigits(10));
  ctx.shares.add({ shareid, surl, pwd, fsIds, ctime: Math.floor(Date.now() / 1000) });
  ctx.store.markDirty();
  return { surl, shorturl: `1${surl}`, shareid, uk: ctx.uk };
}

/** Test helper: the link stops working (105 everywhere), as an expired or cancelled share. */
export function removeShare(ctx: Ctx, shareid: number): void {
  if (!ctx.shares.remove(shareid)) throw new EmulatorUsageError(`removeShare ${shareid}: no such share`);
  ctx.store.markDirty();
}

/** Test helper: the sharer changes the extraction code ('' = none): every issued sekey stops working (-9). */
export function setSharePwd(ctx: Ctx, shareid: number, pwd: string): void {
  if (pwd !== '' && !PWD_RE.test(pwd)) throw new EmulatorErrno(2, 'share pwd must be 4 digits or lowercase letters');
  const s = ctx.shares.byId.get(shareid);
  if (!s) throw new EmulatorUsageError(`setSharePwd ${shareid}: no such share`);
  s.pwd = pwd;
  ctx.shares.forgetKeys(shareid);
  ctx.store.markDirty();
}

// ---------------------------------------------------------------- parameters

function missing(name: string): EmulatorErrno {
  return new EmulatorErrno(2, `missing parameter ${name}`);
}

/** A mandatory query parameter (non-empty). */
function q(r: ApiRequest, name: string): string {
  const v = r.query(name);
  if (v === undefined || v === '') throw missing(name);
  return v;
}

/** An integer query parameter; mandatory unless `dflt` is given. */
function qInt(r: ApiRequest, name: string, dflt?: number): number {
  const v = r.query(name);
  if (v === undefined || v === '') {
    if (dflt === undefined) throw missing(name);
    return dflt;
  }
  if (!/^-?\d{1,17}$/.test(v) || !Number.isSafeInteger(Number(v))) throw new EmulatorErrno(2, `parameter ${name} is not an integer`);
  return Number(v);
}

/** A JSON array of fs_ids (numbers or numeric strings), 1..100 of them. */
function parseIds(raw: string, name: string): number[] {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new EmulatorErrno(2, `parameter ${name} is not JSON`);
  }
  if (!Array.isArray(v) || v.length === 0 || v.length > 100) throw new EmulatorErrno(2, `parameter ${name} must be a JSON array of 1..100 ids`);
  const out: number[] = [];
  for (const x of v) {
    const n = typeof x === 'number' ? x : typeof x === 'string' && /^\d{1,17}$/.test(x) ? Number(x) : NaN;
    if (!Number.isSafeInteger(n) || n < 0) throw new EmulatorErrno(2, `parameter ${name} holds a value that is not an id`);
    out.push(n);
  }
  return out;
}

function parsePaths(raw: string, name: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new EmulatorErrno(2, `parameter ${name} is not JSON`);
  }
  if (!Array.isArray(v) || v.length === 0 || v.length > 100 || !v.every((x) => typeof x === 'string' && x.startsWith('/'))) {
    throw new EmulatorErrno(2, `parameter ${name} must be a JSON array of 1..100 absolute paths`);
  }
  return v as string[];
}

// ---------------------------------------------------------------- shares and access

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

/** The share may be read with this key: one verify issued for it (-9 otherwise, spec 3.5.2). */
function checkKey(ctx: Ctx, s: Share, key: string, name: 'sekey' | 'spd'): void {
  if (ctx.shares.sekeys.get(key) !== s.shareid) throw new EmulatorErrno(ERRNO_SHARE_KEY, `${name} is not valid for this share`);
}

function shareBySurl(ctx: Ctx, surl: string): Share {
  const s = ctx.shares.bySurl.get(surl);
  if (!s) throw new EmulatorErrno(ERRNO_SHARE_LINK, 'no such share link');
  return s;
}

/** `shareid` and the sharer's uk (`uk`, or `from` for transfer) from the query. */
function shareById(ctx: Ctx, r: ApiRequest, ukParam: 'uk' | 'from'): Share {
  const id = qInt(r, 'shareid');
  const uk = q(r, ukParam);
  const s = ctx.shares.byId.get(id);
  if (!s) throw new EmulatorErrno(ERRNO_SHARE_LINK, 'no such share');
  if (uk !== String(ctx.uk)) throw new EmulatorErrno(ERRNO_SHARE_LINK, `${ukParam} is not the sharer of this share`);
  return s;
}

function shareFile(ctx: Ctx, s: Share, id: number): Node {
  const n = ctx.store.getById(id);
  if (!n || !inShare(ctx, s, n)) throw new EmulatorErrno(-9, `no such file ${id} in the share`);
  return n;
}

function itemStrings(ctx: Ctx, n: Node, dlink: string): WireShareItemStrings {
  const out: WireShareItemStrings = {
    category: String(n.isdir ? 6 : categoryOf(basenameOf(n.path))),
    fs_id: String(n.fs_id),
    isdir: n.isdir ? '1' : '0',
    local_ctime: String(n.lctime),
    local_mtime: String(n.lmtime),
    path: n.path,
    server_ctime: String(n.ctime),
    server_filename: basenameOf(n.path),
    server_mtime: String(n.mtime),
    size: String(n.isdir ? 0 : n.size),
    dlink,
  };
  if (!n.isdir && n.md5) out.md5 = md5ForWire(ctx.opts.variant, n.md5, 'share');
  return out;
}

function itemNumbers(ctx: Ctx, n: Node): WireShareItemNumbers {
  const out: WireShareItemNumbers = {
    category: n.isdir ? 6 : categoryOf(basenameOf(n.path)),
    fs_id: n.fs_id,
    isdir: n.isdir ? 1 : 0,
    local_ctime: n.lctime,
    local_mtime: n.lmtime,
    path: n.path,
    server_ctime: n.ctime,
    server_filename: basenameOf(n.path),
    server_mtime: n.mtime,
    size: n.isdir ? 0 : n.size,
    play_forbid: 0,
  };
  if (!n.isdir && n.md5) out.md5 = md5ForWire(ctx.opts.variant, n.md5, 'share');
  return out;
}

// ---------------------------------------------------------------- routes

/** POST /openapi/share/verify (3.5.1): query surl; body pwd (present; '' for a share without code). */
const verify: Handler = (ctx, r) => {
  const s = shareBySurl(ctx, q(r, 'surl'));
  const pwd = r.body('pwd');
  if (pwd === undefined) throw missing('pwd');
  if (pwd !== s.pwd) throw new EmulatorErrno(ERRNO_SHARE_PWD, 'wrong extraction code');
  const sekey = randomToken(36);
  ctx.shares.sekeys.set(sekey, s.shareid);
  ctx.store.markDirty();
  r.res.setHeader('Set-Cookie', `BOXCLND=${encodeURIComponent(sekey)}; Path=/; HttpOnly`);
  // request_id as a string, as in the example (3.5.1)
  return { randsk: randomToken(36), show_msg: 'Request Success', request_id: String(requestId()) };
};

/** GET /openapi/api/shorturlinfo (3.5.2): query shorturl ('1' + surl), root=1, spd. */
const shorturlinfo: Handler = (ctx, r) => {
  const shorturl = q(r, 'shorturl');
  if (q(r, 'root') !== '1') throw new EmulatorErrno(2, 'root must be 1');
  const spd = q(r, 'spd');
  const s = shareBySurl(ctx, shorturl.startsWith('1') ? shorturl.slice(1) : '\0');
  checkKey(ctx, s, spd, 'spd');
  const list = roots(ctx, s).map((n) => itemStrings(ctx, n, ''));
  return {
    shareid: s.shareid,
    uk: ctx.uk,
    uk_str: String(ctx.uk),
    dir: '',
    type: 0,
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

/**
 * GET /openapi/share/list (3.5.3): query shorturl (surl), page, num, sekey; root=1 or dir (a
 * folder of the share, as the sharer's path); order asc|desc (default desc), by name|time|size.
 * As the spec says, paging applies only below the root: root=1 answers every shared item.
 */
const shareList: Handler = (ctx, r) => {
  const s = shareBySurl(ctx, q(r, 'shorturl'));
  const page = qInt(r, 'page');
  const num = Math.min(qInt(r, 'num'), SHARE_LIST_MAX_NUM);
  const sekey = q(r, 'sekey');
  if (page < 1 || num < 1) throw new EmulatorErrno(2, 'page and num start at 1');
  const order = r.query('order') || 'desc';
  if (order !== 'asc' && order !== 'desc') throw new EmulatorErrno(2, 'order must be asc or desc');
  const by = r.query('by') || 'name';
  if (by !== 'name' && by !== 'time' && by !== 'size') throw new EmulatorErrno(2, 'by must be name, time or size');
  const root = r.query('root');
  const dir = r.query('dir');
  if (root !== undefined && root !== '' && root !== '1') throw new EmulatorErrno(2, 'root must be 1');
  checkKey(ctx, s, sekey, 'sekey');
  let nodes: Node[];
  let paged = true;
  if (root === '1') {
    nodes = roots(ctx, s);
    paged = false;
  } else {
    if (dir === undefined || dir === '') throw new EmulatorErrno(2, 'root=1 or dir is required');
    const d = ctx.store.get(dir);
    if (!d || !d.isdir || !inShare(ctx, s, d)) throw new EmulatorErrno(-9, 'no such folder in the share');
    nodes = ctx.store.children(d.path);
  }
  sortNodes(nodes, by, order === 'desc');
  const slice = paged ? nodes.slice((page - 1) * num, page * num) : nodes;
  return { cfrom_id: 0, share_id: s.shareid, uk: ctx.uk, list: slice.map((n) => itemNumbers(ctx, n)), newno: '', show_msg: '', server_time: Math.floor(Date.now() / 1000), request_id: String(requestId()) };
};

/** GET /openapi/share/download (3.5.7): query shareid, fid_list, uk, sekey. */
const shareDownload: Handler = (ctx, r) => {
  const s = shareById(ctx, r, 'uk');
  const ids = parseIds(q(r, 'fid_list'), 'fid_list');
  checkKey(ctx, s, q(r, 'sekey'), 'sekey');
  const list: WireShareItemStrings[] = [];
  for (const id of ids) {
    const n = shareFile(ctx, s, id);
    list.push(itemStrings(ctx, n, n.isdir ? '' : makeDlink(ctx, n)));
  }
  return { shareid: s.shareid, uk: ctx.uk, uk_str: String(ctx.uk), sign: randomToken(20), timestamp: Math.floor(Date.now() / 1000), prod_type: 'share', list };
};

/** Copy the selected share items into `dest`; per-item info and the from/to list. */
function runTransfer(ctx: Ctx, s: Share, sel: { ids?: number[]; paths?: string[] }, dest: string, ondup: 'fail' | 'newcopy'): { info: WireTransferInfo[]; extra: WireTransferExtra[] } {
  const info: WireTransferInfo[] = [];
  const items: Node[] = [];
  for (const id of sel.ids ?? []) {
    const n = ctx.store.getById(id);
    if (n && inShare(ctx, s, n)) items.push(n);
    else info.push({ errno: -9, fsid: String(id), path: '' });
  }
  for (const p of sel.paths ?? []) {
    const n = ctx.store.get(p);
    if (n && inShare(ctx, s, n)) items.push(n);
    else info.push({ errno: -9, fsid: '0', path: p });
  }
  ctx.store.mkdirp(dest);
  const extra: WireTransferExtra[] = [];
  for (const n of new Set(items)) {
    const before = new Set(ctx.store.children(dest).map((c) => c.fs_id));
    const errno = placeNode(ctx, n, joinPath(dest, basenameOf(n.path)), ondup, 'copy');
    info.push({ errno, fsid: String(n.fs_id), path: n.path });
    if (errno !== 0) continue;
    const created = ctx.store.children(dest).find((c) => !before.has(c.fs_id));
    if (created) extra.push({ from: n.path, from_fs_id: n.fs_id, to: created.path, to_fs_id: created.fs_id });
  }
  return { info, extra };
}

/**
 * POST /openapi/share/transfer (3.5.4): query shareid, from (the sharer's uk, as the spec's
 * example), async (0|1|2), ondup (fail|newcopy, optional), sekey; body fsidlist or filelist (one of
 * them), path (destination folder, default the app folder; created when missing).
 */
const shareTransfer: Handler = (ctx, r) => {
  const s = shareById(ctx, r, 'from');
  const asyncMode = qInt(r, 'async');
  if (asyncMode < 0 || asyncMode > 2) throw new EmulatorErrno(2, 'async must be 0, 1 or 2');
  const ondup = r.query('ondup') || 'fail';
  if (ondup !== 'fail' && ondup !== 'newcopy') throw new EmulatorErrno(2, 'ondup must be fail or newcopy');
  const sekey = q(r, 'sekey');
  const fsidlist = r.body('fsidlist');
  const filelist = r.body('filelist');
  if ((fsidlist === undefined || fsidlist === '') === (filelist === undefined || filelist === '')) {
    throw new EmulatorErrno(2, 'exactly one of fsidlist and filelist is required');
  }
  const sel = fsidlist ? { ids: parseIds(fsidlist, 'fsidlist') } : { paths: parsePaths(filelist!, 'filelist') };
  const rawDest = r.body('path');
  const dest = checkPath(ctx, rawDest === undefined || rawDest === '' ? ctx.appRoot : rawDest, true);
  checkKey(ctx, s, sekey, 'sekey');
  const destNode = ctx.store.get(dest);
  if (destNode && !destNode.isdir) throw new EmulatorErrno(-8, 'destination is a file');

  const selected = [...(sel.ids ?? []).map((id) => ctx.store.getById(id)), ...(sel.paths ?? []).map((p) => ctx.store.get(p))];
  const async = asyncMode === 2 || (asyncMode === 1 && selected.some((n) => n?.isdir));
  if (async) {
    const taskId = Number(randomDigits(15));
    const shareid = s.shareid;
    const t = setTimeout(() => {
      ctx.shares.timers.delete(t);
      const now = ctx.shares.byId.get(shareid);
      if (!now) {
        ctx.logger.debug(`emulator share/transfer task ${taskId}: the share is gone, nothing copied`);
        return;
      }
      try {
        const { info } = runTransfer(ctx, now, sel, dest, ondup);
        ctx.logger.debug(`emulator share/transfer task ${taskId} landed`, { errnos: info.map((i) => i.errno) });
      } catch (err) {
        ctx.logger.debug(`emulator share/transfer task ${taskId} failed`, { err: (err as Error).message });
      }
    }, ctx.opts.shareTransferAsyncMs);
    ctx.shares.timers.add(t);
    return { task_id: taskId, data: { task_id: String(taskId), tkbind_errno: 0 }, info: [], extra: { list: [] }, newno: '', show_msg: '' };
  }
  const { info, extra } = runTransfer(ctx, s, sel, dest, ondup);
  const failed = info.some((i) => i.errno !== 0);
  return { errno: failed ? ERRNO_BATCH_PARTIAL : 0, task_id: 0, info, extra: { list: extra }, quantity_limit: 20, newno: '', show_msg: '', request_id: requestId() };
};

/** GET /openapi/share/streaming (3.5.5): query shareid, type, fid, channel=dubox, uk, clienttype=0, sekey. */
const shareStreaming: Handler = (ctx, r) => {
  const s = shareById(ctx, r, 'uk');
  checkStreamType(r);
  const fid = qInt(r, 'fid');
  if (q(r, 'channel') !== 'dubox') throw new EmulatorErrno(2, 'channel must be dubox');
  if (q(r, 'clienttype') !== '0') throw new EmulatorErrno(2, 'clienttype must be 0');
  checkKey(ctx, s, q(r, 'sekey'), 'sekey');
  return sendPlaylist(ctx, r, checkMedia(shareFile(ctx, s, fid)));
};

/** GET /openapi/share/mediameta (3.5.6): query clienttype=0, uk, shareid, fid, sekey. */
const shareMediaMeta: Handler = (ctx, r) => {
  if (q(r, 'clienttype') !== '0') throw new EmulatorErrno(2, 'clienttype must be 0');
  const s = shareById(ctx, r, 'uk');
  const fid = qInt(r, 'fid');
  checkKey(ctx, s, q(r, 'sekey'), 'sekey');
  const n = checkMedia(shareFile(ctx, s, fid));
  const video = categoryOf(basenameOf(n.path)) === 1;
  return { duration: mediaDurationSec(n), height: video ? 720 : 0, width: video ? 1280 : 0, rotate: 0, newno: '', show_msg: '' };
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
