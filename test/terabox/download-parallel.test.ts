/**
 * Parallel ranged reads (issue 10, `download.connections`) of the DownloadReader over the emulator
 * on port 0, counted from the emulator's counters (bytes served, GETs of the content URL) and the
 * reader's buffer gauge:
 *  - a long read stays on ONE GET while that connection is fast (unthrottled emulator), also when
 *    its reader is slow; under a per-connection throttle it goes parallel (several GETs in flight),
 *    bytes exact, and the first GET is cut where the ranges take over (bytes served ~ bytes read);
 *  - content exact with 1 connection, 4 parallel from the start and 4 probing under a throttle,
 *    whole and ranged, under resets and answers that do not fit (badLength, badRange);
 *  - parallel from the start: every byte fetched once, one GET per chunk, `connections` GETs in
 *    flight at once;
 *  - a Range GET fetches its range only; a read abandoned early costs one chunk; a read destroyed
 *    after going parallel closes every GET in flight at once;
 *  - memory bounded: a slow reader never makes it hold more than connections x chunkBytes;
 *  - the probe going parallel while the first GET waits to resume after a reset: the resume asks
 *    only up to the cut (ResumableRead.shorten in state 'resuming'), every byte asked once.
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
import { envVariant } from '../helpers/emulator-variant.js';
import type { DlinkResponse } from '../../src/terabox/client.js';

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

/** A reader of 256 KiB chunks; parallel from the start unless `over` sets parallelBelowBytesPerSecond. */
const reader = (over: DownloadReaderOptions = {}, source: DlinkClient = rig.client): DownloadReader =>
  new DownloadReader(source, { chunkBytes: 256 * KiB, parallelBelowBytesPerSecond: Infinity, resumeBaseMs: 1, resumeMaxMs: 20, resumeAttempts: 8, ...over });
/** Probing as in production (one connection first), measured over 200 ms. */
const probing = { parallelBelowBytesPerSecond: 8 * MiB, probeMs: 200 };

/**
 * rig.client as a reader's dlink source, counting the download GETs in flight (from the call until
 * the body closes), through the dlink and straight at the URL it led to alike; `resolvedUrl`
 * rewrites the latter (to make it fail).
 */
function countingSource(resolvedUrl: (url: string) => string = (u) => u): { source: DlinkClient; peak: () => number; open: () => number; resolved: () => number } {
  let open = 0;
  let peak = 0;
  let resolved = 0;
  const counted = async (get: () => Promise<DlinkResponse>): Promise<DlinkResponse> => {
    open++;
    peak = Math.max(peak, open);
    try {
      const res = await get();
      res.body.once('close', () => open--);
      return res;
    } catch (err) {
      open--;
      throw err;
    }
  };
  const source: DlinkClient = {
    download: (ids, opts) => rig.client.download(ids, opts),
    openDlink: (dlink, range, signal, requestId) => counted(() => rig.client.openDlink(dlink, range, signal, requestId)),
    openResolved: (url, range, signal, requestId) => {
      resolved++;
      return counted(() => rig.client.openResolved(resolvedUrl(url), range, signal, requestId));
    },
  };
  return { source, peak: () => peak, open: () => open, resolved: () => resolved };
}
const hops = envVariant().dlinkHops;
const served = (): number => rig.emu.counters.bytesServed;
const dlinkGets = (): number => rig.count('/file'); // one per GET of the dlink, whatever its redirects
const contentGets = (): number => rig.count(BYTES_PATH); // one per GET of the bytes, through the dlink or straight

const modes: [string, DownloadReaderOptions, number][] = [
  ['1 connection', { connections: 1 }, 0],
  ['4 connections parallel from the start', { connections: 4 }, 0],
  ['4 connections probing, throttled 4 MiB/s per GET', { connections: 4, ...probing }, 4 * MiB],
];
for (const [name, over, throttle] of modes) {
  test(`${name} under resets and bad answers: whole and ranged reads exact`, { timeout: 120_000 }, async () => {
    const r = reader(over);
    rig.emu.setOptions({ throughputBytesPerSec: throttle, faults: { rate: 0.3, seed: 23 + (over.connections ?? 0) + throttle, kinds: ['reset', 'badLength', 'badRange'], endpoints: [BYTES_PATH] } });
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
      rig.emu.setOptions({ throughputBytesPerSec: 0, faults: { rate: 0 } });
    }
    assert.ok(rig.emu.counters.faultsInjected - faults0 >= 2, `faults were injected (${rig.emu.counters.faultsInjected - faults0})`);
    assert.equal(r.bufferStats().buffered, 0, 'nothing left held');
  });
}

