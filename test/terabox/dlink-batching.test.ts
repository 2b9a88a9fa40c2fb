/**
 * dlinks in batches (issue 10), counted from the emulator's counters over real HTTP:
 *  - 200 files of a listed folder read with 8 at a time: at most 20 /openapi/api/download calls
 *    (the files listed next to a demanded one come in the same call), every file exact; the same
 *    for files the remote knows from uploading them (the vfs then answers listings from its cache);
 *  - concurrent reads of files the reader has never seen listed share one call;
 *  - a listed sibling deleted since the listing (the service then refuses the whole call with -9)
 *    does not fail the file asked for: the call is made again without the siblings;
 *  - a missing file still fails with TBDAV_NOT_FOUND.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { isTbdavError } from '../../src/shared/errors.js';
import type { Entry } from '../../src/remote/types.js';
import { startRig, makeSpool, readAll, type Rig } from './setup.js';

let rig: Rig;
let remote: TeraboxRemote;
const contents = new Map<string, Buffer>();
const DOWNLOAD = '/openapi/api/download';

/** Run `fn` over `items` with `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

before(async () => {
  rig = await startRig();
  remote = new TeraboxRemote(rig.client, { root: rig.emu.appRoot });
  await remote.mkdir('/many');
  const names = Array.from({ length: 200 }, (_, i) => `f${String(i).padStart(3, '0')}.txt`);
  await pool(names, 8, async (name) => {
    const f = await makeSpool(rig.dir, name, 100 + (name.charCodeAt(3) % 50));
    contents.set(`/many/${name}`, f.data);
    await remote.write(`/many/${name}`, f, { overwrite: false });
  });
});
after(async () => {
  await rig?.close();
});

test('200 files of a listed folder, 8 at a time: at most 20 download calls, every file exact', { timeout: 120_000 }, async () => {
  const reader = new TeraboxRemote(rig.client, { root: rig.emu.appRoot });
  const entries = await reader.list('/many');
  assert.equal(entries.length, 200);
  const calls0 = rig.count(DOWNLOAD);
  await pool(entries, 8, async (e) => {
    const got = await readAll(await reader.openRead(e.path, undefined, { entry: e }));
    assert.ok(got.equals(contents.get(e.path)!), e.path);
  });
  const calls = rig.count(DOWNLOAD) - calls0;
  assert.ok(calls <= 20, `${calls} download calls for 200 files`);
  assert.ok(calls >= 2, `${calls}: at most 100 fs_ids per call`);
});

test('200 files the remote uploaded itself (no listing), 8 at a time: at most 20 download calls', { timeout: 120_000 }, async () => {
  const entries = [...contents.keys()].map((path) => ({ path, entry: undefined as Entry | undefined }));
  const meta = await new TeraboxRemote(rig.client, { root: rig.emu.appRoot }).list('/many'); // entries as the vfs would hold them
  for (const e of entries) e.entry = meta.find((m) => m.path === e.path);
  const calls0 = rig.count(DOWNLOAD);
  await pool(entries, 8, async ({ path, entry }) => {
    const got = await readAll(await remote.openRead(path, undefined, { entry }));
    assert.ok(got.equals(contents.get(path)!), path);
  });
  const calls = rig.count(DOWNLOAD) - calls0;
  assert.ok(calls <= 20, `${calls} download calls for 200 files`);
});

test('concurrent reads of files never listed share one download call', { timeout: 60_000 }, async () => {
  const entries = (await remote.list('/many')).slice(0, 16);
  const fresh = new TeraboxRemote(rig.client, { root: rig.emu.appRoot }); // has seen no listing
  const calls0 = rig.count(DOWNLOAD);
  const got = await Promise.all(entries.map(async (e) => readAll(await fresh.openRead(e.path, undefined, { entry: e }))));
  got.forEach((g, i) => assert.ok(g.equals(contents.get(entries[i]!.path)!)));
  assert.equal(rig.count(DOWNLOAD) - calls0, 1, '16 reads started together: one call');
});

test('a listed sibling deleted since the listing does not fail the file asked for', { timeout: 60_000 }, async () => {
  await remote.mkdir('/few');
  for (const n of ['a', 'b', 'c']) await remote.write(`/few/${n}`, await makeSpool(rig.dir, `few-${n}`, 10, undefined, Buffer.from(`file ${n}`)), { overwrite: false });
  const reader = new TeraboxRemote(rig.client, { root: rig.emu.appRoot });
  const entries = await reader.list('/few');
  await remote.remove('/few/b');
  const calls0 = rig.count(DOWNLOAD);
  const a = entries.find((e) => e.name === 'a')!;
  assert.equal((await readAll(await reader.openRead('/few/a', undefined, { entry: a }))).toString(), 'file a');
  assert.equal(rig.count(DOWNLOAD) - calls0, 2, 'the batch with the deleted sibling, then the file alone');
  const c = entries.find((e) => e.name === 'c')!;
  assert.equal((await readAll(await reader.openRead('/few/c', undefined, { entry: c }))).toString(), 'file c');
  const b: Entry = entries.find((e) => e.name === 'b')!;
  await assert.rejects(
    (async () => readAll(await reader.openRead('/few/b', undefined, { entry: b })))(),
    (err: unknown) => isTbdavError(err, 'TBDAV_NOT_FOUND'),
  );
});
