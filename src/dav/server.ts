/**
 * The WebDAV bridge: our own node http(s) server in front of the FileSystem.
 *
 *  - every request: request id, Basic auth, path decoding (400 on traversal/bad encoding), logging;
 *  - OPTIONS/GET/HEAD/PUT/PROPFIND/MKCOL/DELETE/COPY/MOVE: our handlers in ./methods;
 *  - anything else (LOCK, UNLOCK, PROPPATCH): webdav-server's own methods over DavFileSystem
 *    (locks in LockTable, dead properties through fs.getProps/patchProps).
 *
 * Shared state: `safetyNetUsers` (module level, counts live bridges for the process-level
 * uncaughtException net) — event loop only. Each bridge's LockTable: event loop only.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { v2 as webdav } from 'webdav-server';
import { ConfigError, isTbdavError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { redact } from '../shared/redact.js';
import type { FileSystem } from '../vfs/types.js';
import { BasicAuthenticator, LoginThrottle, type BridgeUser } from './auth.js';
import { hasBody, type DavDeps, type DavHandler, type DavRequest } from './context.js';
import { etagOf } from './conditional.js';
import { DavFileSystem } from './dav-filesystem.js';
import { httpErrorFor, sendError } from './errors.js';
import { LockTable, tokensInIfHeader } from './lock-gate.js';
import { handleCopyMove } from './methods/copy-move.js';
import { handleGet } from './methods/get.js';
import { makeLockRefresh } from './methods/lock-refresh.js';
import { ALLOWED_METHODS, handleOptions } from './methods/options.js';
import { handlePropfind } from './methods/propfind.js';
import { handleProppatch } from './methods/proppatch.js';
import { handleDelete, handleMkcol, handlePut } from './methods/write.js';
import { decodePath, pathOfTarget } from './paths.js';

export type { BridgeUser } from './auth.js';

export interface BridgeOptions {
  fs: FileSystem;
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
}

export interface Bridge {
  url: string;
  port: number;
  close(): Promise<void>;
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

/** Methods handed to webdav-server (everything else we do not implement is 405). */
const LIBRARY_METHODS: ReadonlySet<string> = new Set(['LOCK', 'UNLOCK']);

/** Bodies the library buffers whole (LOCK/PROPPATCH XML): refuse anything bigger. */
const MAX_LIBRARY_BODY = 1 << 20;

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

async function pem(value: string, key: string): Promise<string> {
  if (value.includes('-----BEGIN')) return value;
  try {
    return await readFile(value, 'utf8');
  } catch (err) {
    throw new ConfigError(key, `cannot read ${value}`, { cause: err });
  }
}

let safetyNetUsers = 0;
let safetyNetLogger: Logger | undefined;
function safetyNet(err: unknown): void {
  safetyNetLogger?.error(`process: uncaught exception kept the bridge alive: ${redact(String((err as Error)?.message ?? err))}`, {
    stack: redact(String((err as Error)?.stack ?? '')),
  });
}

function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  const v = Array.isArray(given) ? given[0] : given;
  if (v && /^[A-Za-z0-9._:-]{1,64}$/.test(v)) return v;
  return randomUUID().slice(0, 8);
}

/**
 * webdav-server sometimes writes a response twice (e.g. PROPPATCH with several <set> elements), which
 * throws ERR_HTTP_HEADERS_SENT from a callback and leaves the connection in limbo. For requests handed
 * to the library, late header/body calls after the answer was sent are dropped (logged at debug).
 */
function guardLibraryResponse(res: ServerResponse, logger: Logger, requestId: string): void {
  const drop = (what: string): void => logger.debug(`library: late ${what} after the answer was sent, dropped`, { requestId });
  const setHeader = res.setHeader.bind(res);
  const writeHead = res.writeHead.bind(res) as (...a: unknown[]) => ServerResponse;
  const write = res.write.bind(res) as (...a: unknown[]) => boolean;
  const end = res.end.bind(res) as (...a: unknown[]) => ServerResponse;
  res.setHeader = ((name: string, value: number | string | readonly string[]) => {
    if (res.headersSent) {
      drop(`setHeader(${name})`);
      return res;
    }
    return setHeader(name, fixLibraryHeader(name, value));
  }) as typeof res.setHeader;
  res.writeHead = ((...a: unknown[]) => {
    if (res.headersSent) {
      drop('writeHead');
      return res;
    }
    return writeHead(...a);
  }) as typeof res.writeHead;
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (res.writableEnded) {
      drop('write');
      return false;
    }
    return write(fixLibraryBody(res, chunk), ...rest);
  }) as typeof res.write;
  res.end = ((...a: unknown[]) => {
    if (res.writableEnded) {
      drop('end');
      return res;
    }
    if (a.length > 0 && typeof a[0] !== 'function') a[0] = fixLibraryBody(res, a[0]);
    return end(...a);
  }) as typeof res.end;
}

