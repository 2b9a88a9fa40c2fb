import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { api, dlinkOf, fetchDlink, getJson, md5, randomBuffer, startEmu, upload } from './emu-helpers.js';

test('dlink: needs the token appended (403), answers 302 to the content with Range 200/206/416', async () => {
  const e = await startEmu();
  try {
    const data = randomBuffer(100_000, 5);
    const f = await upload(e, `${e.root}/d.bin`, data);
    const dlink = await dlinkOf(e, f.fs_id);
    assert.ok(dlink.startsWith(`http://${e.emu.downloadDomain}/file/${f.md5}?`));
    const u = new URL(dlink);
    assert.ok(u.searchParams.get('sign'));
    assert.match(u.searchParams.get('fid') ?? '', new RegExp(`-250528-${f.fs_id}$`));

    const noTok = await getJson(dlink);
    assert.equal(noTok.status, 403);
    assert.equal(noTok.body.errno, -6);
    const badTok = await getJson(`${dlink}&access_tokens=forged`);
    assert.equal(badTok.status, 403);
    const forged = await getJson(`${dlink.replace(/sign=[^&]+/, 'sign=abc')}&access_tokens=${e.token}`);
    assert.equal(forged.status, 403);
    // the dlink takes access_tokens (3.4.8); the singular is not looked at
    const singular = await getJson(`${dlink}&access_token=${encodeURIComponent(e.token)}`);
    assert.equal(singular.status, 403);
    assert.equal(singular.body.errno, -6);
    const r302 = await fetch(`${dlink}&access_tokens=${encodeURIComponent(e.token)}`, { redirect: 'manual' });
    assert.equal(r302.status, 302);
    const loc = r302.headers.get('location')!;
    assert.ok(loc.startsWith(`http://${e.emu.downloadDomain}/content/`));

    const before = e.emu.counters.bytesServed;
    const full = await fetch(loc);
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('content-length'), String(data.length));
    assert.equal(full.headers.get('accept-ranges'), 'bytes');
    assert.equal(md5(Buffer.from(await full.arrayBuffer())), md5(data));
    assert.equal(e.emu.counters.bytesServed - before, data.length);

    const part = await fetch(loc, { headers: { Range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${data.length}`);
    assert.equal(part.headers.get('content-length'), '10');
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), data.subarray(10, 20));

    const open = await fetch(loc, { headers: { Range: `bytes=${data.length - 5}-` } });
    assert.equal(open.status, 206);
    assert.deepEqual(Buffer.from(await open.arrayBuffer()), data.subarray(data.length - 5));
    const suffix = await fetch(loc, { headers: { Range: 'bytes=-7' } });
    assert.equal(suffix.headers.get('content-range'), `bytes ${data.length - 7}-${data.length - 1}/${data.length}`);
    assert.deepEqual(Buffer.from(await suffix.arrayBuffer()), data.subarray(data.length - 7));
    const past = await fetch(loc, { headers: { Range: 'bytes=0-999999999' } });
    assert.equal(past.status, 206);
    assert.equal(past.headers.get('content-range'), `bytes 0-${data.length - 1}/${data.length}`);
    await past.arrayBuffer();

    const bad = await fetch(loc, { headers: { Range: `bytes=${data.length}-` } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers.get('content-range'), `bytes */${data.length}`);
    await bad.arrayBuffer();

    const head = await fetch(loc, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(data.length));

    // Range passes through the redirect too
    const viaDlink = await fetchDlink(e, dlink, { Range: 'bytes=0-0' });
    assert.equal(viaDlink.status, 206);
    assert.equal(Buffer.from(await viaDlink.arrayBuffer())[0], data[0]);

    // the content URL is signed
    assert.equal((await fetch(loc.replace(/sign=[^&]+/, 'sign=x'))).status, 403);
    // deleted file: dlink 404
    await api(e, '/openapi/api/filemanager', { query: { opera: 'delete' }, form: { filelist: JSON.stringify([`${e.root}/d.bin`]) } });
    assert.equal((await getJson(`${dlink}&access_tokens=${e.token}`)).status, 404);
    assert.equal(e.emu.counters.requests['/file']! >= 4, true);
  } finally {
    await e.stop();
  }
});

test('expired dlink: 403 with errno 31360; expired token on a dlink: 403 with 111', async () => {
  const e = await startEmu({ dlinkTtlSec: 1 });
  try {
    const f = await upload(e, `${e.root}/x.bin`, Buffer.from('abc'));
    const dlink = await dlinkOf(e, f.fs_id);
    await new Promise((r) => setTimeout(r, 2100));
    const r = await getJson(`${dlink}&access_tokens=${e.token}`);
    assert.equal(r.status, 403);
    assert.equal(r.body.errno, 31360);
    e.emu.setOptions({ dlinkTtlSec: 3600 });
    const fresh = await dlinkOf(e, f.fs_id);
    assert.equal((await fetch(`${fresh}&access_tokens=${e.token}`, { redirect: 'manual' })).status, 302);
    e.emu.expireAccessTokens();
    const ex = await getJson(`${fresh}&access_tokens=${e.token}`);
    assert.equal(ex.status, 403);
    assert.equal(ex.body.errno, 111);
  } finally {
    await e.stop();
  }
});

test('client going away stops the transfer; the throughput cap still delivers every byte', async () => {
  const e = await startEmu();
  try {
    const data = randomBuffer(8 * 1024 * 1024, 9);
    const f = await upload(e, `${e.root}/big.bin`, data);
    const dl = await dlinkOf(e, f.fs_id);
    const r1 = await fetch(`${dl}&access_tokens=${e.token}`, { redirect: 'manual' });
    const loc = r1.headers.get('location')!;
    e.emu.setOptions({ throughputBytesPerSec: 4 * 1024 * 1024 });
    const ac = new AbortController();
    const before = e.emu.counters.bytesServed;
    const res = await request(loc, { signal: ac.signal });
    let got = 0;
    try {
      for await (const chunk of res.body) {
        got += (chunk as Buffer).length;
        if (got > 64 * 1024) ac.abort();
      }
    } catch {
      // aborted on purpose
    }
    await new Promise((r) => setTimeout(r, 500));
    const served = e.emu.counters.bytesServed - before;
    assert.ok(served < data.length, `served ${served} of ${data.length} after the client left`);
    e.emu.setOptions({ throughputBytesPerSec: 16 * 1024 * 1024 });
    const capped = await fetch(loc, { headers: { Range: 'bytes=0-2097151' } });
    assert.deepEqual(Buffer.from(await capped.arrayBuffer()), data.subarray(0, 2 * 1024 * 1024));
  } finally {
    await e.stop();
  }
});
