/**
 * The bridge's own pages, beside the share (issue 11):
 *   /healthz            unauthenticated: the process answers (200 ok)
 *   /readyz             unauthenticated: logged in, service answered within the last minute, spool
 *                       not full (200 ok / 503 not ready; no detail)
 *   /metrics            Prometheus text; behind the share's auth unless metrics.public
 *   /.terabox-dav/...   the status page, its login QR code and its POST buttons; same auth as the
 *                       share; hidden from PROPFIND (not in the FileSystem) and 404 to WebDAV methods
 * These names at the top of the share are taken: a drive file called `metrics` there is not reachable.
 *
 * POST buttons are protected against cross-site requests twice: a token (HMAC of the user and the
 * hour, with a secret made at start) in the form, and the Origin (or Referer) when the browser sends
 * one must be the share's own (behind a trusted proxy: the public origin).
 *
 * Shared state: none beyond the CSRF secret (constant).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../shared/logger.js';
import { redact } from '../shared/redact.js';
import { clientInfo, publicOrigin } from './client-info.js';
import type { BridgeMetrics } from './metrics.js';
import type { ServiceMonitor, ShareState, StatusSnapshot } from './service.js';
import { renderStatusPage, STATUS_PREFIX } from './status-page.js';

export type OpsRoute = 'healthz' | 'readyz' | 'metrics' | 'status';

/** Which of our pages a share path names, if any. */
export function opsRouteFor(path: string): OpsRoute | undefined {
  if (path === '/healthz') return 'healthz';
  if (path === '/readyz') return 'readyz';
  if (path === '/metrics') return 'metrics';
  if (path === STATUS_PREFIX || path.startsWith(STATUS_PREFIX + '/')) return 'status';
  return undefined;
}

/** Whether a route needs the share's authentication. */
export function opsRouteNeedsAuth(route: OpsRoute, metricsPublic: boolean): boolean {
  if (route === 'healthz' || route === 'readyz') return false;
  if (route === 'metrics') return !metricsPublic;
  return true;
}

export class CsrfTokens {
  private readonly secret = randomBytes(32);

  constructor(private readonly now: () => number = Date.now) {}

  private mac(user: string, hour: number): Buffer {
    return createHmac('sha256', this.secret).update(`${user}\u0000${hour}`).digest();
  }

  token(user: string | undefined): string {
    return this.mac(user ?? '', Math.floor(this.now() / 3600_000)).toString('base64url');
  }

  /** Valid for the hour it was made in and the next one. */
  check(user: string | undefined, token: string | undefined): boolean {
    if (!token) return false;
    const got = Buffer.from(token, 'base64url');
    const hour = Math.floor(this.now() / 3600_000);
    for (const h of [hour, hour - 1]) {
      const want = this.mac(user ?? '', h);
      if (got.length === want.length && timingSafeEqual(got, want)) return true;
    }
    return false;
  }
}

export interface OpsContext {
  metrics?: BridgeMetrics;
  monitor?: ServiceMonitor;
  csrf: CsrfTokens;
  logger: Logger;
  /** The share's state when there is no monitor (tests building a bare bridge). */
  shareState(): ShareState;
  now?: () => number;
}

export interface OpsCaller {
  method: string;
  path: string;
  /** The URL ended with '/'. */
  trailingSlash: boolean;
  user: string | undefined;
  readOnly: boolean;
  requestId: string;
}

function send(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}, head = false): void {
  res.statusCode = status;
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  if (!headers['Content-Type']) res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader('Content-Length', buf.length);
  res.setHeader('Cache-Control', 'no-store');
  res.end(head ? undefined : buf);
}

/** `https://host` of the request as the client sees it, or a path-only URL. */
function absolute(req: IncomingMessage, path: string): string {
  return (publicOrigin(req) ?? '') + path;
}

