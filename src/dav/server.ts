/**
 * The WebDAV bridge: our node http(s) server in front of the FileSystem, with webdav-server's
 * v2.WebDAVServer as the request front (./host.ts): each request goes through its executeRequest,
 * context creation and beforeRequest hooks, and its dispatch calls OUR method handlers.
 *
 *  - every request: request id, logging (here, before the library); Basic auth + throttling and
 *    the path check (400 on traversal/bad encoding) in the library's beforeRequest hook;
 *  - every WebDAV method is ours (./methods): OPTIONS GET HEAD PUT DELETE PROPFIND PROPPATCH MKCOL
 *    COPY MOVE LOCK UNLOCK, registered with webdav-server's server.method(); anything else reaches
 *    its unknown-method handler, also ours: 405. The library's own commands are not used: its LOCK
 *    granted exclusive locks over shared ones and answered non-namespaced XML, its PROPPATCH wrote
 *    answers twice and crashed on If headers, its If parser crashed on valid forms
 *    (test/e2e/stock-defects.test.ts, docs/architecture.md).
 *  - the http.Server, TLS, timeouts, 100-continue and the draining close stay here: the library's
 *    start()/stop() create a server without those options and close without draining.
 *
 *  - beside the share, its own pages (./ops-routes.ts): /healthz, /readyz, /metrics and the status
 *    page /.terabox-dav/; while no FileSystem is attached (browser login pending), the share answers
 *    503 + Retry-After and points to the status page.
 *
 * Shared state (per bridge, event loop only): `view` (the attached FileSystem and the per-user deps
 * built on it; replaced once by attach()), the LockTable, `inFlight`, `held`.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { ConfigError, isTbdavError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { redact } from '../shared/redact.js';
import type { FileSystem } from '../vfs/types.js';
import type { HlsService } from '../vfs/streaming.js';
import { BasicAuthenticator, LoginThrottle, parseBasic, type BridgeUser, type LoginThrottleOptions } from './auth.js';
import { computeClientInfo, publicOrigin, setClientInfo, TrustedProxies } from './client-info.js';
import type { DavDeps, DavHandler, DavRequest } from './context.js';
import { etagOf } from './conditional.js';
import { httpErrorFor, sendError } from './errors.js';
import { LockTable } from './lock-gate.js';
import { LockFile } from './locks-persist.js';
import type { BridgeMetrics } from './metrics.js';
import { CsrfTokens, opsRouteFor, opsRouteNeedsAuth, serveOps, type OpsContext } from './ops-routes.js';
import type { ServiceMonitor } from './service.js';
import { STATUS_PREFIX } from './status-page.js';
import { handleCopyMove } from './methods/copy-move.js';
import { handleGet } from './methods/get.js';
import { makeLockHandlers } from './methods/lock.js';
import { ALLOWED_METHODS, handleOptions, READ_ONLY_METHODS } from './methods/options.js';
import { handlePropfind } from './methods/propfind.js';
import { handleProppatch } from './methods/proppatch.js';
import { handleDelete, handleMkcol, handlePut } from './methods/write.js';
import { createDavHost } from './host.js';
import { handleHls, isHlsRequest } from './hls.js';
import { decodePath, hrefFor, pathOfTarget, type DecodedPath } from './paths.js';
import { PathScope, readOnlyError, scopeFileSystem, WRITE_METHODS } from './user-scope.js';

export type { BridgeUser } from './auth.js';

export interface BridgeOptions {
  /** The share; without one the share answers 503 until attach() (browser login pending). */
  fs?: FileSystem;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (tests); the CLI passes 8080. */
  port?: number;
  /** None: no auth, and then only loopback hosts are allowed. */
  users?: BridgeUser[];
  /** PEM contents or file paths. */
  tls?: { cert: string; key: string };
  /** Default 'terabox-dav'. */
  realm?: string;
  logger?: Logger;
  /** Default 0: no Node request timeout (long uploads must not be cut). */
  requestTimeoutMs?: number;
  /** JSON file keeping WebDAV locks across restarts (e.g. `<stateDir>/locks.json`); none: locks in memory only. */
  lockStateFile?: string;
  /**
   * Reverse proxies (addresses or CIDR ranges) whose Forwarded / X-Forwarded-For / -Proto / -Host
   * headers are believed for the client's address, scheme and host (server.trustedProxies).
   */
  trustedProxies?: string[];
  /** Metrics (/metrics and the status page's numbers); built by the caller, which hands its observer down. */
  metrics?: BridgeMetrics;
  /** /metrics without authentication (metrics.public). */
  metricsPublic?: boolean;
  /** The service behind the share: /readyz, the status page, the browser login. */
  monitor?: ServiceMonitor;
  /** The failed-login throttle, or its tuning (tests; defaults in LoginThrottle). */
  loginThrottle?: LoginThrottleOptions | LoginThrottle;
  /** HLS playlists and segments under /.terabox-dav/hls/ (streaming.enabled; ./hls.ts): no Basic auth, the URL is the capability. */
  hls?: HlsService;
}

