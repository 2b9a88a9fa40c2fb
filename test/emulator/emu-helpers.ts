/**
 * Helpers for the emulator tests: start on port 0 with a temp dataDir, call endpoints over real
 * HTTP (fetch), run the precreate -> superfile2 -> create sequence.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EmulatorHandle, type EmulatorOptions, startEmulator } from '../../src/emulator/index.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';

export interface Emu {
  emu: EmulatorHandle;
  dataDir: string;
  token: string;
  root: string;
  stop(): Promise<void>;
}

export async function startEmu(opts: Partial<EmulatorOptions> = {}, dataDir?: string): Promise<Emu> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'tbdav-emu-')));
  const emu = await startEmulator(withEnvVariant({ dataDir: dir, ...opts }));
  const token = emu.issueTokens().access_token;
  return {
    emu,
    dataDir: dir,
    token,
    root: emu.appRoot,
    stop: async () => {
      await emu.close();
      if (!dataDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

export function md5(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

export function sign(emu: EmulatorHandle, timestamp: string): string {
  const c = emu.credentials;
  return md5(`${c.clientId}_${timestamp}_${c.clientSecret}_${c.privateSecret}`);
}

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export async function getJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: Json; headers: Headers }> {
  const res = await fetch(url, { redirect: 'manual', ...init });
  const text = await res.text();
  let body: Json;
  try {
    body = JSON.parse(text) as Json;
  } catch {
    body = { _text: text };
  }
  return { status: res.status, body, headers: res.headers };
}

/** Call an api_domain endpoint with the token in `access_tokens`. */
export async function api(
  e: Emu,
  path: string,
  o: { query?: Record<string, string>; form?: Record<string, string>; token?: string | null; host?: string } = {},
): Promise<{ status: number; body: Json; headers: Headers }> {
  const q = new URLSearchParams(o.query ?? {});
  const token = o.token === undefined ? e.token : o.token;
  if (token !== null) q.set('access_tokens', token);
  const url = `http://${o.host ?? e.emu.apiDomain}${path}?${q.toString()}`;
  if (o.form) {
    return getJson(url, { method: 'POST', body: new URLSearchParams(o.form), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }
  return getJson(url);
}

export async function oauth(e: Emu, path: string, form?: Record<string, string>, query?: Record<string, string>): Promise<Json> {
  const url = `${e.emu.authUrl}${path}${query ? `?${new URLSearchParams(query).toString()}` : ''}`;
  const r = form ? await getJson(url, { method: 'POST', body: new URLSearchParams(form) }) : await getJson(url);
  return r.body;
}

export async function superfile2(
  e: Emu,
  q: { path: string; uploadid: string; partseq: number; token?: string },
  data: Buffer,
  host?: string,
): Promise<{ status: number; body: Json }> {
  const params = new URLSearchParams({
    method: 'upload',
    app_id: '250528',
    path: q.path,
    uploadid: q.uploadid,
    partseq: String(q.partseq),
    access_tokens: q.token ?? e.token,
  });
  const fd = new FormData();
  fd.append('file', new Blob([data]), 'blob');
  const r = await getJson(`http://${host ?? e.emu.uploadDomain}/rest/2.0/pcs/superfile2?${params.toString()}`, { method: 'POST', body: fd });
  return { status: r.status, body: r.body };
}

export function shards(data: Buffer, size = 4 * 1024 * 1024): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += size) out.push(data.subarray(off, off + size));
  if (out.length === 0) out.push(Buffer.alloc(0));
  return out;
}

/** Full upload; returns the create answer. */
export async function upload(e: Emu, path: string, data: Buffer, o: { rtype?: number; shardSize?: number } = {}): Promise<Json> {
  const parts = shards(data, o.shardSize);
  const blockList = JSON.stringify(parts.map((p) => md5(p)));
  const pre = await api(e, '/openapi/api/precreate', { form: { path, autoinit: '1', block_list: blockList, size: String(data.length), rtype: String(o.rtype ?? 1) } });
  if (pre.body.errno !== 0) return pre.body;
  if (pre.body.return_type === 2) return { ...pre.body.info, errno: 0, rapid: true };
  for (let i = 0; i < parts.length; i++) {
    const r = await superfile2(e, { path, uploadid: pre.body.uploadid, partseq: i }, parts[i]!);
    if (r.status !== 200 || r.body.error_code !== undefined || r.body.errno) return { ...r.body, status: r.status };
  }
  const c = await api(e, '/openapi/api/create', {
    form: { path, size: String(data.length), uploadid: pre.body.uploadid, block_list: blockList, rtype: String(o.rtype ?? 1) },
  });
  return c.body;
}

export async function dlinkOf(e: Emu, fsId: number): Promise<string> {
  const r = await api(e, '/openapi/api/download', { query: { fidlist: JSON.stringify([fsId]), type: 'dlink' } });
  if (r.body.errno !== 0) throw new Error(`download errno ${r.body.errno}`);
  return r.body.dlink[0].dlink as string;
}

/** Follow a dlink (with the token appended) to the bytes. */
export async function fetchDlink(e: Emu, dlink: string, headers: Record<string, string> = {}): Promise<Response> {
  const r1 = await fetch(`${dlink}&access_tokens=${encodeURIComponent(e.token)}`, { redirect: 'manual', headers });
  if (r1.status !== 302) return r1;
  await r1.arrayBuffer();
  return fetch(r1.headers.get('location')!, { headers });
}

export function randomBuffer(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** share/verify (query surl, body pwd); `sekey` is the BOXCLND cookie value ('' when refused). */
export async function verifyShare(e: Emu, surl: string, pwd: string): Promise<{ body: Json; sekey: string }> {
  const r = await getJson(`http://${e.emu.apiDomain}/openapi/share/verify?${new URLSearchParams({ surl, access_tokens: e.token })}`, {
    method: 'POST',
    body: new URLSearchParams({ pwd }),
  });
  const sekey = decodeURIComponent(/BOXCLND=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')?.[1] ?? '');
  return { body: r.body, sekey };
}
