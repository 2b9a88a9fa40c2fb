/**
 * api_domain routes for user info, quota and files: uinfo, active, quota, list, filemetas, search,
 * download (dlinks) and filemanager (copy/move/rename/delete). Streaming: streaming.ts.
 */
import {
  type ApiRequest,
  type Ctx,
  type ParamPlaces,
  checkPath,
  fileInfo,
  intParam,
  jsonParam,
  makeDlink,
  requireParam,
  requiredInt,
} from './context.js';
import { EmulatorErrno, type Node, basenameOf, dirnameOf, joinPath } from './store.js';
import { isValidName, nowSec, randomDigits, requestId } from './util.js';
import type { Md5Place } from './variants.js';
import {
  ERRNO,
  MAX_SHARDS,
  type WireActiveAnswer,
  type WireDownloadAnswer,
  type WireFileEntry,
  type WireFilemanagerAnswer,
  type WireFilemetasAnswer,
  type WireFilemetasItem,
  type WireListAnswer,
  type WireQuotaAnswer,
  type WireSearchAnswer,
  type WireThumbs,
  type WireUinfoAnswer,
} from './wire.js';

/** A route's answer (a wire shape of wire.ts; the router adds errno and request_id unless it has them), or undefined when the route answered itself. */
export type Answer = object | undefined;
export type Handler = (ctx: Ctx, r: ApiRequest) => Answer | Promise<Answer>;
/** A route: method, handler and where its parameters go (spec tables; see ParamPlaces). */
export interface RouteDef {
  method: 'GET' | 'POST';
  handler: Handler;
  params?: ParamPlaces;
}

/** errno of a batch (filemanager, share/transfer) where at least one item failed (xpan). */
export const ERRNO_BATCH_PARTIAL = ERRNO.BATCH_PARTIAL;

export type SortKey = 'name' | 'time' | 'size';

export function sortNodes(nodes: Node[], by: SortKey, desc: boolean): Node[] {
  const cmp = (a: Node, b: Node): number => {
    if (a.isdir !== b.isdir) return a.isdir ? -1 : 1; // folders first, whatever the order
    let c = 0;
    if (by === 'time') c = a.mtime - b.mtime;
    else if (by === 'size') c = a.size - b.size;
    if (c === 0) {
      const an = basenameOf(a.path);
      const bn = basenameOf(b.path);
      c = an < bn ? -1 : an > bn ? 1 : 0;
    }
    return desc ? -c : c;
  };
  return nodes.sort(cmp);
}

function sortParam(r: ApiRequest, name = 'order'): SortKey {
  const o = r.param(name) ?? 'name';
  if (o !== 'name' && o !== 'time' && o !== 'size') throw new EmulatorErrno(2, `${name} must be name, time or size`);
  return o;
}

function thumbs(ctx: Ctx, n: Node): WireThumbs {
  const base = `http://${ctx.hosts.download}/thumbnail/${n.md5 ?? ''}?fid=${ctx.uk}-250528-${n.fs_id}`;
  return { url1: `${base}&size=c140_u90`, url2: `${base}&size=c360_u270`, url3: `${base}&size=c850_u580`, icon: `${base}&size=c60_u60` };
}

/** A list/filemetas/share-list entry; its md5 in the form the variant sends at `place`. */
export function listInfo(ctx: Ctx, n: Node, web: boolean, place: Md5Place = 'list'): WireFileEntry {
  const fi = fileInfo(n, { ctx, place });
  if (n.isdir) fi.dir_empty = ctx.store.hasChildren(n.path) ? 0 : 1;
  else if (web && (fi.category === 1 || fi.category === 3)) fi.thumbs = thumbs(ctx, n);
  return fi;
}

const uinfo: Handler = (ctx): WireUinfoAnswer => ({
  uname: 'emulator@terabox-dav.invalid',
  avatar_url: '',
  vip_type: 0,
  uk: ctx.uk,
  use_type: ctx.shares.activated ? 1 : 0,
  user_type: 1,
  errmsg: '',
  request_id: String(requestId()),
  server_time: nowSec(),
});

