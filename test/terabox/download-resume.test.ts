/**
 * TeraboxRemote.openRead when the download body breaks mid-way: it resumes from the byte reached
 * with Range (a fresh dlink when the cached one has expired meanwhile), the reader gets exactly the
 * bytes; it refuses to splice bytes of a changed file (TBDAV_INTEGRITY), gives up after a bounded
 * number of breaks without progress, and stops at once on the caller's signal or on destroy.
 *
 * The first tests run over real HTTP against the emulator (fault 'reset' on /content cuts a body
 * after at most 1 MiB); the others use a scripted client, because the emulator cannot change a
 * file's content under the same file id or break a body at a chosen byte.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import type { TeraboxClient, DlinkResponse } from '../../src/terabox/client.js';
import { isTbdavError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { Entry } from '../../src/remote/types.js';
import { BYTES_PATH, startRig, makeSpool, readAll, failureOf, type Rig } from './setup.js';

const MiB = 1024 * 1024;
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
let rig: Rig;

before(async () => {
  rig = await startRig();
});
after(async () => {
  await rig?.close();
});

test('a body reset mid-way is resumed from the byte reached: whole file and ranges come back exact', { timeout: 60_000 }, async () => {
  const remote = new TeraboxRemote(rig.client, { root: rig.emu.appRoot, resumeBaseMs: 5 });
  const f = await makeSpool(rig.dir, 'reset.bin', 6 * MiB + 333);
  await remote.write('/reset.bin', f, { overwrite: true });
  rig.emu.setOptions({ faults: { rate: 0.6, seed: 3, kinds: ['reset'], endpoints: [BYTES_PATH] } });
  const faults0 = rig.emu.counters.faultsInjected;
  const logs0 = rig.logs.length;
  try {
    for (let i = 0; i < 3; i++) {
      const got = await readAll(await remote.openRead('/reset.bin'));
      assert.equal(got.length, f.size);
      assert.equal(md5(got), md5(f.data), `round ${i}`);
    }
    for (const [a, b] of [[10, 3 * MiB], [5 * MiB, f.size - 1], [1, 1]] as const) {
      const got = await readAll(await remote.openRead('/reset.bin', { start: a, end: b }));
      assert.equal(md5(got), md5(f.data.subarray(a, b + 1)), `range ${a}-${b}`);
    }
  } finally {
    rig.emu.setOptions({ faults: { rate: 0 } });
  }
  assert.ok(rig.emu.counters.faultsInjected > faults0, 'resets were injected');
  assert.ok(rig.logs.slice(logs0).some((l) => /upstream broke at byte \d+.*resuming/.test(l)), 'the log names the resume');
});

test('a body broken after the dlink expired resumes with a fresh dlink', { timeout: 60_000 }, async () => {
  const remote = new TeraboxRemote(rig.client, { root: rig.emu.appRoot, resumeBaseMs: 5 });
  const f = await makeSpool(rig.dir, 'expire.bin', 3 * MiB);
  await remote.write('/expire.bin', f, { overwrite: true });
  // 1-second links (they expire at the next whole second after 1 s, so live at most 1 s) and
  // 0.8 MiB/s: the reset after 1 MiB comes at >= 1.25 s, when the cached link is surely dead.
  rig.emu.setOptions({ dlinkTtlSec: 1, throughputBytesPerSec: 0.8 * MiB, faults: { rate: 1, seed: 1, kinds: ['reset'], endpoints: [BYTES_PATH] } });
  const logs0 = rig.logs.length;
  try {
    const stream = await remote.openRead('/expire.bin');
    rig.emu.setOptions({ faults: { rate: 0 } }); // only the first body breaks
    const got = await readAll(stream);
    assert.equal(md5(got), md5(f.data));
  } finally {
    rig.emu.setOptions({ dlinkTtlSec: 3600, throughputBytesPerSec: 0, faults: { rate: 0 } });
  }
  const text = rig.logs.slice(logs0).join('\n');
  assert.match(text, /resuming/);
  assert.match(text, /dlink refused, asking a fresh one/);
});

// ---------------------------------------------------------------- scripted client

type Answer = (range: { start: number; end?: number }) => DlinkResponse;

function scripted(answers: Answer[]): { client: TeraboxClient; calls: { start: number; end?: number }[] } {
  const calls: { start: number; end?: number }[] = [];
  const client = {
    logger: silentLogger(),
    async download(ids: string[]) {
      return ids.map((id) => ({ fs_id: id, dlink: `http://cdn.invalid/file/${id}` }));
    },
    async openDlink(_dlink: string, range: { start: number; end?: number }, signal?: AbortSignal) {
      if (signal?.aborted) throw new Error('aborted');
      calls.push(range);
      const a = answers[Math.min(calls.length - 1, answers.length - 1)]!;
      return a(range);
    },
  };
  return { client: client as unknown as TeraboxClient, calls };
}

/** A body that sends `bytes` then fails like a reset connection. */
function breaking(bytes: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (sent) return;
      sent = true;
      if (bytes.length > 0) this.push(bytes);
      setTimeout(() => this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), 5);
    },
  });
}