/** Header fixes for webdav-server's answers (Lock-Token needs <>, our DAV/Allow values). */
function fixLibraryHeader(name: string, value: number | string | readonly string[]): number | string | readonly string[] {
  const n = name.toLowerCase();
  if (n === 'lock-token' && typeof value === 'string' && !value.startsWith('<')) return `<${value}>`;
  if (n === 'allow') return ALLOWED_METHODS;
  if (n === 'dav') return '1, 2';
  return value;
}

/**
 * Body fixes for webdav-server's LOCK answer: lock type and scope elements are written without the
 * DAV: namespace (`<write/>`, `<exclusive/>`). Content-Length is adjusted while headers are unsent.
 */
function fixLibraryBody(res: ServerResponse, chunk: unknown): unknown {
  if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk)) return chunk;
  const text = chunk.toString();
  if (!text.includes('<D:activelock>')) return chunk;
  const fixed = text.replace(/<(write|exclusive|shared)\/>/g, '<D:$1/>');
  if (fixed === text) return chunk;
  if (!res.headersSent && res.getHeader('content-length') !== undefined) {
    const delta = Buffer.byteLength(fixed) - Buffer.byteLength(text);
    res.setHeader('Content-Length', Number(res.getHeader('content-length')) + delta);
  }
  return fixed;
}

/**
 * webdav-server's If parser crashes on several valid and invalid forms. UNLOCK needs no If header
 * (the token is in Lock-Token); a LOCK refresh needs just the token, which the library only finds
 * in the untagged form `(<token>)`, so tagged forms (davfs2) are rewritten to it.
 */
function normaliseIfForLibrary(req: IncomingMessage, method: string): void {
  const ifHeader = req.headers['if'];
  if (ifHeader === undefined) return;
  if (method === 'LOCK') {
    const first = [...tokensInIfHeader(Array.isArray(ifHeader) ? ifHeader.join(' ') : ifHeader)][0];
    if (first) req.headers['if'] = `(<${first}>)`;
    else delete req.headers['if'];
  } else {
    delete req.headers['if'];
  }
}

interface LibraryRequest extends IncomingMessage {
  tbdavRequestId?: string;
  tbdavUser?: string;
}

