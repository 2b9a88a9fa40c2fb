/**
 * What every route of the emulator shares: resolved options (mutable through setOptions), the
 * store, OAuth state, upload sessions, shares, host names, counters, and helpers that shape
 * answers (FileInfo) and check paths.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../shared/logger.js';
import type { AuthState } from './auth.js';
import { EmulatorErrno, type Node, type Store, basenameOf } from './store.js';
import { isValidName, categoryOf } from './util.js';
import type { ShareState } from './shares.js';
import { type Md5Place, type ServiceVariant, md5ForWire } from './variants.js';
import type { WireFileEntry } from './wire.js';

/**
 * http5xx: 503; errno31034: errno 31034 (rate limit) for the whole call; reset: the socket is cut;
 * itemErrno: errno 0 for the call but errno 31034 for each item of an answer with a per-item
 * list (filemetas/filemanager `info`; elsewhere it acts as errno31034): the item's fate is unknown,
 * not "absent".
 * Download host only (strike only where bytes are served: /content, or /file when dlinkHops is 0;
 * never drawn elsewhere): badLength: 200 whose Content-Length is not the size of what was asked,
 * and the body cut short; badRange: 206 whose Content-Range is not the range asked, body cut short.
 * Neither is in the default set.
 */
export type FaultKind = 'http5xx' | 'errno31034' | 'reset' | 'itemErrno' | 'badLength' | 'badRange';

/** Fault kinds that only make sense where bytes are served. */
export const BYTE_FAULTS: ReadonlySet<FaultKind> = new Set<FaultKind>(['badLength', 'badRange']);

export interface ResolvedOptions {
  accessTokenTtlSec: number;
  refreshTokenTtlSec: number;
  refreshGraceSec: number;
  dlinkTtlSec: number;
  deviceCodeTtlSec: number;
  deviceCodeInterval: number;
  autoApproveAfterPolls: number;
  enforcePollInterval: boolean;
  latencyMs: number;
  throughputBytesPerSec: number;
  faults: { rate: number; seed?: number; kinds?: FaultKind[]; endpoints?: string[]; phase?: 'before' | 'after' | 'mixed' } | undefined;
  refuseZeroByte: boolean;
  minShardBytes: number;
  maxShardBytes: number;
  quotaTotalBytes: number;
  /** Delay before an asynchronous share/transfer lands (shares.ts). */
  shareTransferAsyncMs: number;
  /** The service variant in force (setOptions({variant}) merges into it). */
  variant: ServiceVariant;
  /** API calls (api_domain + superfile2) accepted per sliding second; beyond it errno 31034. undefined = no limit. */
  rateLimit: { callsPerSecond: number } | undefined;
}

export interface Counters {
  requests: Record<string, number>;
  bytesServed: number;
  bytesUploaded: number;
  faultsInjected: number;
  /** Refresh tokens presented again after they were spent (either refreshReuse variant). */
  refreshTokenReuse: number;
  /** API calls refused with errno 31034 by the rateLimit knob. */
  rateLimited: number;
  reset(): void;
}

export interface UploadSession {
  uploadid: string;
  path: string;
  blocks: string[];
  size?: number;
  dir: string;
  parts: Map<number, { md5: string; size: number; file: string }>;
  committing: boolean;
  rtype?: number;
}

export interface Hosts {
  auth: string;
  api: string;
  upload: string;
  download: string;
}

export interface Ctx {
  readonly opts: ResolvedOptions;
  readonly store: Store;
  readonly auth: AuthState;
  readonly shares: ShareState;
  readonly logger: Logger;
  readonly counters: Counters;
  readonly appRoot: string;
  readonly hosts: Hosts;
  readonly uploads: Map<string, UploadSession>;
  readonly uk: number;
  readonly credentials: { clientId: string; clientSecret: string; privateSecret: string };
  readonly signKey: Buffer;
}

/**
 * Where a route's parameters go, as its spec table says: `query` names, `body` names (POST form
 * fields). The router refuses a request that has one of them in the other place (errno 2; 31023
 * on superfile2); `ApiRequest.param` reads each only from its place. Routes without a declaration
 * (shares, streaming) read `query`/`body` themselves.
 */
export interface ParamPlaces {
  query?: readonly string[];
  body?: readonly string[];
}

/** One API request as routes see it. */
export interface ApiRequest {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** A parameter from the place the route declares for it (ParamPlaces); an undeclared name is a bug of the route (throws). */
  param(name: string): string | undefined;
  /** A query-string parameter only (where the spec's table puts a parameter in the query). */
  query(name: string): string | undefined;
  /** A body (form) field only (the spec's "body Parameters" tables). */
  body(name: string): string | undefined;
  /** The access token given in the query, under the spelling(s) the endpoint's table names. */
  token?: string;
}

