/**
 * The write-back queue (src/vfs/writeback.ts) and its journal (src/vfs/journal.ts) over MemoryRemote
 * and real temp dirs: accept -> durable journal -> background upload; pending files list and read
 * from the spool; supersede, DELETE and MOVE of pending files; spool bound -> TBDAV_INSUFFICIENT_STORAGE;
 * retries with backoff (journalled, so a restart keeps it); permanent refusals stop the upload but
 * keep it (readable, reported at every start) until retried or removed; restart resumes every
 * journalled upload; close() drains.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { TbdavError, type ErrorCode } from '../../src/shared/errors.js';
import type { SpooledFile, WriteOptions, WriteResult } from '../../src/remote/types.js';
import { spoolBody } from '../../src/vfs/spool.js';
import { Journal } from '../../src/vfs/journal.js';
import { writeFileAtomic } from '../../src/shared/atomic-file.js';
import { WritebackQueue, type WritebackOptions } from '../../src/vfs/writeback.js';
import { GatedMemoryRemote } from '../helpers/gated-remote.js';
import { captureLogger } from '../helpers/logs.js';

/** MemoryRemote behind a gate (writes wait while closed) with scripted write failures. */
class GatedRemote extends GatedMemoryRemote {
  writes: string[] = [];
  failures: ErrorCode[] = [];
  override async write(p: string, f: SpooledFile, o: WriteOptions): Promise<WriteResult> {
    this.writes.push(p);
    await this.passGate(`write ${p}`, o.signal);
    const code = this.failures.shift();
    if (code) throw new TbdavError(code, `write ${p}: scripted ${code}`);
    return this.inner.write(p, f, o);
  }
}

interface Rig {
  dir: string;
  remote: GatedRemote;
  q: WritebackQueue;
  stored: string[];
  failed: { path: string; code: string }[];
  spool(content: Buffer | string): Promise<SpooledFile>;
  open(extra?: Partial<WritebackOptions>): Promise<WritebackQueue>;
  content(path: string): Promise<Buffer>;
  journalFiles(): Promise<string[]>;
  close(): Promise<void>;
}

async function rig(extra: Partial<WritebackOptions> = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-wb-'));
  const remote = new GatedRemote();
  const stored: string[] = [];
  const failed: { path: string; code: string }[] = [];
  const open = (more: Partial<WritebackOptions> = {}): Promise<WritebackQueue> =>
    WritebackQueue.open({
      remote,
      journalDir: join(dir, 'state', 'writeback'),
      spoolDir: join(dir, 'cache', 'writeback'),
      retryBaseMs: 5,
      retryMaxMs: 20,
      onStored: (p) => {
        stored.push(p);
      },
      onFailed: (p, e) => failed.push({ path: p, code: e.code }),
      ...extra,
      ...more,
    });
  const r: Rig = {
    dir,
    remote,
    q: await open(),
    stored,
    failed,
    spool: (content) => spoolBody(Readable.from([Buffer.from(content)]), { cacheDir: join(dir, 'cache'), durable: true }),
    open,
    async content(path) {
      const s = await remote.inner.openRead(path);
      const parts: Buffer[] = [];
      for await (const c of s) parts.push(c as Buffer);
      return Buffer.concat(parts);
    },
    async journalFiles() {
      return (await readdir(join(dir, 'state', 'writeback'))).sort();
    },
    async close() {
      remote.open();
      await r.q.close({ drainMs: 1000 });
      await rm(dir, { recursive: true, force: true });
    },
  };
  return r;
}

