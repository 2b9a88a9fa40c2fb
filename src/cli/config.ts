/**
 * Configuration: one table of keys (CONFIG_KEYS) drives defaults, the JSON file, the TERABOX_DAV_*
 * environment variables, the command-line flags, validation and the redacted dump.
 *
 * Precedence: flags > environment > config file > defaults.
 * Every problem is a ConfigError naming the key (`config server.port: must be an integer 0-65535`);
 * the CLI prints its message alone and exits with code 2.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { TrustedProxies } from '../dav/client-info.js';
import { ConfigError } from '../shared/errors.js';
import type { LogLevel } from '../shared/logger.js';
import { parsePasswordHash, isPasswordHash } from '../shared/password.js';

export interface UserConfig {
  username: string;
  /** Plain text or an scrypt hash (`scrypt$...`, from `terabox-dav hash-password`). */
  password: string;
  /** Writes (PUT, DELETE, MKCOL, COPY, MOVE, PROPPATCH, LOCK) answer 403. */
  readOnly?: boolean;
  /** A folder under terabox.root that this user sees as `/` (default `/`: all of it). */
  root?: string;
}

export interface Config {
  server: {
    host: string;
    port: number;
    users: UserConfig[];
    realm: string;
    tls?: { cert: string; key: string };
    trustedProxies: string[];
  };
  terabox: {
    authUrl: string;
    clientId?: string;
    clientSecret?: string;
    privateSecret?: string;
    root: string;
    concurrency: number;
    callsPerSecond: number;
  };
  stateDir: string;
  cacheDir: string;
  cache: { ttlSeconds: number };
  upload: { concurrency: number; mode: 'writethrough' | 'writeback'; waitSeconds: number; spoolMaxBytes: number };
  download: { connections: number; parallelBelowBytesPerSecond: number };
  ignore: string[];
  shares: { folder: string; copyWaitSeconds: number };
  streaming: { enabled: boolean; type: 'M3U8_AUTO_480' | 'M3U8_AUTO_720' | 'M3U8_AUTO_1080' };
  log: { level: LogLevel; format: 'text' | 'json' };
  metrics: { public: boolean };
}

type Kind = 'string' | 'int' | 'number' | 'url' | 'path' | 'users' | 'list' | 'enum' | 'root' | 'bool';

export interface KeyDef {
  key: string;
  kind: Kind;
  /** Default value; a function for defaults that depend on the environment (home, XDG). */
  default?: unknown | ((ctx: DefaultsContext) => unknown);
  min?: number;
  max?: number;
  values?: readonly string[];
  secret?: boolean;
  /** One line for the README table and `--help`. */
  doc: string;
  /** Short flag aliases besides `--<key>`. */
  aliases?: string[];
}

interface DefaultsContext {
  env: Record<string, string | undefined>;
  home: string;
}

const LOG_LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] as const;
export const DEFAULT_ROOT = '/From: Other Applications/terabox-dav';
export const DEFAULT_IGNORE = ['._*', '.DS_Store', 'Thumbs.db', 'desktop.ini'];

