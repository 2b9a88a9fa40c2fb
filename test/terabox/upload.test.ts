/**
 * Upload-session edge cases of TeraboxRemote.write over the emulator: a forgotten session
 * (errno 31363 at create) restarts once from precreate; a shard whose md5 comes back wrong is sent
 * again, then TBDAV_INTEGRITY; 0-byte files; paging of listAll; request ids in the log.
 *
 * The emulator cannot be told to forget a session or to garble a shard md5, so two tests use a
 * subclass of the real client that skips one real superfile2 call or alters the md5 it reports;
 * every other call goes over real HTTP.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TeraboxClient, type FileRange } from '../../src/terabox/client.js';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import type { CallOptions } from '../../src/remote/types.js';
import type { Superfile2Response } from '../../src/terabox/api/types.js';
import { TbdavError } from '../../src/shared/errors.js';
import { startRig, makeSpool, readAll, type Rig } from './setup.js';

const MiB = 1024 * 1024;
let rig: Rig;

before(async () => {
  rig = await startRig();
});
after(async () => {
  await rig?.close();
});

function quirkyClient(quirk: (partseq: number, real: () => Promise<Superfile2Response>) => Promise<Superfile2Response>): TeraboxClient {
  class Quirky extends TeraboxClient {
    override superfile2(path: string, uploadid: string, partseq: number, file: FileRange, opts?: CallOptions): Promise<Superfile2Response> {
      return quirk(partseq, () => super.superfile2(path, uploadid, partseq, file, opts));
    }
  }
  return rig.newClient({}, Quirky);
}

test('a forgotten upload session (31363 at create) restarts once from precreate', async () => {
  // the first session never receives shard 1 (as if the service forgot it): create answers 31363
  let firstSession = true;
  const lossy = quirkyClient(async (partseq, real) => {
    if (firstSession && partseq === 1) {
      firstSession = false;
      return { md5: '', partseq, uploadid: 'x' }; // no md5 reported: accepted, but nothing was sent
    }
    return real();
  });
  const remote = new TeraboxRemote(lossy, { root: rig.emu.appRoot });
  const f = await makeSpool(rig.dir, 'lost.bin', 5 * MiB);
  const pre0 = rig.count('/openapi/api/precreate');
  const cr0 = rig.count('/openapi/api/create');
  const w = await remote.write('/lost.bin', f, { overwrite: false });
  assert.equal(w.rapid, false);
  assert.equal(rig.count('/openapi/api/precreate') - pre0, 2, 'precreate again after the failed create');
  assert.equal(rig.count('/openapi/api/create') - cr0, 2);
  const back = await readAll(await remote.openRead('/lost.bin'));
  assert.deepEqual(back, f.data);
});

test('a shard md5 mismatch is sent again once, then TBDAV_INTEGRITY', async () => {
  let garbled = 0;
  const once = quirkyClient(async (partseq, real) => {
    const r = await real();
    if (partseq === 0 && garbled === 0) {
      garbled++;
      return { ...r, md5: '0'.repeat(32) };
    }
    return r;
  });
  const f = await makeSpool(rig.dir, 'garble1.bin', 1000);
  const sf0 = rig.count('/rest/2.0/pcs/superfile2');
  const w = await new TeraboxRemote(once, { root: rig.emu.appRoot }).write('/garble1.bin', f, { overwrite: false });
  assert.equal(w.entry.size, 1000);
  assert.equal(rig.count('/rest/2.0/pcs/superfile2') - sf0, 2);

  const always = quirkyClient(async (_partseq, real) => ({ ...(await real()), md5: 'f'.repeat(32) }));
  const g = await makeSpool(rig.dir, 'garble2.bin', 1000);
  await assert.rejects(new TeraboxRemote(always, { root: rig.emu.appRoot }).write('/garble2.bin', g, { overwrite: false }), { code: 'TBDAV_INTEGRITY' });
});

test('0-byte files: written and read back; refused with TBDAV_FATAL when the service refuses them', async () => {
  const remote = new TeraboxRemote(rig.client, { root: rig.emu.appRoot });
  const empty = await makeSpool(rig.dir, 'empty.bin', 0);
  const w = await remote.write('/empty.txt', empty, { overwrite: false });
  assert.equal(w.entry.size, 0);
  assert.equal((await remote.stat('/empty.txt')).size, 0);
  assert.equal((await readAll(await remote.openRead('/empty.txt'))).length, 0);
  rig.emu.setOptions({ refuseZeroByte: true });
  try {
    await assert.rejects(remote.write('/empty2.txt', empty, { overwrite: false }), { code: 'TBDAV_FATAL' });
  } finally {
    rig.emu.setOptions({ refuseZeroByte: false });
  }
});

test('listAll pages until a short page (once the paging is learned); request ids reach the log lines', async () => {
  const dir = `${rig.emu.appRoot}/paged`;
  await rig.client.createDir(dir);
  for (const name of ['a', 'b', 'c', 'd', 'e']) await rig.client.createDir(`${dir}/${name}`);
  // a client's first short page is followed by one probe page (service-variants.test.ts): learn first
  await rig.client.listAll(dir, { num: 2 });
  assert.equal(rig.client.listPaging, 'fills');
  const l0 = rig.count('/openapi/api/list');
  const all = await rig.client.listAll(dir, { num: 2, requestId: 'req-paging-42' });
  assert.deepEqual(all.map((f) => f.server_filename).sort(), ['a', 'b', 'c', 'd', 'e']);
  assert.equal(rig.count('/openapi/api/list') - l0, 3, 'pages of 2, 2 and 1');
  const lines = rig.logs.filter((l) => l.includes('req-paging-42'));
  assert.ok(lines.length >= 3, 'each API call logged with the request id');
});

test('a stalled shard upload times out and is retried, then fails TBDAV_RETRYABLE', async () => {
  const impatient = rig.newClient({ transferTimeoutMs: 150, maxRetries: 2 });
  const f = await makeSpool(rig.dir, 'stall.bin', 2000);
  const pre = await impatient.precreate(`${rig.emu.appRoot}/stall.bin`, f.blockMd5s, f.size);
  rig.emu.setOptions({ latencyMs: 600 });
  try {
    const sf0 = rig.count('/rest/2.0/pcs/superfile2');
    await assert.rejects(
      impatient.superfile2(`${rig.emu.appRoot}/stall.bin`, pre.uploadid!, 0, { localPath: f.localPath, start: 0, length: f.size }),
      { code: 'TBDAV_RETRYABLE' },
    );
    assert.equal(rig.count('/rest/2.0/pcs/superfile2') - sf0, 3, 'first try + 2 retries');
  } finally {
    rig.emu.setOptions({ latencyMs: 0 });
  }
  const ok = await impatient.superfile2(`${rig.emu.appRoot}/stall.bin`, pre.uploadid!, 0, { localPath: f.localPath, start: 0, length: f.size });
  assert.equal(ok.md5, f.blockMd5s[0]);
});

test('the first failed shard stops the other shards of the session', async () => {
  const failing = quirkyClient(async (partseq, real) => {
    if (partseq === 0) throw new TbdavError('TBDAV_QUOTA', 'shard 0: no space (test)');
    return real();
  });
  const remote = new TeraboxRemote(failing, { root: rig.emu.appRoot, uploadConcurrency: 1 });
  const f = await makeSpool(rig.dir, 'stop.bin', 9 * MiB);
  const sf0 = rig.count('/rest/2.0/pcs/superfile2');
  const cr0 = rig.count('/openapi/api/create');
  await assert.rejects(remote.write('/stop.bin', f, { overwrite: false }), { code: 'TBDAV_QUOTA' });
  assert.equal(rig.count('/rest/2.0/pcs/superfile2') - sf0, 0, 'shards 1 and 2 never started');
  assert.equal(rig.count('/openapi/api/create') - cr0, 0);
});