async function readStream(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('enqueue: durable journal entry before it returns, upload in the background, then journal and body gone', async () => {
  const r = await rig();
  try {
    r.remote.close();
    const up = await r.q.enqueue('/a.txt', await r.spool('hello write-back'), { mtime: 1_700_000_000_000 });
    const files = await r.journalFiles();
    assert.equal(files.length, 1);
    const entry = JSON.parse(await readFile(join(r.dir, 'state', 'writeback', files[0]!), 'utf8'));
    assert.equal(entry.path, '/a.txt');
    assert.equal(entry.size, 16);
    assert.deepEqual(entry.blockMd5s.length, 1);
    assert.equal(typeof entry.contentMd5, 'string');
    assert.equal((await readdir(join(r.dir, 'cache', 'spool'))).length, 0, 'the spool file was taken over');
    assert.deepEqual(r.q.pending('/a.txt')?.size, 16);
    r.remote.open();
    const res = await up.done;
    assert.equal(res.entry.size, 16);
    assert.equal((await r.content('/a.txt')).toString(), 'hello write-back');
    assert.deepEqual(await r.journalFiles(), []);
    assert.deepEqual((await readdir(join(r.dir, 'cache', 'writeback'))).filter((f) => f.endsWith('.data')), []);
    assert.equal(r.q.pending('/a.txt'), undefined);
    assert.deepEqual(r.stored, ['/a.txt']);
    assert.equal(r.q.usage().pendingBytes, 0);
  } finally {
    await r.close();
  }
});

test('pending files list with their size and read from the spool (ranges too) until uploaded', async () => {
  const r = await rig();
  try {
    await r.remote.inner.mkdir('/d');
    r.remote.close();
    const data = randomBytes(100_000);
    await r.q.enqueue('/d/x.bin', await r.spool(data));
    await r.q.enqueue('/d/y.bin', await r.spool('y'));
    await r.q.enqueue('/top.bin', await r.spool('t'));
    assert.deepEqual(r.q.listPending('/d').map((p) => [p.path, p.size]), [['/d/x.bin', 100_000], ['/d/y.bin', 1]]);
    assert.deepEqual(r.q.pendingUnder('/d').length, 2);
    assert.ok((await readStream((await r.q.openPending('/d/x.bin'))!)).equals(data));
    assert.ok((await readStream((await r.q.openPending('/d/x.bin', { start: 10, end: 19 }))!)).equals(data.subarray(10, 20)));
    assert.equal(await r.q.openPending('/d/nothing'), undefined);
    r.remote.open();
    await Promise.all(['/d/x.bin', '/d/y.bin', '/top.bin'].map(async (p) => {
      while (r.q.pending(p)) await new Promise((res) => setTimeout(res, 5));
    }));
    assert.ok((await r.content('/d/x.bin')).equals(data));
  } finally {
    await r.close();
  }
});

test('a second PUT to the same path supersedes the first: only the newest content lands', async () => {
  const r = await rig();
  try {
    r.remote.close();
    const first = await r.q.enqueue('/s.txt', await r.spool('first'));
    const second = await r.q.enqueue('/s.txt', await r.spool('second'));
    await assert.rejects(first.done, { code: 'TBDAV_ABORTED' });
    assert.equal(r.q.pending('/s.txt')?.id, second.id);
    r.remote.open();
    await second.done;
    assert.equal((await r.content('/s.txt')).toString(), 'second');
    assert.deepEqual(await r.journalFiles(), []);
    assert.equal(r.q.usage().pendingBytes, 0);
  } finally {
    await r.close();
  }
});

test('DELETE of a pending file cancels it (nothing uploaded); MOVE retargets it (file or folder)', async () => {
  const r = await rig();
  try {
    await r.remote.inner.mkdir('/src');
    await r.remote.inner.mkdir('/dst');
    r.remote.close();
    const gone = await r.q.enqueue('/del.txt', await r.spool('to be deleted'));
    assert.equal(await r.q.remove('/del.txt'), 1);
    await assert.rejects(gone.done, { code: 'TBDAV_ABORTED' });
    const moved = await r.q.enqueue('/m.txt', await r.spool('moved content'));
    assert.equal(await r.q.move('/m.txt', '/m2.txt'), 1);
    const inFolder = await r.q.enqueue('/src/f.txt', await r.spool('in a folder'));
    assert.equal(await r.q.move('/src', '/dst/src'), 1);
    assert.equal(r.q.pending('/m.txt'), undefined);
    assert.equal(r.q.pending('/m2.txt')?.size, 13);
    assert.equal(r.q.pending('/dst/src/f.txt')?.size, 11);
    await r.remote.inner.mkdir('/dst/src');
    r.remote.open();
    await moved.done;
    await inFolder.done;
    assert.equal((await r.content('/m2.txt')).toString(), 'moved content');
    assert.equal((await r.content('/dst/src/f.txt')).toString(), 'in a folder');
    await assert.rejects(r.remote.inner.stat('/m.txt'), { code: 'TBDAV_NOT_FOUND' });
    await assert.rejects(r.remote.inner.stat('/del.txt'), { code: 'TBDAV_NOT_FOUND' });
    assert.deepEqual(await r.journalFiles(), []);
  } finally {
    await r.close();
  }
});

test('COPY of a pending file makes a pending copy of its own', async () => {
  const r = await rig();
  try {
    r.remote.close();
    await r.q.enqueue('/c.txt', await r.spool('copy me'));
    const copy = await r.q.copy('/c.txt', '/c2.txt');
    assert.ok(copy);
    r.remote.open();
    await copy.done;
    assert.equal((await r.content('/c2.txt')).toString(), 'copy me');
  } finally {
    await r.close();
  }
});

test('the spool is bounded: reserve and enqueue beyond spoolMaxBytes give TBDAV_INSUFFICIENT_STORAGE; space comes back after upload', async () => {
  const r = await rig({ spoolMaxBytes: 1000 });
  try {
    r.remote.close();
    const a = await r.q.enqueue('/a.bin', await r.spool(randomBytes(600)));
    assert.throws(() => r.q.reserve(500, 'PUT /b.bin'), { code: 'TBDAV_INSUFFICIENT_STORAGE' });
    const spooled = await r.spool(randomBytes(500));
    await assert.rejects(r.q.enqueue('/b.bin', spooled), { code: 'TBDAV_INSUFFICIENT_STORAGE' });
    await rm(spooled.localPath, { force: true });
    const res = r.q.reserve(400);
    assert.throws(() => r.q.reserve(1), { code: 'TBDAV_INSUFFICIENT_STORAGE' });
    res.release();
    assert.deepEqual(r.q.usage(), { pendingBytes: 600, reservedBytes: 0, maxBytes: 1000, pending: 1 });
    r.remote.open();
    await a.done;
    const again = r.q.reserve(900);
    const b = await r.q.enqueue('/b.bin', await r.spool(randomBytes(900)), { reservation: again });
    await b.done;
    assert.equal(r.q.usage().pendingBytes, 0);
    assert.equal(r.q.usage().reservedBytes, 0);
  } finally {
    await r.close();
  }
});

test('transient failures are retried with backoff; permanent ones stop but keep the upload (journalled as failed, body readable at its path), until retried', async () => {
  const r = await rig();
  try {
    r.remote.failures = ['TBDAV_RETRYABLE', 'TBDAV_AUTH', 'TBDAV_RETRYABLE'];
    const ok = await r.q.enqueue('/retry.txt', await r.spool('eventually'));
    await ok.done;
    assert.equal((await r.content('/retry.txt')).toString(), 'eventually');
    assert.equal(r.remote.writes.filter((p) => p === '/retry.txt').length, 4);
    const bad = await r.q.enqueue('/no-parent/x.txt', await r.spool('orphan'));
    await assert.rejects(bad.done, { code: 'TBDAV_CONFLICT' });
    assert.deepEqual(r.failed, [{ path: '/no-parent/x.txt', code: 'TBDAV_CONFLICT' }]);
    // issue 9: an acknowledged body is never dropped: the upload waits, journalled, for the user
    const files = await r.journalFiles();
    assert.equal(files.length, 1, 'still journalled');
    const entry = JSON.parse(await readFile(join(r.dir, 'state', 'writeback', files[0]!), 'utf8')) as { failed?: { code: string } };
    assert.equal(entry.failed?.code, 'TBDAV_CONFLICT');
    assert.equal(r.q.pending('/no-parent/x.txt')?.state, 'failed');
    assert.equal((await readStream((await r.q.openPending('/no-parent/x.txt'))!)).toString(), 'orphan', 'the body is still there, readable at its path');
    assert.equal(r.q.usage().pendingBytes, 6, 'the kept body counts against the spool bound');
    const writes = r.remote.writes.length;
    await new Promise((res) => setTimeout(res, 60));
    assert.equal(r.remote.writes.length, writes, 'not retried by itself');
    // the cause goes away (the folder is made); the user retries
    await r.remote.inner.mkdir('/no-parent');
    assert.equal(await r.q.retry('/no-parent/x.txt'), true);
    while (r.q.pending('/no-parent/x.txt')) await new Promise((res) => setTimeout(res, 5));
    assert.equal((await r.content('/no-parent/x.txt')).toString(), 'orphan');
    assert.deepEqual(await r.journalFiles(), []);
    assert.equal(r.q.usage().pendingBytes, 0);
    assert.equal(await r.q.retry('/nothing-here'), false);
  } finally {
    await r.close();
  }
});

test('unknown and non-retryable-looking failures are retried too (FATAL, BAD_REQUEST, NOT_FOUND, EXISTS, INTEGRITY twice): the upload lands', async () => {
  const r = await rig();
  try {
    r.remote.failures = ['TBDAV_FATAL', 'TBDAV_BAD_REQUEST', 'TBDAV_NOT_FOUND', 'TBDAV_EXISTS', 'TBDAV_INTEGRITY', 'TBDAV_INTEGRITY'];
    const up = await r.q.enqueue('/stubborn.txt', await r.spool('it lands'));
    await up.done;
    assert.equal((await r.content('/stubborn.txt')).toString(), 'it lands');
    assert.equal(r.remote.writes.filter((p) => p === '/stubborn.txt').length, 7);
    assert.deepEqual(r.failed, []);
  } finally {
    await r.close();
  }
});

test('quota full, refused name, file too large: each stops the upload and keeps it; remove gives it up (body deleted, journal cleared)', async () => {
  const r = await rig();
  try {
    for (const [i, code] of (['TBDAV_QUOTA', 'TBDAV_INVALID_NAME', 'TBDAV_TOO_LARGE'] as const).entries()) {
      r.remote.failures = [code];
      const up = await r.q.enqueue(`/p${i}.bin`, await r.spool(`body ${i}`));
      await assert.rejects(up.done, { code });
      assert.equal(r.q.pending(`/p${i}.bin`)?.state, 'failed');
      assert.equal(r.q.pending(`/p${i}.bin`)?.failed?.code, code);
    }
    assert.equal(r.remote.writes.length, 3, 'one attempt each');
    assert.equal((await r.journalFiles()).length, 3);
    assert.equal(await r.q.discardUpload('/p1.bin'), true);
    assert.equal(r.q.pending('/p1.bin'), undefined);
    assert.equal((await r.journalFiles()).length, 2);
    const bodies = (await readdir(join(r.dir, 'cache', 'writeback'))).filter((f) => f.endsWith('.data'));
    assert.equal(bodies.length, 2, 'the removed one\'s body is deleted');
    await assert.rejects(r.remote.inner.stat('/p1.bin'), { code: 'TBDAV_NOT_FOUND' });
    assert.equal(await r.q.discardUpload('/p1.bin'), false);
  } finally {
    await r.close();
  }
});

test('a refused upload survives restarts: reported in the log at every start, not retried by itself, retried on request', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-wb-failed-'));
  const remote = new GatedRemote();
  const opts = { remote, journalDir: join(dir, 'state', 'writeback'), spoolDir: join(dir, 'cache', 'writeback'), retryBaseMs: 5, retryMaxMs: 20 };
  try {
    const q1 = await WritebackQueue.open(opts);
    remote.failures = ['TBDAV_QUOTA'];
    const spool = await spoolBody(Readable.from([Buffer.from('full drive')]), { cacheDir: join(dir, 'cache'), durable: true });
    const up = await q1.enqueue('/q.bin', spool);
    await assert.rejects(up.done, { code: 'TBDAV_QUOTA' });
    await q1.close({ drainMs: 100 });
    for (let start = 0; start < 2; start++) {
      const cap = captureLogger();
      const q = await WritebackQueue.open({ ...opts, logger: cap.logger });
      assert.equal(q.pending('/q.bin')?.state, 'failed', `start ${start}: still failed`);
      assert.ok(cap.lines.some((l) => /\/q\.bin.*refused by the service \(TBDAV_QUOTA: the drive is full\).*uploads retry/.test(l)), `start ${start}: listed in the log`);
      assert.equal((await readStream((await q.openPending('/q.bin'))!)).toString(), 'full drive');
      await new Promise((res) => setTimeout(res, 50));
      assert.equal(remote.writes.length, 1, 'no attempt by itself');
      if (start === 1) {
        await q.retry('/q.bin');
        while (q.pending('/q.bin')) await new Promise((res) => setTimeout(res, 5));
        assert.equal((await remote.inner.stat('/q.bin')).size, 10);
      }
      await q.close({ drainMs: 100 });
    }
    assert.deepEqual((await readdir(join(dir, 'state', 'writeback'))).filter((f) => f.endsWith('.json')), []);
  } finally {
    remote.open();
    await rm(dir, { recursive: true, force: true });
  }
});