const active: Handler = (ctx): WireActiveAnswer => {
  ctx.shares.activated = true;
  return { order_id: randomDigits(17), newno: '', show_msg: '', request_id: String(requestId()), server_time: nowSec() };
};

const quota: Handler = (ctx): WireQuotaAnswer => ({
  total: ctx.opts.quotaTotalBytes,
  used: ctx.store.usedBytes,
  free: Math.max(0, ctx.opts.quotaTotalBytes - ctx.store.usedBytes),
  expire: false,
});

const list: Handler = (ctx, r): WireListAnswer => {
  const dir = checkPath(ctx, requireParam(r, 'dir'), true);
  // page and num are mandatory (table 3.4.5)
  const page = intParam(r, 'page', requiredInt);
  let num = intParam(r, 'num', requiredInt);
  if (page < 1 || num < 1) throw new EmulatorErrno(2, 'page and num start at 1');
  if (num > 1000) num = 1000;
  const by = sortParam(r);
  const desc = r.param('desc') === '1';
  const node = ctx.store.get(dir);
  if (!node || !node.isdir) throw new EmulatorErrno(-9, 'no such folder');
  const all = sortNodes(ctx.store.children(dir), by, desc);
  const web = r.param('web') === '1';
  // listPageShort: the service pages by num-1 (nothing lost, but a page shorter than num is not the end)
  const v = ctx.opts.variant;
  const per = v.listPageShort ? Math.max(1, num - 1) : num;
  const slice = all.slice((page - 1) * per, page * per).map((n) => listInfo(ctx, n, web));
  return v.listArray === 'info' ? { guid_info: '', info: slice, guid: 0 } : { guid_info: '', list: slice, guid: 0 };
};

const filemetas: Handler = (ctx, r): WireFilemetasAnswer => {
  const targets = jsonParam(r, 'target', (v): v is string[] => Array.isArray(v) && v.length > 0 && v.length <= 1000 && v.every((x) => typeof x === 'string'));
  const withDlink = r.param('dlink') === '1';
  const info: WireFilemetasAnswer['info'] = [];
  for (const t of targets) {
    let n: Node | undefined;
    try {
      n = ctx.store.get(checkPath(ctx, t, true));
    } catch (err) {
      if (!(err instanceof EmulatorErrno)) throw err;
      info.push({ errno: err.errno, path: t });
      continue;
    }
    if (!n) {
      info.push({ errno: ERRNO.NOT_FOUND, path: t });
      continue;
    }
    const fi = listInfo(ctx, n, true, 'filemetas');
    const meta: WireFilemetasItem = { ...fi, filename: fi.server_filename, errno: 0 };
    if (withDlink && !n.isdir) meta.dlink = makeDlink(ctx, n);
    info.push(meta);
  }
  return { info };
};

const search: Handler = (ctx, r): WireSearchAnswer => {
  const key = requireParam(r, 'key').toLowerCase();
  const dir = checkPath(ctx, r.param('dir') ?? ctx.appRoot, true);
  // recursion is mandatory ("Pass 1", table 3.4.7); 0 searches only dir's children (xpan)
  const recursionRaw = requireParam(r, 'recursion');
  if (recursionRaw !== '0' && recursionRaw !== '1') throw new EmulatorErrno(2, 'recursion must be 0 or 1');
  const recursion = recursionRaw === '1';
  const page = intParam(r, 'page', 1);
  let num = intParam(r, 'num', 100);
  if (page < 1 || num < 1) throw new EmulatorErrno(2, 'page and num start at 1');
  if (num > 10000) num = 10000;
  const desc = r.param('desc') === '1';
  const by = sortParam(r);
  const node = ctx.store.get(dir);
  if (!node || !node.isdir) throw new EmulatorErrno(-9, 'no such folder');
  const source = recursion ? ctx.store.walk(dir) : ctx.store.children(dir);
  const hits: Node[] = [];
  for (const n of source) if (basenameOf(n.path).toLowerCase().includes(key)) hits.push(n);
  sortNodes(hits, by, desc);
  const start = (page - 1) * num;
  return { list: hits.slice(start, start + num).map((n) => fileInfo(n, { ctx, place: 'search' })), has_more: start + num < hits.length ? 1 : 0 };
};

