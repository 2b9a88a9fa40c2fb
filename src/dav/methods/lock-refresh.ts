/**
 * LOCK without a body = refresh (RFC 4918 §9.10.2). Done here rather than in webdav-server, whose
 * refresh only finds locks taken on the very URL (not through a collection's depth-infinity lock)
 * and only reads the untagged If form.
 */
import { TbdavError } from '../../shared/errors.js';
import { header, type DavDeps, type DavRequest } from '../context.js';
import { tokensInIfHeader, type LockTable } from '../lock-gate.js';

const DEFAULT_TIMEOUT_S = 3600;
const MAX_TIMEOUT_S = 7 * 24 * 3600;

/** `Timeout: Second-N, Infinite` -> seconds (first understood value). */
export function parseTimeout(v: string | undefined): number {
  for (const part of (v ?? '').split(',')) {
    const t = part.trim().toLowerCase();
    if (t === 'infinite') return MAX_TIMEOUT_S;
    const m = /^second-(\d+)$/.exec(t);
    if (m) return Math.min(MAX_TIMEOUT_S, Math.max(1, Number(m[1])));
  }
  return DEFAULT_TIMEOUT_S;
}

export function makeLockRefresh(locks: LockTable) {
  return async function handleLockRefresh(r: DavRequest, deps: DavDeps): Promise<void> {
    const tokens = [...tokensInIfHeader(header(r, 'if'))];
    if (tokens.length === 0) throw new TbdavError('TBDAV_BAD_REQUEST', `LOCK ${r.path}: refresh without a lock token in If`);
    await deps.fs.stat(r.path, r.call);
    const timeout = parseTimeout(header(r, 'timeout'));
    for (const token of tokens) {
      const lock = locks.refresh(r.path, token, timeout);
      if (!lock) continue;
      const body =
        '<?xml version="1.0" encoding="utf-8"?>\n<D:prop xmlns:D="DAV:"><D:lockdiscovery>' + locks.activeLockXml(lock) + '</D:lockdiscovery></D:prop>\n';
      r.res.statusCode = 200;
      r.res.setHeader('Content-Type', 'application/xml; charset=utf-8');
      r.res.setHeader('Content-Length', Buffer.byteLength(body));
      r.res.end(body);
      return;
    }
    throw new TbdavError('TBDAV_PRECONDITION', `LOCK ${r.path}: no lock of the submitted token covers this resource`);
  };
}
