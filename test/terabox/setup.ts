/**
 * Shared set-up of the terabox tests: an emulator on port 0 in a temp dir, a logged-in
 * TeraboxClient (authorization-code flow, tokens in a FileTokenStore in the temp dir), a
 * captured debug log, and spool files shaped like the vfs spool.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { startEmulator } from '../../src/emulator/index.js';
import type { Logger } from '../../src/shared/logger.js';
import { captureLogger } from '../helpers/logs.js';
import { envVariant, withEnvVariant } from '../helpers/emulator-variant.js';
import { FileTokenStore } from '../../src/terabox/auth/token-store.js';
import { TeraboxClient, type TeraboxClientOptions } from '../../src/terabox/client.js';
import type { SpooledFile } from '../../src/remote/types.js';

export type Emulator = Awaited<ReturnType<typeof startEmulator>>;

export interface Rig {
  dir: string;
  emu: Emulator;
  client: TeraboxClient;
  logs: string[];
  logger: Logger;
  /** Every access/refresh token the stores of this rig saved. */
  seenTokens: Set<string>;
  newClient(over?: Partial<TeraboxClientOptions>, Ctor?: new (o: TeraboxClientOptions) => TeraboxClient): TeraboxClient;
  count(path: string): number;
  close(): Promise<void>;
}

/** A FileTokenStore that remembers every token it saved (for the log-leak test). */
class RecordingStore extends FileTokenStore {
  constructor(
    stateDir: string,
    private readonly seen: Set<string>,
  ) {
    super(stateDir);
  }
  override save(tokens: Parameters<FileTokenStore['save']>[0]): Promise<void> {
    this.seen.add(tokens.accessToken);
    this.seen.add(tokens.refreshToken);
    return super.save(tokens);
  }
}

export async function startRig(emuOptions: Record<string, unknown> = {}, clientOver: Partial<TeraboxClientOptions> = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-terabox-'));
  const emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emu'), ...emuOptions } as Parameters<typeof startEmulator>[0]));
  const { logger, logs } = captureLogger('json');
  const clients: TeraboxClient[] = [];
  const seenTokens = new Set<string>();
  const newClient = (over: Partial<TeraboxClientOptions> = {}, Ctor: new (o: TeraboxClientOptions) => TeraboxClient = TeraboxClient): TeraboxClient => {
    const c = new Ctor({
      authUrl: emu.authUrl,
      clientId: emu.credentials.clientId,
      clientSecret: emu.credentials.clientSecret,
      privateSecret: emu.credentials.privateSecret,
      tokenStore: new RecordingStore(join(dir, 'state'), seenTokens),
      logger,
      callsPerSecond: 1000,
      concurrency: 8,
      retryBaseMs: 5,
      retryMaxMs: 50,
      maxRetries: 8,
      requestTimeoutMs: 20_000,
      ...clientOver,
      ...over,
    });
    clients.push(c);
    return c;
  };
  const client = newClient();
  await client.exchangeCode(emu.issueAuthorizationCode());
  return {
    dir,
    emu,
    client,
    logs,
    logger,
    seenTokens,
    newClient,
    count: (path: string) => emu.counters.requests[path] ?? 0,
    async close() {
      for (const c of clients) await c.close();
      await emu.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Write `size` random bytes and compute what the vfs spool would: shard md5s and content md5. */
export async function makeSpool(dir: string, name: string, size: number, shardSize = 4 * 1024 * 1024, data?: Buffer): Promise<SpooledFile & { data: Buffer }> {
  const bytes = data ?? randomBytes(size);
  const localPath = join(dir, name);
  await writeFile(localPath, bytes);
  const blockMd5s: string[] = [];
  for (let off = 0; off < bytes.length; off += shardSize) {
    blockMd5s.push(createHash('md5').update(bytes.subarray(off, off + shardSize)).digest('hex'));
  }
  if (blockMd5s.length === 0) blockMd5s.push('d41d8cd98f00b204e9800998ecf8427e');
  return { localPath, size: bytes.length, shardSize, blockMd5s, contentMd5: createHash('md5').update(bytes).digest('hex'), data: bytes };
}

export { readAll } from '../helpers/streams.js';

/** The error `p` rejects with (the test fails when it resolves). */
export async function failureOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected a failure');
}

/**
 * The download-host path that serves the bytes under the emulator variant in force: '/content'
 * (after the dlink's redirects), or the dlink '/file' itself when it redirects 0 times. Every GET
 * of a dlink counts once under '/file' whatever the variant.
 */
export const BYTES_PATH: '/file' | '/content' = envVariant().dlinkHops === 0 ? '/file' : '/content';