test('4 connections parallel from the start: every byte fetched once, one GET per chunk, four GETs in flight at once', { timeout: 60_000 }, async () => {
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
  const r = reader({ connections: 4, chunkBytes: 512 * KiB, parallelBelowBytesPerSecond: 4 * MiB, probeMs: 100 }, counting.source);
  let bytes0 = served();
  const gets0 = contentGets();
  const got = await readAll(await r.open('/big.bin', entry, { start: 3 * MiB, end: 5 * MiB - 1 }, {}));
  assert.ok(got.equals(data.subarray(3 * MiB, 5 * MiB)));
  assert.equal(served() - bytes0, 2 * MiB, 'exactly the range');
  assert.equal(contentGets() - gets0, 1, 'one GET: the link is fast');

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
    assert.ok(counting.peak() >= 3, `the throttled read went parallel (${counting.peak()} GETs in flight at most)`);
    assert.ok(counting.open() >= 1, `GETs in flight when destroyed (${counting.open()})`);
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

test('probing: on a fast link a long read is ONE GET, also for a slow reader; on a throttled one it goes parallel, exact and fetched about once', { timeout: 60_000 }, async () => {
  const counting = countingSource();
  // (a) unthrottled: one GET streams the whole file
  const r = reader({ connections: 4, ...probing, parallelBelowBytesPerSecond: 2 * MiB }, counting.source);
  let gets0 = contentGets();
  let bytes0 = served();
  const got = await readAll(await r.open('/big.bin', entry, undefined, {}));
  assert.equal(md5(got), md5(data));
  assert.equal(contentGets() - gets0, 1, 'one GET for the whole file');
  assert.equal(served() - bytes0, data.length, 'every byte served once');
  assert.equal(counting.peak(), 1);

  // a reader (2 MiB/s) slower than the threshold (16 MiB/s, i.e. 3.2 MiB in the 200 ms probed,
  // more than the buffers on the way hold) over a fast link: the time the GET waits for it does
  // not count, the read stays on one GET
  const slow = reader({ connections: 4, probeMs: 200, parallelBelowBytesPerSecond: 16 * MiB }, counting.source);
  gets0 = contentGets();
  const s = await slow.open('/big.bin', entry, { start: 0, end: 6 * MiB - 1 }, {});
  const parts: Buffer[] = [];
  for await (const c of s) {
    parts.push(c as Buffer);
    await sleep(Math.ceil(((c as Buffer).length / MiB) * 500)); // 2 MiB/s
  }
  assert.ok(Buffer.concat(parts).equals(data.subarray(0, 6 * MiB)));
  assert.equal(contentGets() - gets0, 1, 'a slow reader does not make the read parallel');
  assert.ok(slow.bufferStats().peak <= 2 * 256 * KiB, `the one GET held about a chunk (${slow.bufferStats().peak})`);

  // (b) 2 MiB/s per GET, below 8 MiB/s: after the probe, the rest over four connections
  const t = reader({ connections: 4, ...probing }, counting.source);
  const peak0 = counting.peak();
  gets0 = contentGets();
  const dlinks0 = dlinkGets();
  bytes0 = served();
  rig.emu.setOptions({ throughputBytesPerSec: 2 * MiB });
  try {
    const all = await readAll(await t.open('/big.bin', entry, undefined, {}));
    assert.equal(md5(all), md5(data), 'byte-identical');
  } finally {
    rig.emu.setOptions({ throughputBytesPerSec: 0 });
  }
  assert.equal(peak0, 1);
  assert.equal(counting.peak(), 4, 'four GETs in flight once the one connection proved slow');
  const gets = contentGets() - gets0;
  assert.ok(gets >= 10, `ranges after the probe (${gets} GETs)`);
  // the ranges went straight to the URL the first GET was redirected to: one dlink GET in all
  assert.equal(dlinkGets() - dlinks0, hops === 0 ? gets : 1, 'dlink GETs');
  const extra = served() - bytes0 - data.length;
  assert.ok(extra >= 0 && extra <= 256 * KiB, `the first GET was cut where the ranges take over: ${extra} bytes served twice or dropped`);
  assert.equal(t.bufferStats().buffered, 0);
});

test('the URL the dlink led to refused: the ranges go back to the dlink, bytes exact', { skip: hops === 0 ? 'the dlink answers the bytes itself: nothing to reuse' : false, timeout: 60_000 }, async () => {
  // its signature spoilt: the download host refuses it (403), as an expired CDN URL would be
  const counting = countingSource((u) => u.replace(/sign=[^&]+/, 'sign=0'));
  const r = reader({ connections: 4 }, counting.source);
  const dlinks0 = dlinkGets();
  const gets0 = contentGets();
  const got = await readAll(await r.open('/big.bin', entry, undefined, {}));
  assert.equal(md5(got), md5(data));
  const gets = contentGets() - gets0;
  const chunks = Math.ceil(data.length / (256 * KiB));
  // the ranges under way when it was first refused (at most the four connections) tried it, no later one
  assert.ok(counting.resolved() >= 1 && counting.resolved() <= 4, `tried by ${counting.resolved()} GETs`);
  assert.equal(gets, chunks + counting.resolved(), 'one GET of bytes per chunk, plus the refused tries');
  assert.equal(dlinkGets() - dlinks0, chunks, 'every chunk through the dlink');
});

test('probing: the one connection breaks and the probe goes parallel while it waits to resume: the resume asks only up to the cut, the ranges the rest, every byte asked once', { timeout: 60_000 }, async () => {
  // the first GET is reset after 1 MiB (4 MiB/s: at >= 250 ms); its resume waits 1.5-3 s (backoff);
  // the probe ends at 1 s of transfer (1 MiB/s < 8 MiB/s) during that wait: the first GET is
  // shortened while it is resuming (ResumableRead.shorten in state 'resuming')
  const asked: { start: number; end: number }[] = [];
  const record = (range: { start: number; end?: number } | undefined): void => {
    asked.push({ start: range?.start ?? 0, end: range?.end ?? data.length - 1 });
  };
  const source: DlinkClient = {
    logger: rig.logger,
    download: (ids, opts) => rig.client.download(ids, opts),
    openDlink: (dlink, range, signal, requestId) => (record(range), rig.client.openDlink(dlink, range, signal, requestId)),
    openResolved: (url, range, signal, requestId) => (record(range), rig.client.openResolved(url, range, signal, requestId)),
  };
  const r = reader({ connections: 4, parallelBelowBytesPerSecond: 8 * MiB, probeMs: 1000, resumeBaseMs: 3000, resumeMaxMs: 3000 }, source);
  const logs0 = rig.logs.length;
  const bytes0 = served();
  rig.emu.setOptions({ throughputBytesPerSec: 4 * MiB, faults: { rate: 1, seed: 5, kinds: ['reset'], endpoints: [BYTES_PATH] } });
  let got: Buffer;
  try {
    const s = await r.open('/big.bin', entry, undefined, {});
    rig.emu.setOptions({ faults: { rate: 0 } }); // only the first GET breaks
    got = await readAll(s);
  } finally {
    rig.emu.setOptions({ throughputBytesPerSec: 0, faults: { rate: 0 } });
  }
  assert.equal(md5(got), md5(data), 'byte-identical');
  const text = rig.logs.slice(logs0).join('\n');
  const broke = text.indexOf('upstream broke at byte 1048576');
  const parallel = text.indexOf('one connection brings');
  assert.ok(broke >= 0 && parallel > broke, 'the first GET broke at 1 MiB, then the probe sent the read parallel (before the resume)');
  // asked: the first GET (whole file), then its resume and the ranges, in any order
  assert.deepEqual(asked[0], { start: 0, end: data.length - 1 });
  const rest = asked.slice(1).sort((a, b) => a.start - b.start);
  const resume = rest[0]!;
  assert.equal(resume.start, MiB, 'the resume starts at the byte reached');
  assert.ok(resume.end < MiB + 256 * KiB, `the resume asks up to the cut only (bytes ${resume.start}-${resume.end}), not to the end of the file`);
  for (let i = 1; i < rest.length; i++) assert.equal(rest[i]!.start, rest[i - 1]!.end + 1, `asked ranges disjoint and contiguous: ${JSON.stringify(rest)}`);
  assert.equal(rest.at(-1)!.end, data.length - 1);
  assert.equal(served() - bytes0, data.length, 'every byte served once');
  assert.equal(r.bufferStats().buffered, 0);
});

/** Read at least n bytes of s (then leave it paused). */
async function firstBytes(s: Readable, n: number): Promise<void> {
  let got = 0;
  for await (const c of s) {
    got += (c as Buffer).length;
    if (got >= n) return;
  }
}
