/**
 * `terabox-dav uploads [list | retry PATH | remove PATH]`: the user's hand on write-back uploads,
 * above all those the service refused for good (they wait, kept locally, until the user acts).
 *
 *  - A running server owns the journal. Its WritebackQueue (option `control`) answers on a Unix
 *    socket next to the journal (controlSocketPath, mode 0600); the CLI asks it (askServer), so the
 *    change takes effect at once. The socket also keeps a second process from opening the same
 *    journal: serveUploadsControl refuses when the socket answers.
 *  - When no server answers (not running, or killed: a socket nobody listens on), the CLI works on
 *    the journal files directly (offlineUploads); the next start picks the changes up.
 *
 * Protocol: one JSON line each way. Request `{ op: 'list' }` or `{ op: 'retry' | 'remove', path }`;
 * answer `{ ok: true, uploads?: UploadRow[] }` or `{ ok: false, code, message }`.
 *
 * Concurrency: the server handles each connection on its own; the operations are the queue's
 * (event loop). Offline, nothing else touches the journal.
 */
import { createHash } from 'node:crypto';
import { chmod, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { Journal, type JournalEntry } from './journal.js';
import type { PendingInfo } from './writeback.js';

/** One upload as `uploads list` shows it. */
export type UploadRow = Pick<PendingInfo, 'path' | 'size' | 'state' | 'attempts' | 'createdAt' | 'lastError' | 'nextAttemptAt' | 'failed'>;

export type ControlRequest = { op: 'list' } | { op: 'retry' | 'remove'; path: string };
export type ControlAnswer = { ok: true; uploads?: UploadRow[] } | { ok: false; code: string; message: string };

/** What the server side needs of the queue. */
export interface UploadsAdmin {
  pendingUnder(path: string): PendingInfo[];
  retry(path: string): Promise<boolean>;
  discardUpload(path: string): Promise<boolean>;
}

const MAX_LINE = 64 * 1024;
/** Unix socket paths are limited to 108 bytes (sun_path) on Linux. */
const MAX_SOCKET_PATH = 100;

/** The control socket of the journal in `journalDir` (in the temp folder when that path would be too long). */
export function controlSocketPath(journalDir: string): string {
  const p = join(journalDir, 'control.sock');
  if (Buffer.byteLength(p) <= MAX_SOCKET_PATH) return p;
  return join(tmpdir(), `terabox-dav-${createHash('sha256').update(journalDir).digest('hex').slice(0, 16)}.sock`);
}

function rowOf(i: PendingInfo): UploadRow {
  const r: UploadRow = { path: i.path, size: i.size, state: i.state, attempts: i.attempts, createdAt: i.createdAt };
  if (i.lastError !== undefined) r.lastError = i.lastError;
  if (i.nextAttemptAt !== undefined) r.nextAttemptAt = i.nextAttemptAt;
  if (i.failed) r.failed = { ...i.failed };
  return r;
}

function parseRequest(line: string): ControlRequest {
  const v = JSON.parse(line) as Partial<{ op: string; path: unknown }>;
  if (v.op === 'list') return { op: 'list' };
  if ((v.op === 'retry' || v.op === 'remove') && typeof v.path === 'string' && v.path.startsWith('/')) return { op: v.op, path: v.path };
  throw new TbdavError('TBDAV_BAD_REQUEST', 'uploads: bad request');
}

function notFound(path: string): ControlAnswer {
  return { ok: false, code: 'TBDAV_NOT_FOUND', message: `no write-back upload is pending at ${path}` };
}

/** Answer one request with the live queue. */
async function answerLive(admin: UploadsAdmin, req: ControlRequest): Promise<ControlAnswer> {
  if (req.op === 'list') return { ok: true, uploads: admin.pendingUnder('/').map(rowOf) };
  const done = req.op === 'retry' ? await admin.retry(req.path) : await admin.discardUpload(req.path);
  return done ? { ok: true } : notFound(req.path);
}

/** Whether something answers on the socket. */
function probe(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false)); // ECONNREFUSED / ENOENT: nobody listens
  });
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(path);
  });
}

/**
 * Serve the control socket of `journalDir` for `admin` (the running queue). Throws TBDAV_CONFIG
 * when another live process serves it (two servers on one journal would upload each file twice
 * and race on its entries); a socket left by a killed process is replaced.
 */
