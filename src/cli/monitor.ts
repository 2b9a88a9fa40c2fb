/**
 * The ServiceMonitor of the running stack (issue 11): what /readyz, the status page and the browser
 * login see of the client, the Vfs and the write-back queue. Built by stack.ts, which moves its state
 * (starting -> login -> ready, or failed) and hands it the parts as they come up.
 *
 * Shared state: `state`, `parts`, the cached account and probe results — event loop only; the
 * cached promises make concurrent status page loads share one call.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BridgeMetrics } from '../dav/metrics.js';
import type { AccountView, ServiceMonitor, ShareState, StatusSnapshot, UploadView } from '../dav/service.js';
import { TbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { redact } from '../shared/redact.js';
import type { TeraboxClient } from '../terabox/client.js';
import type { UploadsAdmin } from '../vfs/uploads-control.js';
import { FAILURE_MEANING, type PendingInfo, type WritebackPort } from '../vfs/writeback.js';
import type { SharesWiring } from './shares-wiring.js';

const VIP_TYPES: Record<number, string> = { 0: 'regular user', 1: 'Premium', 2: 'super Premium' };

/** How long an answer of the service counts as "reachable" for /readyz. */
const REACHABLE_MS = 60_000;
/** How long a look at the status page keeps device codes coming. */
const LOGIN_INTEREST_MS = 10 * 60_000;
/** How long the account and quota shown on the status page are reused. */
const ACCOUNT_TTL_MS = 60_000;

