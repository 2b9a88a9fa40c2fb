/**
 * WebDAV locks (class 2): the lock table, and the gate every write passes (If-header evaluation,
 * then lock-token check). Locks are per token, not per user: whoever submits the token may write.
 * In memory only: locks do not survive a restart (clients re-lock).
 *
 * Shared state: `LockTable.byPath` (path -> live lock records) — event loop only, no lock needed;
 * every method reads and updates it synchronously between awaits.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { TbdavError } from '../shared/errors.js';
import { clientInfo } from './client-info.js';
import { evaluateIf, parseIf, submittedTokens, type IfResource } from './if-eval.js';
import { decodePath, hrefFor, isSameOrInside, parentPath, pathOfTarget } from './paths.js';
import type { PathScope } from './user-scope.js';
import type { PersistedLock } from './locks-persist.js';
import { escapeText } from './xml.js';

export type LockScope = 'exclusive' | 'shared';

/** A lock as answered in lockdiscovery: its record with the seconds left instead of the expiry. */
export interface ActiveLock extends Omit<PersistedLock, 'expiresAt'> {
  /** Seconds left. */
  timeoutSec: number;
}

/** A lock as the table keeps it (and as locks-persist.ts stores it). */
export type LockRecord = PersistedLock;

export interface LockTarget {
  path: string;
  /** The operation reaches everything below the path too (DELETE, MOVE, COPY destination). */
  deep?: boolean;
  /** The operation changes the membership of the parent collection (its depth-0 locks apply). */
  membership?: boolean;
}

/** What the dav methods need from the lock machinery (paths in the requesting user's view). */
export interface LockGate {
  /** Whether a new lock of this scope and depth on `path` conflicts with existing ones. */
  conflicts(path: string, scope: LockScope, depth: 0 | 'infinity'): boolean;
  /** Take a lock (the caller checked conflicts). */
  add(path: string, opts: { scope: LockScope; depth: 0 | 'infinity'; ownerXml: string; timeoutSec: number; isDir: boolean }): ActiveLock;
  /** Remove the lock `token` if it covers `path`; false when no such lock. */
  remove(path: string, token: string): boolean;
  /** Refresh the lock `token` if it covers `path` (any covered URL will do). */
  refresh(path: string, token: string, timeoutSec: number): ActiveLock | undefined;
  /** Inner XML of DAV:activelock elements. */
  renderLocks(locks: ActiveLock[]): string;
  /** Throw TBDAV_PRECONDITION (412) when the If header fails, TBDAV_LOCKED (423) when a covering lock's token is missing. */
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

/** Lock tokens named inside the lists of an If header (resource tags excluded), lenient. */
export function tokensInIfHeader(ifHeader: string | undefined): Set<string> {
  const out = new Set<string>();
  if (!ifHeader) return out;
  for (const list of ifHeader.matchAll(/\(([^)]*)\)/g)) {
    for (const t of list[1]!.matchAll(/<([^>]+)>/g)) out.add(t[1]!.trim());
  }
  return out;
}

/** Where the table hands a snapshot after each change (src/dav/locks-persist.ts LockFile). */
export interface LockPersistence {
  save(locks: readonly LockRecord[]): void;
}

export class LockTable implements LockGate {
  private readonly byPath = new Map<string, LockRecord[]>();

  /**
   * `etagOf(path)`: the current ETag of a resource, undefined when absent (If [etag] conditions).
   * `now`: clock (tests). `persist`: receives a snapshot after every change.
   */
  constructor(
    private readonly etagOf: (path: string) => Promise<string | undefined> = async () => undefined,
    private readonly now: () => number = Date.now,
    private readonly persist?: LockPersistence,
  ) {}

  /** Put back locks read from the state file at start (expired ones ignored). */
  restore(records: readonly LockRecord[]): void {
    const t = this.now();
    for (const r of records) {
      if (r.expiresAt <= t) continue;
      this.byPath.set(r.root, [...(this.byPath.get(r.root) ?? []), { ...r }]);
    }
  }

  private changed(): void {
    if (!this.persist) return;
    const all: LockRecord[] = [];
    for (const key of [...this.byPath.keys()]) all.push(...this.live(key));
    this.persist.save(all.map((l) => ({ ...l })));
  }

  private live(path: string): LockRecord[] {
    const list = this.byPath.get(path);
    if (!list) return [];
    const t = this.now();
    const alive = list.filter((l) => l.expiresAt > t);
    if (alive.length === 0) this.byPath.delete(path);
    else if (alive.length !== list.length) this.byPath.set(path, alive);
    return alive;
  }