export const CONFIG_KEYS: readonly KeyDef[] = [
  { key: 'server.host', kind: 'string', default: '127.0.0.1', doc: 'Address the WebDAV server listens on (0.0.0.0 for every interface).', aliases: ['host'] },
  { key: 'server.port', kind: 'int', min: 0, max: 65535, default: 8080, doc: 'TCP port of the WebDAV server (0 picks a free port).', aliases: ['port'] },
  {
    key: 'server.users',
    kind: 'users',
    default: [],
    secret: true,
    doc: 'WebDAV users: a list of {"username","password"}; password in plain text or an scrypt hash from `terabox-dav hash-password`; optional "readOnly": true (writes answer 403) and "root": "/sub/folder" (a folder under terabox.root this user sees as /, created when missing). Empty list: no authentication. Env/flag form: JSON, or `name:password,name2:password2`.',
  },
  { key: 'server.realm', kind: 'string', default: 'terabox-dav', doc: 'Realm of the Basic authentication challenge.' },
  { key: 'server.tls.cert', kind: 'path', doc: 'PEM certificate file: serve HTTPS (needs server.tls.key too).' },
  { key: 'server.tls.key', kind: 'path', secret: false, doc: 'PEM private key file for server.tls.cert.' },
  {
    key: 'server.trustedProxies',
    kind: 'list',
    default: [],
    doc: 'Reverse proxies (IP addresses or CIDR ranges, e.g. 127.0.0.1 or 10.0.0.0/8) whose Forwarded / X-Forwarded-For, -Proto and -Host headers are believed for the client address (log, login throttle) and the URLs the server writes. Env/flag form: JSON or comma list.',
  },
  { key: 'terabox.authUrl', kind: 'url', default: 'https://www.terabox.com', doc: 'Authorization service of TeraBox; api_domain and upload_domain are used with the same scheme.' },
  { key: 'terabox.clientId', kind: 'string', doc: 'Client id (AppKey) from the TeraBox Open Platform. Without the three credentials, `serve` runs on the embedded emulator.' },
  { key: 'terabox.clientSecret', kind: 'string', secret: true, doc: 'Client secret (SecretKey) from the TeraBox Open Platform.' },
  { key: 'terabox.privateSecret', kind: 'string', secret: true, doc: 'Private secret used to sign token requests (md5 of client_id_timestamp_client_secret_private_secret).' },
  { key: 'terabox.root', kind: 'root', default: DEFAULT_ROOT, doc: 'Folder of the drive the share maps to; the service confines an app to /From: Other Applications/<app name>/.', aliases: ['root'] },
  { key: 'terabox.concurrency', kind: 'int', min: 1, max: 64, default: 4, doc: 'API calls in flight at once.' },
  {
    key: 'terabox.callsPerSecond',
    kind: 'number',
    min: 0.1,
    max: 1000,
    default: 20,
    doc: 'Pacer ceiling: API calls started per second at most. Below it the pacer goes as fast as TeraBox accepts and slows down only when TeraBox answers "too often" (errno 31034, HTTP 429, 503 with Retry-After), recovering gradually.',
  },
  {
    key: 'stateDir',
    kind: 'path',
    default: (c: DefaultsContext) => join(c.env.XDG_STATE_HOME || join(c.home, '.local', 'state'), 'terabox-dav'),
    doc: 'Tokens, locks, dead properties, write-back journal, embedded emulator data. Default $XDG_STATE_HOME/terabox-dav or ~/.local/state/terabox-dav.',
    aliases: ['state-dir'],
  },
  {
    key: 'cacheDir',
    kind: 'path',
    default: (c: DefaultsContext) => join(c.env.XDG_CACHE_HOME || join(c.home, '.cache'), 'terabox-dav'),
    doc: 'Upload spool and read cache. Default $XDG_CACHE_HOME/terabox-dav or ~/.cache/terabox-dav.',
    aliases: ['cache-dir'],
  },
  { key: 'cache.ttlSeconds', kind: 'int', min: 0, max: 86400 * 7, default: 300, doc: 'How long listings and metadata are trusted before asking TeraBox again.' },
  { key: 'upload.concurrency', kind: 'int', min: 1, max: 32, default: 4, doc: 'Shards uploaded at once.' },
  {
    key: 'upload.mode',
    kind: 'enum',
    values: ['writethrough', 'writeback'],
    default: 'writethrough',
    doc: 'writethrough: a PUT is answered once TeraBox has the file. writeback: answered once the body is on local disk and journalled; the upload runs in the background, survives restarts, and the file shows meanwhile (for clients that give up on slow PUTs).',
  },
  { key: 'upload.waitSeconds', kind: 'int', min: 0, max: 3600, default: 0, doc: 'writeback: wait up to this long for the upload before answering (0 = answer at once).' },
  { key: 'upload.spoolMaxBytes', kind: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, default: 10 * 1024 ** 3, doc: 'writeback: bytes of not-yet-uploaded bodies kept on disk at most; beyond it a PUT gets 507.' },
  {
    key: 'download.connections',
    kind: 'int',
    min: 1,
    max: 16,
    default: 4,
    doc: 'Connections one download may use: a GET longer than 4 MiB starts on one connection; when that one brings less than download.parallelBelowBytesPerSecond (TeraBox throttles each connection of a free account), the rest is fetched ahead as 2 MiB ranges over up to this many connections and delivered in order; a download holds at most this many ranges in memory. 1: one connection per GET.',
  },
  {
    key: 'download.parallelBelowBytesPerSecond',
    kind: 'int',
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    default: 8 * 1024 * 1024,
    doc: 'A GET longer than 4 MiB goes parallel (download.connections) when its one connection brings fewer bytes per second than this over its first half second of transfer (default 8 MiB/s; throttled free accounts get 0.1-0.5 MB/s per connection). A faster link stays on one connection, which costs less CPU. 0: never parallel.',
  },
  { key: 'ignore', kind: 'list', default: DEFAULT_IGNORE, doc: 'Name patterns (* and ?) kept on local disk only, never uploaded (Finder/Explorer clutter). Env/flag form: JSON or comma list.' },
  {
    key: 'shares.folder',
    kind: 'root',
    default: '/Shared with me',
    doc: 'Folder of the WebDAV tree where each TeraBox share added with `terabox-dav share add` appears as a read-only subfolder (shown while at least one share is added; it hides a drive folder of the same name).',
  },
  {
    key: 'shares.copyWaitSeconds',
    kind: 'int',
    min: 0,
    max: 3600,
    default: 60,
    doc: 'COPY from a share into the drive (done by TeraBox, no download): answered 201 when complete, or 202 after this long while TeraBox goes on (the status page follows it).',
  },
  { key: 'streaming.enabled', kind: 'bool', default: false, doc: 'Show a virtual read-only `<video>.m3u8` (HLS) next to each video of the drive and of shares; players stream through the bridge without a TeraBox token.' },
  {
    key: 'streaming.type',
    kind: 'enum',
    values: ['M3U8_AUTO_480', 'M3U8_AUTO_720', 'M3U8_AUTO_1080'],
    default: 'M3U8_AUTO_720',
    doc: 'Resolution TeraBox transcodes the streams to.',
  },
  { key: 'log.level', kind: 'enum', values: LOG_LEVELS, default: 'info', doc: 'error, warn, info, http, verbose, debug or silly.', aliases: ['log-level'] },
  { key: 'log.format', kind: 'enum', values: ['text', 'json'], default: 'text', doc: 'text for people, json for log collectors.' },
  {
    key: 'metrics.public',
    kind: 'bool',
    default: false,
    doc: '/metrics (Prometheus text) without authentication, for a scraper that cannot send Basic credentials. /healthz and /readyz never need any; the status page /.terabox-dav/ always needs the share\'s.',
  },
];

