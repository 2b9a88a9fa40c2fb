/**
 * The composition root: configuration in, a running WebDAV bridge out.
 *
 *   [embedded emulator, when no TeraBox credentials are configured]
 *     -> TeraboxClient (FileTokenStore in the state dir) -> TeraboxRemote (terabox.root)
 *     -> Vfs (state + spool/cache dirs; its own WritebackQueue when upload.mode is writeback)
 *     -> MountFs (shares under shares.folder) -> [StreamingFs, when streaming.enabled] (shares-wiring.ts)
 *     -> startBridge (server.host/port/users/tls)
 *
 * Nothing else builds these objects for real use; tests build the same stack through
 * test/helpers/stack.ts (port 0, temp dirs). close() stops them in reverse order.
 *
 * Directory layout:
 *   real drive:       <stateDir>/tokens.json, <stateDir>/vfs/, <cacheDir>/
 *   embedded emulator: <stateDir>/emulator/ (its drive), <stateDir>/emulator-session/tokens.json,
 *                      <stateDir>/emulator-session/vfs/, <cacheDir>/emulator/
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BridgeMetrics, type MetricLevels } from '../dav/metrics.js';
import { startBridge, type Bridge } from '../dav/server.js';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from '../emulator/index.js';
import { TbdavError, isTbdavError } from '../shared/errors.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { combineObservers, safeObserver, type Observer } from '../shared/observer.js';
import { redact } from '../shared/redact.js';
import { loadOrCreateSecret } from '../shared/secret-file.js';
import { ERRNO } from '../terabox/api/types.js';
import { FileTokenStore } from '../terabox/auth/token-store.js';
import { TeraboxClient } from '../terabox/client.js';
import { isTeraboxApiError } from '../terabox/errors.js';
import { TeraboxRemote } from '../terabox/remote.js';
import { Vfs } from '../vfs/vfs.js';
import type { WritebackPort } from '../vfs/writeback.js';
import { hasCredentials, type Config } from './config.js';
import { wireShares, type SharesWiring } from './shares-wiring.js';
import { appFolderOf, StackMonitor } from './monitor.js';
import { pngFromDataUrl } from './qr-terminal.js';


/** The key that signs the virtual HLS playlists' URLs, in the state dir (stable across restarts). */
export const STREAMING_KEY_FILE = 'streaming.key';
export interface StackOptions {
  logger?: Logger;
  /** Extra options for the embedded emulator (tests: faults, small limits). */
  emulator?: Partial<EmulatorOptions>;
}

export interface Stack {
  /** The WebDAV URL, e.g. 'http://127.0.0.1:8080/'. */
  url: string;
  /** Present when serving the embedded emulator (no credentials configured). */
  emulator?: EmulatorHandle;
  client: TeraboxClient;
  remote: TeraboxRemote;
  vfs: Vfs;
  /** Shares (registry, store, mounts), the tree served, and transfers answered 202. */
  shares: SharesWiring;
  /** The Vfs's write-back queue when upload.mode is 'writeback'. */
  writeback?: WritebackPort;
  bridge: Bridge;
  logger: Logger;
  /** /metrics and the status page's numbers; its observer is handed to the client. */
  metrics: BridgeMetrics;
  /** What /readyz and the status page see. */
  monitor: StackMonitor;
  /**
   * Resolves when the share serves: at once when logged in; after the browser login otherwise
   * (remote, vfs and writeback throw TBDAV_NOT_LOGGED_IN until then). Never rejects.
   */
  serving: Promise<void>;
  /** Stop the bridge, then the vfs (flushes state), the client and the emulator. Idempotent. */
  close(): Promise<void>;
}

/** Where the tokens of a configuration live (what `logout` deletes). */
export function tokenDir(config: Config): string {
  return hasCredentials(config) ? config.stateDir : join(config.stateDir, 'emulator-session');
}

/** The vfs's state and cache folders of a configuration (what `uploads` works on besides `serve`). */
export function vfsDirs(config: Config): { stateDir: string; cacheDir: string } {
  return {
    stateDir: join(tokenDir(config), 'vfs'),
    cacheDir: hasCredentials(config) ? config.cacheDir : join(config.cacheDir, 'emulator'),
  };
}

/** The logger of a configuration (stderr, redacting). */
export function loggerFor(config: Config): Logger {
  return createLogger({ level: config.log.level, format: config.log.format });
}

