/**
 * "Save without a download": copy a file or folder of a share into the drive with share/transfer
 * (spec 3.5.4), followed to the end. No byte passes through the bridge.
 *
 * share/transfer copies into a destination FOLDER and keeps the item's name. So:
 *  - same name at a free destination (COPY /share/a.mp4 -> /x/a.mp4): transfer into /x directly;
 *  - another name, or replacing what is at the destination (`overwrite`): transfer into a staging
 *    folder `<dest parent>/.terabox-dav-transfer-<id>`, then move the item to its place
 *    (filemanager move, ondup overwrite when replacing) and delete the staging folder. What was at
 *    the destination stays until the copy is complete, and stays when it fails.
 *
 * Completion: the call is sent with async=1 (the service decides). A synchronous answer
 * (`task_id` 0 or absent, the item's errno 0) is complete. An asynchronous one has a task id and
 * the spec has no endpoint to ask a task's state, so the destination is watched: a file is complete
 * when it is there with the share's size; a folder when its files (recursively) number and weigh
 * what the share's folder does. Polling backs off from `pollBaseMs` to `pollMaxMs` and gives up
 * after `followMaxMs`. A lost answer (the call's outcome unknown) is watched the same way for
 * `lostAnswerWaitMs` before its error is reported.
 *
 * No shared state (each transfer's state lives in its own closure).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CopyOutHandle } from '../remote/capabilities.js';
import type { CallOptions, Entry } from '../remote/types.js';
import { baseName, parentPath } from '../remote/paths.js';
import { TbdavError, isTbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { silentLogger } from '../shared/logger.js';
import type { FileInfo } from './api/types.js';
import type { TeraboxClient } from './client.js';
import type { ShareTransferResponse } from './api/types.js';

/** Staging folders of transfers under way start with this (the vfs hides them). */
export const TRANSFER_STAGING_PREFIX = '.terabox-dav-transfer-';

export function isTransferStaging(name: string): boolean {
  return name.startsWith(TRANSFER_STAGING_PREFIX);
}

export interface ShareTransferOptions {
  logger?: Logger;
  /** First wait between two looks at the destination (default 250 ms), doubled up to pollMaxMs (default 2 s). */
  pollBaseMs?: number;
  pollMaxMs?: number;
  /** Give up following an asynchronous transfer after this long (default 6 h). */
  followMaxMs?: number;
  /** How long a transfer whose answer was lost is looked for before its error is reported (default 30 s). */
  lostAnswerWaitMs?: number;
}

/** What a transfer needs of the share (ShareRemote). */
export interface TransferSource {
  readonly name: string;
  readonly client: TeraboxClient;
  readonly driveRoot: string;
  stat(path: string, opts?: CallOptions): Promise<Entry>;
  list(path: string, opts?: CallOptions): Promise<Entry[]>;
  transferCall(fsIds: string[], destAbs: string, async: 0 | 1 | 2, opts?: CallOptions): Promise<ShareTransferResponse>;
}

interface Tally {
  files: number;
  bytes: number;
}

function taskIdOf(res: ShareTransferResponse): string {
  const raw = res.data?.task_id ?? res.task_id ?? 0;
  return String(raw);
}

async function tallyShare(src: TransferSource, path: string, opts: CallOptions): Promise<Tally> {
  const t: Tally = { files: 0, bytes: 0 };
  for (const e of await src.list(path, opts)) {
    if (e.isDir) {
      const sub = await tallyShare(src, e.path, opts);
      t.files += sub.files;
      t.bytes += sub.bytes;
    } else {
      t.files++;
      t.bytes += e.size;
    }
  }
  return t;
}

async function tallyDrive(client: TeraboxClient, abs: string, opts: CallOptions): Promise<Tally> {
  const t: Tally = { files: 0, bytes: 0 };
  const items: FileInfo[] = await client.listAll(abs, opts);
  for (const i of items) {
    if (Number(i.isdir) === 1) {
      const sub = await tallyDrive(client, `${abs}/${i.server_filename}`, opts);
      t.files += sub.files;
      t.bytes += sub.bytes;
    } else {
      t.files++;
      t.bytes += Number(i.size) || 0;
    }
  }
  return t;
}

/** The drive entry at `abs` (size, isdir), or undefined. */
async function driveItem(client: TeraboxClient, abs: string, opts: CallOptions): Promise<{ isDir: boolean; size: number } | undefined> {
  const metas = await client.filemetas([abs], opts);
  const m = metas.find((x) => Number(x.errno ?? 0) === 0 && typeof x.path === 'string');
  if (!m) return undefined;
  return { isDir: Number(m.isdir) === 1, size: Number(m.size) || 0 };
}