export async function serveUploadsControl(admin: UploadsAdmin, journalDir: string, logger: Logger): Promise<{ close(): Promise<void> }> {
  const path = controlSocketPath(journalDir);
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', (err) => logger.debug(`uploads control: connection error`, { error: String(err) }));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE) return void sock.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = '';
      sock.pause();
      void (async (): Promise<ControlAnswer> => {
        try {
          return await answerLive(admin, parseRequest(line));
        } catch (err) {
          logger.debug(`uploads control: request failed`, { error: String(err) });
          const code = err instanceof TbdavError ? err.code : 'TBDAV_BAD_REQUEST';
          return { ok: false, code, message: err instanceof Error ? err.message : String(err) };
        }
      })().then((answer) => sock.end(JSON.stringify(answer) + '\n'));
    });
  });
  try {
    await listen(server, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    if (await probe(path)) {
      throw new TbdavError('TBDAV_CONFIG', `write-back ${journalDir}: another terabox-dav process is using this state folder (its control socket ${path} answers); stop it first`);
    }
    logger.debug(`uploads control: replacing the socket left by an earlier process`);
    await rm(path, { force: true });
    await listen(server, path);
  }
  await chmod(path, 0o600);
  return {
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(path, { force: true }).catch((err: unknown) => logger.debug(`uploads control: socket not removed`, { error: String(err) }));
    },
  };
}

/**
 * Ask the server that owns `journalDir`; undefined when none answers (then work offline).
 */
export function askServer(journalDir: string, req: ControlRequest, timeoutMs = 30_000): Promise<ControlAnswer | undefined> {
  const path = controlSocketPath(journalDir);
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = '';
    let connected = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new TbdavError('TBDAV_RETRYABLE', `uploads: the server did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      connected = true;
      sock.write(JSON.stringify(req) + '\n');
    });
    sock.on('data', (c: string) => (buf += c));
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as ControlAnswer);
      } catch (err) {
        reject(new TbdavError('TBDAV_FATAL', `uploads: unreadable answer from the server`, { cause: err }));
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!connected && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) resolve(undefined);
      else reject(new TbdavError('TBDAV_FATAL', `uploads: talking to the server failed (${err.code ?? err.message})`, { cause: err }));
    });
  });
}

/** The newest journal entry of each path. */
function newestByPath(entries: JournalEntry[]): Map<string, JournalEntry> {
  const m = new Map<string, JournalEntry>();
  for (const e of entries) if ((m.get(e.path)?.seq ?? -Infinity) < e.seq) m.set(e.path, e);
  return m;
}

/** Answer a request on the journal files themselves (no server running). */
export async function offlineUploads(dirs: { journalDir: string }, req: ControlRequest, logger?: Logger): Promise<ControlAnswer> {
  const journal = await Journal.open(dirs.journalDir, logger ? { logger } : {});
  const entries = await journal.load();
  if (req.op === 'list') {
    const rows = [...newestByPath(entries).values()].map((e) =>
      rowOf({
        id: e.id,
        path: e.path,
        size: e.size,
        contentMd5: e.contentMd5,
        createdAt: e.createdAt,
        attempts: e.attempts,
        state: e.failed ? 'failed' : e.attempts > 0 ? 'retrying' : 'queued',
        ...(e.lastError !== undefined ? { lastError: e.lastError } : {}),
        ...(e.nextAttemptAt !== undefined && !e.failed ? { nextAttemptAt: e.nextAttemptAt } : {}),
        ...(e.failed ? { failed: e.failed } : {}),
      }),
    );
    return { ok: true, uploads: rows.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) };
  }
  const mine = entries.filter((e) => e.path === req.path);
  const newest = newestByPath(mine).get(req.path);
  if (!newest) return notFound(req.path);
  if (req.op === 'retry') {
    const { failed: _f, nextAttemptAt: _n, lastError: _l, ...rest } = newest;
    await journal.put({ ...rest, attempts: 0 });
  } else {
    for (const e of mine) {
      await journal.remove(e.id);
      await rm(e.spoolFile, { force: true });
    }
  }
  await journal.flush();
  return { ok: true };
}
