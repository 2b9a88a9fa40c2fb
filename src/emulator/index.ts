/**
 * The TeraBox Open Platform emulator: four node:http listeners on loopback (auth host, api_domain,
 * upload_domain, download host), a drive persisted under dataDir, OAuth, uploads, shares, dlinks,
 * and knobs for latency, throughput, faults and lifetimes. See docs/protocol-notes.md for every
 * choice made where the spec is silent.
 *
 * Concurrency: one event loop; state lives in Store / AuthState / ShareState / `uploads`, each
 * mutated synchronously. `opts` is a mutable object changed only by setOptions.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../shared/logger.js';
import { silentLogger } from '../shared/logger.js';
import { redactUrl } from '../shared/redact.js';
import { AuthState } from './auth.js';
import { rm } from 'node:fs/promises';
import { type ApiRequest, BYTE_FAULTS, type Counters, type ParamPlaces, type Ctx, type FaultKind, type Hosts, type ResolvedOptions, type UploadSession } from './context.js';
import { readForm, sendJson, sendText } from './http-io.js';
import { handleContent, handleDlink, handleHop, servesBytes } from './routes-download.js';
import { type Handler, fileRoutes } from './routes-files.js';
import { oauthRoutes } from './routes-oauth.js';
import { ERRNO_PCS_PARAM, superfile2Route, uploadApiRoutes } from './routes-upload.js';
import { type CreatedShare, ShareState, createShare, removeShare, setSharePwd, shareRoutes } from './shares.js';
import { streamingRoutes } from './streaming.js';
import { EmulatorErrno, Store } from './store.js';
import { createPrng, requestId, sleep } from './util.js';
import { type ServiceVariant, resolveVariant } from './variants.js';
import { ERRNO, SHARD_MIN_BYTES } from './wire.js';

export { DEFAULT_VARIANT, VARIANT_PRESETS, type ServiceVariant, type VariantPresetName, isVariantPresetName, resolveVariant } from './variants.js';

export interface FaultOptions {
  rate: number;
  seed?: number;
  kinds?: FaultKind[];
  endpoints?: string[] /* default: all API endpoints, not auth */;
  /**
   * When an API fault strikes (addition to the brief): 'before' (default) = the request is not
   * processed; 'after' = it is processed and only the answer is lost (harsher: a retried create may
   * find its own file); 'mixed' = either, drawn from the same seeded PRNG. Download faults ignore it.
   */
  phase?: 'before' | 'after' | 'mixed';
}

export interface EmulatorOptions {
  dataDir: string;
  host?: string;
  /** Fixed ports per listener (default 0 = any free port; tests always use 0). Addition to the brief. */
  ports?: { auth?: number; api?: number; upload?: number; download?: number };
  clientId?: string;
  clientSecret?: string;
  privateSecret?: string;
  appName?: string;
  accessTokenTtlSec?: number;
  refreshTokenTtlSec?: number;
  refreshGraceSec?: number;
  dlinkTtlSec?: number;
  deviceCodeTtlSec?: number;
  deviceCodeInterval?: number;
  autoApproveAfterPolls?: number;
  /** default false; when true, polling gettoken faster than `interval` answers errno 300001. */
  enforcePollInterval?: boolean;
  latencyMs?: number;
  throughputBytesPerSec?: number;
  faults?: FaultOptions;
  refuseZeroByte?: boolean;
  minShardBytes?: number;
  /** Largest shard superfile2 accepts (default 128 MiB; 31364 above). Addition to the brief. */
  maxShardBytes?: number;
  /** Drive size reported by quota (default 1 TiB). Addition to the brief. */
  quotaTotalBytes?: number;
  /** Delay before an asynchronous share/transfer lands (default 300 ms; shares.ts). */
  shareTransferAsyncMs?: number;
  /** Service variant (see variants.ts); fields left out take DEFAULT_VARIANT's value. */
  variant?: Partial<ServiceVariant>;
  /**
   * Frequency limit: at most `callsPerSecond` API calls (api_domain endpoints and superfile2, not
   * OAuth, not the download host) are accepted in any sliding window of 1000 ms; a call beyond it
   * answers errno 31034 (HTTP 200) and does not count. Default: no limit.
   */
  rateLimit?: { callsPerSecond: number };
  logger?: Logger;
}

/** The emulator's counters (requests per path, bytes, faults, refresh-token reuse, rate-limited calls). */
export type EmulatorCounters = Counters;