export function requireParam(r: ApiRequest, name: string, errno = 2): string {
  const v = r.param(name);
  if (v === undefined || v === '') throw new EmulatorErrno(errno, `missing parameter ${name}`);
  return v;
}

/** Pass as intParam's default to make the parameter mandatory. */
export const requiredInt: unique symbol = Symbol('required');

/** An integer parameter; `dflt` when absent, or missing-parameter `errno` when dflt is requiredInt. */
export function intParam(r: ApiRequest, name: string, dflt: number | typeof requiredInt, errno = 2): number {
  const v = r.param(name);
  if (v === undefined || v === '') {
    if (dflt === requiredInt) throw new EmulatorErrno(errno, `missing parameter ${name}`);
    return dflt;
  }
  if (!/^-?\d{1,15}$/.test(v)) throw new EmulatorErrno(errno, `parameter ${name} is not an integer`);
  return Number(v);
}

export function jsonParam<T>(r: ApiRequest, name: string, check: (v: unknown) => v is T, errno = 2): T {
  const raw = requireParam(r, name, errno);
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new EmulatorErrno(errno, `parameter ${name} is not JSON`);
  }
  if (!check(v)) throw new EmulatorErrno(errno, `parameter ${name} has the wrong shape`);
  return v;
}

export function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/**
 * Check a path given to the API, as given (nothing is normalised): absolute, inside the app folder
 * (else -7), every segment below the app folder a valid name (else -7: so a trailing slash, a
 * double slash, `.` or `..` are refused, not repaired). `allowRoot`: the app folder itself is
 * acceptable (list, search).
 */
export function checkPath(ctx: Ctx, raw: string, allowRoot = false): string {
  const p = raw;
  if (p.length > 4096) throw new EmulatorErrno(-7, 'path too long');
  if (!p.startsWith('/')) throw new EmulatorErrno(-7, 'path must start with /');
  if (p === ctx.appRoot) {
    if (allowRoot) return p;
    throw new EmulatorErrno(-7, 'the app folder itself may not be changed');
  }
  if (!p.startsWith(ctx.appRoot + '/')) throw new EmulatorErrno(-7, 'path outside the app folder');
  const rest = p.slice(ctx.appRoot.length + 1).split('/');
  for (const seg of rest) if (!isValidName(seg)) throw new EmulatorErrno(-7, 'invalid file name');
  return p;
}

/**
 * The answer fields of a node. `wire` = where the answer goes: its md5 then takes the form the
 * variant sends there (md5Form); without it the md5 is the plain one.
 */
export function fileInfo(n: Node, wire?: { ctx: Ctx; place: Md5Place }): WireFileEntry {
  const name = basenameOf(n.path);
  const fi: WireFileEntry = {
    fs_id: n.fs_id,
    path: n.path,
    server_filename: name,
    size: n.isdir ? 0 : n.size,
    isdir: n.isdir ? 1 : 0,
    category: n.isdir ? 6 : categoryOf(name),
    server_ctime: n.ctime,
    server_mtime: n.mtime,
    local_ctime: n.lctime,
    local_mtime: n.lmtime,
  };
  if (!n.isdir && n.md5) fi.md5 = wire ? md5ForWire(wire.ctx.opts.variant, n.md5, wire.place) : n.md5;
  return fi;
}

// ---------------------------------------------------------------- signed download URLs

export function hmac(ctx: Ctx, text: string): string {
  return createHmac('sha256', ctx.signKey).update(text).digest('base64url');
}

export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** dlink = http://<download host>/file/<md5>?fid=<uk>-250528-<fs_id>&sign=..&expires=<unix s>&... */
export function makeDlink(ctx: Ctx, n: Node): string {
  const expires = Math.floor(Date.now() / 1000) + ctx.opts.dlinkTtlSec;
  const fid = `${ctx.uk}-250528-${n.fs_id}`;
  const sign = hmac(ctx, `file:${fid}:${expires}`);
  const q = new URLSearchParams({ fid, rt: 'pr', sign, expires: String(expires), chkv: '1', dstime: String(Math.floor(Date.now() / 1000)), vip: '0' });
  return `http://${ctx.hosts.download}/file/${n.md5 ?? '0'}?${q.toString()}`;
}

/** Content URL the dlink redirects to (and m3u8 segments point at). Optional fixed slice. */
export function makeContentUrl(ctx: Ctx, n: Node, slice?: { start: number; end: number }): string {
  const expires = Math.floor(Date.now() / 1000) + Math.max(ctx.opts.dlinkTtlSec, 60);
  const range = slice ? `${slice.start}-${slice.end}` : '';
  const sign = hmac(ctx, `content:${n.fs_id}:${n.blob ?? ''}:${expires}:${range}`);
  const q = new URLSearchParams({ fsid: String(n.fs_id), expires: String(expires), sign: sign });
  if (range) q.set('range', range);
  return `http://${ctx.hosts.download}/content/${n.fs_id}?${q.toString()}`;
}
