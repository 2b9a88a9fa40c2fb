/**
 * The one way this program replaces a small file so that a crash (kill -9, power loss) leaves
 * either the old or the new content, never half a file: write a temp file in the same folder,
 * fsync it, rename it over the target, fsync the folder (so that the rename itself survives).
 *
 * Temp files are named `<file>.<pid>.<random>.tmp`: a writer that died half-way leaves one behind,
 * which never collides with a later write; callers that care remove `*.tmp` when they start.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { silentLogger, type Logger } from './logger.js';

export interface AtomicWriteOptions {
  /** Permission bits of the file, set exactly (not reduced by the umask); default 0o666 less the umask. */
  mode?: number;
  /** Where a folder that refuses fsync is reported (debug). */
  logger?: Logger;
}

/** fsync a folder so that a rename in it survives a crash (best effort where the filesystem refuses). */
export async function syncDir(dir: string, logger: Logger = silentLogger()): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    // Some filesystems refuse fsync on folders (EISDIR/EINVAL/EPERM): the rename is then as durable as they allow.
    logger.debug(`${dir}: folder fsync not supported`, { error: String((err as NodeJS.ErrnoException).code ?? err) });
  } finally {
    await fh?.close();
  }
}

/** Replace `file` with `data` atomically and durably. The folder must exist. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', opts.mode ?? 0o666); // 'wx': never write through someone else's temp
  try {
    try {
      if (opts.mode !== undefined) await fh.chmod(opts.mode);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined); // the original error is the one that matters
    throw err;
  }
  await syncDir(dirname(file), opts.logger);
}
