/**
 * PROPFIND, answered from fs.stat/fs.list alone (the vfs caches them) and streamed as produced:
 * the multistatus is written in chunks of ~64 KiB with backpressure, never built as one string.
 *
 * Depth 0 and 1 only: Depth infinity and a missing Depth header get 403 with
 * <D:propfind-finite-depth/> (RFC 4918 §9.1; a missing Depth means infinity).
 * Quota properties (RFC 4331) are computed only when named in a <D:prop> request (they are not
 * part of allprop), so listings of big folders stay cheap. Dead properties come from fs.getProps,
 * fetched only when the request can need them (allprop, propname, or a non-DAV: property named).
 */
import type { Quota } from '../../remote/types.js';
import { TbdavError } from '../../shared/errors.js';
import type { DeadProps, VfsEntry } from '../../vfs/types.js';
import { etagOf, httpDate, isoDate } from '../conditional.js';
import { header, readSmallBody, type DavDeps, type DavRequest } from '../context.js';
import { contentTypeFor } from '../mime.js';
import { hrefFor, joinPath } from '../paths.js';
import { escapeText, escapeXml, parseXml, splitKey, xmlSafe } from '../xml.js';

const DAV = 'DAV:';
const CHUNK = 64 * 1024;

type PropName = { ns: string; local: string };
type PropRequest =
  | { kind: 'allprop'; include: PropName[] }
  | { kind: 'propname' }
  | { kind: 'prop'; props: PropName[] };

/** Live properties answered for allprop, in answer order. */
const ALLPROP_LIVE = [
  'resourcetype',
  'displayname',
  'getcontentlength',
  'getcontenttype',
  'getetag',
  'getlastmodified',
  'creationdate',
  'supportedlock',
  'lockdiscovery',
] as const;
const QUOTA_LIVE = ['quota-available-bytes', 'quota-used-bytes'] as const;
const ALL_LIVE: ReadonlySet<string> = new Set<string>([...ALLPROP_LIVE, ...QUOTA_LIVE]);

function parseRequest(body: string): PropRequest {
  if (body.trim() === '') return { kind: 'allprop', include: [] };
  const root = parseXml(body);
  if (root.ns !== DAV || root.local !== 'propfind') {
    throw new TbdavError('TBDAV_BAD_REQUEST', 'PROPFIND body: root element is not DAV:propfind');
  }
  const find = (local: string) => root.children.find((c) => c.ns === DAV && c.local === local);
  const prop = find('prop');
  if (prop) return { kind: 'prop', props: prop.children.map((c) => ({ ns: c.ns, local: c.local })) };
  if (find('propname')) return { kind: 'propname' };
  if (find('allprop')) {
    const inc = find('include');
    return { kind: 'allprop', include: inc ? inc.children.map((c) => ({ ns: c.ns, local: c.local })) : [] };
  }
  throw new TbdavError('TBDAV_BAD_REQUEST', 'PROPFIND body: none of prop, propname, allprop');
}

interface RenderCtx {
  quota: Quota | undefined;
  deps: DavDeps;
}

const OC = 'http://owncloud.org/ns';

/** Live properties outside DAV: (answered only when named): ownCloud checksums for rclone. */
function extraLiveValue(p: PropName, e: VfsEntry): string | undefined {
  if (p.ns === OC && p.local === 'checksums' && !e.isDir && e.contentMd5) {
    return `<oc:checksum xmlns:oc="${OC}">MD5:${escapeText(e.contentMd5)}</oc:checksum>`;
  }
  return undefined;
}

/** Value (inner XML) of a live DAV: property, or undefined when the entry has none. */
function liveValue(name: string, e: VfsEntry, rc: RenderCtx): string | undefined {
  switch (name) {
    case 'resourcetype':
      return e.isDir ? '<D:collection/>' : '';
    case 'displayname':
      return escapeText(xmlSafe(e.name));
    case 'getcontentlength':
      return e.isDir ? undefined : String(e.size);
    case 'getcontenttype':
      return e.isDir ? undefined : escapeText(contentTypeFor(e.name));
    case 'getetag':
      return escapeText(etagOf(e));
    case 'getlastmodified':
      return httpDate(e.mtime);
    case 'creationdate':
      return isoDate(e.ctime || e.mtime);
    case 'supportedlock':
      return rc.deps.locks.supportedLockXml;
    case 'lockdiscovery':
      return rc.deps.locks.lockDiscoveryXml(e.path);
    case 'quota-available-bytes':
      return rc.quota ? String(Math.max(0, rc.quota.total - rc.quota.used)) : undefined;
    case 'quota-used-bytes':
      return rc.quota ? String(rc.quota.used) : undefined;
    default:
      return undefined;
  }
}

function element(p: PropName, inner: string): string {
  if (p.ns === DAV) return inner === '' ? `<D:${p.local}/>` : `<D:${p.local}>${inner}</D:${p.local}>`;
  const decl = p.ns === '' ? ' xmlns=""' : ` xmlns:z="${escapeXml(p.ns)}"`;
  const tag = p.ns === '' ? p.local : `z:${p.local}`;
  return inner === '' ? `<${tag}${decl}/>` : `<${tag}${decl}>${inner}</${tag}>`;
}

