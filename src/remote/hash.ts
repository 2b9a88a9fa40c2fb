/**
 * The checksums of the Remote contract (src/remote/types.ts), shared by the in-memory reference
 * Remote and the TeraBox one: one definition, so that `Entry.hash` means the same everywhere.
 */
import { createHash } from 'node:crypto';

/** md5 of no bytes: the content md5 of an empty file and its one shard md5. */
export const EMPTY_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';

/**
 * `Entry.hash` as TeraBox reports it for a file with these shard md5s: the content md5 for one
 * shard (EMPTY_MD5 for none), md5 of JSON.stringify(blockMd5s) for several.
 */
export function serviceMd5(blockMd5s: readonly string[]): string {
  if (blockMd5s.length <= 1) return blockMd5s[0] ?? EMPTY_MD5;
  return createHash('md5').update(JSON.stringify(blockMd5s)).digest('hex');
}