let versionCache: string | undefined;
/** The package version (package.json next to src/ or dist/). */
export function packageVersion(): string {
  if (versionCache) return versionCache;
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    versionCache = (JSON.parse(readFileSync(join(here, '..', '..', 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    versionCache = 'unknown';
  }
  return versionCache;
}

export interface MonitorParts {
  client: TeraboxClient;
  writeback?: WritebackPort;
  shares?: SharesWiring;
}

export interface StackMonitorOptions {
  metrics: BridgeMetrics;
  emulator: boolean;
  driveFolder: string;
  /** The application folder the platform confines the app to (when known). */
  appFolder?: string;
  uploadMode: 'writethrough' | 'writeback';
  /** shares.folder */
  sharesFolder?: string;
  logger?: Logger;
  now?: () => number;
}

/** `/From: Other Applications/<app>` when the root lies in one, else undefined. */
export function appFolderOf(root: string): string | undefined {
  const m = /^(\/From: Other Applications\/[^/]+)/.exec(root);
  return m?.[1];
}

export class StackMonitor implements ServiceMonitor {
  private state: ShareState = { state: 'starting' };
  private parts: MonitorParts | undefined;
  private readonly startedAt: number;
  private readonly now: () => number;
  private account: { at: number; value: Promise<AccountView> } | undefined;
  private wantedAt = -Infinity;
  private wanted: (() => void)[] = [];
  private probe: { at: number; value: Promise<boolean> } | undefined;

  constructor(private readonly opts: StackMonitorOptions) {
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
  }

  setState(state: ShareState): void {
    this.state = state;
  }

  setParts(parts: MonitorParts): void {
    this.parts = parts;
  }

  share(): ShareState {
    return this.state;
  }

  /** Someone looks at the status page while the login is pending: a device code is worth asking for. */
  wantLogin(): void {
    this.wantedAt = this.now();
    const waiting = this.wanted;
    this.wanted = [];
    for (const w of waiting) w();
  }

  /** Resolves once the status page has been looked at in the last 10 minutes (or at once if it was), or on abort. */
  loginWanted(signal: AbortSignal): Promise<void> {
    if (this.now() - this.wantedAt < LOGIN_INTEREST_MS || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.wanted.push(done);
      signal.addEventListener('abort', done);
    });
  }

  async ready(): Promise<boolean> {
    if (this.state.state !== 'ready' || !this.parts) return false;
    const wb = this.parts.writeback?.usage();
    if (wb && wb.pendingBytes + wb.reservedBytes >= wb.maxBytes) return false;
    const last = this.opts.metrics.lastAnswerAt();
    if (last !== undefined && this.now() - last < REACHABLE_MS) return true;
    // Quiet for a minute: ask the service (at most once per 30 s, shared by concurrent probes).
    if (!this.probe || this.now() - this.probe.at > REACHABLE_MS / 2) {
      const client = this.parts.client;
      this.probe = { at: this.now(), value: client.quota().then(() => true, () => false) };
    }
    return this.probe.value;
  }

  private accountView(): Promise<AccountView> {
    const client = this.parts!.client;
    if (!this.account || this.now() - this.account.at > ACCOUNT_TTL_MS) {
      const value = Promise.all([client.uinfo(), client.quota()]).then(([u, q]) => ({
        name: u.uname,
        type: VIP_TYPES[u.vip_type] ?? `vip type ${u.vip_type}`,
        quota: { used: q.used, total: q.total },
      }));
      // A failure is not kept: the next page load asks again.
      value.catch(() => {
        if (this.account?.value === value) this.account = undefined;
      });
      this.account = { at: this.now(), value };
    }
    return this.account.value;
  }

  /** The write-back queue's retry/remove, when the running queue offers them (WritebackQueue does). */
  private admin(): UploadsAdmin {
    const wb = this.parts?.writeback as (WritebackPort & Partial<UploadsAdmin>) | undefined;
    if (!wb || typeof wb.retry !== 'function' || typeof wb.discardUpload !== 'function') {
      throw new TbdavError('TBDAV_NOT_FOUND', 'no write-back queue to act on');
    }
    return wb as WritebackPort & UploadsAdmin;
  }

  /** Status page "Retry": the upload at this path (its id) starts again. */
  async retryUpload(id: string): Promise<void> {
    if (!(await this.admin().retry(id))) throw new TbdavError('TBDAV_NOT_FOUND', `retry ${id}: no such upload`);
  }

  /** Status page "Remove": the upload at this path is given up and its body deleted. */
  async removeUpload(id: string): Promise<void> {
    if (!(await this.admin().discardUpload(id))) throw new TbdavError('TBDAV_NOT_FOUND', `remove ${id}: no such upload`);
  }

  async snapshot(): Promise<StatusSnapshot> {
    const { metrics } = this.opts;
    const snap: StatusSnapshot = {
      version: packageVersion(),
      emulator: this.opts.emulator,
      driveFolder: this.opts.driveFolder,
      appFolder: this.opts.appFolder,
      uploadMode: this.opts.uploadMode,
      cache: metrics.cacheCounts(),
      startedAt: this.startedAt,
    };
    if (this.state.state !== 'ready' || !this.parts) {
      snap.accountProblem = this.state.state === 'login' ? 'not logged in yet' : 'not available while the share is not serving';
      return snap;
    }
    try {
      snap.account = await this.accountView();
    } catch (err) {
      snap.accountProblem = `TeraBox did not answer: ${redact(String((err as Error)?.message ?? err))}`;
    }
    const p = this.parts.client.http.pacerStats();
    snap.pacer = { intervalMs: Math.round(p.intervalMs), backoffs: p.backoffs, rateLimited: p.rateLimited };
    const wb = this.parts.writeback;
    if (wb) {
      const u = wb.usage();
      const now = this.now();
      const view = (i: PendingInfo): UploadView => {
        const v: UploadView = { id: i.path, path: i.path, size: i.size, done: 0, since: i.createdAt };
        if (i.state === 'failed') v.error = `${FAILURE_MEANING[i.failed?.code ?? ''] ?? 'refused by TeraBox'} (${i.failed?.code ?? i.lastError ?? '?'})`;
        else if (i.state === 'retrying') {
          const wait = i.nextAttemptAt !== undefined ? Math.max(0, Math.round((i.nextAttemptAt - now) / 1000)) : undefined;
          v.note = `attempt ${i.attempts} failed (${i.lastError ?? '?'})${wait !== undefined ? `, next in ${wait} s` : ''}`;
        }
        return v;
      };
      const pending = wb.pendingUnder('/');
      snap.uploads = {
        inFlight: pending.filter((i) => i.state === 'uploading').map(view),
        queued: pending.filter((i) => i.state === 'queued' || i.state === 'retrying').map(view),
        failed: pending.filter((i) => i.state === 'failed').map(view),
        spoolBytes: u.pendingBytes,
        spoolMaxBytes: u.maxBytes,
      };
    }
    const shares = this.parts.shares;
    if (shares) {
      try {
        const records = await shares.store.load();
        snap.shares = {
          folder: this.opts.sharesFolder ?? '/',
          // The link without its query: a `?pwd=` there is the extraction code (a secret).
          list: records.map((r) => ({ name: r.name, link: r.link.replace(/[?#].*$/, ''), addedAt: r.addedAt })),
          transfers: shares.transfers.list().map((t) => ({ ...t })),
        };
      } catch (err) {
        // A share store that cannot be read is the CLI's business (share add/list say why); the page goes on without the list.
        this.opts.logger?.debug(`status page: shares not listed: ${redact(String((err as Error)?.message ?? err))}`);
        snap.shares = { folder: this.opts.sharesFolder ?? '/', list: [], transfers: shares.transfers.list().map((t) => ({ ...t })) };
      }
    }
    return snap;
  }
}