const BY_KEY = new Map(CONFIG_KEYS.map((d) => [d.key, d]));

/** `server.port` -> `TERABOX_DAV_SERVER_PORT`; `terabox.clientId` -> `TERABOX_DAV_TERABOX_CLIENT_ID`. */
export function envName(key: string): string {
  return 'TERABOX_DAV_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/\./g, '_').toUpperCase();
}

/** Environment variable naming the config file (the `--config` flag wins). */
export const CONFIG_FILE_ENV = 'TERABOX_DAV_CONFIG';

const ENV_TO_KEY = new Map(CONFIG_KEYS.map((d) => [envName(d.key), d.key]));

export interface LoadConfigOptions {
  /** Flag values by config key (`server.port`) as given on the command line (strings or parsed). */
  flags?: Record<string, unknown>;
  /** Environment (default process.env). */
  env?: Record<string, string | undefined>;
  /** Config file path (the --config flag); falls back to $TERABOX_DAV_CONFIG. */
  configFile?: string;
  /** Directory relative paths of flags and environment are resolved against (default process.cwd()). */
  cwd?: string;
  /** Home directory for the defaults (default os.homedir()). */
  home?: string;
  /** How the user spelled each flag (`server.port` -> `port`), for messages; default the key. */
  flagNames?: Record<string, string>;
}

type Source = { kind: 'flag' | 'env' | 'file' | 'default'; name: string; baseDir: string };