  private toActive(l: LockRecord): ActiveLock {
    return {
      token: l.token,
      root: l.root,
      rootIsDir: l.rootIsDir,
      depth: l.depth,
      scope: l.scope,
      ownerXml: l.ownerXml,
      timeoutSec: Math.max(0, Math.round((l.expiresAt - this.now()) / 1000)),
    };
  }

  private covering(path: string): LockRecord[] {
    if (this.byPath.size === 0) return [];
    const out = [...this.live(path)];
    let p = path;
    while (p !== '/') {
      p = parentPath(p);
      for (const l of this.live(p)) if (l.depth === 'infinity') out.push(l);
    }
    return out;
  }

  private below(path: string): LockRecord[] {
    const out: LockRecord[] = [];
    for (const key of [...this.byPath.keys()]) if (key !== path && isSameOrInside(key, path)) out.push(...this.live(key));
    return out;
  }

  /** Locks that apply to `path`: its own, and depth-infinity locks of its ancestors. */
  locksFor(path: string): ActiveLock[] {
    return this.covering(path).map((l) => this.toActive(l));
  }

  /** Whether a new lock of this scope and depth on `path` conflicts with existing ones. */
  conflicts(path: string, scope: LockScope, depth: 0 | 'infinity'): boolean {
    const existing = [...this.covering(path), ...(depth === 'infinity' ? this.below(path) : [])];
    if (existing.length === 0) return false;
    return scope === 'exclusive' || existing.some((l) => l.scope === 'exclusive');
  }

  /** Take a lock (the caller checked conflicts). */
  add(path: string, opts: { scope: LockScope; depth: 0 | 'infinity'; ownerXml: string; timeoutSec: number; isDir: boolean }): ActiveLock {
    const rec: LockRecord = {
      token: `urn:uuid:${randomUUID()}`,
      root: path,
      rootIsDir: opts.isDir,
      depth: opts.depth,
      scope: opts.scope,
      ownerXml: opts.ownerXml,
      expiresAt: this.now() + opts.timeoutSec * 1000,
    };
    this.byPath.set(path, [...this.live(path), rec]);
    this.changed();
    return this.toActive(rec);
  }

  /** Remove the lock `token` if it covers `path`; false when no such lock. */
  remove(path: string, token: string): boolean {
    const hit = this.covering(path).find((l) => l.token === token);
    if (!hit) return false;
    const rest = this.live(hit.root).filter((l) => l.token !== token);
    if (rest.length) this.byPath.set(hit.root, rest);
    else this.byPath.delete(hit.root);
    this.changed();
    return true;
  }

  /** Refresh the lock `token` if it covers `path` (any covered URL will do). */
  refresh(path: string, token: string, timeoutSec: number): ActiveLock | undefined {
    const hit = this.covering(path).find((l) => l.token === token);
    if (!hit) return undefined;
    hit.expiresAt = this.now() + timeoutSec * 1000;
    this.changed();
    return this.toActive(hit);
  }

  private async ifResource(path: string): Promise<IfResource> {
    return { etag: await this.etagOf(path), lockTokens: new Set(this.covering(path).map((l) => l.token)) };
  }

  /**
   * Evaluate the If header (400 malformed, 412 when no list holds); returns the submitted tokens.
   * Paths in the header and `path` are in the user's view; `scope` maps them to the share.
   */
  async evaluateIn(req: IncomingMessage, path: string | undefined, scope?: PathScope): Promise<Set<string>> {
    const raw = req.headers['if'];
    if (raw === undefined) return new Set();
    const lists = parseIf(Array.isArray(raw) ? raw.join(' ') : raw);
    const requestPath = path ?? decodePath(pathOfTarget(req.url ?? '/')).path;
    const get = (p: string): Promise<IfResource> => this.ifResource(scope ? scope.toShare(p) : p);
    if (!(await evaluateIf(lists, requestPath, clientInfo(req).host, get))) {
      throw new TbdavError('TBDAV_PRECONDITION', `${req.method ?? ''} ${requestPath}: If header condition failed`);
    }
    return submittedTokens(lists);
  }

