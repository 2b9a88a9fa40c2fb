/**
 * `download.connections` over the full stack (bridge -> vfs -> TeraboxRemote -> emulator, port 0):
 * with 1, and with 4 over a fast (unthrottled) link, a GET of a 9 MiB file is one ranged GET
 * upstream and every byte is served once; with 4 over a link throttled per connection (2 MiB/s,
 * below download.parallelBelowBytesPerSecond's 8 MiB/s) it goes parallel after its first half second
 * (several GETs upstream, bytes exact, about every byte served once); under resets and answers that
 * do not fit (10 %), whole and ranged GETs stay exact with either setting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startTestStack } from '../helpers/stack.js';
import { BYTES_PATH } from '../terabox/setup.js';

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const MiB = 1024 * 1024;

for (const connections of [1, 4]) {
  test(`download.connections ${connections}: upstream GETs per download, exact bytes under faults`, { timeout: 120_000 }, async () => {
    const s = await startTestStack({ configPatch: { download: { connections } } });
    try {
      const data = randomBytes(9 * MiB + 5);
      const put = await fetch(s.url + '/nine.bin', { method: 'PUT', body: data });
      assert.ok(put.status === 201 || put.status === 204, `PUT ${put.status}`);
      await put.arrayBuffer();
      const gets0 = s.counters.requests['/file'] ?? 0; // one per GET of the dlink, whatever its redirects
      const bytes0 = s.counters.bytesServed;
      const res = await fetch(s.url + '/nine.bin');
      assert.equal(res.status, 200);
      assert.equal(md5(Buffer.from(await res.arrayBuffer())), md5(data));
      assert.equal((s.counters.requests['/file'] ?? 0) - gets0, 1, 'one GET upstream: the link is fast');
      assert.equal(s.counters.bytesServed - bytes0, data.length, 'every byte served once');

      if (connections > 1) {
        s.emulator.setOptions({ throughputBytesPerSec: 2 * MiB });
        const gets1 = s.counters.requests[BYTES_PATH] ?? 0;
        const bytes1 = s.counters.bytesServed;
        try {
          const slow = await fetch(s.url + '/nine.bin');
          assert.equal(md5(Buffer.from(await slow.arrayBuffer())), md5(data), 'throttled: exact');
        } finally {
          s.emulator.setOptions({ throughputBytesPerSec: 0 });
        }
        const gets = (s.counters.requests[BYTES_PATH] ?? 0) - gets1;
        assert.ok(gets >= 3, `throttled per connection: the rest came as 2 MiB ranges (${gets} GETs upstream)`);
        const extra = s.counters.bytesServed - bytes1 - data.length;
        assert.ok(extra >= 0 && extra <= 2 * MiB, `about every byte served once (${extra} more)`);
      }

      s.emulator.setOptions({ faults: { rate: 0.1, seed: 71 + connections, kinds: ['reset', 'badLength', 'badRange'], endpoints: [BYTES_PATH] } });
      for (let round = 0; round < 2; round++) {
        const again = await fetch(s.url + '/nine.bin');
        assert.equal(md5(Buffer.from(await again.arrayBuffer())), md5(data), `round ${round}`);
        const r = await fetch(s.url + '/nine.bin', { headers: { range: `bytes=${MiB + 3}-${8 * MiB}` } });
        assert.equal(r.status, 206);
        assert.equal(md5(Buffer.from(await r.arrayBuffer())), md5(data.subarray(MiB + 3, 8 * MiB + 1)), `round ${round} range`);
      }
    } finally {
      s.emulator.setOptions({ faults: { rate: 0 } });
      await s.close();
    }
  });
}
