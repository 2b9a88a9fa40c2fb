/**
 * TeraboxRemote.write with WriteOptions.onResumeToken / resume (write-back after a restart), over the
 * emulator on real HTTP (shards of 64 KiB to keep it quick). The tokens are opaque to callers; the
 * tests read them with src/terabox/shards.ts:
 *  - onResumeToken reports the upload id after precreate and each confirmed shard;
 *  - resume reuses the session and sends only the shards not confirmed (no second precreate);
 *  - a session the service no longer knows (31190), a shard claimed done but missing (31363 at
 *    create) or garbage resume data fall back to a fresh upload that lands intact.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { decodeResumeToken, encodeResumeToken, type UploadSession } from '../../src/terabox/shards.js';
import { startRig, makeSpool, readAll, type Rig } from './setup.js';

const SHARD = 64 * 1024;
let rig: Rig;
let remote: TeraboxRemote;

before(async () => {
  rig = await startRig({ minShardBytes: SHARD });
  remote = new TeraboxRemote(rig.client, { root: rig.emu.appRoot, uploadConcurrency: 1 });
});
after(async () => {
  await rig?.close();
});

const counts = () => ({ pre: rig.count('/openapi/api/precreate'), sf: rig.count('/rest/2.0/pcs/superfile2'), cr: rig.count('/openapi/api/create') });

test('onResumeToken: the upload id after precreate, then every confirmed shard', async () => {
  const f = await makeSpool(rig.dir, 'prog.bin', 3 * SHARD + 10, SHARD);
  const seen: UploadSession[] = [];
  await remote.write('/prog.bin', f, { overwrite: true, onResumeToken: (t) => seen.push(decodeResumeToken(t, 1024)!) });
  assert.ok(seen.length >= 5, `precreate + 4 shards reported (${seen.length})`);
  assert.ok(seen.every((p) => p.uploadId && p.uploadId === seen[0]!.uploadId), 'one upload id');
  assert.deepEqual(seen[0]!.doneShards, []);
  assert.deepEqual(seen.at(-1)!.doneShards, [0, 1, 2, 3]);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.doneShards.length >= seen[i - 1]!.doneShards.length, 'grows');
  assert.deepEqual(await readAll(await remote.openRead('/prog.bin')), f.data);
});

test('resume: the journalled session is reused, confirmed shards are not sent again', async () => {
  const f = await makeSpool(rig.dir, 'res.bin', 4 * SHARD + 99, SHARD);
  // the first process: precreate and two shards, then it "dies"
  const target = `${rig.emu.appRoot}/res.bin`;
  const pre = await rig.client.precreate(target, f.blockMd5s, f.size, { rtype: 3 });
  assert.ok(pre.uploadid);
  for (const i of [0, 2]) await rig.client.superfile2(target, pre.uploadid!, i, { localPath: f.localPath, start: i * SHARD, length: SHARD });
  const before0 = counts();
  const seen: UploadSession[] = [];
  const w = await remote.write('/res.bin', f, { overwrite: true, resume: encodeResumeToken({ uploadId: pre.uploadid!, doneShards: [0, 2] }), onResumeToken: (t) => seen.push(decodeResumeToken(t, 1024)!) });
  const after0 = counts();
  assert.equal(w.rapid, false);
  assert.equal(after0.pre - before0.pre, 0, 'no new precreate');
  assert.equal(after0.sf - before0.sf, 3, 'only shards 1, 3 and 4 sent');
  assert.equal(after0.cr - before0.cr, 1);
  assert.deepEqual(seen.at(-1), { uploadId: pre.uploadid, doneShards: [0, 1, 2, 3, 4] });
  assert.deepEqual(await readAll(await remote.openRead('/res.bin')), f.data);
});

test('resume with an upload id the service no longer knows: a fresh upload, reported with its new id', async () => {
  const f = await makeSpool(rig.dir, 'gone.bin', 2 * SHARD + 1, SHARD);
  const seen: UploadSession[] = [];
  const logs0 = rig.logs.length;
  const before0 = counts();
  await remote.write('/gone.bin', f, { overwrite: true, resume: encodeResumeToken({ uploadId: 'N1-forgotten', doneShards: [0] }), onResumeToken: (t) => seen.push(decodeResumeToken(t, 1024)!) });
  assert.equal(counts().pre - before0.pre, 1, 'precreate again');
  assert.ok(seen.length > 0 && seen.at(-1)!.uploadId !== 'N1-forgotten');
  assert.deepEqual(seen.at(-1)!.doneShards, [0, 1, 2]);
  assert.ok(rig.logs.slice(logs0).some((l) => /refused the resumed session.*fresh upload/.test(l)));
  assert.deepEqual(await readAll(await remote.openRead('/gone.bin')), f.data);
});

test('resume claiming a shard the service does not have (31363 at create): a fresh upload lands intact', async () => {
  const f = await makeSpool(rig.dir, 'lie.bin', 2 * SHARD + 5, SHARD);
  const target = `${rig.emu.appRoot}/lie.bin`;
  const pre = await rig.client.precreate(target, f.blockMd5s, f.size, { rtype: 3 });
  const before0 = counts();
  await remote.write('/lie.bin', f, { overwrite: true, resume: encodeResumeToken({ uploadId: pre.uploadid!, doneShards: [0, 1] }) });
  const after0 = counts();
  assert.equal(after0.pre - before0.pre, 1, 'a fresh precreate after create refused the session');
  assert.equal(after0.cr - before0.cr, 2);
  assert.deepEqual(await readAll(await remote.openRead('/lie.bin')), f.data);
});

test('resume data that cannot apply (no id, shard numbers out of range) is ignored', async () => {
  const f = await makeSpool(rig.dir, 'junk.bin', SHARD + 3, SHARD);
  await remote.write('/junk.bin', f, { overwrite: true, resume: encodeResumeToken({ uploadId: '', doneShards: [7, -1] }) });
  assert.deepEqual(await readAll(await remote.openRead('/junk.bin')), f.data);
  await remote.write('/junk.bin', f, { overwrite: true, resume: 'not a token of ours' });
  assert.deepEqual(await readAll(await remote.openRead('/junk.bin')), f.data);
  const g = await makeSpool(rig.dir, 'junk2.bin', SHARD + 4, SHARD);
  const pre = await rig.client.precreate(`${rig.emu.appRoot}/junk2.bin`, g.blockMd5s, g.size, { rtype: 3 });
  const before0 = counts();
  await remote.write('/junk2.bin', g, { overwrite: true, resume: encodeResumeToken({ uploadId: pre.uploadid!, doneShards: [5, 1.5, -2] }) });
  assert.equal(counts().sf - before0.sf, 2, 'both shards sent on the resumed session');
  assert.deepEqual(await readAll(await remote.openRead('/junk2.bin')), g.data);
});
