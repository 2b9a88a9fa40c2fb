/**
 * Download host: /file/<md5> (the dlink: checks sign, expiry and the appended access token), then
 * as many redirects as the variant's dlinkHops says: 0 = the dlink answers the bytes itself;
 * 1 (default) = 302 to /content/<fs_id>; 2 = 302 to /hop/<fs_id>, which answers 302 to /content.
 * /content/<fs_id> answers the bytes, with Range: 200/206/416. Bytes stream from disk; reading
 * stops when the client goes away. The badLength/badRange faults strike where bytes are served.
 */
import { open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Ctx, type FaultKind, hmac, makeContentUrl, safeEqual } from './context.js';
import { RateGate, sendJson } from './http-io.js';
import { type Node, basenameOf } from './store.js';
import { requestId, sleep } from './util.js';

export const ERRNO_DL_UNAUTHORIZED = 31326;
export const ERRNO_DL_EXPIRED = 31360;
export const ERRNO_DL_NOT_FOUND = 31066;

function dlError(res: ServerResponse, status: number, errno: number, msg: string): void {
  sendJson(res, status, { error_code: errno, errno, error_msg: msg, request_id: requestId() });
}

/** Whether this download-host endpoint ('/file', '/hop', '/content') serves bytes under the variant in force. */
export function servesBytes(ctx: Ctx, key: string): boolean {
  return key === '/content' || (key === '/file' && ctx.opts.variant.dlinkHops === 0);
}

/** The middle hop of dlinkHops 2: a signed URL on the download host that redirects to the content URL. */
function makeHopUrl(ctx: Ctx, n: Node): string {
  const expires = Math.floor(Date.now() / 1000) + Math.max(ctx.opts.dlinkTtlSec, 60);
  const sign = hmac(ctx, `hop:${n.fs_id}:${expires}`);
  return `http://${ctx.hosts.download}/hop/${n.fs_id}?${new URLSearchParams({ expires: String(expires), sign }).toString()}`;
}

export async function handleDlink(ctx: Ctx, req: IncomingMessage, res: ServerResponse, url: URL, fault: FaultKind | undefined): Promise<void> {
  const q = url.searchParams;
  const fid = q.get('fid') ?? '';
  const sign = q.get('sign') ?? '';
  const expires = q.get('expires') ?? '';
  if (!fid || !sign || !/^\d+$/.test(expires) || !safeEqual(sign, hmac(ctx, `file:${fid}:${expires}`))) {
    dlError(res, 403, ERRNO_DL_UNAUTHORIZED, 'user is not authorized');
    return;
  }
  if (Number(expires) <= Date.now() / 1000) {
    dlError(res, 403, ERRNO_DL_EXPIRED, 'url expired');
    return;
  }
  // the dlink takes the token as `access_tokens` (3.4.8: "concatenate the access_tokens request parameters")
  const token = q.get('access_tokens') ?? undefined;
  const c = ctx.auth.checkAccess(token);
  if (!c.ok) {
    if (c.reason === 'expired') dlError(res, 403, 111, 'access token expired');
    else dlError(res, 403, -6, 'access token missing or invalid');
    return;
  }
  const m = /^(\d+)-250528-(\d+)$/.exec(fid);
  const n = m ? ctx.store.getById(Number(m[2])) : undefined;
  const md5 = url.pathname.slice('/file/'.length);
  if (!n || n.isdir || !n.blob || (n.md5 ?? '0') !== md5) {
    dlError(res, 404, ERRNO_DL_NOT_FOUND, 'file does not exist');
    return;
  }
  const hops = ctx.opts.variant.dlinkHops;
  if (hops === 0) {
    await serveBytes(ctx, req, res, n, { base: 0, total: n.size }, fault);
    return;
  }
  res.writeHead(302, { Location: hops === 2 ? makeHopUrl(ctx, n) : makeContentUrl(ctx, n), 'Content-Length': '0' });
  res.end();
}

/** /hop/<fs_id> (dlinkHops 2): check the sign and expiry, then 302 to the content URL. */
export function handleHop(ctx: Ctx, res: ServerResponse, url: URL): void {
  const id = Number(url.pathname.slice('/hop/'.length));
  const expires = url.searchParams.get('expires') ?? '';
  const sign = url.searchParams.get('sign') ?? '';
  if (!/^\d+$/.test(expires) || !safeEqual(sign, hmac(ctx, `hop:${id}:${expires}`))) {
    dlError(res, 403, ERRNO_DL_UNAUTHORIZED, 'user is not authorized');
    return;
  }
  if (Number(expires) <= Date.now() / 1000) {
    dlError(res, 403, ERRNO_DL_EXPIRED, 'url expired');
    return;
  }
  const n = Number.isSafeInteger(id) ? ctx.store.getById(id) : undefined;
  if (!n || n.isdir || !n.blob) {
    dlError(res, 404, ERRNO_DL_NOT_FOUND, 'file does not exist');
    return;
  }
  res.writeHead(302, { Location: makeContentUrl(ctx, n), 'Content-Length': '0' });
  res.end();
}

