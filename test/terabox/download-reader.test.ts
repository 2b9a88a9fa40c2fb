/**
 * The resume state machine of the download reader (ResumableRead in src/terabox/download.ts) on its
 * own, over a local HTTP server on port 0 that serves a buffer with Range and cuts bodies at the
 * byte a test chooses: exact bytes after breaks, a resume asks from the byte reached, a 200 answer
 * to a Range request is skipped into, breaks without progress are bounded, a refusal that is not
 * retryable ends the stream with its code, destroy and the caller's signal stop a pending resume.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { ResumableRead, type OpenAt, type Opened, type ResumePolicy } from '../../src/terabox/download.js';
import { TbdavError, isTbdavError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import { readAll } from './setup.js';

const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7) % 251));

/** What the server does with the next requests: cut the body after n bytes, ignore Range (200), or answer a status. */
type Script = { cutAfter?: number; ignoreRange?: boolean; status?: number };
let script: Script[] = [];
const seen: string[] = [];
let server: http.Server;
let base: string;

before(async () => {
  server = http.createServer((req, res) => {
    const range = req.headers.range ?? '';
    seen.push(range);
    const s = script.shift() ?? {};
    if (s.status) {
      res.writeHead(s.status, { 'content-type': 'text/plain' }).end('no');
      return;
    }
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    let start = 0;
    let end = data.length - 1;
    let status = 200;
    const headers: Record<string, string> = { etag: '"v1"' };
    if (m && !s.ignoreRange) {
      start = Number(m[1]);
      if (m[2]) end = Math.min(end, Number(m[2]));
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${data.length}`;
    }
    const body = data.subarray(start, end + 1);
    headers['content-length'] = String(body.length);
    res.writeHead(status, headers);
    if (s.cutAfter === undefined) {
      res.end(body);
      return;
    }
    res.write(body.subarray(0, s.cutAfter), () => setTimeout(() => res.destroy(), 10));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/f`;
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

/** The opener a reader is given: one GET of from..end; HTTP errors become TbdavErrors. */
const open: OpenAt = async (from, end, signal) => {
  const res = await request(base, { headers: { range: `bytes=${from}-${end}` }, signal });
  if (res.statusCode === 404) {
    await res.body.dump();
    throw new TbdavError('TBDAV_NOT_FOUND', 'gone');
  }
  if (res.statusCode >= 500) {
    await res.body.dump();
    throw new TbdavError('TBDAV_RETRYABLE', `HTTP ${res.statusCode}`);
  }
  return { body: res.body, skip: res.statusCode === 200 ? from : 0 } satisfies Opened;
};

const policy: ResumePolicy = { attempts: 3, baseMs: 1, maxMs: 5 };

async function read(start: number, end: number, over: { policy?: ResumePolicy; signal?: AbortSignal } = {}): Promise<{ stream: ResumableRead; first: Opened }> {
  const ac = new AbortController();
  const first = await open(start, end, ac.signal);
  const stream = new ResumableRead({ what: 'read /f', open, first, start, end, policy: over.policy ?? policy, logger: silentLogger(), signal: over.signal });
  return { stream, first };
}

async function failureOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected a failure');
}

function reset(next: Script[]): void {
  script = next;
  seen.length = 0;
}

test('bodies cut twice: exact bytes, each reopen asks from the byte reached', async () => {
  reset([{ cutAfter: 70_000 }, { cutAfter: 1 }]);
  const { stream } = await read(100, 150_099);
  const got = await readAll(stream.stream);
  assert.ok(got.equals(data.subarray(100, 150_100)));
  assert.deepEqual(seen, ['bytes=100-150099', 'bytes=70100-150099', 'bytes=70101-150099']);
  assert.equal(stream.delivered, 150_000);
});

test('a 200 answer to a Range request (the host ignored it) is skipped into, on the first GET and on a resume', async () => {
  reset([{ ignoreRange: true, cutAfter: 5000 }, { ignoreRange: true }]);
  const { stream } = await read(1000, 9999);
  const got = await readAll(stream.stream);
  assert.ok(got.equals(data.subarray(1000, 10_000)));
  assert.deepEqual(seen, ['bytes=1000-9999', 'bytes=5000-9999']);
});

test('retryable refusals while reopening count as breaks; then the rest arrives', async () => {
  reset([{ cutAfter: 10 }, { status: 503 }, { status: 503 }]);
  const { stream } = await read(0, data.length - 1);
  const got = await readAll(stream.stream);
  assert.ok(got.equals(data));
  assert.equal(seen.length, 4);
});

test('breaks without progress are bounded by policy.attempts, then TBDAV_RETRYABLE', async () => {
  reset([{ cutAfter: 10 }, { cutAfter: 0 }, { cutAfter: 0 }, { cutAfter: 0 }, { cutAfter: 0 }]);
  const { stream } = await read(0, data.length - 1);
  const err = await failureOf(readAll(stream.stream));
  assert.ok(isTbdavError(err, 'TBDAV_RETRYABLE'), String(err));
  assert.equal(seen.length, 1 + 3, 'the first GET and three reopens');
});

test('a refusal that is not retryable ends the stream with its code', async () => {
  reset([{ cutAfter: 10 }, { status: 404 }]);
  const { stream } = await read(0, data.length - 1);
  const err = await failureOf(readAll(stream.stream));
  assert.ok(isTbdavError(err, 'TBDAV_NOT_FOUND'), String(err));
});

test("the caller's signal during the backoff: TBDAV_ABORTED at once, no reopen", async () => {
  reset([{ cutAfter: 10 }]);
  const ac = new AbortController();
  const { stream } = await read(0, data.length - 1, { policy: { attempts: 3, baseMs: 5000, maxMs: 5000 }, signal: ac.signal });
  setTimeout(() => ac.abort(), 100);
  const err = await failureOf(readAll(stream.stream));
  assert.ok(isTbdavError(err, 'TBDAV_ABORTED'), String(err));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen.length, 1);
});

test('destroying the stream during the backoff cancels the reopen', async () => {
  reset([{ cutAfter: 10 }]);
  const { stream } = await read(0, data.length - 1, { policy: { attempts: 3, baseMs: 300, maxMs: 300 } });
  stream.stream.on('error', () => undefined);
  stream.stream.once('data', () => setTimeout(() => stream.stream.destroy(), 30));
  await new Promise((r) => stream.stream.once('close', r));
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(seen.length, 1, 'no GET after destroy');
});