test('attempts and the next attempt time are journalled: a restart keeps the backoff instead of starting over', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-wb-backoff-'));
  const remote = new GatedRemote();
  const opts = { remote, journalDir: join(dir, 'state', 'writeback'), spoolDir: join(dir, 'cache', 'writeback') };
  try {
    // slow backoff: after 3 failures the next attempt is 4 s away
    const q1 = await WritebackQueue.open({ ...opts, retryBaseMs: 500, retryMaxMs: 60_000 });
    remote.failures = ['TBDAV_RETRYABLE', 'TBDAV_RETRYABLE', 'TBDAV_RETRYABLE'];
    const spool = await spoolBody(Readable.from([Buffer.from('later')]), { cacheDir: join(dir, 'cache'), durable: true });
    await q1.enqueue('/later.bin', spool);
    const jfile = async (): Promise<{ attempts: number; nextAttemptAt?: number; lastError?: string }> => {
      const [f] = (await readdir(opts.journalDir)).filter((n) => n.endsWith('.json'));
      return JSON.parse(await readFile(join(opts.journalDir, f!), 'utf8')) as { attempts: number; nextAttemptAt?: number };
    };
    // two failures in quick succession (0.25-0.5 s apart), then the third one
    while ((await jfile()).attempts < 3) await new Promise((res) => setTimeout(res, 20));
    const e = await jfile();
    assert.equal(e.lastError, 'TBDAV_RETRYABLE');
    assert.ok(e.nextAttemptAt! - Date.now() > 500, `next attempt journalled ${e.nextAttemptAt! - Date.now()} ms ahead`);
    await q1.close({ drainMs: 0 });
    const writes = remote.writes.length;
    const q2 = await WritebackQueue.open({ ...opts, retryBaseMs: 500, retryMaxMs: 60_000 });
    assert.equal(q2.pending('/later.bin')?.state, 'retrying');
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(remote.writes.length, writes, 'the restarted queue waits for the journalled time');
    assert.equal(await q2.retry('/later.bin'), true, 'retry now (the user asked)');
    while (q2.pending('/later.bin')) await new Promise((res) => setTimeout(res, 5));
    assert.equal((await remote.inner.stat('/later.bin')).size, 5);
    await q2.close({ drainMs: 100 });
  } finally {
    remote.open();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a journalled upload session that fails without progress is dropped: the next attempt starts a fresh one', async () => {
  const r = await rig();
  try {
    const seen: (string | undefined)[] = [];
    const inner = r.remote.write.bind(r.remote);
    r.remote.write = async (p, f, o) => {
      seen.push(o.resume);
      if (o.resume === 'stale-session') throw new TbdavError('TBDAV_BAD_REQUEST', `write ${p}: invalid uploadid (scripted)`);
      o.onResumeToken?.('fresh-session');
      return inner(p, f, o);
    };
    r.remote.close();
    const up = await r.q.enqueue('/s.bin', await r.spool('session'));
    await r.q.close({ drainMs: 0 });
    // the journal says a session was open (as after a kill mid-upload)
    const jdir = join(r.dir, 'state', 'writeback');
    const [f] = (await readdir(jdir)).filter((n) => n.endsWith('.json'));
    const entry = JSON.parse(await readFile(join(jdir, f!), 'utf8')) as Record<string, unknown>;
    await writeFileAtomic(join(jdir, f!), JSON.stringify({ ...entry, resume: 'stale-session' }));
    await assert.rejects(up.done, { code: 'TBDAV_ABORTED' });
    r.remote.open();
    r.q = await r.open();
    while (r.q.pending('/s.bin')) await new Promise((res) => setTimeout(res, 5));
    assert.deepEqual(seen.slice(-2), ['stale-session', undefined]);
    assert.equal((await r.content('/s.bin')).toString(), 'session');
  } finally {
    await r.close();
  }
});

