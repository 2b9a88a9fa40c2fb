/** TeraBox's shard rule (src/terabox/shards.ts): shard sizing, the service md5, resume tokens. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { MAX_SHARDS, SHARD_MIN_BYTES as SHARD_BYTES } from '../../src/terabox/api/types.js';
import { decodeResumeToken, encodeResumeToken, serviceMd5, shardSizeFor } from '../../src/terabox/shards.js';

const MiB = 1024 * 1024;
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

test('shardSizeFor: 4 MiB up to 1024 shards, then the smallest multiple of 4 MiB that fits', () => {
  assert.equal(shardSizeFor(0), SHARD_BYTES);
  assert.equal(shardSizeFor(1), SHARD_BYTES);
  assert.equal(shardSizeFor(MAX_SHARDS * SHARD_BYTES), SHARD_BYTES);
  assert.equal(shardSizeFor(MAX_SHARDS * SHARD_BYTES + 1), 2 * SHARD_BYTES);
  assert.equal(shardSizeFor(2 * MAX_SHARDS * SHARD_BYTES), 2 * SHARD_BYTES);
  assert.equal(shardSizeFor(2 * MAX_SHARDS * SHARD_BYTES + 1), 3 * SHARD_BYTES);
  for (const size of [5e9, 20e9, 123_456_789_012]) {
    const s = shardSizeFor(size);
    assert.equal(s % SHARD_BYTES, 0);
    assert.ok(Math.ceil(size / s) <= MAX_SHARDS);
    assert.ok(Math.ceil(size / (s - SHARD_BYTES)) > MAX_SHARDS, `${s} is not the smallest for ${size}`);
  }
  // a smaller shard budget exercises the same rule on small numbers
  assert.equal(shardSizeFor(9 * MiB, 2), 8 * MiB);
  assert.equal(shardSizeFor(8 * MiB, 2), 4 * MiB);
});

test('serviceMd5: the content md5 for one shard, md5 of the JSON block list for several', () => {
  assert.equal(serviceMd5([md5('a')]), md5('a'));
  assert.equal(serviceMd5([]), md5(''));
  assert.equal(serviceMd5([md5('a'), md5('b')]), md5(JSON.stringify([md5('a'), md5('b')])));
});

test('resume tokens: what is encoded comes back; shards out of range, garbage and foreign tokens do not', () => {
  const t = encodeResumeToken({ uploadId: 'N1-abc', doneShards: [2, 0] });
  assert.equal(typeof t, 'string');
  assert.deepEqual(decodeResumeToken(t, 3), { uploadId: 'N1-abc', doneShards: [0, 2] });
  assert.deepEqual(decodeResumeToken(t, 2), { uploadId: 'N1-abc', doneShards: [0] });
  assert.equal(decodeResumeToken('not json', 3), undefined);
  assert.equal(decodeResumeToken('"a string"', 3), undefined);
  assert.equal(decodeResumeToken(encodeResumeToken({ uploadId: '', doneShards: [0] }), 3), undefined);
  assert.equal(decodeResumeToken(JSON.stringify({ uploadId: 'x' }), 3), undefined);
});