function levenshtein(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i]![j] = Math.min(dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1, dp[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return dp[a.length]![b.length]!;
}

/** ` (did you mean server.port?)` for a key close to a known one, else ''. */
export function suggest(key: string): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const d of CONFIG_KEYS) {
    const dist = levenshtein(key.toLowerCase(), d.key.toLowerCase());
    if (dist < bestD) {
      bestD = dist;
      best = d.key;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 4)) ? ` (did you mean ${best}?)` : '';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Flatten a parsed config file into dotted keys, refusing unknown ones. */
function flattenFile(obj: Record<string, unknown>, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (!prefix && k === '$schema') continue;
    if (BY_KEY.has(key)) {
      out.set(key, v);
      continue;
    }
    const isPrefix = CONFIG_KEYS.some((d) => d.key.startsWith(key + '.'));
    if (isPrefix) {
      if (!isPlainObject(v)) throw new ConfigError(key, 'must be an object');
      for (const [kk, vv] of flattenFile(v, key)) out.set(kk, vv);
      continue;
    }
    throw new ConfigError(key, `unknown key${suggest(key)}`);
  }
  return out;
}

function describe(src: Source): string {
  switch (src.kind) {
    case 'flag':
      return ` (from flag --${src.name})`;
    case 'env':
      return ` (from ${src.name})`;
    case 'file':
      return ` (in ${src.name})`;
    default:
      return '';
  }
}

function expandHome(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return join(home, p.slice(2));
  return p;
}

/** A list given as text (flag, environment): a JSON array, or items split by `items` ('' is empty). */
function listFromText(raw: string, badJson: () => never, items: (text: string) => unknown[]): unknown {
  const t = raw.trim();
  if (!t.startsWith('[')) return t === '' ? [] : items(t);
  try {
    return JSON.parse(t);
  } catch {
    return badJson();
  }
}

