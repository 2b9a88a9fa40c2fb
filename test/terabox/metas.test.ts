/**
 * Batched existence checks (issue 10): Batcher (src/terabox/batcher.ts) and MetaLookup
 * (src/terabox/metas.ts) — lookups made together share one filemetas call, counted by the
 * emulator; each caller gets its own path's answer. (150 paths in 2 calls over the whole stack:
 * test/economy/economy.test.ts.)
 *
 * No timing assertions: the lookups of a test are all asked in the same tick, so they fall in one
 * batching window whatever the machine's load.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, type BatchResult } from '../../src/terabox/batcher.js';
import { MetaLookup } from '../../src/terabox/metas.js';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import type { FileMeta } from '../../src/terabox/api/types.js';
import { startRig, makeSpool, type Rig } from './setup.js';

// ------------------------------------------------------------------ Batcher

test('Batcher: keys asked together share one call, a key asked twice is sent once, each caller gets its own result', async () => {
  const calls: string[][] = [];
  const b = new Batcher<string, string>({
    maxBatch: 10,
    run: async (keys) => {
      calls.push(keys);
      return keys.map((k): BatchResult<string> => (k === 'bad' ? { error: new Error(`no ${k}`) } : { value: k.toUpperCase() }));
    },
  });
  const got = await Promise.allSettled(['a', 'b', 'a', 'bad', 'c'].map((k) => b.get(k)));
  assert.deepEqual(calls, [['a', 'b', 'bad', 'c']]);
  assert.deepEqual(
    got.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
    ['A', 'B', 'A', 'no bad', 'C'],
  );
  assert.equal(b.batches, 1);
});

test('Batcher: a full batch is sent at once (by count and by cost), the rest in the next', async () => {
  const calls: number[][] = [];
  const b = new Batcher<number, number>({
    maxBatch: 4,
    cost: (k) => k,
    maxCost: 10,
    run: async (keys) => {
      calls.push(keys);
      return keys.map((k) => ({ value: k * 2 }));
    },
  });
  // by count: 1..9 -> [1,2,3,4] [5] (cost 5+6 > 10) [6] [7] [8] [9]: each later key alone exceeds maxCost with the next
  const got = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8, 9].map((k) => b.get(k)));
  assert.deepEqual(got, [2, 4, 6, 8, 10, 12, 14, 16, 18]);
  assert.deepEqual(calls, [[1, 2, 3, 4], [5], [6], [7], [8], [9]]);
  // a key costing more than maxCost still goes (alone)
  assert.equal(await b.get(50), 100);
});

test('Batcher: a failed call fails its callers only; an aborted caller stops waiting, the others get their answers', async () => {
  let fail = true;
  const b = new Batcher<string, string>({
    maxBatch: 10,
    run: async (keys) => {
      if (fail) throw new Error('service down');
      return keys.map((k) => ({ value: k }));
    },
  });
  await assert.rejects(Promise.all([b.get('x'), b.get('y')]), /service down/);
  fail = false;
  const ac = new AbortController();
  const aborted = b.get('p', { signal: ac.signal, onAbort: () => new Error('caller left') });
  const other = b.get('q');
  ac.abort();
  await assert.rejects(aborted, /caller left/);
  assert.equal(await other, 'q');
});

// ------------------------------------------------------------------ MetaLookup over the emulator

let rig: Rig;
let remote: TeraboxRemote;
before(async () => {
  rig = await startRig();
  remote = new TeraboxRemote(rig.client, { root: rig.emu.appRoot, logger: rig.logger });
});
after(async () => {
  await rig.close();
});

test('long paths: a batch stays under the URL budget (more calls, every answer right)', async () => {
  await remote.mkdir('/long');
  const spool = await makeSpool(rig.dir, 'tiny2', 7);
  const stem = 'x'.repeat(200);
  const names = Array.from({ length: 40 }, (_, i) => `${stem}-${i}.bin`);
  for (const n of names) await remote.write(`/long/${n}`, spool, { overwrite: false });
  const before = rig.count('/openapi/api/filemetas');
  const got = await Promise.all(names.map((n) => remote.stat(`/long/${n}`)));
  const calls = rig.count('/openapi/api/filemetas') - before;
  assert.ok(calls > 1 && calls < names.length, `${calls} calls for ${names.length} long paths`);
  assert.deepEqual(
    got.map((e) => e.name),
    names,
  );
});

test('an item failing with another errno fails the lookups of that call, never "absent"', async () => {
  await remote.mkdir('/fate');
  rig.emu.setOptions({ faults: { rate: 1, seed: 3, kinds: ['itemErrno'], endpoints: ['/openapi/api/filemetas'] } });
  let got: PromiseSettledResult<unknown>[];
  try {
    got = await Promise.allSettled([remote.stat('/fate'), remote.stat('/fate/nothing')]);
  } finally {
    rig.emu.setOptions({ faults: undefined });
  }
  for (const r of got) {
    assert.equal(r.status, 'rejected');
    assert.notEqual((r as PromiseRejectedResult).reason.code, 'TBDAV_NOT_FOUND');
  }
});

// ------------------------------------------------------------------ MetaLookup fallbacks

/**
 * Answers the emulator never gives (it follows the spec's examples): a service failing a whole
 * multi-path call with -9, or naming an item differently. The source stands for the client's
 * filemetas (same signature and answer shape) and records each call's targets.
 */
function source(answer: (targets: string[]) => FileMeta[] | Error) {
  const calls: string[][] = [];
  return {
    calls,
    filemetas: async (targets: string[]): Promise<FileMeta[]> => {
      calls.push(targets);
      const a = answer(targets);
      if (a instanceof Error) throw a;
      return a;
    },
  };
}
const meta = (path: string | undefined, extra: Partial<FileMeta> = {}): FileMeta =>
  ({ errno: 0, fs_id: 1, isdir: 0, size: 3, server_filename: 'x', server_mtime: 1, server_ctime: 1, md5: '0'.repeat(32), ...(path === undefined ? {} : { path }), ...extra }) as FileMeta;

test('a service failing a whole multi-path call with -9: each path asked alone', async () => {
  const { TeraboxApiError } = await import('../../src/terabox/errors.js');
  const src = source((t) => (t.length > 1 ? new TeraboxApiError({ endpoint: 'filemetas', code: 'TBDAV_NOT_FOUND', errno: -9 }) : t[0] === '/a' ? [meta('/a')] : [{ errno: -9, path: t[0] } as FileMeta]));
  const m = new MetaLookup(src);
  const [a, b] = await Promise.all([m.get('/a'), m.get('/b')]);
  assert.equal(a?.path, '/a');
  assert.equal(b, null);
  assert.deepEqual(src.calls, [['/a', '/b'], ['/a'], ['/b']]);
});

test('an answer without its name in a multi-path call: that path is asked alone (the lone answer is then its own)', async () => {
  const src = source((t) => (t.length > 1 ? [meta('/a'), meta(undefined, { fs_id: 2 })] : [meta(undefined, { fs_id: 2 })]));
  const m = new MetaLookup(src);
  const [a, b] = await Promise.all([m.get('/a'), m.get('/b')]);
  assert.equal(a?.path, '/a');
  assert.equal(String(b?.fs_id), '2');
  assert.deepEqual(src.calls, [['/a', '/b'], ['/b']]);
});
