/**
 * HTTP plumbing of the emulator: JSON answers, small form bodies (urlencoded or multipart),
 * a streaming multipart reader that writes one file field to disk (superfile2), and RateGate,
 * which caps a byte flow's throughput (uploads here, downloads in routes-download.ts).
 */
import { createWriteStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { sleep } from './util.js';

export const FORM_LIMIT_BYTES = 1024 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(text)) });
  res.end(text);
}

/** Read a whole (small) body. Over `limit` the rest is drained and `tooLarge` is set. */
export async function readSmallBody(req: IncomingMessage, limit = FORM_LIMIT_BYTES): Promise<{ body: Buffer; tooLarge: boolean }> {
  const parts: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) tooLarge = true;
    else parts.push(chunk);
  }
  return { body: Buffer.concat(parts), tooLarge };
}

export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data/i.test(contentType)) return undefined;
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** Parse a buffered multipart body into text fields (file contents are kept as latin1 text). */
export function parseMultipartFields(body: Buffer, boundary: string): Map<string, string> {
  const out = new Map<string, string>();
  const delim = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    pos += delim.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // closing --
    const headEnd = body.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) break;
    const head = body.subarray(pos, headEnd).toString('utf8');
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), headEnd + 4);
    if (next < 0) break;
    const name = /name="([^"]*)"/i.exec(head)?.[1];
    if (name !== undefined) out.set(name, body.subarray(headEnd + 4, next).toString('utf8'));
    pos = next + 2;
  }
  return out;
}

/** Why a POST body was not read as a form. */
export type FormRefusal = 'too-large' | 'no-content-type' | 'bad-content-type';

/**
 * Form fields of a POST: `application/x-www-form-urlencoded` (curl --data-urlencode, the spec's
 * openapi examples) or `multipart/form-data` (curl --form, its OAuth examples). A body without a
 * Content-Type, or of another type, is refused (not guessed); an empty body without one is an
 * empty form.
 */
export async function readForm(req: IncomingMessage): Promise<Map<string, string> | FormRefusal> {
  const { body, tooLarge } = await readSmallBody(req);
  if (tooLarge) return 'too-large';
  const ct = req.headers['content-type'];
  const out = new Map<string, string>();
  if (ct === undefined || ct.trim() === '') return body.length === 0 ? out : 'no-content-type';
  const boundary = multipartBoundary(ct);
  if (boundary) return parseMultipartFields(body, boundary);
  if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(ct)) return 'bad-content-type';
  for (const [k, v] of new URLSearchParams(body.toString('utf8'))) out.set(k, v);
  return out;
}

/** Caps a byte flow at `rate()` bytes/s (0 = none) measured from the first byte. */
export class RateGate {
  private start = 0;
  private bytes = 0;
  constructor(private readonly rate: () => number) {}
  /** Milliseconds to wait after `n` more bytes to keep the average at the rate. */
  delayFor(n: number): number {
    const r = this.rate();
    if (!r || r <= 0) return 0;
    if (this.start === 0) this.start = Date.now();
    this.bytes += n;
    const due = this.start + (this.bytes / r) * 1000;
    return Math.max(0, due - Date.now());
  }
  sliceSize(): number {
    const r = this.rate();
    return r > 0 ? Math.max(1024, Math.floor(r / 20)) : Infinity;
  }
}

export interface ReceivedFile {
  found: boolean;
  size: number;
  md5: string;
  /** Names of every part of the body (the file field included). */
  fields: string[];
}

/**
 * Stream the multipart field `field` of the request into `destPath` (md5 computed on the way).
 * Other fields are discarded. Memory use is bounded by the chunk size.
 */
export async function receiveMultipartFile(
  req: IncomingMessage,
  boundary: string,
  field: string,
  destPath: string,
  opts: { rate: () => number; onBytes: (n: number) => void },
): Promise<ReceivedFile> {
  const delim = Buffer.from(`\r\n--${boundary}`);
  const gate = new RateGate(opts.rate);
  let pending: Buffer = Buffer.from('\r\n'); // so that the first boundary also starts with CRLF
  type State = 'preamble' | 'afterDelim' | 'headers' | 'body' | 'done';
  let state: State = 'preamble';
  let writing = false;
  let found = false;
  let size = 0;
  const fields: string[] = [];
  const hash = createHash('md5');
  const ws = createWriteStream(destPath);
  const wsError = new Promise<never>((_, reject) => ws.once('error', reject));
  wsError.catch(() => undefined);
  const write = async (buf: Buffer): Promise<void> => {
    if (!writing || buf.length === 0) return;
    size += buf.length;
    hash.update(buf);
    if (!ws.write(buf)) await Promise.race([once(ws, 'drain'), wsError]);
  };
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      opts.onBytes(chunk.length);
      const wait = gate.delayFor(chunk.length);
      if (wait > 0) await sleep(wait);
      if (state === 'done') continue;
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      for (;;) {
        if (state === 'preamble' || state === 'body') {
          const i = pending.indexOf(delim);
          if (i < 0) {
            const keep = delim.length - 1;
            if (pending.length > keep) {
              if (state === 'body') await write(pending.subarray(0, pending.length - keep));
              pending = pending.subarray(pending.length - keep);
            }
            break;
          }
          if (state === 'body') await write(pending.subarray(0, i));
          if (writing) writing = false;
          pending = pending.subarray(i + delim.length);
          state = 'afterDelim';
        } else if (state === 'afterDelim') {
          if (pending.length < 2) break;
          if (pending[0] === 0x2d && pending[1] === 0x2d) {
            state = 'done';
            break;
          }
          state = 'headers';
        } else if (state === 'headers') {
          const i = pending.indexOf('\r\n\r\n');
          if (i < 0) {
            if (pending.length > 16 * 1024) throw new Error('multipart headers too long');
            break;
          }
          const head = pending.subarray(0, i).toString('utf8');
          pending = pending.subarray(i + 4);
          const name = /name="([^"]*)"/i.exec(head)?.[1];
          if (name !== undefined) fields.push(name);
          if (name === field && !found) {
            found = true;
            writing = true;
          }
          state = 'body';
        } else {
          break;
        }
      }
    }
  } finally {
    ws.end();
  }
  await Promise.race([once(ws, 'close'), wsError]);
  return { found: found && state === 'done', size, md5: hash.digest('hex'), fields };
}