/**
 * Start copying `from` (a share path) to `to` (a drive path relative to the drive root). Resolves
 * once the service has the request; the handle's `done` settles when the copy is complete.
 */
export async function startShareTransfer(
  src: TransferSource,
  from: string,
  to: string,
  o: ShareTransferOptions,
  opts: CallOptions & { overwrite?: boolean } = {},
): Promise<CopyOutHandle> {
  const logger = o.logger ?? silentLogger();
  const client = src.client;
  const pollBase = o.pollBaseMs ?? 250;
  const pollMax = Math.max(pollBase, o.pollMaxMs ?? 2000);
  const followMax = o.followMaxMs ?? 6 * 3600_000;
  const lostWait = o.lostAnswerWaitMs ?? 30_000;
  const subject = `copy ${from} (${src.name}) -> ${to}`;

  const item = await src.stat(from, opts);
  if (!item.id) throw new TbdavError('TBDAV_FATAL', `${subject}: the share gave no file id`);
  const root = src.driveRoot.replace(/\/+$/, '');
  const abs = (p: string): string => (p === '/' ? root || '/' : root + p);
  const destParent = parentPath(to);
  const direct = baseName(to) === item.name && !opts.overwrite;
  const staging = direct ? undefined : `${destParent === '/' ? '' : destParent}/${TRANSFER_STAGING_PREFIX}${randomBytes(6).toString('hex')}`;
  const landingFolder = staging ?? destParent;
  const landed = `${landingFolder === '/' ? '' : landingFolder}/${item.name}`;
  if (staging) await client.createDir(abs(staging), opts);

  let res: ShareTransferResponse | undefined;
  let lost: unknown;
  try {
    res = await src.transferCall([item.id], abs(landingFolder), 1, opts);
  } catch (err) {
    // An unknown outcome (the answer was lost) is looked for; anything else is final.
    if (!isTbdavError(err, 'TBDAV_RETRYABLE')) {
      if (staging) await client.filemanager('delete', [abs(staging)]).catch((e: unknown) => logger.debug(`${subject}: staging folder not removed`, { error: String(e) }));
      throw err;
    }
    lost = err;
    logger.info(`${subject}: the answer of share/transfer was lost; looking for the result`, { requestId: opts.requestId });
  }
  const taskId = res ? taskIdOf(res) : 'unknown';
  const synchronous = res !== undefined && (taskId === '0' || taskId === '');
  if (res && synchronous) logger.debug(`${subject}: transferred synchronously`, { requestId: opts.requestId });
  else if (res) logger.info(`${subject}: share/transfer runs asynchronously (task ${taskId}); watching the destination`, { requestId: opts.requestId });

  const arrived = async (expect: () => Promise<Tally>): Promise<boolean> => {
    const got = await driveItem(client, abs(landed), {});
    if (!got) return false;
    if (!item.isDir) return !got.isDir && got.size === item.size;
    if (!got.isDir) return false;
    const [want, have] = await Promise.all([expect(), tallyDrive(client, abs(landed), {})]);
    return have.files === want.files && have.bytes === want.bytes;
  };

  const follow = async (): Promise<void> => {
    if (!synchronous) {
      let expected: Promise<Tally> | undefined;
      const expect = (): Promise<Tally> => (expected ??= tallyShare(src, from, {}));
      const started = Date.now();
      const limit = lost !== undefined ? lostWait : followMax;
      for (let wait = pollBase; ; wait = Math.min(pollMax, wait * 2)) {
        if (await arrived(expect)) break;
        if (Date.now() - started > limit) {
          if (lost !== undefined) throw lost;
          throw new TbdavError('TBDAV_RETRYABLE', `${subject}: the transfer (task ${taskId}) did not complete within ${Math.round(followMax / 1000)} s`);
        }
        await sleep(wait);
      }
      logger.info(`${subject}: transfer complete`);
    }
    if (staging) {
      try {
        await client.filemanager('move', [{ path: abs(landed), dest: abs(destParent), newname: baseName(to) }], { ondup: opts.overwrite ? 'overwrite' : 'fail' });
      } finally {
        try {
          await client.filemanager('delete', [abs(staging)]);
        } catch (err) {
          logger.warn(`${subject}: the staging folder ${staging} could not be removed`, { error: String(err) });
        }
      }
    }
  };
  const done = follow();
  done.catch((err: unknown) => logger.debug(`${subject}: failed`, { error: String(err) }));
  return { done };
}