export interface BridgeCloseOptions {
  /** How long requests in flight may take to finish before their connections are cut, ms (default 30 000). */
  drainMs?: number;
}

export interface Bridge {
  url: string;
  port: number;
  /** Serve this FileSystem (and its HLS route) from now on (once; the share answered 503 until then). */
  attach(fs: FileSystem, more?: { hls?: HlsService }): void;
  /** Stop serving the FileSystem (the share answers 503 again, e.g. the login was refused); attach() again later. */
  detach(): void;
  /** Whether a FileSystem is attached. */
  readonly attached: boolean;
  /**
   * Stop accepting connections, let requests in flight finish (answers carry `Connection: close`),
   * then cut whatever is left after `drainMs`.
   */
  close(opts?: BridgeCloseOptions): Promise<void>;
}

const HANDLERS: Record<string, DavHandler> = {
  OPTIONS: handleOptions,
  GET: handleGet,
  HEAD: handleGet,
  PUT: handlePut,
  PROPFIND: handlePropfind,
  MKCOL: handleMkcol,
  DELETE: handleDelete,
  COPY: handleCopyMove,
  MOVE: handleCopyMove,
  PROPPATCH: handleProppatch,
};

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

/** A user's folder as a normalised share path; ConfigError for '.', '..' or a relative path. */
function userRoot(u: BridgeUser): string {
  const raw = u.root ?? '/';
  const segs = raw.split('/').filter(Boolean);
  if (!raw.startsWith('/') || segs.some((s) => s === '.' || s === '..')) {
    throw new ConfigError('server.users', `root of user ${u.username} must be an absolute folder path without . or ..`);
  }
  return '/' + segs.map((s) => s.normalize('NFC')).join('/');
}

async function pem(value: string, key: string): Promise<string> {
  if (value.includes('-----BEGIN')) return value;
  try {
    return await readFile(value, 'utf8');
  } catch (err) {
    throw new ConfigError(key, `cannot read ${value}`, { cause: err });
  }
}

/** An answer sent before the body was read ends the connection (the body must not be parsed as a request). */
function closeIfBodyUnread(req: IncomingMessage, res: ServerResponse): void {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody && !req.readableEnded && !res.headersSent) res.setHeader('Connection', 'close');
}

function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  const v = Array.isArray(given) ? given[0] : given;
  if (v && /^[A-Za-z0-9._:-]{1,64}$/.test(v)) return v;
  return randomUUID().slice(0, 8);
}