export async function startBridge(opts: BridgeOptions): Promise<Bridge> {
  const host = opts.host ?? '127.0.0.1';
  const users = opts.users ?? [];
  if (users.length === 0 && !isLoopback(host)) {
    throw new ConfigError('server.host', `refusing to serve ${host} without users: configure server.users or bind to 127.0.0.1`);
  }
  const auth = users.length ? new BasicAuthenticator(users) : undefined;
  const throttle = new LoginThrottle();
  const realm = (opts.realm ?? 'terabox-dav').replace(/["\\]/g, '');
  const logger = opts.logger ?? silentLogger();
  const locks = new LockTable(async (path) => {
    try {
      return etagOf(await opts.fs.stat(path));
    } catch (err) {
      if (isTbdavError(err, 'TBDAV_NOT_FOUND')) return undefined;
      throw err;
    }
  });
  const lockRefresh = makeLockRefresh(locks);
  const deps: DavDeps = { fs: opts.fs, locks, logger };

  const library = new webdav.WebDAVServer({
    rootFileSystem: new DavFileSystem(opts.fs, locks),
    requireAuthentification: false,
    serverName: 'terabox-dav',
    version: '1',
    httpAuthentication: {
      askForAuthentication: () => ({}),
      getUser: (ctx: webdav.HTTPRequestContext, cb: (e: Error | null, user?: webdav.IUser) => void) => {
        const name = (ctx.request as LibraryRequest).tbdavUser ?? 'anonymous';
        cb(null, { uid: name, username: name, isAdministrator: true, isDefaultUser: false } as webdav.IUser);
      },
    } as unknown as webdav.HTTPAuthentication,
  });

  const onRequest = (req: IncomingMessage, res: ServerResponse, expectsContinue = false): void => {
    handle(req, res, expectsContinue).catch((err: unknown) => {
      // handle() catches everything itself; this is the last line.
      logger.error(`${req.method ?? '?'}: request handler failed: ${redact(String(err))}`);
      if (!res.headersSent) sendError(res, httpErrorFor(err, req.method ?? ''), 'n/a');
      else res.destroy();
    });
  };

  const socketBase = new WeakMap<object, { read: number; written: number }>();

  const handle = async (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> => {
    let continued = !expectsContinue;
    const sendContinue = (): void => {
      if (continued || res.headersSent) return;
      continued = true;
      res.writeContinue();
    };
    const started = process.hrtime.bigint();
    const requestId = requestIdOf(req);
    const method = (req.method ?? 'GET').toUpperCase();
    const socket = req.socket;
    // Byte counts per request on a keep-alive socket: from the end of the previous request's log.
    const base = socketBase.get(socket) ?? { read: 0, written: 0 };
    let logged = false;
    let userName: string | undefined;
    const logLine = (): void => {
      if (logged) return;
      logged = true;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      socketBase.set(socket, { read: socket.bytesRead, written: socket.bytesWritten });
      const aborted = !res.writableFinished;
      logger.info(`${method} ${redact(req.url ?? '')}: ${res.statusCode}${aborted ? ' (client gone)' : ''}`, {
        requestId,
        status: res.statusCode,
        bytesOut: socket.bytesWritten - base.written,
        bytesIn: socket.bytesRead - base.read,
        ms: Math.round(ms * 10) / 10,
        user: userName,
      });
    };
    res.on('close', logLine);
    res.setHeader('X-Request-Id', requestId);
    res.setHeader('DAV', '1, 2');
    res.setHeader('MS-Author-Via', 'DAV');

    if (auth) {
      const address = req.socket.remoteAddress ?? 'unknown';
      const wait = throttle.retryAfter(address);
      if (wait > 0) {
        logger.warn(`auth: too many failed logins from ${address}, refused for ${wait} s`, { requestId });
        sendError(res, { status: 429, message: 'too many failed logins, try again later', headers: { 'Retry-After': String(wait) } }, requestId);
        return;
      }
      userName = await auth.check(req.headers.authorization);
      if (userName) throttle.succeeded(address);
      else if (req.headers.authorization) throttle.failed(address);
      if (!userName) {
        res.setHeader('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
        sendError(res, { status: 401, message: 'authentication required', headers: {} }, requestId);
        return;
      }
    }

    let decoded;
    try {
      decoded = decodePath(pathOfTarget(req.url ?? '/'));
    } catch (err) {
      sendError(res, httpErrorFor(err, method), requestId);
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

    const isRefresh = method === 'LOCK' && !hasBody(r);
    const handler = isRefresh ? lockRefresh : HANDLERS[method];
    if (!handler && !LIBRARY_METHODS.has(method)) {
      res.setHeader('Allow', ALLOWED_METHODS);
      if (!req.readableEnded) res.setHeader('Connection', 'close');
      sendError(res, { status: 405, message: `method ${method} not supported`, headers: {} }, requestId);
      return;
    }
    if (!handler) {
      const cl = Number(req.headers['content-length'] ?? 0);
      if (cl > MAX_LIBRARY_BODY) {
        sendError(res, { status: 413, message: `${method} body too large`, headers: { Connection: 'close' } }, requestId);
        return;
      }
      const lr = req as LibraryRequest;
      lr.tbdavRequestId = requestId;
      lr.tbdavUser = userName;
      sendContinue();
      normaliseIfForLibrary(req, method);
      guardLibraryResponse(res, logger, requestId);
      library.executeRequest(req, res);
      return;
    }
    try {
      await handler(r, deps);
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
      // A body the handler did not read must not be parsed as the next request.
      if (!req.readableEnded) res.setHeader('Connection', 'close');
      sendError(res, he, requestId);
    }
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

  if (safetyNetUsers++ === 0) process.on('uncaughtException', safetyNet);
  safetyNetLogger = logger;

  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `${opts.tls ? 'https' : 'http'}://${urlHost}:${port}`;
  logger.info(`bridge: listening on ${url}`, { auth: auth ? 'basic' : 'none' });

  let closed = false;
  return {
    url,
    port,
    close: async () => {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (--safetyNetUsers === 0) process.off('uncaughtException', safetyNet);
    },
  };
}
