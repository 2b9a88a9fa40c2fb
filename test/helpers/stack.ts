/**
 * The whole stack for end-to-end tests: embedded emulator -> client -> remote -> vfs -> bridge,
 * built by the same composition root as `terabox-dav serve` (src/cli/stack.ts), on port 0 with
 * fresh temp dirs that close() removes.
 *
 *   const s = await startTestStack({ users: [{ username: 'u', password: 'p' }] });
 *   try { await fetch(s.url + '/a.txt', { method: 'PUT', body: 'x', headers: s.authHeaders() }); }
 *   finally { await s.close(); }
 *
 * Logs are silent unless TBDAV_TEST_LOG=debug (or another level) is set.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/cli/config.js';
import { startStack, type Stack } from '../../src/cli/stack.js';
import type { BridgeUser } from '../../src/dav/server.js';
import type { EmulatorCounters, EmulatorHandle, EmulatorOptions } from '../../src/emulator/index.js';
import { createLogger, silentLogger, type Logger, type LogLevel } from '../../src/shared/logger.js';
import { withEnvVariant } from './emulator-variant.js';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends (infer U)[] ? U[] : T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface TestStackOptions {
  /** Options of the embedded emulator (faults, latency, refuseZeroByte, small shards...); the variant of env TBDAV_EMULATOR_VARIANT applies under them. */
  emulator?: Partial<EmulatorOptions>;
  /** WebDAV users (default none: no authentication, loopback only). */
  users?: BridgeUser[];
  /** Changes to the configuration (server.port stays 0 unless set here). */
  configPatch?: DeepPartial<Config>;
  logger?: Logger;
}

export interface TestStack extends Stack {
  emulator: EmulatorHandle;
  counters: EmulatorCounters;
  config: Config;
  /** Temp dir holding stateDir and cacheDir (removed by close()). */
  dir: string;
  stateDir: string;
  cacheDir: string;
  /** `Authorization: Basic` for a user (default: the first of opts.users); {} without users. */
  authHeaders(user?: BridgeUser): Record<string, string>;
}

function merge(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    if (v && typeof v === 'object' && !Array.isArray(v) && target[k] && typeof target[k] === 'object' && !Array.isArray(target[k])) {
      merge(target[k] as Record<string, unknown>, v as Record<string, unknown>);
    } else target[k] = v;
  }
}

export async function startTestStack(opts: TestStackOptions = {}): Promise<TestStack> {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-stack-'));
  const stateDir = join(dir, 'state');
  const cacheDir = join(dir, 'cache');
  const config = loadConfig({ env: {}, home: dir, cwd: dir, flags: { 'server.port': 0, stateDir, cacheDir } });
  if (opts.users) config.server.users = opts.users;
  if (opts.configPatch) merge(config as unknown as Record<string, unknown>, opts.configPatch as Record<string, unknown>);
  const level = process.env.TBDAV_TEST_LOG as LogLevel | undefined;
  const logger = opts.logger ?? (level ? createLogger({ level }) : silentLogger());
  let stack: Stack;
  try {
    stack = await startStack(config, { logger, emulator: withEnvVariant(opts.emulator ?? {}) });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const emulator = stack.emulator;
  if (!emulator) throw new Error('startTestStack: expected the embedded emulator');
  const users = opts.users ?? [];
  return {
    ...stack,
    emulator,
    counters: emulator.counters,
    config,
    dir,
    stateDir,
    cacheDir,
    authHeaders(user = users[0]): Record<string, string> {
      if (!user) return {};
      return { authorization: 'Basic ' + Buffer.from(`${user.username}:${user.password}`).toString('base64') };
    },
    async close() {
      try {
        await stack.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
