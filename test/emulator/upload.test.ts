import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { api, dlinkOf, fetchDlink, md5, randomBuffer, startEmu, superfile2, upload } from './emu-helpers.js';

const MiB = 1024 * 1024;

test('9 MiB upload as 4+4+1 MiB shards: md5 is md5 of the JSON shard list, bytes round-trip', async () => {
  const e = await startEmu();
  try {
    const data = randomBuffer(9 * MiB, 7);
    const path = `${e.root}/big/nine.bin`;
    const parts = [data.subarray(0, 4 * MiB), data.subarray(4 * MiB, 8 * MiB), data.subarray(8 * MiB)];
    const blocks = parts.map((p) => md5(p));
    const pre = await api(e, '/openapi/api/precreate', { form: { path, autoinit: '1', block_list: JSON.stringify(blocks), size: String(data.length) } });
    assert.equal(pre.body.errno, 0);
    assert.equal(pre.body.return_type, 1);
    assert.deepEqual(pre.body.block_list, [0, 1, 2]);
    assert.match(pre.body.uploadid, /^N1-/);
    for (let i = 0; i < 3; i++) {
      const r = await superfile2(e, { path, uploadid: pre.body.uploadid, partseq: i }, parts[i]!);
      assert.equal(r.status, 200);
      assert.equal(r.body.md5, blocks[i]);
      assert.equal(Number(r.body.partseq), i);
      assert.equal(r.body.uploadid, pre.body.uploadid);
    }
    const c = await api(e, '/openapi/api/create', { form: { path, size: String(data.length), uploadid: pre.body.uploadid, block_list: JSON.stringify(blocks), rtype: '0' } });
    assert.equal(c.body.errno, 0);
    assert.equal(c.body.path, path);
    assert.equal(c.body.size, data.length);
    assert.equal(c.body.isdir, 0);
    assert.equal(c.body.md5, md5(JSON.stringify(blocks)));
    assert.notEqual(c.body.md5, md5(data));
    assert.equal(e.emu.counters.bytesUploaded, data.length);
    // parent folder was created
    const l = await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${e.root}/big` } });
    assert.equal(l.body.list[0].server_filename, 'nine.bin');
    assert.equal(l.body.list[0].md5, c.body.md5);
    const dl = await dlinkOf(e, c.body.fs_id);
    const res = await fetchDlink(e, dl);
    assert.equal(res.status, 200);
    const got = Buffer.from(await res.arrayBuffer());
    assert.equal(md5(got), md5(data));
    // a range across the shard boundaries (shards are stored apart)
    const a = 4 * MiB - 10;
    const b = 8 * MiB + 10;
    const part = await fetchDlink(e, dl, { Range: `bytes=${a}-${b}` });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes ${a}-${b}/${data.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), data.subarray(a, b + 1));
  } finally {
    await e.stop();
  }
});

test('one shard: md5 is the content md5', async () => {
  const e = await startEmu();
  try {
    const data = Buffer.from('hello emulator');
    const c = await upload(e, `${e.root}/a.txt`, data);
    assert.equal(c.errno, 0);
    assert.equal(c.md5, md5(data));
    assert.equal(c.category, 4);
  } finally {
    await e.stop();
  }
});

test('refusals: short non-last shard 31299, missing shard 31363, block_list mismatch 31355, unknown uploadid 31190', async () => {
  const e = await startEmu();
  try {
    const path = `${e.root}/r.bin`;
    const a = randomBuffer(1 * MiB, 1);
    const b = randomBuffer(1 * MiB, 2);
    const blocks = [md5(a), md5(b)];
    const pre = await api(e, '/openapi/api/precreate', { form: { path, autoinit: '1', block_list: JSON.stringify(blocks) } });
    assert.equal(pre.body.errno, 0);
    const s0 = await superfile2(e, { path, uploadid: pre.body.uploadid, partseq: 0 }, a);
    assert.equal(s0.body.error_code, 31299);
    assert.equal(s0.body.errno, 31299);
    // the last shard may be short
    const s1 = await superfile2(e, { path, uploadid: pre.body.uploadid, partseq: 1 }, b);
    assert.equal(s1.body.md5, md5(b));
    const c = await api(e, '/openapi/api/create', { form: { path, size: String(2 * MiB), uploadid: pre.body.uploadid, block_list: JSON.stringify(blocks), rtype: '1' } });
    assert.equal(c.body.errno, 31363);
    const mism = await api(e, '/openapi/api/create', { form: { path, size: String(2 * MiB), uploadid: pre.body.uploadid, block_list: JSON.stringify([md5(b), md5(a)]), rtype: '1' } });
    assert.equal(mism.body.errno, 31355);
    const unknown = await api(e, '/openapi/api/create', { form: { path, size: '1', uploadid: 'N1-nope', block_list: JSON.stringify(blocks), rtype: '1' } });
    assert.equal(unknown.body.errno, 31190);
    // partseq out of range, wrong path, wrong method
    const oor = await superfile2(e, { path, uploadid: pre.body.uploadid, partseq: 5 }, b);
    assert.equal(oor.body.error_code, 31023);
    const wrongPath = await superfile2(e, { path: `${e.root}/other.bin`, uploadid: pre.body.uploadid, partseq: 1 }, b);
    assert.equal(wrongPath.body.error_code, 31023);
    // size that does not add up
    const one = Buffer.from('x');
    const pre2 = await api(e, '/openapi/api/precreate', { form: { path: `${e.root}/s.bin`, autoinit: '1', block_list: JSON.stringify([md5(one)]) } });
    await superfile2(e, { path: `${e.root}/s.bin`, uploadid: pre2.body.uploadid, partseq: 0 }, one);
    const bad = await api(e, '/openapi/api/create', { form: { path: `${e.root}/s.bin`, size: '2', uploadid: pre2.body.uploadid, block_list: JSON.stringify([md5(one)]), rtype: '1' } });
    assert.equal(bad.body.errno, 31355);
  } finally {
    await e.stop();
  }
});

test('rtype: 0 conflict -8, 1 renames with a timestamp suffix, 2 same content keeps, 3 overwrites', async () => {
  const e = await startEmu();
  try {
    const path = `${e.root}/photo.png`;
    const first = await upload(e, path, Buffer.from('one'));
    assert.equal(first.errno, 0);
    const r0 = await upload(e, path, Buffer.from('two'), { rtype: 0 });
    assert.equal(r0.errno, -8);
    const r1 = await upload(e, path, Buffer.from('three'), { rtype: 1 });
    assert.equal(r1.errno, 0);
    assert.match(r1.path as string, /\/photo_\d{8}_\d{6}(\(\d+\))?\.png$/);
    const r2 = await upload(e, path, Buffer.from('one'), { rtype: 2 });
    assert.equal(r2.errno, 0);
    assert.equal(r2.path, path);
    assert.equal(r2.fs_id, first.fs_id);
    const r3 = await upload(e, path, Buffer.from('four!'), { rtype: 3 });
    assert.equal(r3.errno, 0);
    assert.equal(r3.path, path);
    assert.notEqual(r3.fs_id, first.fs_id);
    const m = await api(e, '/openapi/api/filemetas', { query: { target: JSON.stringify([path]) } });
    assert.equal(m.body.info[0].size, 5);
  } finally {
    await e.stop();
  }
});

test('rapid upload: precreate of known content answers return_type 2 and creates the file', async () => {
  const e = await startEmu();
  try {
    const data = randomBuffer(5 * MiB, 3);
    const a = await upload(e, `${e.root}/orig.bin`, data);
    assert.equal(a.errno, 0);
    const before = e.emu.counters.bytesUploaded;
    const blocks = [md5(data.subarray(0, 4 * MiB)), md5(data.subarray(4 * MiB))];
    const pre = await api(e, '/openapi/api/precreate', { form: { path: `${e.root}/copy/dup.bin`, autoinit: '1', block_list: JSON.stringify(blocks), size: String(data.length) } });
    assert.equal(pre.body.errno, 0);
    assert.equal(pre.body.return_type, 2);
    assert.equal(pre.body.info.path, `${e.root}/copy/dup.bin`);
    assert.equal(pre.body.info.md5, a.md5);
    assert.equal(e.emu.counters.bytesUploaded, before);
    const res = await fetchDlink(e, await dlinkOf(e, pre.body.info.fs_id));
    assert.equal(md5(Buffer.from(await res.arrayBuffer())), md5(data));
  } finally {
    await e.stop();
  }
});

test('folders via create isdir=1; empty files; refuseZeroByte', async () => {
  const e = await startEmu();
  try {
    const d = await api(e, '/openapi/api/create', { form: { path: `${e.root}/x/y/z`, isdir: '1', rtype: '0' } });
    assert.equal(d.body.errno, 0);
    assert.equal(d.body.isdir, 1);
    const again = await api(e, '/openapi/api/create', { form: { path: `${e.root}/x/y/z`, isdir: '1', rtype: '0' } });
    assert.equal(again.body.errno, -8);
    const l = await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${e.root}/x` } });
    assert.equal(l.body.list[0].path, `${e.root}/x/y`);
    const empty = await upload(e, `${e.root}/empty.txt`, Buffer.alloc(0));
    assert.equal(empty.errno, 0);
    assert.equal(empty.size, 0);
    e.emu.setOptions({ refuseZeroByte: true });
    const refused = await upload(e, `${e.root}/empty2.txt`, Buffer.alloc(0));
    assert.equal(refused.errno, 2);
  } finally {
    await e.stop();
  }
});

