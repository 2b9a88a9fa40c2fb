/**
 * Parallel ranged reads (issue 10, `download.connections`) of the DownloadReader over the emulator
 * on port 0, counted from the emulator's counters (bytes served, GETs of the content URL) and the
 * reader's buffer gauge:
 *  - content exact with 1 and 4 connections, whole and ranged, under resets and answers that do not
 *    fit (badLength, badRange);
 *  - every byte fetched once (bytes served = bytes read), one GET per chunk, `connections` GETs in
 *    flight at once;
 *  - a Range GET fetches its range only; a read abandoned early costs one chunk; a read destroyed
 *    mid-way stops every chunk upstream;
 *  - memory bounded: a slow reader never makes it hold more than connections x chunkBytes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { DownloadReader, type DlinkClient, type DownloadReaderOptions } from '../../src/terabox/download.js';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import type { Entry } from '../../src/remote/types.js';
import { BYTES_PATH, startRig, makeSpool, readAll, type Rig } from './setup.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
let rig: Rig;
let data: Buffer;
let entry: Entry;

before(async () => {
  rig = await startRig();
  const remote = new TeraboxRemote(rig.client, { root: rig.emu.appRoot });
  const f = await makeSpool(rig.dir, 'big.bin', 8 * MiB + 12_345);
  await remote.write('/big.bin', f, { overwrite: false });
  data = f.data;
  entry = await remote.stat('/big.bin');
});
after(async () => {
  await rig?.close();
});

const reader = (over: DownloadReaderOptions = {}, source: DlinkClient = rig.client): DownloadReader =>
  new DownloadReader(source, { chunkBytes: 256 * KiB, rampBytes: 0, resumeBaseMs: 1, resumeMaxMs: 20, resumeAttempts: 8, ...over });

/** rig.client as a reader's dlink source, counting the dlink GETs in flight (from the call until the body closes). */
function countingSource(): { source: DlinkClient; peak: () => number; open: () => number } {
  let open = 0;
  let peak = 0;
  const source: DlinkClient = {
    download: (ids, opts) => rig.client.download(ids, opts),
    openDlink: async (dlink, range, signal, requestId) => {
      open++;
      peak = Math.max(peak, open);
      try {
        const res = await rig.client.openDlink(dlink, range, signal, requestId);
        res.body.once('close', () => open--);
        return res;
      } catch (err) {
        open--;
        throw err;
      }
    },
  };
  return { source, peak: () => peak, open: () => open };
}
const served = (): number => rig.emu.counters.bytesServed;
const contentGets = (): number => rig.count('/file'); // one per GET of the dlink, whatever its redirects

for (const connections of [1, 4]) {
  test(`${connections} connection(s) under resets and bad answers: whole and ranged reads exact`, { timeout: 120_000 }, async () => {
    const r = reader({ connections });
    rig.emu.setOptions({ faults: { rate: 0.3, seed: 23 + connections, kinds: ['reset', 'badLength', 'badRange'], endpoints: [BYTES_PATH] } });
    const faults0 = rig.emu.counters.faultsInjected;
    try {
      for (let round = 0; round < 3; round++) {
        const got = await readAll(await r.open('/big.bin', entry, undefined, {}));
        assert.equal(md5(got), md5(data), `round ${round}`);
      }
      for (const [a, b] of [[1, 3 * MiB], [5 * MiB - 7, data.length - 1], [100, 100 + 256 * KiB]] as const) {
        const got = await readAll(await r.open('/big.bin', entry, { start: a, end: b }, {}));
        assert.equal(md5(got), md5(data.subarray(a, b + 1)), `range ${a}-${b}`);
      }
    } finally {
      rig.emu.setOptions({ faults: { rate: 0 } });
    }
    assert.ok(rig.emu.counters.faultsInjected - faults0 >= 2, `faults were injected (${rig.emu.counters.faultsInjected - faults0})`);
    assert.equal(r.bufferStats().buffered, 0, 'nothing left held');
  });
}

