/**
 * LOCK and UNLOCK (RFC 4918 §9.10, §9.11) over LockTable: write locks, exclusive or shared, depth 0
 * or infinity, per token. LOCK on an unmapped URL creates an empty file (201), as Finder and
 * Explorer expect; LOCK without a body refreshes the lock named in If through any URL it covers.
 */
import { Readable } from 'node:stream';
import { TbdavError } from '../../shared/errors.js';
import { header, readSmallBody, hasBody, type DavDeps, type DavRequest } from '../context.js';
import type { LockScope } from '../lock-gate.js';
import { tokensInIfHeader } from '../lock-gate.js';
import { parseXml, serializeContent } from '../xml.js';
import { requireParentFolder, statOrUndefined } from './write.js';

const DAV = 'DAV:';
const DEFAULT_TIMEOUT_S = 3600;
const MAX_TIMEOUT_S = 7 * 24 * 3600;

/** `Timeout: Second-N, Infinite` -> seconds (first understood value, capped at a week). */
export function parseTimeout(v: string | undefined): number {
  for (const part of (v ?? '').split(',')) {
    const t = part.trim().toLowerCase();
    if (t === 'infinite') return MAX_TIMEOUT_S;
    const m = /^second-(\d+)$/.exec(t);
    if (m) return Math.min(MAX_TIMEOUT_S, Math.max(1, Number(m[1])));
  }
  return DEFAULT_TIMEOUT_S;
}

function answer(r: DavRequest, status: number, inner: string, token?: string): void {
  const body = '<?xml version="1.0" encoding="utf-8"?>\n<D:prop xmlns:D="DAV:"><D:lockdiscovery>' + inner + '</D:lockdiscovery></D:prop>\n';
  r.res.statusCode = status;
  if (token) r.res.setHeader('Lock-Token', `<${token}>`);
  r.res.setHeader('Content-Type', 'application/xml; charset=utf-8');
  r.res.setHeader('Content-Length', Buffer.byteLength(body));
  r.res.end(body);
}

export function makeLockHandlers() {
  async function refresh(r: DavRequest, deps: DavDeps): Promise<void> {
    const locks = deps.locks;
    const tokens = [...tokensInIfHeader(header(r, 'if'))];
    if (tokens.length === 0) throw new TbdavError('TBDAV_BAD_REQUEST', `LOCK ${r.path}: refresh without a lock token in If`);
    await deps.fs.stat(r.path, r.call);
    const timeout = parseTimeout(header(r, 'timeout'));
    for (const token of tokens) {
      const lock = locks.refresh(r.path, token, timeout);
      if (lock) return answer(r, 200, locks.renderLocks([lock]));
    }
    throw new TbdavError('TBDAV_PRECONDITION', `LOCK ${r.path}: no lock of the submitted token covers this resource`);
  }

  async function handleLock(r: DavRequest, deps: DavDeps): Promise<void> {
    const locks = deps.locks;
    if (!hasBody(r)) return refresh(r, deps);
    const body = await readSmallBody(r);
    if (body.trim() === '') return refresh(r, deps);
    const root = parseXml(body);
    if (root.ns !== DAV || root.local !== 'lockinfo') throw new TbdavError('TBDAV_BAD_REQUEST', `LOCK ${r.path}: root is not DAV:lockinfo`);
    const child = (local: string) => root.children.find((c) => c.ns === DAV && c.local === local);
    const scopeEl = child('lockscope')?.children[0];
    const typeEl = child('locktype')?.children[0];
    if (!scopeEl || scopeEl.ns !== DAV || (scopeEl.local !== 'exclusive' && scopeEl.local !== 'shared')) {
      throw new TbdavError('TBDAV_BAD_REQUEST', `LOCK ${r.path}: lockscope must be exclusive or shared`);
    }
    if (!typeEl || typeEl.ns !== DAV || typeEl.local !== 'write') {
      throw new TbdavError('TBDAV_BAD_REQUEST', `LOCK ${r.path}: only write locks exist`);
    }
    const owner = child('owner');
    const depthRaw = header(r, 'depth')?.trim().toLowerCase();
    if (depthRaw !== undefined && depthRaw !== '0' && depthRaw !== 'infinity') {
      throw new TbdavError('TBDAV_BAD_REQUEST', `LOCK ${r.path}: Depth must be 0 or infinity`);
    }
    const depth = depthRaw === '0' ? 0 : 'infinity';
    const scope = scopeEl.local as LockScope;
    if (locks.conflicts(r.path, scope, depth)) throw new TbdavError('TBDAV_LOCKED', `LOCK ${r.path}: a conflicting lock exists`);
    let status = 200;
    const existing = await statOrUndefined(deps, r.path, r);
    if (!existing) {
      // Lock-null resource: RFC 4918 creates an empty file.
      await requireParentFolder(deps, r.path, r);
      await deps.locks.checkWrite(r.req, [{ path: r.path, membership: true }]);
      await deps.fs.put(r.path, Readable.from([]), { ...r.call, overwrite: false, expectedSize: 0 });
      status = 201;
    }
    const lock = locks.add(r.path, { scope, depth, ownerXml: owner ? serializeContent(owner) : '', timeoutSec: parseTimeout(header(r, 'timeout')), isDir: existing?.isDir ?? false });
    answer(r, status, locks.renderLocks([lock]), lock.token);
  }

  async function handleUnlock(r: DavRequest, deps: DavDeps): Promise<void> {
    r.req.resume();
    const raw = header(r, 'lock-token')?.trim();
    const token = raw?.replace(/^<|>$/g, '').trim();
    if (!token) throw new TbdavError('TBDAV_BAD_REQUEST', `UNLOCK ${r.path}: Lock-Token header missing`);
    await deps.fs.stat(r.path, r.call);
    if (!deps.locks.remove(r.path, token)) {
      throw new TbdavError('TBDAV_CONFLICT', `UNLOCK ${r.path}: no lock with this token covers the resource`);
    }
    r.res.statusCode = 204;
    r.res.end();
  }

  return { handleLock, handleUnlock };
}