test('restart: every journalled upload resumes and completes; superseded and orphaned leftovers are dropped', async () => {
  const r = await rig();
  try {
    await r.remote.inner.mkdir('/r');
    r.remote.close();
    const contents = new Map<string, Buffer>();
    for (let i = 0; i < 5; i++) {
      const data = randomBytes(1000 + i * 5000);
      contents.set(`/r/f${i}.bin`, data);
      await r.q.enqueue(`/r/f${i}.bin`, await r.spool(data));
    }
    // A crash between two journal writes: an older entry for f0 still there, an orphan body, a temp file.
    const jdir = join(r.dir, 'state', 'writeback');
    const entries = await Promise.all((await r.journalFiles()).map(async (f) => JSON.parse(await readFile(join(jdir, f), 'utf8')) as { path: string; seq: number; size: number }));
    const newest0 = entries.find((e) => e.path === '/r/f0.bin');
    assert.ok(newest0);
    const stale = { ...newest0, id: 'stale-0000', seq: newest0.seq - 1000, spoolFile: join(r.dir, 'cache', 'writeback', 'stale-0000.data') };
    await writeFile(stale.spoolFile, 'stale');
    stale.size = 5;
    await writeFileAtomic(join(jdir, 'stale-0000.json'), JSON.stringify(stale));
    await writeFile(join(r.dir, 'cache', 'writeback', 'orphan-1111.data'), 'orphan');
    await writeFile(join(jdir, 'half.json.123.tmp'), '{"trunc');
    // "kill -9": the old queue is simply abandoned (its uploads stay blocked); a new one opens the same dirs.
    const old = r.q;
    const remote2 = r.remote;
    const q2 = await WritebackQueue.open({ remote: remote2.inner, journalDir: jdir, spoolDir: join(r.dir, 'cache', 'writeback'), retryBaseMs: 5, retryMaxMs: 20 });
    r.q = q2;
    for (const p of contents.keys()) while (q2.pending(p)) await new Promise((res) => setTimeout(res, 5));
    for (const [p, data] of contents) assert.ok((await r.content(p)).equals(data), `${p} resumed and stored`);
    assert.deepEqual(await r.journalFiles(), []);
    const left = (await readdir(join(r.dir, 'cache', 'writeback'))).filter((f) => f.endsWith('.data'));
    assert.deepEqual(left, [], 'stale and orphan bodies removed');
    await old.close({ drainMs: 0 });
  } finally {
    await r.close();
  }
});