function answer(data: Buffer, opts: { total?: number; etag?: string; cutAfter?: number } = {}): Answer {
  return (r) => {
    const end = r.end ?? data.length - 1;
    const slice = data.subarray(r.start, end + 1);
    const body = opts.cutAfter !== undefined ? breaking(slice.subarray(0, opts.cutAfter)) : Readable.from([slice]);
    return {
      statusCode: 206,
      headers: { 'content-range': `bytes ${r.start}-${end}/${opts.total ?? data.length}`, etag: opts.etag ?? '"v1"', 'content-length': String(slice.length) },
      body,
    };
  };
}

const entryOf = (size: number): Entry => ({ path: '/x.bin', name: 'x.bin', isDir: false, size, mtime: 0, ctime: 0, id: '42' });

test('scripted: two breaks, then the rest: exact bytes, each resume asks from the byte reached', async () => {
  const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  const { client, calls } = scripted([answer(data, { cutAfter: 300 }), answer(data, { cutAfter: 1 }), answer(data)]);
  const remote = new TeraboxRemote(client, { root: '/r', resumeBaseMs: 1 });
  const got = await readAll(await remote.openRead('/x.bin', { start: 100, end: 899 }, { entry: entryOf(1000) }));
  assert.deepEqual(got, data.subarray(100, 900));
  assert.deepEqual(calls, [{ start: 100, end: 899 }, { start: 400, end: 899 }, { start: 401, end: 899 }]);
});

test('scripted: a resumed answer for another file version (size or ETag changed) fails with TBDAV_INTEGRITY', async () => {
  const data = Buffer.alloc(1000, 7);
  for (const changed of [{ total: 2000 }, { etag: '"v2"' }]) {
    const { client } = scripted([answer(data, { cutAfter: 400 }), answer(data, changed)]);
    const remote = new TeraboxRemote(client, { root: '/r', resumeBaseMs: 1 });
    const err = await failureOf(readAll(await remote.openRead('/x.bin', undefined, { entry: entryOf(1000) })));
    assert.ok(isTbdavError(err, 'TBDAV_INTEGRITY'), `${JSON.stringify(changed)}: ${String(err)}`);
  }
});

test('scripted: breaks without progress are bounded (resumeAttempts), then TBDAV_RETRYABLE', async () => {
  const data = Buffer.alloc(1000, 1);
  const { client, calls } = scripted([answer(data, { cutAfter: 10 }), answer(data, { cutAfter: 0 })]);
  const remote = new TeraboxRemote(client, { root: '/r', resumeBaseMs: 1, resumeAttempts: 3 });
  const err = await failureOf(readAll(await remote.openRead('/x.bin', undefined, { entry: entryOf(1000) })));
  assert.ok(isTbdavError(err, 'TBDAV_RETRYABLE'), String(err));
  assert.equal(calls.length, 1 + 3, 'the first GET and three resumes');
});

test("scripted: the caller's signal during the backoff ends the stream with TBDAV_ABORTED and no new GET", async () => {
  const data = Buffer.alloc(1000, 2);
  const { client, calls } = scripted([answer(data, { cutAfter: 100 }), answer(data)]);
  const remote = new TeraboxRemote(client, { root: '/r', resumeBaseMs: 2000 });
  const ac = new AbortController();
  const stream = await remote.openRead('/x.bin', undefined, { entry: entryOf(1000), signal: ac.signal });
  setTimeout(() => ac.abort(), 100);
  const t0 = Date.now();
  const err = await failureOf(readAll(stream));
  assert.ok(isTbdavError(err, 'TBDAV_ABORTED'), String(err));
  assert.ok(Date.now() - t0 < 1500, 'did not wait out the backoff');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(calls.length, 1);
});

test('scripted: destroying the stream during the backoff cancels the resume', async () => {
  const data = Buffer.alloc(1000, 3);
  const { client, calls } = scripted([answer(data, { cutAfter: 100 }), answer(data)]);
  const remote = new TeraboxRemote(client, { root: '/r', resumeBaseMs: 300 });
  const stream = await remote.openRead('/x.bin', undefined, { entry: entryOf(1000) });
  stream.once('data', () => setTimeout(() => stream.destroy(), 50));
  stream.on('error', () => undefined);
  await new Promise((r) => stream.once('close', r));
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(calls.length, 1, 'no GET after destroy');
});

test('scripted: answers that are not the file (200 with a wrong Content-Length, 206 for other bytes; cut bodies) are asked again, first GET and resume alike: exactly the bytes (issue 9.7)', async () => {
  const data = Buffer.from(Array.from({ length: 9000 }, (_, i) => (i * 13) % 256));
  const bogus = (statusCode: number, headers: Record<string, string>): Answer => () => ({ statusCode, headers, body: breaking(Buffer.alloc(700, 0xee)) });
  const { client, calls } = scripted([
    bogus(200, { 'content-length': '4096' }),
    bogus(206, { 'content-range': 'bytes 5-4100/9000', 'content-length': '4096' }),
    answer(data, { cutAfter: 3000 }),
    bogus(206, { 'content-range': 'bytes 3000-8999/4096' }),
    answer(data),
  ]);
  const remote = new TeraboxRemote(client, { root: '/r', resumeBaseMs: 1 });
  const got = await readAll(await remote.openRead('/x.bin', undefined, { entry: entryOf(9000) }));
  assert.ok(got.equals(data), 'none of the bogus bytes reached the reader');
  assert.deepEqual(calls.map((c) => c.start), [0, 0, 0, 3000, 3000]);
});