export async function startBridge(opts: BridgeOptions): Promise<Bridge> {
  const host = opts.host ?? '127.0.0.1';
  const users = opts.users ?? [];
  if (users.length === 0 && !isLoopback(host)) {
    throw new ConfigError('server.host', `refusing to serve ${host} without users: configure server.users or bind to 127.0.0.1`);
  }
  const auth = users.length ? new BasicAuthenticator(users) : undefined;
  const throttle = opts.loginThrottle instanceof LoginThrottle ? opts.loginThrottle : new LoginThrottle(opts.loginThrottle);
  const trusted = new TrustedProxies(opts.trustedProxies ?? []);
  const realm = (opts.realm ?? 'terabox-dav').replace(/["\\]/g, '');
  const logger = opts.logger ?? silentLogger();
  // The attached FileSystem and each user's view of it (issue 11: root, readOnly). Replaced by attach().
  let view: { fs: FileSystem; deps: DavDeps; byUser: Map<string, DavDeps> } | undefined;
  const lockFile = opts.lockStateFile ? new LockFile({ file: opts.lockStateFile, logger }) : undefined;
  const locks = new LockTable(
    async (path) => {
      if (!view) return undefined;
      try {
        return etagOf(await view.fs.stat(path));
      } catch (err) {
        if (isTbdavError(err, 'TBDAV_NOT_FOUND')) return undefined;
        throw err;
      }
    },
    Date.now,
    lockFile,
  );
  if (lockFile) locks.restore(await lockFile.load());
  const { handleLock, handleUnlock } = makeLockHandlers();
  const handlers: Record<string, DavHandler> = { ...HANDLERS, LOCK: handleLock, UNLOCK: handleUnlock };
  const userScopes = users.map((u) => ({ u, scope: new PathScope(userRoot(u)), readOnly: u.readOnly === true }));
  const attach = (fs: FileSystem): void => {
    if (view) throw new Error('startBridge: a FileSystem is attached already');
    const byUser = new Map<string, DavDeps>();
    for (const { u, scope, readOnly } of userScopes) {
      byUser.set(u.username, { fs: scopeFileSystem(fs, scope, readOnly), locks: locks.scoped(scope), logger, readOnly });
    }
    view = { fs, deps: { fs, locks, logger }, byUser };
  };
  if (opts.fs) attach(opts.fs);
  let hls = opts.hls;
  const readOnlyUsers = new Set(userScopes.filter((x) => x.readOnly).map((x) => x.u.username));
  const metrics = opts.metrics;
  const ops: OpsContext = {
    metrics,
    monitor: opts.monitor,
    csrf: new CsrfTokens(),
    logger,
    shareState: () => (view ? { state: 'ready' } : { state: 'starting' }),
  };
  // webdav-server dispatches every request (./host.ts) to these handlers.
  const davHost = createDavHost(Object.keys(handlers), logger);

  // In-flight answers (for a draining close). Event loop only.
  const inFlight = new Set<ServerResponse>();
  // Failed logins whose 401 is being held by the throttle: released at once by close(). Event loop only.
  const held = new Set<() => void>();
  const hold = (ms: number, res: ServerResponse): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        held.delete(done);
        res.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      held.add(done);
      res.once('close', done);
    });
  let closing = false;
  let drained: (() => void) | undefined;

  const onRequest = (req: IncomingMessage, res: ServerResponse, expectsContinue = false): void => {
    inFlight.add(res);
    if (closing) res.setHeader('Connection', 'close');
    res.on('close', () => {
      inFlight.delete(res);
      if (inFlight.size === 0) drained?.();
    });
    try {
      handle(req, res, expectsContinue);
    } catch (err) {
      // handle() and the library's dispatch catch everything themselves; this is the last line.
      logger.error(`${req.method ?? '?'}: request handler failed: ${redact(String(err))}`);
      if (!res.headersSent) sendError(res, httpErrorFor(err, req.method ?? ''), 'n/a');
      else res.destroy();
    }
  };

  const socketBase = new WeakMap<object, { read: number; written: number }>();

  const handle = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void => {
    let continued = !expectsContinue;
    const sendContinue = (): void => {
      if (continued || res.headersSent) return;
      continued = true;
      res.writeContinue();
    };
    const started = process.hrtime.bigint();
    const requestId = requestIdOf(req);
    const client = computeClientInfo(req, trusted);
    setClientInfo(req, client);
    const method = (req.method ?? 'GET').toUpperCase();
    const socket = req.socket;
    // Byte counts per request on a keep-alive socket: from the end of the previous request's log.
    const base = socketBase.get(socket) ?? { read: 0, written: 0 };
    let logged = false;
    let userName: string | undefined;
    // Probes and scrapes (/healthz, /readyz, /metrics) come every few seconds: logged at debug.
    let quiet = false;
    const logLine = (): void => {
      if (logged) return;
      logged = true;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      socketBase.set(socket, { read: socket.bytesRead, written: socket.bytesWritten });
      const aborted = !res.writableFinished;
      metrics?.request(method, res.statusCode, ms / 1000, socket.bytesRead - base.read, socket.bytesWritten - base.written);
      const log = quiet && res.statusCode < 400 ? logger.debug.bind(logger) : logger.info.bind(logger);
      log(`${method} ${redact(req.url ?? '')}: ${res.statusCode}${aborted ? ' (client gone)' : ''}`, {
        requestId,
        status: res.statusCode,
        bytesOut: socket.bytesWritten - base.written,
        bytesIn: socket.bytesRead - base.read,
        ms: Math.round(ms * 10) / 10,
        user: userName,
        client: client.address,
      });
    };
    res.on('close', logLine);
    res.setHeader('X-Request-Id', requestId);
    res.setHeader('DAV', '1, 2');
    res.setHeader('MS-Author-Via', 'DAV');

    const rawUrl = req.url ?? '/';
    if (hls && isHlsRequest(rawUrl)) {
      void handleHls(req, res, hls, logger, requestId);
      return;
    }
    let decoded: DecodedPath | undefined;
    let targetError: unknown;
    try {
      decoded = decodePath(pathOfTarget(rawUrl));
    } catch (err) {
      targetError = err;
    }

    const admit = async (): Promise<boolean> => {
      if (auth) {
        const address = client.address;
        const cred = parseBasic(req.headers.authorization);
        const tooMany = (retryAfterSec: number): false => {
          logger.warn(`auth: too many failed logins for ${cred?.username ?? '?'} from ${address} in progress, refused for ${retryAfterSec} s`, { requestId });
          closeIfBodyUnread(req, res);
          sendError(res, { status: 429, message: 'too many failed logins, try again later', headers: { 'Retry-After': String(retryAfterSec) } }, requestId);
          return false;
        };
        if (cred) {
          const gate = throttle.gate(address, cred.username);
          if (!gate.check) return tooMany(gate.retryAfterSec);
        }
        userName = await auth.check(req.headers.authorization);
        if (!userName && cred) {
          metrics?.loginFailed();
          // Slow the guesser, not the owner: only failed answers wait (issue 11).
          const f = throttle.failed(address, cred.username);
          if (f.refuse) return tooMany(f.retryAfterSec);
          if (f.delayMs > 0) {
            logger.debug(`auth: failed login for ${cred.username} from ${address}, answer held ${f.delayMs} ms`, { requestId });
            try {
              await hold(f.delayMs, res);
            } finally {
              f.release();
            }
            if (res.destroyed) return false;
          }
        }
        if (!userName) {
          res.setHeader('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
          closeIfBodyUnread(req, res);
          sendError(res, { status: 401, message: 'authentication required', headers: {} }, requestId);
          return false;
        }
      }
      if (!decoded) {
        closeIfBodyUnread(req, res);
        sendError(res, httpErrorFor(targetError, method), requestId);
        return false;
      }
      return true;
    };

    const run = async (name: string | undefined): Promise<void> => {
      const handler = name === undefined ? undefined : handlers[name];
      if (!view) return notServing();
      const userDeps = (userName !== undefined ? view.byUser.get(userName) : undefined) ?? view.deps;
      if (userDeps.readOnly) res.setHeader('DAV', '1');
      if (!handler || !decoded) {
        res.setHeader('Allow', userDeps.readOnly ? READ_ONLY_METHODS : ALLOWED_METHODS);
        closeIfBodyUnread(req, res);
        sendError(res, { status: 405, message: `method ${method} not supported`, headers: {} }, requestId);
        return;
      }
      if (userDeps.readOnly && WRITE_METHODS.has(method)) {
        closeIfBodyUnread(req, res);
        sendError(res, httpErrorFor(readOnlyError(`${method} ${decoded.path}`), method), requestId);
        return;
      }
      const ac = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) ac.abort(new Error('client closed the connection'));
      });
      const r: DavRequest = {
        req,
        res,
        method,
        path: decoded.path,
        trailingSlash: decoded.trailingSlash,
        requestId,
        user: userName,
        signal: ac.signal,
        call: { signal: ac.signal, requestId },
        continue: sendContinue,
      };
      try {
        await handler(r, userDeps);
      } catch (err) {
        if (ac.signal.aborted) {
          logger.debug(`${method} ${decoded.path}: client went away: ${redact(String((err as Error)?.message ?? err))}`, { requestId });
          res.destroy();
          return;
        }
        const he = httpErrorFor(err, method);
        if (he.status >= 500) {
          logger.error(`${method} ${decoded.path}: ${he.status}: ${redact(String((err as Error)?.message ?? err))}`, {
            requestId,
            code: isTbdavError(err) ? err.code : undefined,
            stack: isTbdavError(err) ? undefined : redact(String((err as Error)?.stack ?? '')),
          });
        } else {
          logger.debug(`${method} ${decoded.path}: ${he.status}: ${he.message}`, { requestId });
        }
        closeIfBodyUnread(req, res);
        sendError(res, he, requestId);
      }
    };

    const lastLine = (what: string, err: unknown): void => {
      logger.error(`${method}: ${what}: ${redact(String((err as Error)?.message ?? err))}`, { requestId });
      if (!res.headersSent) {
        closeIfBodyUnread(req, res);
        sendError(res, httpErrorFor(err, method), requestId);
      } else if (!res.writableEnded) res.destroy();
    };

    /** The share cannot serve yet (browser login pending, starting, failed): 503 + Retry-After. */
    const notServing = (): void => {
      const state = opts.monitor?.share() ?? ops.shareState();
      const page = `${publicOrigin(req) ?? ''}${STATUS_PREFIX}/`;
      const why =
        state.state === 'login'
          ? `terabox-dav is not logged in to TeraBox yet: open ${page} in a browser to log in`
          : state.state === 'failed'
            ? `terabox-dav is not serving: ${state.reason} (details on ${page})`
            : `terabox-dav is starting (see ${page})`;
      closeIfBodyUnread(req, res);
      sendError(res, { status: 503, message: why, headers: { 'Retry-After': state.state === 'starting' ? '5' : '30' } }, requestId);
    };

    const route = decoded ? opsRouteFor(decoded.path) : undefined;
    if (route && decoded) {
      quiet = route !== 'status';
      const { path, trailingSlash } = decoded;
      void (async () => {
        if (opsRouteNeedsAuth(route, opts.metricsPublic === true) && !(await admit())) return;
        const readOnly = userName !== undefined && readOnlyUsers.has(userName);
        await serveOps(route, req, res, { method, path, trailingSlash, user: userName, readOnly, requestId }, ops);
      })().catch((err: unknown) => lastLine(`${route} failed`, err));
      return;
    }

    davHost.execute(req, res, {
      libraryUrl: decoded ? hrefFor(decoded.path, decoded.trailingSlash) : '/',
      headers: { DAV: '1, 2' },
      admit: () =>
        admit().catch((err: unknown) => {
          lastLine('admission failed', err);
          return false;
        }),
      run: (name) => run(name).catch((err: unknown) => lastLine('request handler failed', err)),
      refuse: (err) => {
        logger.warn(`${method} ${redact(rawUrl)}: webdav-server refused the request: ${redact(String((err as Error)?.message ?? err))}`, { requestId });
        if (!res.headersSent) {
          closeIfBodyUnread(req, res);
          sendError(res, { status: 400, message: 'bad request', headers: {} }, requestId);
        }
      },
    });
  };

  const serverOptions: http.ServerOptions = {
    requestTimeout: opts.requestTimeoutMs ?? 0,
    headersTimeout: 60_000,
    keepAliveTimeout: 65_000,
  };
  let server: http.Server;
  if (opts.tls) {
    const [cert, key] = await Promise.all([pem(opts.tls.cert, 'server.tls.cert'), pem(opts.tls.key, 'server.tls.key')]);
    server = https.createServer({ ...serverOptions, cert, key }, onRequest);
  } else {
    server = http.createServer(serverOptions, onRequest);
  }
  // Expect: 100-continue is answered by the handlers (r.continue()) once auth and preconditions passed.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => onRequest(req, res, true));
  server.on('clientError', (err, socket) => {
    logger.debug(`http: client error: ${redact(String((err as Error).message))}`);
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => logger.error(`http: server error: ${redact(String(err.message))}`));

  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `${opts.tls ? 'https' : 'http'}://${urlHost}:${port}`;
  logger.info(`bridge: listening on ${url}`, { auth: auth ? 'basic' : 'none' });

  let closed = false;
  return {
    url,
    port,
    attach(fs: FileSystem, more: { hls?: HlsService } = {}) {
      attach(fs);
      if (more.hls) hls = more.hls;
      logger.info('bridge: the share is attached and serving');
    },
    detach() {
      if (!view) return;
      view = undefined;
      logger.warn('bridge: the share is detached (answers 503 until attached again)');
    },
    get attached() {
      return view !== undefined;
    },
    close: async (closeOpts: BridgeCloseOptions = {}) => {
      if (closed) return;
      closed = true;
      closing = true;
      for (const release of [...held]) release();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
      if (inFlight.size > 0) {
        const drainMs = closeOpts.drainMs ?? 30_000;
        logger.info(`bridge: closing, waiting up to ${drainMs} ms for ${inFlight.size} request(s) in flight`);
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          drained = resolve;
          timer = setTimeout(resolve, drainMs);
        });
        clearTimeout(timer);
      }
      server.closeAllConnections();
      await stopped;
      if (lockFile) {
        try {
          await lockFile.flush();
        } catch (err) {
          logger.warn(`bridge: lock state not saved: ${redact(String((err as Error)?.message ?? err))}`);
        }
      }
    },
  };
}