test('4 connections: every byte fetched once, one GET per chunk, four GETs in flight at once', { timeout: 60_000 }, async () => {
  const counting = countingSource();
  const r = reader({ connections: 4 }, counting.source);
  const bytes0 = served();
  const gets0 = contentGets();
  rig.emu.setOptions({ throughputBytesPerSec: 8 * MiB }); // per GET: a chunk takes a while, the others start meanwhile
  try {
    const got = await readAll(await r.open('/big.bin', entry, undefined, {}));
    assert.equal(md5(got), md5(data));
  } finally {
    rig.emu.setOptions({ throughputBytesPerSec: 0 });
  }
  assert.equal(served() - bytes0, data.length, 'bytes served = bytes of the file');
  assert.equal(contentGets() - gets0, Math.ceil(data.length / (256 * KiB)), 'one ranged GET per chunk');
  assert.equal(counting.peak(), 4, 'the chunks ahead come over four connections at once, never more');
});

test('a Range GET fetches its range only; a read abandoned early costs one chunk; a destroyed read stops upstream', { timeout: 60_000 }, async () => {
  const counting = countingSource();
  const r = reader({ connections: 4, rampBytes: 1 * MiB, chunkBytes: 512 * KiB }, counting.source);
  let bytes0 = served();
  const got = await readAll(await r.open('/big.bin', entry, { start: 3 * MiB, end: 5 * MiB - 1 }, {}));
  assert.ok(got.equals(data.subarray(3 * MiB, 5 * MiB)));
  assert.equal(served() - bytes0, 2 * MiB, 'exactly the range');

  // a player probing: reads a little of an open-ended range, then goes away
  rig.emu.setOptions({ throughputBytesPerSec: 2 * MiB });
  try {
    bytes0 = served();
    const s = await r.open('/big.bin', entry, { start: 1 * MiB }, {});
    await firstBytes(s, 100 * KiB);
    s.destroy();
    await sleep(400);
    assert.ok(served() - bytes0 <= 512 * KiB, `abandoned early: ${served() - bytes0} bytes served, at most the first chunk`);

    // a read destroyed after going parallel: every chunk stops
    const t = await r.open('/big.bin', entry, undefined, {});
    await firstBytes(t, 1.5 * MiB);
    t.destroy();
    await sleep(20);
    assert.equal(counting.open(), 0, 'every GET in flight was closed at once (a chunk is 250 ms of transfer here)');
    await sleep(300);
    const after1 = served();
    await sleep(600);
    assert.equal(served(), after1, 'nothing more is served after destroy');
    assert.ok(after1 - bytes0 < data.length, 'the file was not fetched whole');
    assert.equal(r.bufferStats().buffered, 0);
  } finally {
    rig.emu.setOptions({ throughputBytesPerSec: 0 });
  }
});

test('memory bounded: a slow reader makes a 4-connection read hold at most 4 chunks', { timeout: 60_000 }, async () => {
  const r = reader({ connections: 4 });
  const s = await r.open('/big.bin', entry, undefined, {});
  const parts: Buffer[] = [];
  for await (const c of s) {
    parts.push(c as Buffer);
    await sleep(2); // slower than the emulator serves
  }
  assert.equal(md5(Buffer.concat(parts)), md5(data));
  const { peak, buffered } = r.bufferStats();
  assert.ok(peak <= 4 * 256 * KiB, `peak ${peak} bytes held`);
  assert.ok(peak >= 256 * KiB, `the chunks ahead were held (${peak})`);
  assert.equal(buffered, 0);
});

/** Read at least n bytes of s (then leave it paused). */
async function firstBytes(s: Readable, n: number): Promise<void> {
  let got = 0;
  for await (const c of s) {
    got += (c as Buffer).length;
    if (got >= n) return;
  }
}