/** A client for the configured TeraBox credentials (login, whoami, logout, serve). */
export function clientFor(config: Config, logger: Logger, observer?: Observer): TeraboxClient {
  const { clientId, clientSecret, privateSecret } = config.terabox;
  if (!clientId || !clientSecret || !privateSecret) {
    throw new TbdavError('TBDAV_CONFIG', 'config terabox.clientId: TeraBox credentials are not configured (terabox.clientId, terabox.clientSecret, terabox.privateSecret)');
  }
  return new TeraboxClient({
    authUrl: config.terabox.authUrl,
    clientId,
    clientSecret,
    privateSecret,
    tokenStore: new FileTokenStore(config.stateDir, { logger }),
    logger,
    concurrency: config.terabox.concurrency,
    callsPerSecond: config.terabox.callsPerSecond,
    ...(observer ? { observer } : {}),
  });
}

/** Make sure the share's root folder exists on the drive (a fresh app folder does not). */
async function ensureRoot(client: TeraboxClient, remote: TeraboxRemote, root: string, logger: Logger): Promise<void> {
  try {
    await remote.list('/');
    return;
  } catch (err) {
    if (!isTbdavError(err, 'TBDAV_NOT_FOUND')) throw err;
  }
  logger.info(`stack: creating the drive folder ${root}`);
  try {
    await client.createDir(root);
  } catch (err) {
    if (isTeraboxApiError(err) && err.errno === ERRNO.FILE_EXISTS) {
      logger.debug(`stack: ${root} appeared meanwhile`);
      return;
    }
    throw err;
  }
}

/** Pause for `ms`, or less when `signal` fires (resolves either way). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/** The share's parts, once the drive is reachable (logged in). */
interface ShareParts {
  remote: TeraboxRemote;
  vfs: Vfs;
  writeback?: WritebackPort;
  shares: SharesWiring;
}

/**
 * Build and start everything the configuration asks for.
 *
 * Order: client -> bridge (listening at once; the share answers 503 until attached) -> the share
 * (remote, write-back, vfs) -> attach. With credentials but no usable saved login (none, or refused
 * by the service), startStack returns with the bridge up in the login state: the status page shows
 * a device code (requested when someone looks at the page), and once it is approved the tokens are
 * saved and the share attached without a restart (`stack.serving` resolves then).
 */