/** The pieces of [start, end] in each shard file of a blob (offsets within the shard file, inclusive). */
function* shardSlices(parts: number[], start: number, end: number): Generator<{ index: number; from: number; to: number }> {
  let off = 0;
  for (let i = 0; i < parts.length && off <= end; i++) {
    const size = parts[i]!;
    const from = Math.max(start, off);
    const to = Math.min(end, off + size - 1);
    if (from <= to) yield { index: i, from: from - off, to: to - off };
    off += size;
  }
}

const SEND_BUFFER = 1024 * 1024;
const SEND_BUFFERS = 3;

/**
 * The bytes [start, end] of a blob written to `res` from a few reusable 1 MiB buffers (each reused
 * once the socket has taken it): no allocation per chunk. The former read stream with 4 MiB chunks
 * allocated a fresh buffer per read, and the emulator spent a fifth of its time in GC and more in
 * page faults (bench get-1g, bench/README.md). Honours the throughput cap (read in slices, waits),
 * also when it is changed during the transfer; stops when the client goes away. Ends `res`, unless
 * `cutAfter` (the reset fault) is given: then the connection is cut once that many bytes are out.
 */
async function sendBlobRange(ctx: Ctx, res: ServerResponse, blob: string, parts: number[], start: number, end: number, cutAfter?: number): Promise<void> {
  const gate = new RateGate(() => ctx.opts.throughputBytesPerSec);
  const free: Buffer[] = Array.from({ length: SEND_BUFFERS }, () => Buffer.allocUnsafeSlow(SEND_BUFFER));
  let stopped = false;
  let failure: Error | undefined;
  let wake = (): void => {};
  const poke = (): void => {
    const w = wake;
    wake = () => {};
    w();
  };
  const onClose = (): void => {
    stopped = true;
    poke();
  };
  res.on('close', onClose);
  let sent = 0;
  const take = async (): Promise<Buffer | undefined> => {
    while (free.length === 0 && !stopped && failure === undefined) await new Promise<void>((r) => (wake = r));
    return stopped || failure !== undefined ? undefined : free.pop();
  };
  try {
    for (const { index, from, to } of shardSlices(parts, start, end)) {
      const fh = await open(ctx.store.partPath(blob, index), 'r');
      try {
        for (let pos = from; pos <= to; ) {
          const buf = await take();
          if (!buf) {
            if (failure) throw failure;
            return; // the client went away
          }
          const want = Math.min(SEND_BUFFER, to - pos + 1, gate.sliceSize(), cutAfter === undefined ? Infinity : cutAfter - sent);
          const { bytesRead } = await fh.read(buf, 0, want, pos);
          if (bytesRead === 0) throw new Error(`blob part ${index} shorter than recorded`);
          if (stopped) return;
          pos += bytesRead;
          ctx.counters.bytesServed += bytesRead;
          res.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead), (err) => {
            if (err) failure = err;
            free.push(buf);
            poke();
          });
          sent += bytesRead;
          const wait = gate.delayFor(bytesRead);
          if (wait > 0) await sleep(wait);
          if (cutAfter !== undefined && sent >= cutAfter) {
            await sleep(5); // let the bytes reach the socket, then cut
            res.socket?.destroy();
            res.destroy();
            return;
          }
        }
      } finally {
        await fh.close();
      }
    }
    if (failure) throw failure;
    res.end();
  } finally {
    res.off('close', onClose);
  }
}

type RangeResult = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/** One `bytes=` range (several ranges are answered with the whole body, as allowed). */
export function parseRange(header: string | undefined, total: number): RangeResult {
  if (!header) return { kind: 'full' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || total === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, total - n), end: total - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? total - 1 : Number(m[2]);
  if (m[2] !== '' && end < start) return { kind: 'full' };
  if (start >= total) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(end, total - 1) };
}