test('superfile2 only on the upload host; needs a token; malformed precreate input', async () => {
  const e = await startEmu();
  try {
    const path = `${e.root}/h.bin`;
    const data = Buffer.from('abc');
    const pre = await api(e, '/openapi/api/precreate', { form: { path, autoinit: '1', block_list: JSON.stringify([md5(data)]) } });
    const onApi = await superfile2(e, { path, uploadid: pre.body.uploadid, partseq: 0 }, data, e.emu.apiDomain);
    assert.equal(onApi.status, 404);
    const noTok = await superfile2(e, { path, uploadid: pre.body.uploadid, partseq: 0, token: 'bogus-token' }, data);
    assert.equal(noTok.body.errno, -6);
    const pre404 = await api(e, '/openapi/api/precreate', { host: e.emu.uploadDomain, form: { path, autoinit: '1', block_list: '[]' } });
    assert.equal(pre404.status, 404);
    for (const bl of ['not json', '[]', '["zz"]', '{"a":1}']) {
      const r = await api(e, '/openapi/api/precreate', { form: { path, autoinit: '1', block_list: bl } });
      assert.equal(r.body.errno, 2, bl);
    }
    const noPath = await api(e, '/openapi/api/precreate', { form: { autoinit: '1', block_list: JSON.stringify([md5(data)]) } });
    assert.equal(noPath.body.errno, 2);
    const outside = await api(e, '/openapi/api/precreate', { form: { path: '/elsewhere/h.bin', autoinit: '1', block_list: JSON.stringify([md5(data)]) } });
    assert.equal(outside.body.errno, -7);
    // not multipart
    const raw = await fetch(
      `http://${e.emu.uploadDomain}/rest/2.0/pcs/superfile2?${new URLSearchParams({ method: 'upload', app_id: '250528', path, uploadid: pre.body.uploadid, partseq: '0', access_tokens: e.token })}`,
      { method: 'POST', body: 'abc' },
    );
    assert.equal(((await raw.json()) as { error_code: number }).error_code, 31023);
    // multipart without its closing boundary (truncated body)
    const q = new URLSearchParams({ method: 'upload', app_id: '250528', path, uploadid: pre.body.uploadid, partseq: '0', access_tokens: e.token });
    const truncated = await fetch(`http://${e.emu.uploadDomain}/rest/2.0/pcs/superfile2?${q}`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=BND' },
      body: '--BND\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\nabc',
    });
    assert.equal(((await truncated.json()) as { error_code: number }).error_code, 31023);
    // a client that goes away mid-body does not disturb the emulator
    await new Promise<void>((resolve) => {
      const [h, port] = e.emu.uploadDomain.split(':');
      const sock = connect(Number(port), h!, () => {
        sock.write(`POST /rest/2.0/pcs/superfile2?${q} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=BND\r\nContent-Length: 100000\r\n\r\n--BND\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc`);
        setTimeout(() => {
          sock.destroy();
          resolve();
        }, 100);
      });
    });
    const ok = await superfile2(e, { path, uploadid: pre.body.uploadid, partseq: 0 }, data);
    assert.equal(ok.body.md5, md5(data));
  } finally {
    await e.stop();
  }
});

