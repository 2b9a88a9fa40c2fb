import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Emu, api, dlinkOf, fetchDlink, md5, oauth, randomBuffer, startEmu, upload, verifyShare } from './emu-helpers.js';
import type { FaultOptions } from '../../src/emulator/index.js';

test('a restarted emulator keeps the drive, the tokens and the shares', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-emu-persist-'));
  try {
    const a = await startEmu({}, dir);
    const data = randomBuffer(5 * 1024 * 1024, 11);
    const f = await upload(a, `${a.root}/keep/data.bin`, data);
    assert.equal(f.errno, 0);
    const share = a.emu.createShare([`${a.root}/keep`], '');
    const { sekey: spd } = await verifyShare(a, share.surl, '');
    const token = a.token;
    await a.stop();
    const names = await readdir(dir);
    assert.ok(names.includes('meta.json'));
    assert.ok(!names.some((n) => n.endsWith('.tmp')), `temp files of the atomic write left behind: ${names.join(', ')}`);

    const b = await startEmu({}, dir);
    try {
      b.token = token;
      const l = await api(b, '/openapi/api/list', { query: { page: '1', num: '1000', dir: `${b.root}/keep` } });
      assert.equal(l.body.errno, 0, 'the old token still works');
      assert.equal(l.body.list[0].fs_id, f.fs_id);
      assert.equal(l.body.list[0].md5, f.md5);
      const res = await fetchDlink(b, await dlinkOf(b, f.fs_id));
      assert.equal(md5(Buffer.from(await res.arrayBuffer())), md5(data));
      assert.equal((await api(b, '/openapi/api/shorturlinfo', { query: { shorturl: share.shorturl, root: '1', spd } })).body.errno, 0, 'the share and its sekey survive');
      const g = await upload(b, `${b.root}/keep/new.txt`, Buffer.from('new'));
      assert.ok(g.fs_id > f.fs_id);
      // rapid upload still knows the content
      const blocks = [md5(data.subarray(0, 4 * 1024 * 1024)), md5(data.subarray(4 * 1024 * 1024))];
      const pre = await api(b, '/openapi/api/precreate', { form: { path: `${b.root}/again.bin`, autoinit: '1', block_list: JSON.stringify(blocks) } });
      assert.equal(pre.body.return_type, 2);
      assert.equal((await api(b, '/openapi/api/quota')).body.used, 2 * data.length + 3);
    } finally {
      await b.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

type Outcome = 'ok' | '503' | '31034' | 'reset';

async function outcome(e: Emu, path: string): Promise<Outcome> {
  try {
    const r = await fetch(`http://${e.emu.apiDomain}${path}?access_tokens=${encodeURIComponent(e.token)}`, { headers: { connection: 'close' } });
    if (r.status === 503) {
      await r.arrayBuffer();
      return '503';
    }
    const body = (await r.json()) as { errno: number };
    return body.errno === 31034 ? '31034' : 'ok';
  } catch {
    return 'reset';
  }
}

test('fault injection is deterministic with a seed and covers every kind', async () => {
  const faults: FaultOptions = { rate: 0.4, seed: 42 };
  const runs: Outcome[][] = [];
  for (let run = 0; run < 2; run++) {
    const e = await startEmu({ faults });
    try {
      const seq: Outcome[] = [];
      for (let i = 0; i < 40; i++) seq.push(await outcome(e, '/openapi/api/quota'));
      runs.push(seq);
      assert.equal(e.emu.counters.faultsInjected, seq.filter((s) => s !== 'ok').length);
      // OAuth is not faulted unless asked
      for (let i = 0; i < 5; i++) assert.equal((await oauth(e, '/oauth/tokeninfo', { access_token: e.token })).errno, 0);
    } finally {
      await e.stop();
    }
  }
  assert.deepEqual(runs[0], runs[1]);
  for (const k of ['ok', '503', '31034', 'reset'] as const) assert.ok(runs[0]!.includes(k), `kind ${k} in ${runs[0]!.join(',')}`);
  // another seed, another sequence
  const e = await startEmu({ faults: { rate: 0.4, seed: 7 } });
  try {
    const seq: Outcome[] = [];
    for (let i = 0; i < 40; i++) seq.push(await outcome(e, '/openapi/api/quota'));
    assert.notDeepEqual(seq, runs[0]);
  } finally {
    await e.stop();
  }
});

test('faults limited to endpoints and kinds; reset cuts a download mid-body; setOptions turns them off', async () => {
  const e = await startEmu();
  try {
    const data = randomBuffer(3 * 1024 * 1024, 4);
    const f = await upload(e, `${e.root}/f.bin`, data);
    const dlink = await dlinkOf(e, f.fs_id);
    e.emu.setOptions({ faults: { rate: 1, seed: 1, kinds: ['errno31034'], endpoints: ['/openapi/api/list'] } });
    assert.equal((await outcome(e, '/openapi/api/quota')), 'ok');
    assert.equal((await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: e.root } })).body.errno, 31034);
    e.emu.setOptions({ faults: { rate: 1, seed: 1, kinds: ['reset'], endpoints: ['/content'] } });
    const before = e.emu.counters.bytesServed;
    await assert.rejects(async () => {
      const res = await fetchDlink(e, dlink);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    });
    const served = e.emu.counters.bytesServed - before;
    assert.ok(served > 0 && served < data.length, `served ${served}`);
    e.emu.setOptions({ faults: { rate: 1, seed: 1, kinds: ['http5xx'], endpoints: ['/rest/2.0/pcs/superfile2'] } });
    const r = await upload(e, `${e.root}/g.bin`, Buffer.from('zz'));
    assert.equal(r._text, 'Service Unavailable');
    e.emu.setOptions({ faults: undefined });
    const res = await fetchDlink(e, dlink);
    assert.equal(md5(Buffer.from(await res.arrayBuffer())), md5(data));
  } finally {
    await e.stop();
  }
});