test('close(): refuses new uploads, drains those in flight, leaves the rest journalled for the next start', async () => {
  const r = await rig({ concurrency: 1 });
  try {
    r.remote.close();
    const a = await r.q.enqueue('/a.txt', await r.spool('a'));
    const b = await r.q.enqueue('/b.txt', await r.spool('b'));
    await new Promise((res) => setTimeout(res, 20)); // a is in flight, b waits for a slot
    const closing = r.q.close({ drainMs: 5000 });
    await assert.rejects(r.q.enqueue('/c.txt', await r.spool('c')), { code: 'TBDAV_RETRYABLE' });
    r.remote.open();
    await closing;
    await a.done;
    await assert.rejects(b.done, { code: 'TBDAV_ABORTED' });
    assert.equal((await r.content('/a.txt')).toString(), 'a');
    const files = await r.journalFiles();
    assert.equal(files.length, 1, 'b stays journalled');
    const q2 = await r.open();
    r.q = q2;
    while (q2.pending('/b.txt')) await new Promise((res) => setTimeout(res, 5));
    assert.equal((await r.content('/b.txt')).toString(), 'b');
  } finally {
    await r.close();
  }
});

test('journal: corrupt entries are set aside without blocking the others; writes are atomic files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-journal-'));
  try {
    const j = await Journal.open(dir);
    const e = { version: 1, id: 'abc-1', seq: 1, path: '/x', spoolFile: '/nowhere', size: 1, shardSize: 4194304, blockMd5s: ['m'], contentMd5: 'm', createdAt: 1, attempts: 0 };
    await j.put(e);
    await j.put({ ...e, attempts: 2 });
    await writeFile(join(dir, 'bad-2.json'), '{not json');
    const loaded = await j.load();
    assert.deepEqual(loaded.map((x) => [x.id, x.attempts]), [['abc-1', 2]]);
    assert.deepEqual((await readdir(dir)).sort(), ['abc-1.json', 'bad-2.json.corrupt']);
    await j.remove('abc-1');
    assert.deepEqual(await j.load(), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('MOVE racing the end of an upload: a finished upload is not retargeted (move returns 0, nothing re-journalled)', async () => {
  let unblock!: () => void;
  const blocked = new Promise<void>((r) => (unblock = r));
  let storedCalled!: () => void;
  const stored = new Promise<void>((r) => (storedCalled = r));
  const r = await rig({
    onStored: async () => {
      storedCalled();
      await blocked; // the upload is stored; its clean-up waits here
    },
  });
  try {
    const up = await r.q.enqueue('/race.txt', await r.spool('racing'));
    await stored; // remote.write succeeded, finish() is in progress
    const moving = r.q.move('/race.txt', '/raced.txt');
    unblock();
    assert.equal(await moving, 0, 'nothing was retargeted');
    await up.done;
    assert.equal((await r.content('/race.txt')).toString(), 'racing', 'stored at the old path: the caller moves it on the remote');
    assert.equal(r.q.pending('/raced.txt'), undefined);
    assert.deepEqual(await r.journalFiles(), []);
    assert.deepEqual(r.remote.writes, ['/race.txt']);
  } finally {
    await r.close();
  }
});
