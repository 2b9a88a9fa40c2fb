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
import { startBridge, type Bridge } from '../dav/server.js';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from '../emulator/index.js';
import { TbdavError, isTbdavError } from '../shared/errors.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { ERRNO } from '../terabox/api/types.js';
import { FileTokenStore } from '../terabox/auth/token-store.js';
import { TeraboxClient } from '../terabox/client.js';
import { isTeraboxApiError } from '../terabox/errors.js';
import { TeraboxRemote } from '../terabox/remote.js';
import { Vfs } from '../vfs/vfs.js';
import type { WritebackPort } from '../vfs/writeback.js';
import { hasCredentials, type Config } from './config.js';
import { wireShares, type SharesWiring } from './shares-wiring.js';

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
export function clientFor(config: Config, logger: Logger): TeraboxClient {
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

/** Build and start everything the configuration asks for. */
export async function startStack(config: Config, opts: StackOptions = {}): Promise<Stack> {
  const logger = opts.logger ?? loggerFor(config);
  const cleanups: (() => Promise<void>)[] = [];
  const runCleanups = async (): Promise<void> => {
    while (cleanups.length) {
      const fn = cleanups.pop()!;
      try {
        await fn();
      } catch (err) {
        logger.warn('stack: error while stopping', { error: err instanceof Error ? err.message : String(err) });
      }
    }
  };

  try {
    let emulator: EmulatorHandle | undefined;
    let client: TeraboxClient;
    let root: string;
    const { stateDir: vfsStateDir, cacheDir } = vfsDirs(config);

    if (hasCredentials(config)) {
      client = clientFor(config, logger);
      cleanups.push(() => client.close());
      if (!(await client.auth.tokens())) {
        throw new TbdavError('TBDAV_NOT_LOGGED_IN', 'not logged in: run terabox-dav login');
      }
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
      });
      cleanups.push(() => client.close());
      // The emulator listens on new ports each run: log in afresh so the domains are its current ones.
      await client.exchangeCode(emu.issueAuthorizationCode());
      root = emu.appRoot;
    }

    const remote = new TeraboxRemote(client, { root, uploadConcurrency: config.upload.concurrency, connections: config.download.connections, logger });
    await ensureRoot(client, remote, root, logger);
    await mkdir(vfsStateDir, { recursive: true, mode: 0o700 });
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
      ...(config.upload.mode === 'writeback'
        ? { writeback: { spoolMaxBytes: config.upload.spoolMaxBytes, waitMs: config.upload.waitSeconds * 1000 } }
        : {}),
    });
    cleanups.push(() => vfs.close());
    // Shares under shares.folder and (streaming.enabled) virtual playlists: wrappers of the Vfs.
    const shares = wireShares(config, { client, vfs, driveRoot: root, storeDir: tokenDir(config), logger });
    const bridge = await startBridge({
      fs: shares.fs,
      ...(shares.streaming ? { hls: shares.streaming } : {}),
      host: config.server.host,
      port: config.server.port,
      users: config.server.users,
      realm: config.server.realm,
      trustedProxies: config.server.trustedProxies,
      // WebDAV locks survive a restart (Finder and Explorer hold them across a long copy).
      lockStateFile: join(vfsStateDir, 'locks.json'),
      logger,
      ...(config.server.tls ? { tls: config.server.tls } : {}),
    });
    cleanups.push(() => bridge.close());

    let closing: Promise<void> | undefined;
    return {
      url: bridge.url,
      emulator,
      client,
      remote,
      vfs,
      writeback: vfs.writeback,
      bridge,
      shares,
      logger,
      close: () => (closing ??= runCleanups()),
    };
  } catch (err) {
    await runCleanups();
    throw err;
  }
}