test('quota: used counts every file (copies too); over quota is -10; a throughput cap still lets uploads through', async () => {
  const e = await startEmu({ quotaTotalBytes: 10 * MiB, throughputBytesPerSec: 8 * MiB });
  try {
    const data = randomBuffer(5 * MiB, 21);
    assert.equal((await upload(e, `${e.root}/q1.bin`, data)).errno, 0);
    assert.equal(e.emu.counters.bytesUploaded, data.length);
    const q = await api(e, '/openapi/api/quota');
    assert.equal(q.body.total, 10 * MiB);
    assert.equal(q.body.used, 5 * MiB);
    // a rapid upload of the same content is a second file and counts again
    assert.equal((await upload(e, `${e.root}/q2.bin`, data)).rapid, true);
    assert.equal((await api(e, '/openapi/api/quota')).body.used, 10 * MiB);
    const over = await upload(e, `${e.root}/q3.bin`, Buffer.from('one byte too many'));
    assert.equal(over.errno, -10);
    await api(e, '/openapi/api/filemanager', { query: { opera: 'delete' }, form: { filelist: JSON.stringify([`${e.root}/q2.bin`]) } });
    assert.equal((await api(e, '/openapi/api/quota')).body.used, 5 * MiB);
    assert.equal((await upload(e, `${e.root}/q3.bin`, Buffer.from('fits now'))).errno, 0);
  } finally {
    await e.stop();
  }
});

