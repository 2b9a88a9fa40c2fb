/**
 * Locks as seen by the methods implemented in src/dav/methods: which locks apply to a path, and
 * whether a write may proceed given the request's If header.
 *
 * The locks themselves live in `LockTable` (webdav-server LocalLockManager objects, one per locked
 * path), filled by webdav-server's LOCK/UNLOCK running over DavFileSystem. In memory only: locks do
 * not survive a restart (clients re-lock).
 *
 * Shared state: `LockTable.managers` — touched only on the event loop, no lock needed.
 *
 * TODO(dav-compliance): full RFC 4918 §10.4 If-header evaluation (etags, Not, resource tags) is
 * theirs; this gate only asks that a token of each applicable lock appears in the If header.
 */
import type { IncomingMessage } from 'node:http';
import { v2 as webdav } from 'webdav-server';
import { TbdavError } from '../shared/errors.js';
import { evaluateIf, parseIf, submittedTokens, type IfResource } from './if-eval.js';
import { decodePath, hrefFor, isSameOrBelow, parentOf, pathOfTarget } from './paths.js';
import { escapeXml } from './xml.js';

export interface ActiveLock {
  token: string;
  /** FileSystem path the lock was taken on. */
  root: string;
  depth: 0 | 'infinity';
  scope: 'exclusive' | 'shared';
  /** Owner as raw XML (may be empty). */
  ownerXml: string;
  /** Seconds left. */
  timeoutSec: number;
}

export interface LockTarget {
  path: string;
  /** The operation reaches everything below the path too (DELETE, MOVE, COPY destination). */
  deep?: boolean;
  /** The operation changes the membership of the parent collection (its depth-0 locks apply). */
  membership?: boolean;
}

/** What the dav methods need from the lock machinery (dav-compliance's LockStore plugs in here). */
export interface LockGate {
  /** Throw TBDAV_LOCKED (423) / TBDAV_PRECONDITION (412) unless the request may write the targets. */
  checkWrite(req: IncomingMessage, targets: LockTarget[]): Promise<void>;
  /** Evaluate an If header on a read (412 when it fails). */
  checkConditions(req: IncomingMessage, path: string): Promise<void>;
  /** A resource and everything under it is gone (deleted or moved away): drop its locks. */
  forgetTree(path: string): void;
  /** Inner XML of DAV:lockdiscovery for a path ('' when unlocked). */
  lockDiscoveryXml(path: string): string;
  /** Inner XML of DAV:supportedlock. */
  readonly supportedLockXml: string;
}

type LibLock = InstanceType<typeof webdav.Lock>;

function ownerToXml(owner: unknown): string {
  if (owner === null || owner === undefined) return '';
  if (typeof owner === 'string') return owner;
  if (Array.isArray(owner)) return owner.map(ownerToXml).join('');
  const o = owner as { type?: string; text?: unknown; name?: string; elements?: unknown[]; attributes?: Record<string, string> };
  if (o.type === 'text' || o.type === 'cdata') return escapeText(String(o.text ?? ''));
  if (o.type === 'element' && o.name) {
    const attrs = Object.entries(o.attributes ?? {})
      .map(([k, v]) => ` ${k}="${escapeText(String(v))}"`)
      .join('');
    return `<${o.name}${attrs}>${ownerToXml(o.elements ?? [])}</${o.name}>`;
  }
  return '';
}

