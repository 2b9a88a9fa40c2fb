/**
 * Shares as a user manages them: `addShare` (verify the link and code, learn the share, store it)
 * for `terabox-dav share add`, and ShareRegistry, which gives `serve` one ShareRemote per stored
 * share and notices when `share add/remove` changed the store meanwhile.
 *
 * Errors of addShare (clear CLI messages; codes for the caller): wrong extraction code (-12) ->
 * TBDAV_FORBIDDEN; invalid or expired link (105) -> TBDAV_NOT_FOUND; a share key refused right
 * after verify (-9) -> verify again once, then TBDAV_FORBIDDEN.
 *
 * Shared state (ShareRegistry): `remotes` (name -> ShareRemote) and `version` are replaced by
 * refresh(), which runs one at a time (`refreshing`); `checkedAt` limits how often the store's
 * file is looked at.
 */
import type { Logger } from '../shared/logger.js';
import { silentLogger } from '../shared/logger.js';
import { TbdavError } from '../shared/errors.js';
import { ERRNO, type ShortUrlInfoResponse } from './api/types.js';
import type { TeraboxClient } from './client.js';
import { isTeraboxApiError } from './errors.js';
import { isValidSharePwd, parseShareLink } from './share-link.js';
import { ShareRemote, type ShareRemoteOptions } from './share-remote.js';
import { type ShareRecord, type ShareStore, checkShareName } from './share-store.js';

export interface AddShareInput {
  link: string;
  /** Extraction code (else the link's `?pwd=`, else none). */
  pwd?: string;
  /** Folder name (default: the shared item's name when there is one, else `share-<id>`). */
  name?: string;
}

function errnoOf(err: unknown): number | undefined {
  return isTeraboxApiError(err) ? err.errno : undefined;
}

function verifyError(link: string, pwd: string, err: unknown): unknown {
  const errno = errnoOf(err);
  if (errno === ERRNO.SHARE_PWD_WRONG) {
    return new TbdavError(
      'TBDAV_FORBIDDEN',
      pwd === '' ? `share ${link}: this share needs an extraction code: give it with --pwd CODE` : `share ${link}: wrong extraction code (TeraBox refused it)`,
      { cause: err },
    );
  }
  if (errno === ERRNO.SHARE_LINK_ERROR) return new TbdavError('TBDAV_NOT_FOUND', `share ${link}: the link is invalid or has expired`, { cause: err });
  return err;
}