export async function handleContent(ctx: Ctx, req: IncomingMessage, res: ServerResponse, url: URL, fault: FaultKind | undefined): Promise<void> {
  const q = url.searchParams;
  const id = Number(url.pathname.slice('/content/'.length));
  const n = Number.isSafeInteger(id) ? ctx.store.getById(id) : undefined;
  const expires = q.get('expires') ?? '';
  const range = q.get('range') ?? '';
  const sign = q.get('sign') ?? '';
  if (!n || n.isdir || !n.blob) {
    dlError(res, 404, ERRNO_DL_NOT_FOUND, 'file does not exist');
    return;
  }
  if (!safeEqual(sign, hmac(ctx, `content:${n.fs_id}:${n.blob}:${expires}:${range}`))) {
    dlError(res, 403, ERRNO_DL_UNAUTHORIZED, 'user is not authorized');
    return;
  }
  if (Number(expires) <= Date.now() / 1000) {
    dlError(res, 403, ERRNO_DL_EXPIRED, 'url expired');
    return;
  }
  // a fixed slice (m3u8 segments) is served as a resource of its own
  let base = 0;
  let total = n.size;
  const sm = /^(\d+)-(\d+)$/.exec(range);
  if (sm) {
    base = Number(sm[1]);
    total = Math.min(n.size, Number(sm[2]) + 1) - base;
  }
  await serveBytes(ctx, req, res, n, { base, total }, fault);
}

/**
 * Answer the bytes of a file (or of its slice [base, base+total)) honouring Range, with the
 * download faults: reset (the answer starts, the connection is cut after half of the body, at
 * most 1 MiB), badLength (200 claiming a Content-Length that is not the size, body cut at half of
 * what it claims or holds), badRange (206 whose Content-Range is not the range asked: its start is
 * moved by half the length, or its total is one more for a 1-byte range; body cut at half).
 */
async function serveBytes(ctx: Ctx, req: IncomingMessage, res: ServerResponse, n: Node, slice: { base: number; total: number }, fault: FaultKind | undefined): Promise<void> {
  const { base, total } = slice;
  const headers: Record<string, string> = {
    'Content-Type': 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    ETag: `"${n.md5 ?? n.fs_id}"`,
    'Last-Modified': new Date(n.mtime * 1000).toUTCString(),
    'Content-Disposition': `attachment; filename*=UTF-8''${encodeURIComponent(basenameOf(n.path))}`,
  };
  const send = async (start: number, end: number, cutAfter?: number): Promise<void> => {
    try {
      await sendBlobRange(ctx, res, n.blob!, n.parts ?? [n.size], base + start, base + end, cutAfter);
    } catch (err) {
      ctx.logger.debug('emulator download: transfer ended early', { fs_id: n.fs_id, err: (err as Error).message });
      res.destroy();
    }
  };
  const cutNow = (): void => {
    res.flushHeaders();
    setTimeout(() => {
      res.socket?.destroy();
      res.destroy();
    }, 5);
  };
  const r = parseRange(req.headers.range, total);
  if (fault === 'badLength') {
    // a whole-body answer whatever was asked, claiming a length that is not the file's
    const claimed = total === 4096 ? 8192 : 4096;
    const cut = Math.floor(Math.min(total, claimed) / 2);
    res.writeHead(200, { ...headers, 'Content-Length': String(claimed) });
    if (req.method === 'HEAD' || cut === 0) cutNow();
    else await send(0, total - 1, cut);
    return;
  }
  if (fault === 'badRange') {
    const s = r.kind === 'partial' ? r.start : 0;
    const e = r.kind === 'partial' ? r.end : total - 1;
    if (e > s) {
      const s2 = s + Math.floor((e - s + 1) / 2);
      res.writeHead(206, { ...headers, 'Content-Range': `bytes ${s2}-${e}/${total}`, 'Content-Length': String(e - s2 + 1) });
      const cut = Math.floor((e - s2 + 1) / 2);
      if (req.method === 'HEAD' || cut === 0) cutNow();
      else await send(s2, e, cut);
    } else {
      res.writeHead(206, { ...headers, 'Content-Range': `bytes ${Math.max(0, s)}-${Math.max(0, s)}/${total + 1}`, 'Content-Length': '1' });
      cutNow();
    }
    return;
  }
  if (r.kind === 'unsatisfiable') {
    res.writeHead(416, { ...headers, 'Content-Range': `bytes */${total}`, 'Content-Length': '0' });
    res.end();
    return;
  }
  const start = r.kind === 'partial' ? r.start : 0;
  const end = r.kind === 'partial' ? r.end : total - 1;
  const length = Math.max(0, end - start + 1);
  if (r.kind === 'partial') {
    res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${total}`, 'Content-Length': String(length) });
  } else {
    res.writeHead(200, { ...headers, 'Content-Length': String(length) });
  }
  if (req.method === 'HEAD' || length === 0) {
    if (fault === 'reset') res.socket?.destroy();
    else res.end();
    return;
  }
  // reset: the answer starts and the connection is cut after half of the body (at most 1 MiB)
  const cutAfter = fault === 'reset' ? Math.max(1, Math.min(Math.floor(length / 2), 1024 * 1024)) : undefined;
  await send(start, end, cutAfter);
}
