/**
 * Content shared by several files (rapid uploads, identical uploads, copies) is reference counted:
 * replacing a file by the same content, deleting one of the files that share it, or deleting the
 * original of a copy must leave every remaining file readable — before and after a restart, which
 * recounts the references from the metadata. Content no file refers to any more is freed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Emu, type Json, api, dlinkOf, fetchDlink, md5, randomBuffer, shards, startEmu, superfile2, upload } from './emu-helpers.js';

const MiB = 1024 * 1024;

async function readBack(e: Emu, path: string): Promise<{ status: number; body: Buffer }> {
  const m = await api(e, '/openapi/api/filemetas', { query: { target: JSON.stringify([path]) } });
  assert.equal(m.body.info?.[0]?.errno, 0, `filemetas ${path}`);
  const res = await fetchDlink(e, await dlinkOf(e, m.body.info[0].fs_id as number));
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

async function assertReadable(e: Emu, files: Map<string, Buffer>, when: string): Promise<void> {
  for (const [rel, data] of files) {
    const got = await readBack(e, `${e.root}${rel}`);
    assert.equal(got.status, 200, `GET ${rel} ${when}: ${got.body.subarray(0, 80).toString()}`);
    assert.ok(got.body.equals(data), `bytes of ${rel} ${when}`);
  }
}

function fm(e: Emu, opera: string, filelist: unknown, ondup?: string): Promise<{ body: Json }> {
  return api(e, '/openapi/api/filemanager', { query: { opera, ...(ondup ? { ondup } : {}) }, form: { filelist: JSON.stringify(filelist) } });
}

function ok(r: Json, what: string): Json {
  assert.equal(r.errno, 0, `${what}: ${JSON.stringify(r)}`);
  return r;
}

async function blobCount(dataDir: string): Promise<number> {
  return (await readdir(join(dataDir, 'blobs'))).length;
}

test('shared content: same-content overwrite, copy + delete original, delete one of two sharers; all readable across restarts', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-emu-shared-'));
  try {
    const small = randomBuffer(1024, 21);
    const big = randomBuffer(9 * MiB + 5, 22); // 3 shards
    const raced = randomBuffer(5 * MiB, 23); // 2 shards
    const orig = randomBuffer(4096, 24);
    const pair = randomBuffer(6 * MiB, 25);
    const inDir = randomBuffer(777, 26);
    const gone = randomBuffer(2048, 27);
    const live = new Map<string, Buffer>();

    const a = await startEmu({}, dir);
    try {
      const R = a.root;
      // overwrite with the same content (rtype 3 -> rapid upload over the file holding the content)
      for (const [rel, data] of [['/s.bin', small], ['/big.bin', big]] as const) {
        const first = ok(await upload(a, `${R}${rel}`, data), `upload ${rel}`);
        const again = ok(await upload(a, `${R}${rel}`, data, { rtype: 3 }), `overwrite ${rel}`);
        assert.equal(again.rapid, true, 'the second upload is a rapid upload');
        assert.notEqual(again.fs_id, first.fs_id);
        live.set(rel, data);
      }
      await assertReadable(a, live, 'after same-content overwrites');

      // create (not rapid) with rtype 3 over a file that got the same content meanwhile
      const racePath = `${R}/race.bin`;
      const parts = shards(raced);
      const blockList = JSON.stringify(parts.map((p) => md5(p)));
      const pre = await api(a, '/openapi/api/precreate', { form: { path: racePath, autoinit: '1', block_list: blockList, size: String(raced.length), rtype: '3' } });
      assert.equal(pre.body.return_type, 1);
      for (let i = 0; i < parts.length; i++) assert.equal((await superfile2(a, { path: racePath, uploadid: pre.body.uploadid, partseq: i }, parts[i]!)).status, 200);
      ok(await upload(a, racePath, raced), 'the other upload of the same content');
      ok((await api(a, '/openapi/api/create', { form: { path: racePath, size: String(raced.length), uploadid: pre.body.uploadid, block_list: blockList, rtype: '3' } })).body, 'create rtype 3');
      live.set('/race.bin', raced);

      // copy, then delete the original
      ok(await upload(a, `${R}/orig.bin`, orig), 'upload orig');
      ok((await fm(a, 'copy', [{ path: `${R}/orig.bin`, dest: R, newname: 'copy.bin' }])).body, 'copy');
      ok((await fm(a, 'delete', [`${R}/orig.bin`])).body, 'delete orig');
      live.set('/copy.bin', orig);

      // two files sharing content (rapid upload); delete one; copy/move with overwrite onto a sharer
      ok(await upload(a, `${R}/p1.bin`, pair), 'upload p1');
      assert.equal(ok(await upload(a, `${R}/p2.bin`, pair), 'upload p2').rapid, true);
      ok((await fm(a, 'delete', [`${R}/p1.bin`])).body, 'delete p1');
      ok(await upload(a, `${R}/p3.bin`, pair), 'upload p3');
      ok((await fm(a, 'copy', [{ path: `${R}/p3.bin`, dest: R, newname: 'p2.bin' }], 'overwrite')).body, 'copy p3 over p2');
      ok((await fm(a, 'move', [{ path: `${R}/p3.bin`, dest: R, newname: 'p2.bin' }], 'overwrite')).body, 'move p3 over p2');
      live.set('/p2.bin', pair);

      // a folder copied, then the original folder deleted
      ok(await upload(a, `${R}/d/f.bin`, inDir), 'upload d/f');
      ok((await fm(a, 'copy', [{ path: `${R}/d`, dest: R, newname: 'd2' }])).body, 'copy folder');
      ok((await fm(a, 'delete', [`${R}/d`])).body, 'delete folder');
      live.set('/d2/f.bin', inDir);

      // content whose every file is deleted is freed: no rapid upload of it any more
      ok(await upload(a, `${R}/g1.bin`, gone), 'upload g1');
      ok((await fm(a, 'copy', [{ path: `${R}/g1.bin`, dest: R, newname: 'g2.bin' }])).body, 'copy g1');
      ok((await fm(a, 'delete', [`${R}/g1.bin`, `${R}/g2.bin`])).body, 'delete g1 g2');
      const preGone = await api(a, '/openapi/api/precreate', { form: { path: `${R}/g3.bin`, autoinit: '1', block_list: JSON.stringify([md5(gone)]), size: String(gone.length) } });
      assert.equal(preGone.body.return_type, 1, 'freed content is not offered for rapid upload');

      await assertReadable(a, live, 'before the restart');
      assert.equal((await api(a, '/openapi/api/quota')).body.used, [...live.values()].reduce((s, b) => s + b.length, 0));
    } finally {
      await a.stop();
    }

    const b = await startEmu({}, dir);
    try {
      await assertReadable(b, live, 'after a restart');
      assert.equal(await blobCount(dir), live.size, 'one blob per distinct content in use, none lost, none leaked');
      // the references recounted at start are right: same-content overwrite and delete-one-sharer again
      ok(await upload(b, `${b.root}/big.bin`, big, { rtype: 3 }), 'overwrite big after restart');
      assert.equal(ok(await upload(b, `${b.root}/s2.bin`, small), 'upload s2').rapid, true);
      ok((await fm(b, 'delete', [`${b.root}/s.bin`])).body, 'delete s');
      live.delete('/s.bin');
      live.set('/s2.bin', small);
      ok((await fm(b, 'copy', [{ path: `${b.root}/copy.bin`, dest: b.root, newname: 'copy2.bin' }])).body, 'copy after restart');
      ok((await fm(b, 'delete', [`${b.root}/copy.bin`])).body, 'delete copy');
      live.delete('/copy.bin');
      live.set('/copy2.bin', orig);
      await assertReadable(b, live, 'after changes following a restart');
    } finally {
      await b.stop();
    }

    const c = await startEmu({}, dir);
    try {
      await assertReadable(c, live, 'after a second restart');
      assert.equal(await blobCount(dir), new Set([...live.values()].map((d) => md5(d))).size);
    } finally {
      await c.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