function propstat(props: string, status: string): string {
  return `<D:propstat><D:prop>${props}</D:prop><D:status>HTTP/1.1 ${status}</D:status></D:propstat>`;
}

function renderEntry(e: VfsEntry, dead: DeadProps | undefined, req: PropRequest, rc: RenderCtx): string {
  let found = '';
  let missing = '';
  if (req.kind === 'propname') {
    for (const name of ALL_LIVE) {
      if (e.isDir && (name === 'getcontentlength' || name === 'getcontenttype')) continue;
      found += `<D:${name}/>`;
    }
    for (const key of Object.keys(dead ?? {})) found += element(splitKey(key), '');
  } else if (req.kind === 'allprop') {
    for (const name of ALLPROP_LIVE) {
      const v = liveValue(name, e, rc);
      if (v !== undefined) found += element({ ns: DAV, local: name }, v);
    }
    for (const [key, v] of Object.entries(dead ?? {})) found += element(splitKey(key), v);
    for (const p of req.include) {
      if (p.ns === DAV && QUOTA_LIVE.includes(p.local as (typeof QUOTA_LIVE)[number])) {
        const v = liveValue(p.local, e, rc);
        if (v !== undefined) found += element(p, v);
      }
    }
  } else {
    for (const p of req.props) {
      const v =
        p.ns === DAV && ALL_LIVE.has(p.local) ? liveValue(p.local, e, rc) : (extraLiveValue(p, e) ?? dead?.[`{${p.ns}}${p.local}`]);
      if (v === undefined) missing += element(p, '');
      else found += element(p, v);
    }
  }
  let out = `<D:response><D:href>${escapeText(hrefFor(e.path, e.isDir))}</D:href>`;
  if (found) out += propstat(found, '200 OK');
  if (missing) out += propstat(missing, '404 Not Found');
  if (!found && !missing) out += propstat('', '200 OK');
  return out + '</D:response>\n';
}

function needsDead(req: PropRequest): boolean {
  if (req.kind !== 'prop') return true;
  return req.props.some((p) => p.ns !== DAV || !ALL_LIVE.has(p.local));
}

function needsQuota(req: PropRequest): boolean {
  const names = req.kind === 'prop' ? req.props : req.kind === 'allprop' ? req.include : [];
  return names.some((p) => p.ns === DAV && (p.local === 'quota-available-bytes' || p.local === 'quota-used-bytes'));
}

/** Write a chunk, waiting for drain (or the client going away). */
function write(r: DavRequest, chunk: string): Promise<void> | undefined {
  if (r.res.write(chunk, 'utf8')) return undefined;
  return new Promise((resolve) => {
    const done = (): void => {
      r.res.off('drain', done);
      r.res.off('close', done);
      resolve();
    };
    r.res.on('drain', done);
    r.res.on('close', done);
  });
}

export async function handlePropfind(r: DavRequest, deps: DavDeps): Promise<void> {
  const depthHeader = header(r, 'depth')?.trim().toLowerCase();
  if (depthHeader === undefined || depthHeader === 'infinity') {
    await readSmallBody(r).catch(() => '');
    const body = '<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>\n';
    r.res.statusCode = 403;
    r.res.setHeader('Content-Type', 'application/xml; charset=utf-8');
    r.res.setHeader('Content-Length', Buffer.byteLength(body));
    r.res.end(body);
    return;
  }
  if (depthHeader !== '0' && depthHeader !== '1') {
    throw new TbdavError('TBDAV_BAD_REQUEST', `PROPFIND ${r.path}: bad Depth header`);
  }
  const req = parseRequest(await readSmallBody(r));
  if (header(r, 'if') !== undefined) await deps.locks.checkConditions(r.req, r.path);
  const self = await deps.fs.stat(r.path, r.call);
  const entries: VfsEntry[] = [self];
  if (depthHeader === '1' && self.isDir) {
    const children = await deps.fs.list(r.path, r.call);
    for (const c of children) entries.push(c.path ? c : { ...c, path: joinPath(r.path, c.name) });
  }
  const rc: RenderCtx = { quota: undefined, deps };
  if (needsQuota(req)) {
    try {
      rc.quota = await deps.fs.quota(r.call);
    } catch (err) {
      deps.logger.debug(`PROPFIND ${r.path}: quota unavailable, quota properties answered 404`, { requestId: r.requestId, err });
    }
  }
  let dead: (DeadProps | undefined)[] = [];
  if (needsDead(req)) dead = await Promise.all(entries.map((e) => deps.fs.getProps(e.path)));

  r.res.statusCode = 207;
  r.res.setHeader('Content-Type', 'application/xml; charset=utf-8');
  let buf = '<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">\n';
  for (let i = 0; i < entries.length; i++) {
    buf += renderEntry(entries[i]!, dead[i], req, rc);
    if (buf.length >= CHUNK) {
      const wait = write(r, buf);
      buf = '';
      if (wait) await wait;
      if (r.signal.aborted) return;
    }
  }
  buf += '</D:multistatus>\n';
  r.res.end(buf, 'utf8');
}
