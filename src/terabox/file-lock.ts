/**
 * A read-modify-write of a state file, one process at a time: a file lock (proper-lockfile: a
 * `<file>.lock` directory made atomically, refreshed while held, taken over when stale after a
 * crash) around `fn`. Used by the token store (a refresh token is never sent twice) and the shares
 * store (`share add` beside a running serve loses no change).
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import { TbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';

export interface FileLockOptions {
  /** A held lock not refreshed for this long is taken over by another process, ms. */
  staleMs: number;
  /** How long to wait for another holder (proper-lockfile's retry options). */
  retries: { retries: number; factor: number; minTimeout: number; maxTimeout: number; randomize: boolean };
  /** For the messages: "token store", "shares file". */
  what: string;
  logger?: Logger;
}

export async function withFileLock<T>(file: string, opts: FileLockOptions, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(file, {
      realpath: false, // the file may not exist yet
      lockfilePath: `${file}.lock`,
      stale: opts.staleMs,
      retries: opts.retries,
      onCompromised: (err) => opts.logger?.warn(`${opts.what} ${file}: lock lost while held (${err.message})`),
    });
  } catch (err) {
    throw new TbdavError('TBDAV_RETRYABLE', `${opts.what} ${file}: locked by another process for too long`, { cause: err });
  }
  try {
    return await fn();
  } finally {
    await release().catch((err: unknown) => opts.logger?.warn(`${opts.what} ${file}: releasing the lock failed`, { error: String(err) }));
  }
}