test('latency knob and counters', async () => {
  const e = await startEmu({ latencyMs: 20 });
  try {
    await api(e, '/openapi/api/quota');
    await api(e, '/openapi/api/quota');
    assert.equal(e.emu.counters.requests['/openapi/api/quota'], 2);
    e.emu.counters.reset();
    assert.deepEqual(e.emu.counters.requests, {});
    assert.equal(e.emu.counters.bytesServed, 0);
  } finally {
    await e.stop();
  }
});

test("phase 'after': the request is processed and only the answer is lost", async () => {
  const e = await startEmu();
  try {
    e.emu.setOptions({ faults: { rate: 1, seed: 3, kinds: ['reset'], endpoints: ['/openapi/api/create'], phase: 'after' } });
    await assert.rejects(api(e, '/openapi/api/create', { form: { path: `${e.root}/made-anyway`, isdir: '1', rtype: '0' } }));
    e.emu.setOptions({ faults: { rate: 1, seed: 3, kinds: ['http5xx'], endpoints: ['/openapi/api/create'], phase: 'after' } });
    const r = await api(e, '/openapi/api/create', { form: { path: `${e.root}/made-too`, isdir: '1', rtype: '0' } });
    assert.equal(r.status, 503);
    e.emu.setOptions({ faults: { rate: 1, seed: 3, kinds: ['http5xx'], endpoints: ['/openapi/api/create'] } });
    assert.equal((await api(e, '/openapi/api/create', { form: { path: `${e.root}/never`, isdir: '1', rtype: '0' } })).status, 503);
    e.emu.setOptions({ faults: undefined });
    const names = ((await api(e, '/openapi/api/list', { query: { page: '1', num: '1000', dir: e.root } })).body.list as { server_filename: string }[]).map((x) => x.server_filename);
    assert.deepEqual(names, ['made-anyway', 'made-too']);
    assert.equal(e.emu.counters.faultsInjected, 3);
  } finally {
    await e.stop();
  }
});