/** Parse and validate one value for its key. Strings from env/flags are converted; file values must have the JSON type. */
function coerce(def: KeyDef, raw: unknown, src: Source, home: string): unknown {
  const fromText = src.kind === 'flag' || src.kind === 'env';
  const where = describe(src);
  const fail = (msg: string): never => {
    throw new ConfigError(def.key, msg + where);
  };
  switch (def.kind) {
    case 'int':
    case 'number': {
      let n: number;
      if (typeof raw === 'number') n = raw;
      else if (fromText && typeof raw === 'string' && raw.trim() !== '' && /^[-+]?\d*\.?\d+(e[-+]?\d+)?$/i.test(raw.trim())) n = Number(raw);
      else n = NaN;
      const range = `${def.min}-${def.max}`;
      if (def.kind === 'int' && (!Number.isInteger(n) || n < def.min! || n > def.max!)) fail(`must be an integer ${range}`);
      if (def.kind === 'number' && (!Number.isFinite(n) || n < def.min! || n > def.max!)) fail(`must be a number ${range}`);
      return n;
    }
    case 'string': {
      if (typeof raw !== 'string' || raw === '') fail('must be a non-empty string');
      return raw;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (src.kind === 'flag' && raw === '') return true; // a bare --metrics.public
      if (fromText && typeof raw === 'string') {
        const t = raw.trim().toLowerCase();
        if (['true', '1', 'yes', 'on'].includes(t)) return true;
        if (['false', '0', 'no', 'off'].includes(t)) return false;
      }
      return fail(fromText ? 'must be true or false' : 'must be true or false (a JSON boolean)');
    }
    case 'enum': {
      if (typeof raw !== 'string' || !def.values!.includes(raw)) fail(`must be one of ${def.values!.join(', ')}`);
      return raw;
    }
    case 'url': {
      if (typeof raw !== 'string') fail('must be a URL string');
      let u: URL | undefined;
      try {
        u = new URL(raw as string);
      } catch {
        u = undefined;
      }
      if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) fail('must be an http:// or https:// URL');
      if (u!.pathname !== '/' || u!.search || u!.hash) fail('must be an origin without path or query (e.g. https://www.terabox.com)');
      return u!.origin;
    }
    case 'path': {
      if (typeof raw !== 'string' || raw === '') fail('must be a non-empty path');
      return resolve(src.baseDir, expandHome(raw as string, home));
    }
    case 'root': {
      if (typeof raw !== 'string' || !raw.startsWith('/')) fail('must be an absolute path on the drive, starting with /');
      const s = raw as string;
      if (s.split('/').some((seg) => seg === '.' || seg === '..')) fail('must not contain . or .. segments');
      const trimmed = s.length > 1 ? s.replace(/\/+$/, '') : s;
      return trimmed === '' ? '/' : trimmed.normalize('NFC');
    }
    case 'list': {
      const v =
        fromText && typeof raw === 'string'
          ? listFromText(raw, () => fail('must be a JSON list of strings or a comma-separated list'), (t) => t.split(',').map((x) => x.trim()).filter(Boolean))
          : raw;
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) fail('must be a list of non-empty strings');
      return [...(v as string[])];
    }
    case 'users': {
      const bad = (): never => fail('must be a JSON list of {"username","password"} or name:password,name2:password2');
      const v =
        fromText && typeof raw === 'string'
          ? listFromText(raw, bad, (t) =>
              t.split(',').map((pair) => {
                const i = pair.indexOf(':');
                if (i <= 0) bad();
                return { username: pair.slice(0, i), password: pair.slice(i + 1) };
              }),
            )
          : raw;
      if (!Array.isArray(v)) fail('must be a list of {"username": ..., "password": ...}');
      const seen = new Set<string>();
      return (v as unknown[]).map((u, i) => {
        const at = `${def.key}[${i}]`;
        if (!isPlainObject(u)) throw new ConfigError(at, 'must be an object {"username": ..., "password": ...}' + where);
        for (const k of Object.keys(u)) {
          if (!['username', 'password', 'readOnly', 'root'].includes(k)) throw new ConfigError(`${at}.${k}`, 'unknown key' + where);
        }
        if (typeof u.username !== 'string' || u.username === '' || u.username.includes(':')) {
          throw new ConfigError(`${at}.username`, 'must be a non-empty string without ":"' + where);
        }
        if (typeof u.password !== 'string' || u.password === '') throw new ConfigError(`${at}.password`, 'must be a non-empty string' + where);
        if (isPasswordHash(u.password) && !parsePasswordHash(u.password)) {
          throw new ConfigError(`${at}.password`, 'looks like an scrypt hash but is malformed (make one with `terabox-dav hash-password`)' + where);
        }
        if (seen.has(u.username)) throw new ConfigError(`${at}.username`, `duplicate user ${u.username}` + where);
        seen.add(u.username);
        const user: UserConfig = { username: u.username, password: u.password };
        if (u.readOnly !== undefined) {
          if (typeof u.readOnly !== 'boolean') throw new ConfigError(`${at}.readOnly`, 'must be true or false' + where);
          user.readOnly = u.readOnly;
        }
        if (u.root !== undefined) {
          if (typeof u.root !== 'string' || !u.root.startsWith('/')) throw new ConfigError(`${at}.root`, 'must be a path starting with / (a folder under terabox.root)' + where);
          if (u.root.split('/').some((seg) => seg === '.' || seg === '..')) throw new ConfigError(`${at}.root`, 'must not contain . or .. segments' + where);
          const segs = u.root.split('/').filter(Boolean).map((x) => x.normalize('NFC'));
          user.root = '/' + segs.join('/');
        }
        return user;
      });
    }
  }
}