export function parseFsIds(raw: unknown): number[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 100) return undefined;
  const out: number[] = [];
  for (const v of raw) {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,17}$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n)) return undefined;
    out.push(n);
  }
  return out;
}

const download: Handler = (ctx, r): WireDownloadAnswer => {
  if (requireParam(r, 'type') !== 'dlink') throw new EmulatorErrno(2, 'type must be dlink');
  const ids = jsonParam(r, 'fidlist', (v): v is unknown[] => parseFsIds(v) !== undefined);
  const dlink: { fs_id: string; dlink: string }[] = [];
  for (const id of parseFsIds(ids)!) {
    const n = ctx.store.getById(id);
    if (!n || n.isdir || !n.path.startsWith(ctx.appRoot + '/')) throw new EmulatorErrno(-9, `no such file ${id}`);
    dlink.push({ fs_id: String(id), dlink: makeDlink(ctx, n) });
  }
  return { dlink };
};

// ---------------------------------------------------------------- filemanager

type Ondup = 'fail' | 'newcopy' | 'overwrite' | 'skip';

function ondupOf(v: unknown, dflt: Ondup): Ondup {
  if (v === undefined || v === '') return dflt;
  if (v === 'fail' || v === 'newcopy' || v === 'overwrite' || v === 'skip') return v;
  throw new EmulatorErrno(2, 'ondup must be fail, newcopy, overwrite or skip');
}

/**
 * Place `src` at `target` (copy or move) honouring ondup. Returns the errno of the item (0 ok).
 */
export function placeNode(ctx: Ctx, src: Node, target: string, ondup: Ondup, mode: 'copy' | 'move'): number {
  if (target === src.path) {
    if (mode === 'move') return 0;
    if (ondup !== 'newcopy') return ondup === 'skip' ? 0 : -8;
  }
  if (src.isdir && target.startsWith(src.path + '/')) return -7; // into itself
  let dest = target;
  const existing = ctx.store.get(target);
  if (existing) {
    if (ondup === 'skip') return 0;
    if (ondup === 'fail') return -8;
    if (ondup === 'newcopy') dest = joinPath(dirnameOf(target), ctx.store.freeName(dirnameOf(target), basenameOf(target)));
    else {
      if (src.path.startsWith(existing.path + '/')) return -8; // would delete the source
      ctx.store.remove(existing);
    }
  }
  if (mode === 'copy') ctx.store.copy(src, dest);
  else ctx.store.move(src, dest);
  return 0;
}

