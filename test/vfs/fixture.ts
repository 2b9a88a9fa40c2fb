/** Shared set-up for vfs tests: a MemoryRemote, temp state/cache dirs, a Vfs, and small helpers. */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MemoryRemote, type MemoryRemoteOptions } from '../../src/remote/memory.js';
import { Vfs, type VfsOptions } from '../../src/vfs/vfs.js';
import { readAll } from '../helpers/streams.js';

/** (re-exported for the vfs tests) */
export { readAll };

export interface Fixture {
  remote: MemoryRemote;
  vfs: Vfs;
  dir: string;
  stateDir: string;
  cacheDir: string;
  /** Re-open the Vfs on the same state dir (restart). */
  reopen(extra?: Partial<VfsOptions>): Promise<Vfs>;
  put(path: string, content: string | Buffer, overwrite?: boolean): ReturnType<Vfs['put']>;
  read(path: string, range?: { start: number; end?: number }): Promise<Buffer>;
  names(path: string): Promise<string[]>;
  spoolFiles(): Promise<string[]>;
  close(): Promise<void>;
}

export function body(content: string | Buffer): Readable {
  return Readable.from([typeof content === 'string' ? Buffer.from(content) : content]);
}


export async function fixture(remoteOpts: MemoryRemoteOptions = {}, vfsOpts: Partial<VfsOptions> = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-vfs-'));
  const stateDir = join(dir, 'state');
  const cacheDir = join(dir, 'cache');
  const remote = new MemoryRemote(remoteOpts);
  const open = (extra: Partial<VfsOptions> = {}): Promise<Vfs> => Vfs.open({ remote, stateDir, cacheDir, ...vfsOpts, ...extra });
  const f: Fixture = {
    remote,
    vfs: await open(),
    dir,
    stateDir,
    cacheDir,
    async reopen(extra) {
      await f.vfs.close();
      f.vfs = await open(extra);
      return f.vfs;
    },
    put: (path, content, overwrite = true) => f.vfs.put(path, body(content), { overwrite }),
    async read(path, range) {
      return readAll((await f.vfs.openRead(path, range)).stream);
    },
    async names(path) {
      return (await f.vfs.list(path)).map((e) => e.name);
    },
    async spoolFiles() {
      try {
        return await readdir(join(cacheDir, 'spool'));
      } catch {
        return [];
      }
    },
    async close() {
      await f.vfs.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return f;
}

/** Run `fn` with a fresh fixture, always cleaned up. */
export async function withFixture(fn: (f: Fixture) => Promise<void>, remoteOpts: MemoryRemoteOptions = {}, vfsOpts: Partial<VfsOptions> = {}): Promise<void> {
  const f = await fixture(remoteOpts, vfsOpts);
  try {
    await fn(f);
  } finally {
    await f.close();
  }
}