export interface EmulatorHandle {
  authUrl: string;
  apiDomain: string;
  uploadDomain: string;
  downloadDomain: string;
  appRoot: string;
  credentials: { clientId: string; clientSecret: string; privateSecret: string };
  counters: EmulatorCounters;
  approveDevice(deviceCode?: string): void;
  issueAuthorizationCode(): string;
  issueTokens(): { access_token: string; refresh_token: string; expires_in: number };
  expireAccessTokens(): void;
  /** Forget every open upload session (uploadid): their superfile2/create then answer the variant's sessionGoneErrno. */
  expireUploadSessions(): void;
  /** The service variant in force (read-only copy). */
  readonly variant: ServiceVariant;
  /**
   * Change knobs at run time. `variant` is merged into the variant in force (fields left out keep
   * their value); `rateLimit: undefined` removes the limit.
   */
  setOptions(
    patch: Partial<
      Pick<
        EmulatorOptions,
        'latencyMs' | 'throughputBytesPerSec' | 'faults' | 'refuseZeroByte' | 'accessTokenTtlSec' | 'dlinkTtlSec' | 'autoApproveAfterPolls' | 'shareTransferAsyncMs' | 'variant' | 'rateLimit'
      >
    >,
  ): void;
  /** Test helper: share these drive paths (absolute, inside the app folder) with a 4-char pwd ('' = none). */
  createShare(paths: string[], pwd: string): CreatedShare;
  /** Test helper: the share's link stops working (105), as an expired or cancelled share. */
  removeShare(shareid: number): void;
  /** Test helper: the sharer sets another extraction code ('' = none); issued sekeys stop working (-9). */
  setSharePwd(shareid: number, pwd: string): void;
  close(): Promise<void>;
}

export type { CreatedShare };

export const EMULATOR_CREDENTIALS: { clientId: string; clientSecret: string; privateSecret: string } = Object.freeze({
  clientId: 'EmuClientId0TeraboxDav',
  clientSecret: 'EmuClientSecret0TeraboxDav0123456',
  privateSecret: 'EmuPrivateSecret0TeraboxDav',
});

interface Route {
  method: 'GET' | 'POST';
  handler: Handler;
  kind: 'oauth' | 'api' | 'upload';
  params?: ParamPlaces;
}

/**
 * The token parameter's spelling(s) per endpoint. Every openapi table and example says
 * `access_tokens`, except: /openapi/active (no table; its address says access_tokens, its curl
 * example access_token) and share/streaming, share/mediameta, share/download (their tables say
 * access_token, their examples access_tokens): both spellings there. The token under another
 * spelling is not looked at (as no token: -6).
 */
const TOKEN_BOTH_SPELLINGS: ReadonlySet<string> = new Set(['/openapi/active', '/openapi/share/streaming', '/openapi/share/mediameta', '/openapi/share/download']);

function tokenOf(path: string, q: URLSearchParams): string | undefined {
  return q.get('access_tokens') ?? (TOKEN_BOTH_SPELLINGS.has(path) ? q.get('access_token') : null) ?? undefined;
}

function makeCounters(): Counters {
  const c: Counters = {
    requests: {},
    bytesServed: 0,
    bytesUploaded: 0,
    faultsInjected: 0,
    refreshTokenReuse: 0,
    rateLimited: 0,
    reset() {
      c.requests = {};
      c.bytesServed = 0;
      c.bytesUploaded = 0;
      c.faultsInjected = 0;
      c.refreshTokenReuse = 0;
      c.rateLimited = 0;
    },
  };
  return c;
}

class FaultPlan {
  private rng: () => number = Math.random;
  constructor(private readonly opts: () => ResolvedOptions['faults']) {
    this.reseed();
  }
  reseed(): void {
    const f = this.opts();
    this.rng = createPrng(f?.seed ?? Math.floor(Math.random() * 2 ** 31));
  }
  /** Whether the fault just drawn strikes after the request is processed (see FaultOptions.phase). */
  drawAfter(): boolean {
    const phase = this.opts()?.phase ?? 'before';
    if (phase === 'mixed') return this.rng() < 0.5;
    return phase === 'after';
  }
  /**
   * The fault for one request to `endpoint`, or undefined. Draws only for eligible endpoints, and
   * only among the kinds that make sense there (badLength/badRange only where bytes are served).
   */
  draw(endpoint: string, servesBytes = false): FaultKind | undefined {
    const f = this.opts();
    if (!f || !(f.rate > 0)) return undefined;
    const eligible = f.endpoints ? f.endpoints.includes(endpoint) : !endpoint.startsWith('/oauth/');
    if (!eligible) return undefined;
    const all: FaultKind[] = f.kinds && f.kinds.length ? f.kinds : ['http5xx', 'errno31034', 'reset'];
    const kinds = servesBytes ? all : all.filter((k) => !BYTE_FAULTS.has(k));
    if (kinds.length === 0) return undefined;
    if (this.rng() >= f.rate) return undefined;
    return kinds[Math.min(kinds.length - 1, Math.floor(this.rng() * kinds.length))];
  }
}

