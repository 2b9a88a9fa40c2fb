/**
 * Replacing a file with byte-identical content (davfs2 uploads a file again on close even when
 * nothing changed; rclone and Finder re-save too) must leave it readable. Found by the davfs2 e2e
 * run: the second PUT goes through TeraBox's rapid upload (precreate return_type 2) with rtype 3,
 * and the emulator removed the old node — dropping the last reference of the very blob the new
 * node then pointed at — so every later GET answered 503.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestStack } from '../helpers/stack.js';

test('PUT the same content twice (1 KiB and a multi-shard file): both reads give the content back', { timeout: 60_000 }, async () => {
  const stack = await startTestStack();
  try {
    for (const [name, size] of [['small.bin', 1024], ['big.bin', 5 * 1024 * 1024 + 3]] as const) {
      const body = randomBytes(size);
      for (const expected of [201, 204]) {
        const put = await fetch(`${stack.url}/${name}`, { method: 'PUT', body });
        await put.arrayBuffer();
        assert.equal(put.status, expected, `PUT ${name}`);
      }
      const get = await fetch(`${stack.url}/${name}`);
      const got = Buffer.from(await get.arrayBuffer());
      assert.equal(get.status, 200, `GET ${name} after an identical replace: ${got.subarray(0, 80).toString()}`);
      assert.ok(got.equals(body), `content of ${name}`);
    }
  } finally {
    await stack.close();
  }
});