export async function startStack(config: Config, opts: StackOptions = {}): Promise<Stack> {
  const logger = opts.logger ?? loggerFor(config);
  // Everything but the bridge, closed in reverse order after the bridge has drained.
  const cleanups: (() => Promise<void>)[] = [];
  let bridge: Bridge | undefined;
  const stopping = new AbortController();
  const runCleanups = async (): Promise<void> => {
    stopping.abort();
    const all: (() => Promise<void>)[] = [...(bridge ? [() => bridge!.close()] : []), ...cleanups.reverse()];
    cleanups.length = 0;
    for (const fn of all) {
      try {
        await fn();
      } catch (err) {
        logger.warn('stack: error while stopping', { error: err instanceof Error ? err.message : String(err) });
      }
    }
  };
  const metrics = new BridgeMetrics();
  // A refresh TeraBox refuses for good while serving (refresh token expired or revoked) sends the
  // share back to the browser login (set below, once the bridge exists), instead of a share that
  // answers 503 until someone restarts the service.
  let onLoginRefused: (() => void) | undefined;
  const loginWatch: Observer = {
    apiCall: (e) => {
      if (e.endpoint === 'refreshtoken' && (e.errno === ERRNO.INVALID_REFRESH_TOKEN || e.errno === ERRNO.REFRESH_TOKEN_EXPIRED)) onLoginRefused?.();
    },
  };
  const observer = safeObserver(combineObservers(metrics.observer, loginWatch), (err) => logger.debug(`metrics: observer failed: ${String(err)}`));

  try {
    let emulator: EmulatorHandle | undefined;
    let client: TeraboxClient;
    let root: string;
    const { stateDir: vfsStateDir, cacheDir } = vfsDirs(config);

    if (hasCredentials(config)) {
      client = clientFor(config, logger, observer);
      cleanups.push(() => client.close());
      root = config.terabox.root;
    } else {
      const dataDir = join(config.stateDir, 'emulator');
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      emulator = await startEmulator({ dataDir, logger: logger.child({ component: 'emulator' }), ...opts.emulator });
      const emu = emulator;
      cleanups.push(() => emu.close());
      logger.info(`stack: no TeraBox credentials configured, serving the embedded emulator (${dataDir})`);
      const session = join(config.stateDir, 'emulator-session');
      client = new TeraboxClient({
        authUrl: emu.authUrl,
        clientId: emu.credentials.clientId,
        clientSecret: emu.credentials.clientSecret,
        privateSecret: emu.credentials.privateSecret,
        tokenStore: new FileTokenStore(session, { logger }),
        logger,
        concurrency: config.terabox.concurrency,
        // a local service: no ceiling worth the name (the adaptive pacer still obeys its rate-limit answers)
        callsPerSecond: Math.max(config.terabox.callsPerSecond, 1000),
        observer,
      });
      cleanups.push(() => client.close());
      // The emulator listens on new ports each run: log in afresh so the domains are its current ones.
      await client.exchangeCode(emu.issueAuthorizationCode());
      root = emu.appRoot;
    }

    const monitor = new StackMonitor({
      metrics,
      emulator: emulator !== undefined,
      driveFolder: root,
      appFolder: emulator ? emulator.appRoot : appFolderOf(root),
      uploadMode: config.upload.mode,
      sharesFolder: config.shares.folder,
      logger,
    });
    let share: ShareParts | undefined;
    metrics.setLevels(() => {
      const l: MetricLevels = {};
      const p = client.http.pacerStats();
      l.pacer = { calls: p.calls, rateLimited: p.rateLimited, backoffs: p.backoffs, pauses: p.pauses, intervalMs: p.intervalMs };
      const wb = share?.writeback;
      if (wb) {
        const u = wb.usage();
        const pending = wb.pendingUnder('/');
        // failed: refused for good, kept until `terabox-dav uploads retry/remove` (issue 9)
        // (retrying: waiting for its next attempt, counted as queued, as the status page shows it)
        const count = (...states: string[]): number => pending.filter((i) => states.includes(i.state)).length;
        l.writeback = { queued: count('queued', 'retrying'), inFlight: count('uploading'), failed: count('failed'), spoolBytes: u.pendingBytes, spoolMaxBytes: u.maxBytes };
      }
      return l;
    });

    await mkdir(vfsStateDir, { recursive: true, mode: 0o700 });
    bridge = await startBridge({
      host: config.server.host,
      port: config.server.port,
      users: config.server.users,
      realm: config.server.realm,
      trustedProxies: config.server.trustedProxies,
      // WebDAV locks survive a restart (Finder and Explorer hold them across a long copy).
      lockStateFile: join(vfsStateDir, 'locks.json'),
      logger,
      metrics,
      metricsPublic: config.metrics.public,
      monitor,
      ...(config.server.tls ? { tls: config.server.tls } : {}),
    });
    const theBridge = bridge;

    /** Remote, vfs (with its own write-back queue) and the shares around it, over the logged-in client. */
    const openShare = async (): Promise<ShareParts> => {
      const remote = new TeraboxRemote(client, { root, uploadConcurrency: config.upload.concurrency, connections: config.download.connections, parallelBelowBytesPerSecond: config.download.parallelBelowBytesPerSecond, logger });
      await ensureRoot(client, remote, root, logger);
      await mkdir(cacheDir, { recursive: true, mode: 0o700 });
      // Write-back: the Vfs opens its own queue (and resumes journalled uploads) and closes it first
      // (drain briefly, leave the rest journalled for the next start).
      const vfs = await Vfs.open({
        remote,
        stateDir: vfsStateDir,
        cacheDir,
        logger,
        cacheTtlMs: config.cache.ttlSeconds * 1000,
        ignore: config.ignore,
        observer,
        ...(config.upload.mode === 'writeback'
          ? { writeback: { spoolMaxBytes: config.upload.spoolMaxBytes, waitMs: config.upload.waitSeconds * 1000, control: true } }
          : {}),
      });
      cleanups.push(() => vfs.close());
      // Shares under shares.folder and (streaming.enabled) virtual playlists: wrappers of the Vfs.
      const streamingSecret = config.streaming.enabled ? await loadOrCreateSecret(join(tokenDir(config), STREAMING_KEY_FILE)) : undefined;
      const shares = wireShares(config, { client, vfs, driveRoot: root, storeDir: tokenDir(config), logger, ...(streamingSecret ? { streamingSecret } : {}) });
      return { remote, vfs, writeback: vfs.writeback, shares };
    };
    const serveShare = async (): Promise<void> => {
      share = await openShare();
      monitor.setParts({ client, writeback: share.writeback, shares: share.shares });
      theBridge.attach(share.shares.fs, share.shares.streaming ? { hls: share.shares.streaming } : {});
      monitor.setState({ state: 'ready' });
    };

    let serving: Promise<void>;
    const saved = emulator !== undefined || (await client.auth.tokens()) !== null;
    let problem: string | undefined;
    if (saved) {
      try {
        await serveShare();
        serving = Promise.resolve();
      } catch (err) {
        // A saved login the service refuses (refresh token expired or revoked): log in again in the
        // browser rather than stopping (issue 11: a systemd service has no terminal to run login in).
        if (emulator || share || !(isTbdavError(err, 'TBDAV_AUTH') || isTbdavError(err, 'TBDAV_NOT_LOGGED_IN'))) throw err;
        problem = `TeraBox refused the saved login (${redact(String((err as Error).message))}): log in again below.`;
        logger.warn(`stack: the saved login was refused: ${redact(String((err as Error).message))}; waiting for a login through the status page`);
        serving = browserLogin(problem);
      }
    } else {
      logger.warn(`stack: not logged in to TeraBox; open ${theBridge.url}/.terabox-dav/ to log in`);
      serving = browserLogin(undefined);
    }

    /** The device-code login of the status page, then the share. Never rejects (ends when stopping). */
    async function browserLogin(firstProblem: string | undefined): Promise<void> {
      let problem = firstProblem;
      monitor.setState({ state: 'login', ...(problem ? { problem } : {}) });
      const signal = stopping.signal;
      while (!signal.aborted) {
        // Ask for a code only while someone looks at the status page: an unattended server would
        // otherwise poll the service for ever.
        await monitor.loginWanted(signal);
        if (signal.aborted) return;
        try {
          await client.loginWithDeviceCode({
            signal,
            onCode: (code) => {
              const png = pngFromDataUrl(code.qrcode_url);
              monitor.setState({
                state: 'login',
                code: { qrPng: png, userCode: code.user_code, verificationUrl: code.verification_url, expiresAt: Date.now() + code.expires_in * 1000 },
                ...(problem ? { problem } : {}),
              });
              // the spec says user_code may be absent (the QR code is then the only way): say so, not '(user code )'
              logger.info(`stack: login code issued; approve it on ${theBridge.url}/.terabox-dav/${code.user_code ? ` (user code ${code.user_code})` : ' (scan the QR code)'}`);
            },
          });
          logger.info('stack: logged in to TeraBox through the status page; tokens saved');
          break;
        } catch (err) {
          if (signal.aborted) return;
          // The code lapsed: the service says so (100002), or the client's own deadline passed (a
          // TBDAV_AUTH that is not an answer of the service).
          const expired = isTeraboxApiError(err) ? err.errno === ERRNO.INVALID_CODE : isTbdavError(err, 'TBDAV_AUTH');
          problem = expired ? 'The last code expired before it was approved; here is a new one.' : `TeraBox: ${redact(String((err as Error)?.message ?? err))}`;
          logger.warn(`stack: browser login: ${problem}`);
          monitor.setState({ state: 'login', problem });
          if (!expired) await pause(10_000, signal);
        }
      }
      if (share) {
        // Logged in again while serving (the saved login was refused): the share is still open.
        theBridge.attach(share.shares.fs, share.shares.streaming ? { hls: share.shares.streaming } : {});
        monitor.setState({ state: 'ready' });
        return;
      }
      while (!signal.aborted) {
        try {
          monitor.setState({ state: 'starting' });
          await serveShare();
          return;
        } catch (err) {
          if (signal.aborted) return;
          const reason = `the drive could not be opened: ${redact(String((err as Error)?.message ?? err))}; trying again in 30 s`;
          logger.error(`stack: ${reason}`);
          monitor.setState({ state: 'failed', reason });
          await pause(30_000, signal);
        }
      }
    }

    let checking = false;
    onLoginRefused = () => {
      if (checking || emulator || stopping.signal.aborted || monitor.share().state !== 'ready') return;
      checking = true;
      // A refused refresh may still end well (a newer pair another process saved is adopted): ask
      // once more before taking the share down.
      const check = setTimeout(() => {
        client.quota().then(
          () => {
            checking = false;
          },
          (err: unknown) => {
            checking = false;
            if (stopping.signal.aborted || monitor.share().state !== 'ready') return;
            if (!(isTbdavError(err, 'TBDAV_AUTH') || isTbdavError(err, 'TBDAV_NOT_LOGGED_IN'))) return;
            const problem = `TeraBox refused the saved login while serving (${redact(String((err as Error).message))}): log in again below.`;
            logger.warn(`stack: ${problem}`);
            theBridge.detach();
            serving = browserLogin(problem);
          },
        );
      }, 1000);
      check.unref();
    };

    const notYet = (what: string): never => {
      throw new TbdavError('TBDAV_NOT_LOGGED_IN', `stack.${what}: the share is not open yet (not logged in)`);
    };
    let closing: Promise<void> | undefined;
    return {
      url: theBridge.url,
      emulator,
      client,
      get remote() {
        return share?.remote ?? notYet('remote');
      },
      get vfs() {
        return share?.vfs ?? notYet('vfs');
      },
      get writeback() {
        return share?.writeback;
      },
      get shares() {
        return share?.shares ?? notYet('shares');
      },
      bridge: theBridge,
      logger,
      metrics,
      monitor,
      get serving() {
        return serving;
      },
      close: () => (closing ??= runCleanups()),
    };
  } catch (err) {
    await runCleanups();
    throw err;
  }
}