function setPath(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (!isPlainObject(cur[p])) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

function getPath(obj: unknown, key: string): unknown {
  let cur = obj;
  for (const p of key.split('.')) {
    if (!isPlainObject(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

/** Read and parse the JSON config file; ConfigError naming the file on any problem. */
function readConfigFile(file: string): Map<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, code === 'ENOENT' ? 'config file not found' : `cannot read config file (${code ?? 'error'})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, `not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(parsed)) throw new ConfigError(file, 'must hold a JSON object');
  return flattenFile(parsed);
}

/** Load the configuration: flags > environment > config file > defaults. Throws ConfigError. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const home = options.home ?? homedir();
  const flags = options.flags ?? {};

  for (const name of Object.keys(env)) {
    if (name.startsWith('TERABOX_DAV_') && name !== CONFIG_FILE_ENV && !ENV_TO_KEY.has(name) && env[name] !== undefined) {
      const guess = suggest(name.slice('TERABOX_DAV_'.length).toLowerCase().replace(/_/g, '.'));
      throw new ConfigError(name, `unknown environment variable${guess ? guess.replace(/\(did you mean (.*)\?\)/, (_m, k: string) => `(did you mean ${envName(k)}?)`) : ''}`);
    }
  }
  for (const key of Object.keys(flags)) {
    if (!BY_KEY.has(key)) throw new ConfigError(key, `unknown key${suggest(key)}`);
  }

  const fileArg = options.configFile ?? (env[CONFIG_FILE_ENV] || undefined);
  const file = fileArg === undefined ? undefined : resolve(cwd, expandHome(fileArg, home));
  const fileValues = file ? readConfigFile(file) : new Map<string, unknown>();

  const out: Record<string, unknown> = {};
  const ctx: DefaultsContext = { env, home };
  for (const def of CONFIG_KEYS) {
    let value: unknown;
    const envVal = env[envName(def.key)];
    if (flags[def.key] !== undefined) value = coerce(def, flags[def.key], { kind: 'flag', name: options.flagNames?.[def.key] ?? def.key, baseDir: cwd }, home);
    else if (envVal !== undefined && envVal !== '') value = coerce(def, envVal, { kind: 'env', name: envName(def.key), baseDir: cwd }, home);
    else if (fileValues.has(def.key)) value = coerce(def, fileValues.get(def.key), { kind: 'file', name: file!, baseDir: dirname(file!) }, home);
    else if (def.default !== undefined) {
      const d = typeof def.default === 'function' ? (def.default as (c: DefaultsContext) => unknown)(ctx) : def.default;
      value = Array.isArray(d) ? [...d] : d;
    }
    if (value !== undefined) setPath(out, def.key, value);
  }

  const cfg = out as unknown as Config;
  // Cross-key rules.
  const tls = getPath(out, 'server.tls') as { cert?: string; key?: string } | undefined;
  if (tls && (tls.cert === undefined) !== (tls.key === undefined)) {
    throw new ConfigError(tls.cert === undefined ? 'server.tls.cert' : 'server.tls.key', 'server.tls.cert and server.tls.key must be given together');
  }
  const creds = ['clientId', 'clientSecret', 'privateSecret'] as const;
  const given = creds.filter((k) => cfg.terabox[k] !== undefined);
  if (given.length > 0 && given.length < creds.length) {
    const missing = creds.find((k) => cfg.terabox[k] === undefined)!;
    throw new ConfigError(
      `terabox.${missing}`,
      `required when terabox.${given[0]} is set (give clientId, clientSecret and privateSecret, or none of them to use the embedded emulator)`,
    );
  }
  // Addresses and ranges are checked here, so that a typo stops the start (ConfigError naming the key).
  new TrustedProxies(cfg.server.trustedProxies);
  if (!isAbsolute(cfg.stateDir) || !isAbsolute(cfg.cacheDir)) throw new ConfigError('stateDir', 'must be an absolute path');
  if (cfg.shares.folder === '/') throw new ConfigError('shares.folder', 'must be a folder below the root (e.g. /Shared with me)');
  return cfg;
}

/** Whether real TeraBox credentials are configured (otherwise `serve` uses the embedded emulator). */
export function hasCredentials(config: Config): boolean {
  return Boolean(config.terabox.clientId && config.terabox.clientSecret && config.terabox.privateSecret);
}

/** A copy of the configuration safe to print: secrets replaced by [REDACTED]. */
export function redactConfig(config: Config): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
  for (const def of CONFIG_KEYS) {
    if (!def.secret) continue;
    const v = getPath(copy, def.key);
    if (v === undefined) continue;
    if (def.kind === 'users') {
      setPath(copy, def.key, (v as UserConfig[]).map((u) => ({ ...u, password: '[REDACTED]' })));
    } else setPath(copy, def.key, '[REDACTED]');
  }
  return copy;
}
