/**
 * The download reader's parts on their own (src/terabox/download.ts), over a local HTTP server on
 * port 0 that serves a buffer with Range and cuts bodies at the byte a test chooses:
 *  - ResumableRead (the resume state machine): exact bytes after breaks, a resume asks from the byte
 *    reached, a 200 answer to a Range request is skipped into, breaks without progress are bounded,
 *    a refusal that is not retryable ends the stream with its code, destroy and the caller's signal
 *    stop a pending resume;
 *  - checkAnswer (issue 9.7): which answers fit a request, as a table; and over HTTP, answers that
 *    do not fit (200 with a wrong Content-Length, 206 with a wrong Content-Range, both with a cut
 *    body) are asked again, first GET and resumes alike, and the reader gets exactly the bytes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { MisfitError, ResumableRead, checkAnswer, discard, openFitting, type AnswerHead, type KnownFile, type OpenAt, type Opened, type ResumePolicy } from '../../src/terabox/download.js';
import { TbdavError, isTbdavError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import { failureOf, readAll } from './setup.js';

const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7) % 251));

/**
 * What the server does with the next requests: cut the body after n bytes, ignore Range (200),
 * answer a status, or lie in its headers (badLength: 200 with Content-Length 4096; badRange: 206
 * naming other bytes; both then send 700 bytes and close).
 */
type Script = { cutAfter?: number; ignoreRange?: boolean; status?: number; badLength?: boolean; badRange?: boolean };
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
    if (s.badLength || s.badRange) {
      const at = m ? Number(m[1]) : 0;
      const headers: Record<string, string> = s.badLength
        ? { 'content-length': '4096' }
        : { 'content-length': '4096', 'content-range': `bytes ${at + 1000}-${at + 5095}/${data.length}` };
      res.writeHead(s.badLength ? 200 : 206, headers);
      res.write(data.subarray(at, at + 700), () => setTimeout(() => res.destroy(), 10));
      return;
    }
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
const open: OpenAt = async (from, end, signal) => rawOpen(from, end, signal);

async function rawOpen(from: number, end: number, signal: AbortSignal): Promise<Opened> {
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
}

/** The same GET, checked as the DownloadReader checks every answer. */
function checkedOpen(known: KnownFile): OpenAt {
  return async (from, end, signal) => {
    const res = await request(base, { headers: { range: `bytes=${from}-${end}` }, signal });
    try {
      const fit = checkAnswer('read /f', from, end, res, known);
      return { body: res.body, skip: fit.skip };
    } catch (err) {
      discard(res.body);
      throw err;
    }
  };
}

const policy: ResumePolicy = { attempts: 3, baseMs: 1, maxMs: 5 };

async function read(start: number, end: number, over: { policy?: ResumePolicy; signal?: AbortSignal } = {}): Promise<{ stream: ResumableRead; first: Opened }> {
  const ac = new AbortController();
  const first = await open(start, end, ac.signal);
  const stream = new ResumableRead({ what: 'read /f', open, first, start, end, policy: over.policy ?? policy, logger: silentLogger(), signal: over.signal });
  return { stream, first };
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

// ---------------------------------------------------------------- answer checks (issue 9.7)

const known = (over: Partial<KnownFile> = {}): KnownFile => ({ size: 1000, md5s: ['84fd2e17018194c18b264048f851ba11'], etagMustBeMd5: false, ...over });
const head = (statusCode: number, headers: Record<string, string>): AnswerHead => ({ statusCode, headers });

function misfitOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MisfitError, String(err));
    assert.equal(err.code, 'TBDAV_RETRYABLE');
    return err.kind;
  }
  return 'fits';
}