  /** The lock part of checkWrite, on share paths; `shown` maps a lock root for the message. */
  checkTokens(tokens: Set<string>, targets: LockTarget[], shown: (root: string) => string = (r) => r): void {
    if (this.byPath.size === 0) return;
    // Each resource the request touches that is covered by locks needs the token of one of them
    // (several shared locks: any one will do; an exclusive lock is alone anyway).
    const groups: LockRecord[][] = [];
    for (const t of targets) {
      groups.push(this.covering(t.path));
      if (t.membership && t.path !== '/') groups.push(this.live(parentPath(t.path)).filter((l) => l.depth === 0));
      if (t.deep) {
        for (const key of [...this.byPath.keys()]) if (key !== t.path && isSameOrInside(key, t.path)) groups.push(this.live(key));
      }
    }
    for (const group of groups) {
      if (group.length > 0 && !group.some((l) => tokens.has(l.token))) {
        throw new TbdavError('TBDAV_LOCKED', `${shown(group[0]!.root)}: locked (submit the lock token in an If header)`);
      }
    }
  }

  async checkWrite(req: IncomingMessage, targets: LockTarget[]): Promise<void> {
    this.checkTokens(await this.evaluateIn(req, undefined), targets);
  }

  async checkConditions(req: IncomingMessage, path: string): Promise<void> {
    await this.evaluateIn(req, path);
  }

  /** The table as a user whose folder is `scope.root` sees it (the table itself for the whole share). */
  scoped(scope: PathScope): LockGate {
    return scope.isWhole ? this : new ScopedLocks(this, scope);
  }

  /** Inner XML of DAV:activelock elements. */
  renderLocks(locks: ActiveLock[]): string {
    return locks
      .map(
        (l) =>
          `<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:${l.scope}/></D:lockscope>` +
          `<D:depth>${l.depth === 'infinity' ? 'infinity' : '0'}</D:depth>` +
          (l.ownerXml ? `<D:owner>${l.ownerXml}</D:owner>` : '') +
          `<D:timeout>Second-${l.timeoutSec}</D:timeout>` +
          `<D:locktoken><D:href>${escapeText(l.token)}</D:href></D:locktoken>` +
          `<D:lockroot><D:href>${escapeText(hrefFor(l.root, l.rootIsDir))}</D:href></D:lockroot></D:activelock>`,
      )
      .join('');
  }

  lockDiscoveryXml(path: string): string {
    return this.renderLocks(this.locksFor(path));
  }

  readonly supportedLockXml =
    '<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>' +
    '<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>';

  forgetTree(path: string): void {
    let any = false;
    for (const key of [...this.byPath.keys()]) {
      if (isSameOrInside(key, path)) {
        this.byPath.delete(key);
        any = true;
      }
    }
    if (any) this.changed();
  }
}

/** A LockTable seen from a user's folder: paths mapped in, lock roots mapped out. */
class ScopedLocks implements LockGate {
  constructor(
    private readonly table: LockTable,
    private readonly scope: PathScope,
  ) {}

  private out(l: ActiveLock): ActiveLock {
    const root = this.scope.toUser(l.root);
    // A lock taken above the user's folder (by a user who sees more) shows as the folder's own.
    return root === undefined ? { ...l, root: '/', rootIsDir: true } : { ...l, root };
  }

  private shown = (root: string): string => this.scope.toUser(root) ?? '/';

  conflicts(path: string, scope: LockScope, depth: 0 | 'infinity'): boolean {
    return this.table.conflicts(this.scope.toShare(path), scope, depth);
  }

  add(path: string, opts: { scope: LockScope; depth: 0 | 'infinity'; ownerXml: string; timeoutSec: number; isDir: boolean }): ActiveLock {
    return this.out(this.table.add(this.scope.toShare(path), opts));
  }

  remove(path: string, token: string): boolean {
    return this.table.remove(this.scope.toShare(path), token);
  }

  refresh(path: string, token: string, timeoutSec: number): ActiveLock | undefined {
    const l = this.table.refresh(this.scope.toShare(path), token, timeoutSec);
    return l && this.out(l);
  }

  renderLocks(locks: ActiveLock[]): string {
    return this.table.renderLocks(locks);
  }

  async checkWrite(req: IncomingMessage, targets: LockTarget[]): Promise<void> {
    const tokens = await this.table.evaluateIn(req, undefined, this.scope);
    this.table.checkTokens(
      tokens,
      targets.map((t) => ({ ...t, path: this.scope.toShare(t.path) })),
      this.shown,
    );
  }

  async checkConditions(req: IncomingMessage, path: string): Promise<void> {
    await this.table.evaluateIn(req, path, this.scope);
  }

  forgetTree(path: string): void {
    this.table.forgetTree(this.scope.toShare(path));
  }

  lockDiscoveryXml(path: string): string {
    return this.table.renderLocks(this.table.locksFor(this.scope.toShare(path)).map((l) => this.out(l)));
  }

  get supportedLockXml(): string {
    return this.table.supportedLockXml;
  }
}