function escapeText(s: string): string {
  return s.replace(/[&<>"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'));
}

/** Lock tokens named inside the lists of an If header (resource tags excluded). */
export function tokensInIfHeader(ifHeader: string | undefined): Set<string> {
  const out = new Set<string>();
  if (!ifHeader) return out;
  for (const list of ifHeader.matchAll(/\(([^)]*)\)/g)) {
    for (const t of list[1]!.matchAll(/<([^>]+)>/g)) out.add(t[1]!.trim());
  }
  return out;
}

/** Stand-in LockGate over webdav-server's LocalLockManager (until dav-compliance's LockStore). */
export class LockTable implements LockGate {
  private readonly managers = new Map<string, InstanceType<typeof webdav.LocalLockManager>>();

  /** `etagOf(path)`: the current ETag of a resource, undefined when absent (for If [etag] conditions). */
  constructor(private readonly etagOf: (path: string) => Promise<string | undefined> = async () => undefined) {}

  private async ifResource(path: string): Promise<IfResource> {
    return { etag: await this.etagOf(path), lockTokens: new Set(this.locksFor(path).map((l) => l.token)) };
  }

  /**
   * Evaluate the request's If header (400 malformed, 412 when no list holds); returns the submitted
   * tokens (empty without an If header).
   */
  private async evaluate(req: IncomingMessage, path?: string): Promise<Set<string>> {
    const raw = req.headers['if'];
    if (raw === undefined) return new Set();
    const lists = parseIf(Array.isArray(raw) ? raw.join(' ') : raw);
    const requestPath = path ?? decodePath(pathOfTarget(req.url ?? '/')).path;
    const host = req.headers.host;
    if (!(await evaluateIf(lists, requestPath, host, (p) => this.ifResource(p)))) {
      throw new TbdavError('TBDAV_PRECONDITION', `${req.method ?? ''} ${requestPath}: If header condition failed`);
    }
    return submittedTokens(lists);
  }

  /** The lock manager of one path (created on first use). */
  managerFor(path: string): InstanceType<typeof webdav.LocalLockManager> {
    let m = this.managers.get(path);
    if (!m) {
      m = new webdav.LocalLockManager();
      this.managers.set(path, m);
    }
    return m;
  }

  private live(path: string): LibLock[] {
    const m = this.managers.get(path);
    if (!m) return [];
    const locks = (m as unknown as { locks: LibLock[] }).locks.filter((l) => !l.expired());
    (m as unknown as { locks: LibLock[] }).locks = locks;
    if (locks.length === 0) this.managers.delete(path);
    return locks;
  }

  private toActive(path: string, l: LibLock): ActiveLock {
    return {
      token: l.uuid,
      root: path,
      depth: l.depth === -1 ? 'infinity' : 0,
      scope: l.lockKind.scope.value.toLowerCase().includes('shared') ? 'shared' : 'exclusive',
      ownerXml: ownerToXml(l.owner),
      timeoutSec: Math.max(0, Math.round((l.expirationDate - Date.now()) / 1000)),
    };
  }

  locksFor(path: string): ActiveLock[] {
    if (this.managers.size === 0) return [];
    const out: ActiveLock[] = this.live(path).map((l) => this.toActive(path, l));
    let p = path;
    while (p !== '/') {
      p = parentOf(p);
      for (const l of this.live(p)) if (l.depth === -1) out.push(this.toActive(p, l));
    }
    return out;
  }

  async checkWrite(req: IncomingMessage, targets: LockTarget[]): Promise<void> {
    const tokens = await this.evaluate(req);
    if (this.managers.size === 0) return;
    // Each resource the request touches that is covered by locks needs the token of one of them
    // (several shared locks: any one will do; an exclusive lock is alone anyway).
    const groups: ActiveLock[][] = [];
    for (const t of targets) {
      groups.push(this.locksFor(t.path));
      if (t.membership && t.path !== '/') {
        const parent = parentOf(t.path);
        groups.push(this.live(parent).filter((l) => l.depth !== -1).map((l) => this.toActive(parent, l)));
      }
      if (t.deep) {
        for (const key of [...this.managers.keys()]) {
          if (key !== t.path && isSameOrBelow(key, t.path)) groups.push(this.live(key).map((l) => this.toActive(key, l)));
        }
      }
    }
    for (const group of groups) {
      if (group.length > 0 && !group.some((l) => tokens.has(l.token))) {
        throw new TbdavError('TBDAV_LOCKED', `${group[0]!.root}: locked (submit the lock token in an If header)`);
      }
    }
  }

  async checkConditions(req: IncomingMessage, path: string): Promise<void> {
    await this.evaluate(req, path);
  }

  /**
   * Refresh the lock named by `token` if it covers `path` (a refresh may go through any URL the lock
   * covers). Returns the refreshed lock, undefined when no such lock covers the path.
   */
  refresh(path: string, token: string, timeoutSec: number): ActiveLock | undefined {
    const hit = this.locksFor(path).find((l) => l.token === token);
    if (!hit) return undefined;
    const lib = this.live(hit.root).find((l) => l.uuid === token);
    if (!lib) return undefined;
    lib.refresh(timeoutSec);
    return this.toActive(hit.root, lib);
  }

  /** Inner XML of one activelock. */
  activeLockXml(l: ActiveLock): string {
    return this.renderLocks([l]);
  }

  lockDiscoveryXml(path: string): string {
    return this.renderLocks(this.locksFor(path));
  }

  private renderLocks(locks: ActiveLock[]): string {
    return locks
      .map(
        (l) =>
          `<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:${l.scope}/></D:lockscope>` +
          `<D:depth>${l.depth === 'infinity' ? 'infinity' : '0'}</D:depth>` +
          (l.ownerXml ? `<D:owner>${l.ownerXml}</D:owner>` : '') +
          `<D:timeout>Second-${l.timeoutSec}</D:timeout>` +
          `<D:locktoken><D:href>${escapeXml(l.token)}</D:href></D:locktoken>` +
          `<D:lockroot><D:href>${escapeXml(hrefFor(l.root, false))}</D:href></D:lockroot></D:activelock>`,
      )
      .join('');
  }

  readonly supportedLockXml =
    '<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>' +
    '<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>';

  forgetTree(path: string): void {
    for (const key of [...this.managers.keys()]) if (isSameOrBelow(key, path)) this.managers.delete(key);
  }
}