/**
 * The rateLimit knob: a sliding window of the start times of the API calls accepted in the last
 * 1000 ms. A call is accepted when fewer than callsPerSecond were accepted in the window; a refused
 * call is not recorded (a client that keeps knocking still gets through once the window moves).
 */
class RateWindow {
  private readonly times: number[] = [];
  tryTake(limit: { callsPerSecond: number } | undefined): boolean {
    if (!limit || !(limit.callsPerSecond > 0)) return true;
    const now = performance.now();
    while (this.times.length > 0 && now - this.times[0]! >= 1000) this.times.shift();
    if (this.times.length >= limit.callsPerSecond) return false;
    this.times.push(now);
    return true;
  }
}

/** Answers with a per-item `info` list, where the itemErrno fault applies (elsewhere it acts as errno31034). */
const ITEM_LIST_ENDPOINTS: ReadonlySet<string> = new Set(['/openapi/api/filemetas', '/openapi/api/filemanager']);

function listen(server: Server, host: string, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startEmulator(opts: EmulatorOptions): Promise<EmulatorHandle> {
  const host = opts.host ?? '127.0.0.1';
  const logger = opts.logger ?? silentLogger();
  const appName = opts.appName ?? 'terabox-dav';
  const appRoot = `/From: Other Applications/${appName}`;
  const credentials = {
    clientId: opts.clientId ?? EMULATOR_CREDENTIALS.clientId,
    clientSecret: opts.clientSecret ?? EMULATOR_CREDENTIALS.clientSecret,
    privateSecret: opts.privateSecret ?? EMULATOR_CREDENTIALS.privateSecret,
  };
  const o: ResolvedOptions = {
    accessTokenTtlSec: opts.accessTokenTtlSec ?? 172800,
    refreshTokenTtlSec: opts.refreshTokenTtlSec ?? 2592000,
    refreshGraceSec: opts.refreshGraceSec ?? 15,
    dlinkTtlSec: opts.dlinkTtlSec ?? 3600,
    deviceCodeTtlSec: opts.deviceCodeTtlSec ?? 300,
    deviceCodeInterval: opts.deviceCodeInterval ?? 5,
    autoApproveAfterPolls: opts.autoApproveAfterPolls ?? 1,
    enforcePollInterval: opts.enforcePollInterval ?? false,
    latencyMs: opts.latencyMs ?? 0,
    throughputBytesPerSec: opts.throughputBytesPerSec ?? 0,
    faults: opts.faults,
    refuseZeroByte: opts.refuseZeroByte ?? false,
    minShardBytes: opts.minShardBytes ?? SHARD_MIN_BYTES,
    maxShardBytes: opts.maxShardBytes ?? 128 * 1024 * 1024,
    quotaTotalBytes: opts.quotaTotalBytes ?? 1024 ** 4,
    shareTransferAsyncMs: opts.shareTransferAsyncMs ?? 300,
    variant: resolveVariant(opts.variant),
    rateLimit: opts.rateLimit ? { ...opts.rateLimit } : undefined,
  };
  const store = new Store(opts.dataDir, logger);
  const uk = 4400000000000 + (credentials.clientId.length % 1000);
  const auth = new AuthState(() => o, 127813130);
  const shares = new ShareState();
  store.registerSection('auth', auth);
  store.registerSection('shares', shares);
  store.registerSection('secrets', {
    dump: () => ({ signKey: signKeyHolder.key.toString('base64') }),
    load: (d) => {
      const k = (d as { signKey?: string }).signKey;
      if (k) signKeyHolder.key = Buffer.from(k, 'base64');
    },
  });
  const signKeyHolder = { key: randomBytes(32) };
  await store.load();
  store.mkdirp(appRoot);
  await store.flush();

  const counters = makeCounters();
  const uploads = new Map<string, UploadSession>();
  const servers = { auth: createServer(), api: createServer(), upload: createServer(), download: createServer() };
  const closeAll = (): void => {
    for (const s of Object.values(servers)) if (s.listening) s.close();
  };
  let ports: { auth: number; api: number; upload: number; download: number };
  try {
    ports = {
      auth: await listen(servers.auth, host, opts.ports?.auth),
      api: await listen(servers.api, host, opts.ports?.api),
      upload: await listen(servers.upload, host, opts.ports?.upload),
      download: await listen(servers.download, host, opts.ports?.download),
    };
  } catch (err) {
    closeAll();
    await store.close();
    throw err;
  }
  const hostPort = (p: number): string => `${host.includes(':') ? `[${host}]` : host}:${p}`;
  const hosts: Hosts = { auth: hostPort(ports.auth), api: hostPort(ports.api), upload: hostPort(ports.upload), download: hostPort(ports.download) };
  const ctx: Ctx = { opts: o, store, auth, shares, logger, counters, appRoot, hosts, uploads, uk, credentials, signKey: signKeyHolder.key };
  const faults = new FaultPlan(() => o.faults);
  const rateWindow = new RateWindow();

  const authRoutes = new Map<string, Route>();
  for (const [p, r] of Object.entries(oauthRoutes)) authRoutes.set(p, { ...r, kind: 'oauth' });
  const apiRoutes = new Map<string, Route>();
  for (const table of [fileRoutes, uploadApiRoutes]) for (const [p, r] of Object.entries(table)) apiRoutes.set(p, { ...r, kind: 'api' });
  for (const table of [shareRoutes, streamingRoutes]) for (const [p, r] of Object.entries(table)) apiRoutes.set(p, { ...r, kind: 'api' });
  const uploadRoutes = new Map<string, Route>([['/rest/2.0/pcs/superfile2', { ...superfile2Route, kind: 'upload' }]]);
  /** api_domain serves superfile2 too when tokeninfo names no upload_domain (variant uploadDomain 'absent'). */
  const apiRoute = (path: string): Route | undefined => apiRoutes.get(path) ?? (o.variant.uploadDomain === 'absent' ? uploadRoutes.get(path) : undefined);

  const count = (key: string): void => {
    counters.requests[key] = (counters.requests[key] ?? 0) + 1;
  };

  const logDone = (req: IncomingMessage, status: number, errno: number | undefined): void => {
    logger.debug(`emulator ${req.method ?? '?'} ${redactUrl(req.url ?? '')} -> ${status}${errno !== undefined ? ` errno ${errno}` : ''}`);
  };

  /** Answer a fault decided for an API request (the request is then done). */
  const applyFault = (kind: FaultKind, req: IncomingMessage, res: ServerResponse, pcs: boolean, endpoint: string): void => {
    counters.faultsInjected++;
    if (kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (kind === 'http5xx') {
      res.setHeader('Connection', 'close');
      sendText(res, 503, 'Service Unavailable');
      return;
    }
    if (kind === 'itemErrno' && ITEM_LIST_ENDPOINTS.has(endpoint)) {
      sendJson(res, 200, { errno: 0, info: [{ errno: 31034, errmsg: 'hit frequency limit' }], request_id: requestId() });
      return;
    }
    const body = pcs ? { error_code: 31034, errno: 31034, error_msg: 'hit frequency limit', request_id: requestId() } : { errno: 31034, request_id: requestId(), errmsg: 'hit frequency limit' };
    res.setHeader('Connection', 'close');
    sendJson(res, 200, body);
  };

  const handleApi = async (routes: (path: string) => Route | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    const route = routes(url.pathname);
    if (!route) {
      count(`404 ${url.pathname.slice(0, 200)}`);
      logDone(req, 404, undefined);
      sendText(res, 404, 'Not Found');
      return;
    }
    count(url.pathname);
    if (o.latencyMs > 0) await sleep(o.latencyMs);
    if (route.kind !== 'oauth' && !rateWindow.tryTake(o.rateLimit)) {
      counters.rateLimited++;
      logDone(req, 200, 31034);
      if (!req.readableEnded) req.resume();
      const body = { errno: 31034, request_id: requestId(), errmsg: 'hit frequency limit' };
      sendJson(res, 200, route.kind === 'upload' ? { ...body, error_code: 31034, error_msg: 'hit frequency limit' } : body);
      return;
    }
    const fault = faults.draw(url.pathname);
    const faultAfter = fault !== undefined && faults.drawAfter();
    if (fault && !faultAfter) {
      logDone(req, 0, undefined);
      logger.debug(`emulator fault ${fault} on ${url.pathname}`);
      applyFault(fault, req, res, route.kind === 'upload', url.pathname);
      return;
    }
    /** Send an answer, unless a fault was drawn to strike after the work: then the answer is lost. */
    const answer = (status: number, body: Record<string, unknown>): void => {
      if (fault && faultAfter) {
        logger.debug(`emulator fault ${fault} after processing ${url.pathname}`);
        if (!req.readableEnded) req.resume();
        applyFault(fault, req, res, route.kind === 'upload', url.pathname);
        return;
      }
      sendJson(res, status, body);
    };
    if (req.method !== route.method) {
      sendText(res, 405, 'Method Not Allowed');
      return;
    }
    let form: Map<string, string> = new Map();
    const token = tokenOf(url.pathname, url.searchParams);
    const places = route.params;
    const r: ApiRequest = {
      req,
      res,
      url,
      param: (name) => {
        if (places?.body?.includes(name)) return form.get(name);
        if (places === undefined || places.query?.includes(name)) return url.searchParams.get(name) ?? undefined;
        throw new Error(`emulator route ${url.pathname}: parameter ${name} is not declared`);
      },
      query: (name) => url.searchParams.get(name) ?? undefined,
      body: (name) => form.get(name),
      ...(token !== undefined ? { token } : {}),
    };
    const base = (): Record<string, unknown> =>
      route.kind === 'oauth' ? { errno: 0, newno: '', request_id: requestId(), server_time: Math.floor(Date.now() / 1000), show_msg: '' } : { errno: 0, request_id: requestId() };
    const fail = (errno: number, msg: string, status = 200): void => {
      const body: Record<string, unknown> = { ...base(), errno };
      if (route.kind === 'upload') Object.assign(body, { error_code: errno, error_msg: msg });
      else if (route.kind === 'oauth') body.show_msg = msg;
      else body.errmsg = msg;
      logDone(req, status, errno);
      answer(status, body);
    };
    try {
      if (route.method === 'POST' && route.kind !== 'upload') {
        const read = await readForm(req);
        if (typeof read === 'string') {
          fail(ERRNO.PARAM, read === 'too-large' ? 'request body too large' : read === 'no-content-type' ? 'a request body needs a Content-Type' : 'the body must be a form (urlencoded or multipart)');
          return;
        }
        form = read;
      }
      if (route.kind !== 'oauth') {
        const c = auth.checkAccess(token);
        if (!c.ok) {
          // xpan: -6 "identity check failed" for a missing/unknown token, 111 for an expired one
          if (route.kind === 'upload') req.resume();
          fail(c.reason === 'expired' ? ERRNO.TOKEN_EXPIRED : ERRNO.TOKEN_INVALID, c.reason === 'expired' ? 'access token expired' : 'access token invalid');
          return;
        }
      }
      // parameters only where the spec's table puts them
      const wrongPlace = [...(places?.body ?? []).filter((n) => url.searchParams.has(n)).map((n) => `${n} belongs in the body`), ...(places?.query ?? []).filter((n) => form.has(n)).map((n) => `${n} belongs in the query`)];
      if (wrongPlace.length > 0) {
        if (route.kind === 'upload') req.resume();
        fail(route.kind === 'upload' ? ERRNO_PCS_PARAM : ERRNO.PARAM, `parameter ${wrongPlace.join(', ')}`);
        return;
      }
      const out = await route.handler(ctx, r);
      if (out === undefined) {
        logDone(req, res.statusCode, 0);
        return;
      }
      const body = { ...base(), ...out };
      logDone(req, 200, body.errno as number);
      answer(200, body);
    } catch (err) {
      if (err instanceof EmulatorErrno) {
        if (!req.readableEnded) req.resume();
        fail(err.errno, err.message, err.httpStatus);
        return;
      }
      if (req.destroyed || res.destroyed) {
        logger.debug(`emulator ${url.pathname}: client went away`, { err: (err as Error).message });
        return;
      }
      logger.error(`emulator ${url.pathname}: internal error`, { err });
      if (!req.readableEnded) req.resume();
      fail(route.kind === 'oauth' ? ERRNO.OAUTH_INTERNAL : ERRNO.API_INTERNAL, 'internal error', 500);
    }
  };

  const handleDownloadHost = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    const key = url.pathname.startsWith('/file/') ? '/file' : url.pathname.startsWith('/content/') ? '/content' : url.pathname.startsWith('/hop/') ? '/hop' : undefined;
    if (!key || (req.method !== 'GET' && req.method !== 'HEAD')) {
      count(key ?? `404 ${url.pathname.slice(0, 200)}`);
      sendText(res, key ? 405 : 404, key ? 'Method Not Allowed' : 'Not Found');
      return;
    }
    count(key);
    if (o.latencyMs > 0) await sleep(o.latencyMs);
    const bytes = servesBytes(ctx, key);
    const fault = faults.draw(key, bytes);
    // where bytes are served, reset/badLength/badRange strike inside the answer (after the checks)
    const inAnswer = fault !== undefined && bytes && (fault === 'reset' || BYTE_FAULTS.has(fault));
    if (fault && !inAnswer) {
      counters.faultsInjected++;
      if (fault === 'reset') req.socket.destroy();
      else if (fault === 'http5xx') sendText(res, 503, 'Service Unavailable');
      else sendJson(res, 429, { error_code: 31034, errno: 31034, error_msg: 'hit frequency limit', request_id: requestId() });
      return;
    }
    if (fault) counters.faultsInjected++;
    if (key === '/file') await handleDlink(ctx, req, res, url, fault);
    else if (key === '/hop') handleHop(ctx, res, url);
    else await handleContent(ctx, req, res, url, fault);
    logDone(req, res.statusCode, undefined);
  };

  const wire = (server: Server, fn: (req: IncomingMessage, res: ServerResponse) => Promise<void>): void => {
    server.keepAliveTimeout = 30_000;
    server.requestTimeout = 0; // throttled shard uploads may take long; the client decides when to give up
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      fn(req, res).catch((err: unknown) => {
        logger.error('emulator: request failed', { err });
        if (!res.headersSent) sendText(res, 500, 'Internal Server Error');
        else res.destroy();
      });
    });
    server.on('clientError', (err, socket) => {
      logger.debug('emulator: client error', { err: (err as Error).message });
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
  };
  wire(servers.auth, (req, res) => handleApi((p) => authRoutes.get(p), req, res));
  wire(servers.api, (req, res) => handleApi(apiRoute, req, res));
  wire(servers.upload, (req, res) => handleApi((p) => uploadRoutes.get(p), req, res));
  wire(servers.download, handleDownloadHost);

  let closed = false;
  const handle: EmulatorHandle = {
    authUrl: `http://${hosts.auth}`,
    apiDomain: hosts.api,
    uploadDomain: hosts.upload,
    downloadDomain: hosts.download,
    appRoot,
    credentials,
    counters,
    approveDevice: (code) => auth.approveDevice(code),
    issueAuthorizationCode: () => auth.issueAuthorizationCode(),
    issueTokens: () => {
      const p = auth.issuePair();
      store.markDirty();
      return p;
    },
    expireAccessTokens: () => {
      auth.expireAccessTokens();
      store.markDirty();
    },
    expireUploadSessions: () => {
      for (const [id, s] of uploads) {
        if (s.committing) continue; // a create already assembling finishes
        uploads.delete(id);
        rm(s.dir, { recursive: true, force: true }).catch((err: unknown) => logger.debug('emulator: removing an expired upload failed', { err }));
      }
    },
    get variant(): ServiceVariant {
      return { ...o.variant };
    },
    setOptions: (patch) => {
      const { faults: f, variant: v, rateLimit: rl, ...rest } = patch;
      Object.assign(o, rest);
      if ('faults' in patch) {
        o.faults = f;
        faults.reseed();
      }
      if (v !== undefined) o.variant = resolveVariant(v, o.variant);
      if ('rateLimit' in patch) o.rateLimit = rl ? { ...rl } : undefined;
    },
    createShare: (paths, pwd) => createShare(ctx, paths, pwd),
    removeShare: (shareid) => removeShare(ctx, shareid),
    setSharePwd: (shareid, pwd) => setSharePwd(ctx, shareid, pwd),
    close: async () => {
      if (closed) return;
      closed = true;
      shares.stop();
      await Promise.all(
        Object.values(servers).map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      await store.close();
    },
  };
  return handle;
}
