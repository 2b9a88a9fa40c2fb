/**
 * Helpers of the reliability tests (captureLogger is test/helpers/logs.ts), a raw HTTP/1.1 client over node:net (sends bytes node's own client would refuse: NUL, backslashes,
 * bad headers), a seeded PRNG, and a reader of the embedded emulator's persisted drive.
 */
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger, type Logger } from '../../src/shared/logger.js';

export { captureLogger, type CapturedLogger } from '../helpers/logs.js';

/** A seeded PRNG (mulberry32) so that a failing fuzz run can be replayed. */
export { prng } from '../helpers/random.js';

export interface RawAnswer {
  /** Status code of the first answer, undefined when the server closed without one. */
  status: number | undefined;
  head: string;
  body: Buffer;
  /** The socket closed or errored before any byte came back. */
  noAnswer: boolean;
  error?: string;
}

/**
 * Send raw bytes to host:port and read until the server closes the connection (send
 * `Connection: close`), or until timeoutMs, then destroy the socket. Interim 1xx answers are skipped.
 */
export function rawRequest(port: number, bytes: Buffer, timeoutMs = 15_000, host = '127.0.0.1'): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    let error: string | undefined;
    const sock = connect({ port, host });
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      let all = Buffer.concat(chunks);
      // Skip interim answers (100 Continue).
      while (/^HTTP\/1\.[01] 1\d\d/.test(all.subarray(0, 16).toString('latin1'))) {
        const end = all.indexOf('\r\n\r\n');
        if (end === -1) break;
        all = all.subarray(end + 4);
      }
      const sep = all.indexOf('\r\n\r\n');
      const head = (sep === -1 ? all : all.subarray(0, sep)).toString('latin1');
      const body = sep === -1 ? Buffer.alloc(0) : all.subarray(sep + 4);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      resolve({ status: m ? Number(m[1]) : undefined, head, body, noAnswer: all.length === 0, ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => {
      error = 'timeout';
      finish();
    }, timeoutMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', (e) => {
      error = e.message;
      finish();
    });
    // Write without half-closing: node's server aborts a request whose client sent FIN.
    sock.on('connect', () => {
      sock.write(bytes);
    });
  });
}

export interface EmulatorNode {
  path: string;
  isdir: boolean | number;
  size: number;
  md5?: string;
  blob?: string;
}

export interface EmulatorMeta {
  nodes: EmulatorNode[];
  sections?: { auth?: { access?: [string, unknown][]; refresh?: [string, unknown][] } };
}

/**
 * The emulator's persisted drive (<dataDir>/meta.json). The store writes it 50 ms after a change:
 * wait a little before reading so the latest state is on disk.
 */
export async function readEmulatorMeta(emulatorDataDir: string, settleMs = 300): Promise<EmulatorMeta> {
  await new Promise((r) => setTimeout(r, settleMs));
  return JSON.parse(await readFile(join(emulatorDataDir, 'meta.json'), 'utf8')) as EmulatorMeta;
}

/** A stack trace in an answer: V8 frames ("    at fn (file:1:2)") or node internals. */
export const STACK_TRACE_RE = /\n\s*at [^\n]*(?::\d+:\d+|\(native\))|node:internal|file:\/\/\/|\/node_modules\/|\.ts:\d+/;

interface ApiSpecLike {
  query?: Record<string, unknown>;
  form?: Record<string, unknown>;
}

function collectStrings(value: unknown, out: { key: string; value: string }[], key = ''): void {
  if (typeof value === 'string') {
    const t = value.trim();
    if ((t.startsWith('[') || t.startsWith('{')) && t.length > 1) {
      try {
        collectStrings(JSON.parse(t), out, key);
        return;
      } catch {
        // not JSON: keep it as a plain string
      }
    }
    out.push({ key, value });
  } else if (Array.isArray(value)) {
    for (const v of value) collectStrings(v, out, key);
  } else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    for (const [k, v] of Object.entries(o)) collectStrings(v, out, k);
    if (typeof o.dest === 'string' && typeof o.newname === 'string') out.push({ key: 'dest+newname', value: `${o.dest}/${o.newname}` });
  }
}

/**
 * Spy (not a mock) on every API call a TeraboxClient makes: records each drive path found in the
 * call's query and form (dir, path, target[], filelist[].path/dest/newname) and passes the call on.
 */
export function spyApiPaths(client: object): { endpoint: string; key: string; path: string }[] {
  const seen: { endpoint: string; key: string; path: string }[] = [];
  const c = client as { api: (name: string, spec: ApiSpecLike, opts: unknown) => Promise<unknown> };
  const orig = c.api.bind(client);
  c.api = (name, spec, opts) => {
    const found: { key: string; value: string }[] = [];
    collectStrings(spec.query ?? {}, found);
    collectStrings(spec.form ?? {}, found);
    for (const f of found) {
      if (f.value.startsWith('/') || f.key === 'newname' || f.key === 'dest+newname') seen.push({ endpoint: name, key: f.key, path: f.value });
    }
    return orig(name, spec, opts);
  };
  return seen;
}

/** True when `p` is `root` or a normalised path below it (no '.', '..', empty segments). */
export function isInsideRoot(p: string, root: string): boolean {
  if (p === root) return true;
  if (!p.startsWith(root + '/')) return false;
  return p
    .slice(root.length + 1)
    .split('/')
    .every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}
