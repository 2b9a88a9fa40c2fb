/**
 * The pacer paces API calls, not bytes (issue 10): dlink and CDN hops go through the client's
 * download pool with `pace: 'none'`, so with a ceiling of one API call per 2 s, a file whose dlink
 * is cached reads (whole, and seek after seek) without the pacer counting a single call; the one
 * API call is the download call for the dlink. Counted from the pacer's own stats and the
 * emulator's counters. The pool is the client's own and bounded (`downloadPoolConnections`): a
 * download host of the test's own counts the GETs it holds at once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { startRig, makeSpool, readAll, type Rig } from './setup.js';

let rig: Rig;
before(async () => {
  rig = await startRig();
});
after(async () => {
  await rig?.close();
});

test('with a ceiling of 0.5 API calls/s, reads and seeks through a cached dlink take no pacer slot', { timeout: 30_000 }, async () => {
  const f = await makeSpool(rig.dir, 'seek.bin', 3 * 1024 * 1024 + 5);
  await new TeraboxRemote(rig.client, { root: rig.emu.appRoot }).write('/seek.bin', f, { overwrite: false });
  const slow = rig.newClient({ callsPerSecond: 0.5 }); // shares the rig's saved login
  const remote = new TeraboxRemote(slow, { root: rig.emu.appRoot });
  const entry = (await new TeraboxRemote(rig.client, { root: rig.emu.appRoot }).list('/')).find((e) => e.name === 'seek.bin')!;
  const calls0 = slow.http.pacerStats().calls;
  const hops0 = rig.count('/file');
  assert.ok((await readAll(await remote.openRead('/seek.bin', undefined, { entry }))).equals(f.data));
  assert.equal(slow.http.pacerStats().calls - calls0, 1, 'one API call: the download call for the dlink');
  for (let i = 0; i < 8; i++) {
    const start = (i * 397_111) % f.size;
    const got = await readAll(await remote.openRead('/seek.bin', { start, end: Math.min(f.size - 1, start + 65_535) }, { entry }));
    assert.ok(got.equals(f.data.subarray(start, start + 65_536)), `seek ${i}`);
  }
  assert.equal(slow.http.pacerStats().calls - calls0, 1, 'the seeks took no pacer slot');
  assert.equal(rig.count('/file') - hops0, 9, 'every read went to the download host');
});

test('the download pool is bounded: no more dlink GETs in flight than downloadPoolConnections', { timeout: 30_000 }, async () => {
  // a download host that holds every answer 300 ms and counts the GETs it holds at once
  let open = 0;
  let peak = 0;
  const server = createServer((req, res) => {
    open++;
    peak = Math.max(peak, open);
    setTimeout(() => {
      open--;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '2' }).end('ok');
    }, 300);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = rig.newClient({ downloadPoolConnections: 2 });
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/file/x`;
    const bodies = await Promise.all(Array.from({ length: 6 }, async () => (await readAll((await client.openDlink(url)).body)).toString()));
    assert.deepEqual(bodies, Array(6).fill('ok'));
    assert.equal(peak, 2, 'six GETs asked at once, two in flight at a time');
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
