/**
 * Content hashing for the Remote contract (src/remote/types.ts): the md5 of each shard of a body,
 * cut at the size a backend asks for (Remote.shardSizeFor). Backend-neutral: which size, and
 * what a backend derives from the shard md5s, is the backend's business (TeraBox:
 * src/terabox/shards.ts).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** md5 of no bytes: the content md5 of an empty file and its one shard md5. */
export const EMPTY_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';

/**
 * Incremental shard hasher: feed chunks in order, get one md5 per shard of `shardSize` bytes
 * (the last one shorter; one md5, EMPTY_MD5, for no bytes at all).
 */
export class ShardHasher {
  readonly blockMd5s: string[] = [];
  private current: Hash = createHash('md5');
  private inShard = 0;
  constructor(readonly shardSize: number) {
    if (!(shardSize >= 1)) throw new RangeError(`shard hasher: bad shard size ${shardSize}`);
  }

  update(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(this.shardSize - this.inShard, chunk.length - off);
      this.current.update(chunk.subarray(off, off + take));
      this.inShard += take;
      off += take;
      if (this.inShard === this.shardSize) {
        this.blockMd5s.push(this.current.digest('hex'));
        this.current = createHash('md5');
        this.inShard = 0;
      }
    }
  }

  finish(): string[] {
    if (this.inShard > 0 || this.blockMd5s.length === 0) this.blockMd5s.push(this.current.digest('hex'));
    return this.blockMd5s;
  }
}

/** The shard md5s of a file on local disk (a second pass, when the first one cut at another size). */
export async function hashShards(localPath: string, shardSize: number): Promise<string[]> {
  const hasher = new ShardHasher(shardSize);
  for await (const chunk of createReadStream(localPath, { highWaterMark: 1024 * 1024 })) hasher.update(chunk as Buffer);
  return hasher.finish();
}