function filemanagerItem(ctx: Ctx, opera: string, item: unknown, globalOndup: Ondup): { errno: number; path: string } {
  if (opera === 'delete') {
    const path = typeof item === 'string' ? item : (item as { path?: unknown } | null)?.path;
    if (typeof path !== 'string') throw new EmulatorErrno(2, 'filelist items must be paths');
    const n = ctx.store.get(checkPath(ctx, path));
    if (!n) return { errno: -9, path };
    ctx.store.remove(n);
    return { errno: 0, path };
  }
  if (typeof item !== 'object' || item === null) throw new EmulatorErrno(2, 'filelist items must be objects');
  const it = item as { path?: unknown; dest?: unknown; newname?: unknown; ondup?: unknown };
  if (typeof it.path !== 'string') throw new EmulatorErrno(2, 'filelist item without path');
  const path = it.path;
  const srcPath = checkPath(ctx, path);
  const ondup = ondupOf(it.ondup, globalOndup);
  const src = ctx.store.get(srcPath);
  if (opera === 'rename') {
    if (typeof it.newname !== 'string') throw new EmulatorErrno(2, 'rename needs newname');
    if (!isValidName(it.newname)) return { errno: -7, path };
    if (!src) return { errno: -9, path };
    return { errno: placeNode(ctx, src, joinPath(dirnameOf(srcPath), it.newname), ondup, 'move'), path };
  }
  if (typeof it.dest !== 'string') throw new EmulatorErrno(2, `${opera} needs dest`);
  const newname = typeof it.newname === 'string' && it.newname !== '' ? it.newname : basenameOf(srcPath);
  if (!isValidName(newname)) return { errno: -7, path };
  let destDir: string;
  try {
    destDir = it.dest === '' ? dirnameOf(srcPath) : checkPath(ctx, it.dest, true);
  } catch (err) {
    if (err instanceof EmulatorErrno) return { errno: err.errno, path };
    throw err;
  }
  if (!src) return { errno: -9, path };
  const d = ctx.store.get(destDir);
  if (!d || !d.isdir) return { errno: -9, path };
  return { errno: placeNode(ctx, src, joinPath(destDir, newname), ondup, opera as 'copy' | 'move'), path };
}

const filemanager: Handler = (ctx, r): WireFilemanagerAnswer & { request_id?: number } => {
  const opera = requireParam(r, 'opera');
  if (!['copy', 'move', 'rename', 'delete'].includes(opera)) throw new EmulatorErrno(2, 'unknown opera');
  const asyncMode = intParam(r, 'async', 0);
  if (asyncMode < 0 || asyncMode > 2) throw new EmulatorErrno(2, 'async must be 0, 1 or 2');
  const items = jsonParam(r, 'filelist', (v): v is unknown[] => Array.isArray(v) && v.length > 0 && v.length <= MAX_SHARDS);
  const ondup = ondupOf(r.param('ondup'), 'fail');
  const info: { errno: number; path: string }[] = [];
  for (const item of items) {
    try {
      info.push(filemanagerItem(ctx, opera, item, ondup));
    } catch (err) {
      if (!(err instanceof EmulatorErrno) || err.errno === 2) throw err;
      const p = typeof item === 'string' ? item : String((item as { path?: unknown }).path);
      info.push({ errno: err.errno, path: p });
    }
  }
  if (asyncMode === 2) return { errno: 0, info: [], taskid: Number(randomDigits(15)) };
  const failed = info.some((i) => i.errno !== 0);
  return { errno: failed ? ERRNO_BATCH_PARTIAL : 0, info, request_id: requestId() };
};

/**
 * Parameter places (spec 3.2 - 3.4 tables). filemanager: opera, async (and ondup, which the spec
 * does not name; xpan's) in the query, filelist in the body (3.4.4). list's table calls the page
 * number `path`; its example (and xpan) say `page`, which is what is read. search's `dir` and
 * `web` are xpan's (not in its table).
 */
export const fileRoutes: Record<string, RouteDef> = {
  '/openapi/uinfo': { method: 'GET', handler: uinfo, params: { query: [] } },
  '/openapi/active': { method: 'GET', handler: active, params: { query: [] } },
  '/openapi/api/quota': { method: 'GET', handler: quota, params: { query: [] } },
  '/openapi/api/list': { method: 'GET', handler: list, params: { query: ['dir', 'page', 'num', 'order', 'desc', 'web'] } },
  '/openapi/api/filemetas': { method: 'GET', handler: filemetas, params: { query: ['target', 'dlink'] } },
  '/openapi/api/search': { method: 'GET', handler: search, params: { query: ['key', 'dir', 'order', 'page', 'num', 'desc', 'recursion'] } },
  '/openapi/api/download': { method: 'GET', handler: download, params: { query: ['fidlist', 'type'] } },
  '/openapi/api/filemanager': { method: 'POST', handler: filemanager, params: { query: ['opera', 'async', 'ondup'], body: ['filelist'] } },
};