test('checkAnswer: which answers fit bytes 100-199 of a 1000-byte file', () => {
  const cases: [AnswerHead, KnownFile, string][] = [
    [head(206, { 'content-range': 'bytes 100-199/1000', 'content-length': '100' }), known(), 'fits'],
    [head(206, { 'content-range': 'bytes 100-149/1000', 'content-length': '50' }), known(), 'fits'], // less than asked: the rest is resumed
    [head(206, { 'content-range': 'bytes 100-199/1000' }), known(), 'fits'], // no Content-Length (chunked)
    [head(200, { 'content-length': '1000' }), known(), 'fits'], // Range ignored: skipped into
    [head(200, {}), known(), 'fits'],
    [head(200, { 'content-length': '4096' }), known(), 'size'], // issue 9.7's answer
    [head(206, { 'content-range': 'bytes 100-199/4096' }), known(), 'size'],
    [head(206, { 'content-range': 'bytes 1100-1199/1000' }), known(), 'range'],
    [head(206, { 'content-range': 'bytes 100-299/1000' }), known(), 'range'], // more than asked
    [head(206, { 'content-range': 'bytes */1000' }), known(), 'range'],
    [head(206, {}), known(), 'range'],
    [head(206, { 'content-range': 'bytes 100-199/1000', 'content-length': '4096' }), known(), 'length'],
    [head(200, { 'content-length': 'lots' }), known(), 'length'],
    [head(204, {}), known(), 'status'],
    [head(206, { 'content-range': 'bytes 100-199/1000', etag: '"v2"' }), known({ etag: '"v1"' }), 'etag'], // another hop's version
    [head(206, { 'content-range': 'bytes 100-199/1000', etag: '"v1"' }), known({ etag: '"v1"' }), 'fits'],
    [head(206, { 'content-range': 'bytes 100-199/1000', etag: 'W/"v1"' }), known({ etag: '"v1"' }), 'fits'],
    // an ETag that is an md5, where the host is known to send the file md5: plain or obfuscated
    [head(206, { 'content-range': 'bytes 100-199/1000', etag: '"84fd2e17018194c18b264048f851ba11"' }), known({ etagMustBeMd5: true }), 'fits'],
    [head(206, { 'content-range': 'bytes 100-199/1000', etag: '"00a2d1a60t56e3f8f972ff76028d8da7"' }), known({ etagMustBeMd5: true }), 'fits'],
    [head(206, { 'content-range': 'bytes 100-199/1000', etag: '"d41d8cd98f00b204e9800998ecf8427e"' }), known({ etagMustBeMd5: true }), 'etag'],
    [head(206, { 'content-range': 'bytes 100-199/1000', etag: '"d41d8cd98f00b204e9800998ecf8427e"' }), known(), 'fits'], // not learned: may be any md5
  ];
  for (const [h, k, want] of cases) assert.equal(misfitOf(() => checkAnswer('read /f', 100, 199, h, k)), want, JSON.stringify(h));
  assert.equal(checkAnswer('read /f', 100, 199, head(200, { 'content-length': '1000' }), known()).skip, 100);
  assert.equal(checkAnswer('read /f', 100, 199, head(206, { 'content-range': 'bytes 100-199/1000', etag: '"00a2d1a60t56e3f8f972ff76028d8da7"' }), known()).etagMd5, '84fd2e17018194c18b264048f851ba11');
});

test('answers that do not fit (200 with a wrong length, 206 with a wrong range, cut bodies) are asked again before any byte, and on resumes', async () => {
  const k: KnownFile = { size: data.length, md5s: [], etagMustBeMd5: false };
  reset([{ badLength: true }, { badRange: true }, { cutAfter: 50_000 }, { badRange: true }, { badLength: true }]);
  const o = checkedOpen(k);
  const first = await openFitting('read /f', o, 10, 180_009, policy, silentLogger(), {});
  const stream = new ResumableRead({ what: 'read /f', open: o, first, start: 10, end: 180_009, policy, logger: silentLogger() });
  const got = await readAll(stream.stream);
  assert.ok(got.equals(data.subarray(10, 180_010)), 'exactly the bytes, none of the 700 bogus ones');
  assert.deepEqual(seen, ['bytes=10-180009', 'bytes=10-180009', 'bytes=10-180009', 'bytes=50010-180009', 'bytes=50010-180009', 'bytes=50010-180009']);
});

test('a host that keeps answering another size: the first GET gives up with TBDAV_INTEGRITY after policy.attempts tries', async () => {
  const k: KnownFile = { size: data.length + 1, md5s: [], etagMustBeMd5: false };
  reset([]);
  const err = await failureOf(openFitting('read /f', checkedOpen(k), 0, 99, policy, silentLogger(), {}));
  assert.ok(isTbdavError(err, 'TBDAV_INTEGRITY'), String(err));
  assert.equal(seen.length, 1 + policy.attempts);
});