test('concurrent uploads with shards sent out of order and in parallel all land intact', async () => {
  const e = await startEmu();
  try {
    const files = Array.from({ length: 6 }, (_, i) => ({ path: `${e.root}/par/f${i}.bin`, data: randomBuffer(4 * MiB + 1000 * (i + 1), 100 + i) }));
    await Promise.all(
      files.map(async (f) => {
        const parts = [f.data.subarray(0, 4 * MiB), f.data.subarray(4 * MiB)];
        const blocks = parts.map((p) => md5(p));
        const pre = await api(e, '/openapi/api/precreate', { form: { path: f.path, autoinit: '1', block_list: JSON.stringify(blocks), size: String(f.data.length) } });
        assert.equal(pre.body.errno, 0);
        const answers = await Promise.all([1, 0].map((i) => superfile2(e, { path: f.path, uploadid: pre.body.uploadid, partseq: i }, parts[i]!)));
        for (const a of answers) assert.equal(a.status, 200);
        const c = await api(e, '/openapi/api/create', { form: { path: f.path, size: String(f.data.length), uploadid: pre.body.uploadid, block_list: JSON.stringify(blocks), rtype: '0' } });
        assert.equal(c.body.errno, 0);
        // a second create of the same upload is refused
        const again = await api(e, '/openapi/api/create', { form: { path: f.path, size: String(f.data.length), uploadid: pre.body.uploadid, block_list: JSON.stringify(blocks), rtype: '0' } });
        assert.equal(again.body.errno, 31190);
        const res = await fetchDlink(e, await dlinkOf(e, c.body.fs_id));
        assert.equal(md5(Buffer.from(await res.arrayBuffer())), md5(f.data));
      }),
    );
    const l = await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${e.root}/par` } });
    assert.equal(l.body.list.length, files.length);
  } finally {
    await e.stop();
  }
});