/** A free folder name for a new share. */
function defaultName(info: ShortUrlInfoResponse, surl: string, taken: Set<string>): string {
  const items = info.list ?? [];
  let base = items.length === 1 ? String(items[0]!.server_filename) : `share-${surl.slice(0, 10)}`;
  try {
    checkShareName(base);
  } catch {
    base = `share-${surl.slice(0, 10)}`;
  }
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base} (${i})`;
  return name;
}

/**
 * Verify a link (and its code), learn the share (shorturlinfo) and add it to the store. Resolves
 * with the stored record.
 */
export async function addShare(client: TeraboxClient, store: ShareStore, input: AddShareInput, logger: Logger = silentLogger()): Promise<ShareRecord> {
  const parsed = parseShareLink(input.link);
  const pwd = input.pwd ?? parsed.pwd ?? '';
  if (!isValidSharePwd(pwd)) throw new TbdavError('TBDAV_BAD_REQUEST', `share ${input.link}: an extraction code is 4 digits or lowercase letters`);
  if (input.name !== undefined) checkShareName(input.name);
  const existing = await store.load();
  if (input.name !== undefined && existing.some((s) => s.name === input.name)) {
    throw new TbdavError('TBDAV_EXISTS', `share ${input.name}: a share of that name exists (choose another with --name)`);
  }
  const verify = async (): Promise<string> => {
    try {
      return (await client.shareVerify(parsed.surl, pwd)).sekey;
    } catch (err) {
      throw verifyError(input.link, pwd, err);
    }
  };
  let sekey = await verify();
  let info: ShortUrlInfoResponse;
  try {
    info = await client.shortUrlInfo(parsed.shorturl, sekey);
  } catch (err) {
    if (errnoOf(err) === ERRNO.SHARE_LINK_ERROR) throw verifyError(input.link, pwd, err);
    if (errnoOf(err) !== ERRNO.FILE_NOT_FOUND) throw err;
    logger.info(`share ${input.link}: the service refused the new share key (-9); verifying once more`);
    sekey = await verify();
    try {
      info = await client.shortUrlInfo(parsed.shorturl, sekey);
    } catch (err2) {
      if (errnoOf(err2) === ERRNO.FILE_NOT_FOUND) {
        throw new TbdavError('TBDAV_FORBIDDEN', `share ${input.link}: TeraBox does not accept the share key it just gave (errno -9, twice); try again later`, { cause: err2 });
      }
      throw verifyError(input.link, pwd, err2);
    }
  }
  const record: ShareRecord = {
    name: input.name ?? defaultName(info, parsed.surl, new Set(existing.map((s) => s.name))),
    link: input.link.trim(),
    surl: parsed.surl,
    shorturl: parsed.shorturl,
    pwd,
    sekey,
    shareid: String(info.shareid),
    uk: String(info.uk_str ?? info.uk),
    addedAt: Date.now(),
  };
  await store.add(record);
  return record;
}

export interface ShareRegistryOptions extends Omit<ShareRemoteOptions, 'onSekey'> {
  /** Look at the store's file at most this often (default 2 s). */
  checkEveryMs?: number;
  now?: () => number;
}

/** The stored shares as ShareRemotes, kept in step with the store. */
export class ShareRegistry {
  private remotes = new Map<string, ShareRemote>();
  private version = '';
  private checkedAt = -Infinity;
  private refreshing: Promise<void> | undefined;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(
    private readonly client: TeraboxClient,
    readonly store: ShareStore,
    private readonly opts: ShareRegistryOptions,
  ) {
    this.logger = opts.logger ?? silentLogger();
    this.now = opts.now ?? Date.now;
  }

  /** Look at the store again on the next current() (after a change made in this process). */
  invalidate(): void {
    this.checkedAt = -Infinity;
  }

  /** The shares now (re-reads the store when its file changed). */
  async current(): Promise<ShareRemote[]> {
    if (this.now() - this.checkedAt >= (this.opts.checkEveryMs ?? 2000)) {
      this.refreshing ??= this.refresh().finally(() => {
        this.refreshing = undefined;
      });
      await this.refreshing;
    }
    return [...this.remotes.values()];
  }

  private async refresh(): Promise<void> {
    this.checkedAt = this.now();
    const version = await this.store.version();
    if (version === this.version) return;
    let records: ShareRecord[];
    try {
      records = await this.store.load();
    } catch (err) {
      // keep serving the shares we know; the message says what is wrong with the file
      this.logger.warn(`shares: ${(err as Error).message}`);
      return;
    }
    const next = new Map<string, ShareRemote>();
    for (const r of records) {
      const old = this.remotes.get(r.name);
      const same = old && old.record.surl === r.surl && old.record.pwd === r.pwd && old.record.shareid === r.shareid;
      next.set(r.name, same ? old : this.build(r));
    }
    for (const name of this.remotes.keys()) if (!next.has(name)) this.logger.info(`shares: ${name} removed`);
    for (const name of next.keys()) if (!this.remotes.has(name)) this.logger.info(`shares: ${name} added`);
    this.remotes = next;
    this.version = version;
  }

  private build(r: ShareRecord): ShareRemote {
    return new ShareRemote(this.client, r, {
      ...this.opts,
      onSekey: async (sekey) => {
        await this.store.setSekey(r.name, r.surl, sekey);
        // our own write: do not rebuild the remotes for it
        this.version = await this.store.version();
      },
    });
  }
}
