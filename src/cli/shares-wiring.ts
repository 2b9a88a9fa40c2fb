/**
 * Composition of shares and streaming (issue 12), called by stack.ts:
 *
 *   Vfs (the drive) ─┐
 *   ShareRegistry ──> one ReadOnlyFs per share ─> MountFs (shares.folder) ─> [StreamingFs] ─> bridge
 *                                                                             └─ hls route (dav/hls.ts)
 *
 * The registry re-reads the share store when `terabox-dav share add/remove` changed it, so shares
 * come and go while serving. COPY out of a share goes to the share's copyOut (share/transfer);
 * the drive's cache forgets the destination afterwards.
 */
import { hasStreaming } from '../remote/capabilities.js';
import type { Logger } from '../shared/logger.js';
import type { TeraboxClient } from '../terabox/client.js';
import type { ShareRemote } from '../terabox/share-remote.js';
import { ShareStore } from '../terabox/share-store.js';
import { isTransferStaging } from '../terabox/share-transfer.js';
import { ShareRegistry } from '../terabox/shares.js';
import { DriveStreaming } from '../terabox/streaming.js';
import { MountFs, type Mount } from '../vfs/mounts.js';
import { ReadOnlyFs } from '../vfs/read-only-fs.js';
import { StreamingFs } from '../vfs/streaming.js';
import { TransferLog } from '../vfs/transfers.js';
import type { Vfs } from '../vfs/vfs.js';
import type { FileSystem } from '../vfs/types.js';
import type { Config } from './config.js';

export interface SharesWiring {
  /** The tree the bridge serves. */
  fs: FileSystem;
  mounts: MountFs;
  /** Present with streaming.enabled: the HLS route's service. */
  streaming?: StreamingFs;
  registry: ShareRegistry;
  store: ShareStore;
  /** COPYs out of shares answered 202 and still followed (for the status page). */
  transfers: TransferLog;
}

export function wireShares(
  config: Config,
  deps: {
    client: TeraboxClient;
    vfs: Vfs;
    driveRoot: string;
    storeDir: string;
    logger: Logger;
    transfer?: ConstructorParameters<typeof ShareRegistry>[2]['transfer'];
    /** Signs the playlists' URLs; kept in the state dir so that they survive a restart (a fresh one per process without). */
    streamingSecret?: Buffer;
  },
): SharesWiring {
  const store = new ShareStore(deps.storeDir);
  const registry = new ShareRegistry(deps.client, store, { driveRoot: deps.driveRoot, logger: deps.logger, ...(deps.transfer ? { transfer: deps.transfer } : {}) });
  const mountOf = new WeakMap<ShareRemote, Mount>();
  const transfers = new TransferLog();
  const mounts = new MountFs({
    main: deps.vfs,
    folder: config.shares.folder,
    mounts: async () =>
      (await registry.current()).map((remote) => {
        let m = mountOf.get(remote);
        if (!m) {
          const name = remote.record.name;
          m = {
            name,
            fs: new ReadOnlyFs({ remote, reason: `${config.shares.folder}/${name} is a read-only TeraBox share`, cacheTtlMs: config.cache.ttlSeconds * 1000 }),
            copyOut: remote,
            streaming: remote,
          };
          mountOf.set(remote, m);
        }
        return m;
      }),
    onMainChanged: (p) => deps.vfs.cache.unsure(p),
    hide: isTransferStaging,
    transfers,
    copyWaitMs: config.shares.copyWaitSeconds * 1000,
    logger: deps.logger,
  });
  if (!config.streaming.enabled) return { fs: mounts, mounts, registry, store, transfers };
  const drive = new DriveStreaming(deps.client, deps.driveRoot);
  const streaming = new StreamingFs({
    inner: mounts,
    type: config.streaming.type,
    logger: deps.logger,
    ...(deps.streamingSecret ? { secret: deps.streamingSecret } : {}),
    sourceFor: async (path) => {
      const w = await mounts.resolve(path);
      if (!w) return undefined;
      if (w.kind === 'main') return { streaming: drive, path: w.path };
      const s = w.mount.streaming;
      return s && hasStreaming(s) ? { streaming: s, path: w.path } : undefined;
    },
  });
  return { fs: streaming, mounts, streaming, registry, store, transfers };
}