async function readForm(req: IncomingMessage, max = 4096): Promise<URLSearchParams | undefined> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return undefined;
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of req) {
    total += (c as Buffer).length;
    if (total > max) return undefined;
    chunks.push(c as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** The browser's Origin (or Referer) is ours, or absent. */
function sameOrigin(req: IncomingMessage): boolean {
  const own = publicOrigin(req);
  const origin = req.headers.origin;
  if (typeof origin === 'string' && origin !== '') return own !== undefined && origin.toLowerCase() === own.toLowerCase();
  const ref = req.headers.referer;
  if (typeof ref === 'string' && ref !== '') {
    try {
      return own !== undefined && new URL(ref).origin.toLowerCase() === own.toLowerCase();
    } catch {
      return false;
    }
  }
  return true;
}

const NOTICES: Record<string, string> = {
  retried: 'The upload was queued again.',
  removed: 'The upload was removed: its file is gone from the share.',
  failed: 'That did not work; see the server log for why.',
  unknown: 'That upload is no longer in the list.',
};

/** Answer one request for our pages. The caller has authenticated it when the route needs that. */
export async function serveOps(route: OpsRoute, req: IncomingMessage, res: ServerResponse, who: OpsCaller, ctx: OpsContext): Promise<void> {
  const now = ctx.now ?? Date.now;
  const head = who.method === 'HEAD';
  const readMethod = who.method === 'GET' || head;
  if (route !== 'status' && !readMethod) {
    req.resume();
    return send(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
  }
  switch (route) {
    case 'healthz':
      return send(res, 200, 'ok\n', {}, head);
    case 'readyz': {
      let ok = false;
      try {
        ok = ctx.monitor ? await ctx.monitor.ready() : ctx.shareState().state === 'ready';
      } catch (err) {
        ctx.logger.debug(`readyz: not ready: ${redact(String((err as Error)?.message ?? err))}`, { requestId: who.requestId });
      }
      return send(res, ok ? 200 : 503, ok ? 'ok\n' : 'not ready\n', {}, head);
    }
    case 'metrics': {
      if (!ctx.metrics) return send(res, 404, 'no metrics\n', {}, head);
      const m = await ctx.metrics.render();
      return send(res, 200, m.body, { 'Content-Type': m.contentType }, head);
    }
    case 'status':
      return serveStatus(req, res, who, ctx, now);
  }
}

async function serveStatus(req: IncomingMessage, res: ServerResponse, who: OpsCaller, ctx: OpsContext, now: () => number): Promise<void> {
  const sub = who.path === STATUS_PREFIX ? (who.trailingSlash ? '/' : '') : who.path.slice(STATUS_PREFIX.length);
  const head = who.method === 'HEAD';
  if (who.method === 'POST' && sub.startsWith('/uploads/')) return statusAction(req, res, who, ctx, sub.slice('/uploads/'.length));
  if (who.method !== 'GET' && !head) {
    req.resume();
    // Hidden from WebDAV: as if nothing were there (writes are refused outright).
    return send(res, ['PROPFIND', 'OPTIONS', 'POST'].includes(who.method) ? 404 : 403, 'not here\n');
  }
  const share = ctx.monitor?.share() ?? ctx.shareState();
  if (share.state === 'login') ctx.monitor?.wantLogin?.();
  if (sub === '') return send(res, 301, '', { Location: absolute(req, STATUS_PREFIX + '/') }, head);
  if (sub === '/login-qr.png') {
    if (share.state !== 'login' || !share.code) return send(res, 404, 'no login code now\n', {}, head);
    return send(res, 200, share.code.qrPng, { 'Content-Type': 'image/png' }, head);
  }
  if (sub !== '/') return send(res, 404, 'not here\n', {}, head);

  let snapshot: StatusSnapshot | undefined;
  let snapshotProblem: string | undefined;
  if (ctx.monitor) {
    try {
      snapshot = await ctx.monitor.snapshot();
    } catch (err) {
      snapshotProblem = `status not available: ${redact(String((err as Error)?.message ?? err))}`;
      ctx.logger.warn(`status page: ${snapshotProblem}`, { requestId: who.requestId });
    }
  }
  const q = new URL(req.url ?? '/', 'http://x').searchParams.get('notice') ?? '';
  const html = renderStatusPage({
    share,
    snapshot,
    snapshotProblem,
    callsLastMinute: ctx.metrics?.callsLastMinute() ?? 0,
    recentErrors: ctx.metrics?.recentErrors() ?? [],
    shareUrl: absolute(req, '/'),
    user: who.user,
    canAct: !who.readOnly,
    csrfToken: ctx.csrf.token(who.user),
    notice: NOTICES[q],
    now: now(),
  });
  return send(res, 200, html, { 'Content-Type': 'text/html; charset=utf-8', 'X-Frame-Options': 'DENY', 'Content-Security-Policy': "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'" }, head);
}

async function statusAction(req: IncomingMessage, res: ServerResponse, who: OpsCaller, ctx: OpsContext, action: string): Promise<void> {
  const back = (notice: string): void => send(res, 303, '', { Location: absolute(req, `${STATUS_PREFIX}/?notice=${notice}`) });
  const form = await readForm(req).catch(() => undefined);
  if (!form || !sameOrigin(req) || !ctx.csrf.check(who.user, form.get('csrf') ?? undefined)) {
    ctx.logger.warn(`status page: ${action} refused (CSRF check) for ${who.user ?? 'anonymous'} from ${clientInfo(req).address}`, { requestId: who.requestId });
    req.resume();
    return send(res, 403, 'refused: reload the status page and try again\n');
  }
  if (who.readOnly) return send(res, 403, 'read-only users cannot change uploads\n');
  const id = form.get('id') ?? '';
  const op = action === 'retry' ? ctx.monitor?.retryUpload : action === 'remove' ? ctx.monitor?.removeUpload : undefined;
  if (!op || !id) return send(res, 404, 'no such action\n');
  try {
    await op.call(ctx.monitor, id);
    ctx.logger.info(`status page: ${action} of upload ${id} by ${who.user ?? 'anonymous'}`, { requestId: who.requestId });
    return back(action === 'retry' ? 'retried' : 'removed');
  } catch (err) {
    const code = (err as { code?: string })?.code;
    ctx.logger.warn(`status page: ${action} of upload ${id} failed: ${redact(String((err as Error)?.message ?? err))}`, { requestId: who.requestId });
    return back(code === 'TBDAV_NOT_FOUND' ? 'unknown' : 'failed');
  }
}
