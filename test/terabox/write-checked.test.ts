/**
 * WriteOptions.checked (issue 10, call economy): the caller (the vfs, from its cache) has just
 * looked, so TeraboxRemote.write skips its own filemetas. Counted by the emulator; and a belief
 * that turned stale (a file appeared meanwhile) still never overwrites without `overwrite`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { startRig, makeSpool, readAll, type Rig } from './setup.js';

let rig: Rig;
let remote: TeraboxRemote;

before(async () => {
  rig = await startRig();
  remote = new TeraboxRemote(rig.client, { root: rig.emu.appRoot, logger: rig.logger });
  await remote.mkdir('/c');
});
after(async () => {
  await rig.close();
});

/** Calls made by `fn`, without OAuth. */
async function calls(fn: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = { ...rig.emu.counters.requests };
  await fn();
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(rig.emu.counters.requests)) {
    if (k.startsWith('/oauth/')) continue;
    const d = v - (before[k] ?? 0);
    if (d) out[k] = d;
  }
  return out;
}

test('checked: a new small file is precreate + superfile2 + create, nothing else; unchecked asks filemetas first', async () => {
  const a = await makeSpool(rig.dir, 'a', 1000, undefined, randomBytes(1000));
  assert.deepEqual(await calls(() => remote.write('/c/a.bin', a, { overwrite: false, checked: true })), {
    '/openapi/api/precreate': 1,
    '/rest/2.0/pcs/superfile2': 1,
    '/openapi/api/create': 1,
  });
  const b = await makeSpool(rig.dir, 'b', 1000, undefined, randomBytes(1000));
  assert.deepEqual(await calls(() => remote.write('/c/b.bin', b, { overwrite: false })), {
    '/openapi/api/filemetas': 1,
    '/openapi/api/precreate': 1,
    '/rest/2.0/pcs/superfile2': 1,
    '/openapi/api/create': 1,
  });
  assert.deepEqual(await readAll(await remote.openRead('/c/a.bin')), a.data);
});

test('checked but stale: a file that appeared meanwhile is refused with EXISTS (new content and rapid content), and kept', async () => {
  const there = await makeSpool(rig.dir, 'there', 500, undefined, randomBytes(500));
  await remote.write('/c/there.bin', there, { overwrite: false });
  const fresh = await makeSpool(rig.dir, 'fresh', 500, undefined, randomBytes(500));
  await assert.rejects(remote.write('/c/there.bin', fresh, { overwrite: false, checked: true }), { code: 'TBDAV_EXISTS' });
  // content the service already holds (a rapid upload) onto an existing path
  const known = await makeSpool(rig.dir, 'known', 1000);
  await remote.write('/c/known-1.bin', known, { overwrite: false });
  await assert.rejects(remote.write('/c/there.bin', known, { overwrite: false, checked: true }), { code: 'TBDAV_EXISTS' });
  assert.deepEqual(await readAll(await remote.openRead('/c/there.bin')), there.data);
  // with overwrite it replaces, checked or not
  await remote.write('/c/there.bin', fresh, { overwrite: true, checked: true });
  assert.deepEqual(await readAll(await remote.openRead('/c/there.bin')), fresh.data);
});
