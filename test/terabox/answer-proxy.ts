/**
 * A small HTTP server in front of the emulator that acts out another plausible service: every
 * request (auth, api, upload hosts) goes to this one listener, which forwards it to the emulator
 * host that serves the path and lets a test change the request, answer in the emulator's place, or
 * rewrite the JSON answer. tokeninfo's domains are rewritten to point here (so nothing bypasses
 * it); dlinks still point at the emulator's download host.
 *
 * Used for the client's tolerance tests (issue 9): obfuscated md5s, missing upload_domain, the list
 * array under `info`, short list pages, a create answering another path, refused upload sessions,
 * token errnos on any endpoint. Nothing here is known to src/terabox.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EmulatorHandle } from '../../src/emulator/index.js';

export interface ProxyCall {
  method: string;
  /** URL path, e.g. '/openapi/api/create'. */
  path: string;
  query: URLSearchParams;
  /** The form body (urlencoded requests), editable before forwarding. */
  form?: URLSearchParams;
  /** Raw body (multipart and others). */
  body: Buffer;
  headers: IncomingMessage['headers'];
}

export interface ProxyAnswer {
  status?: number;
  json: unknown;
}

export interface ProxyHooks {
  /** Answer in the emulator's place (undefined: forward). May edit call.query / call.form first. */
  intercept?(call: ProxyCall): ProxyAnswer | undefined | Promise<ProxyAnswer | undefined>;
  /** Rewrite a JSON answer of the emulator (return the new value, or mutate and return it). */
  answer?(call: ProxyCall, json: any): any;
}

export interface AnswerProxy {
  /** Use as the client's authUrl. */
  url: string;
  /** host:port of this proxy. */
  host: string;
  /** Every request seen, in order. */
  calls: ProxyCall[];
  hooks: ProxyHooks;
  count(path: string): number;
  close(): Promise<void>;
}

function targetOf(emu: EmulatorHandle, path: string): string {
  if (path.startsWith('/oauth/')) return new URL(emu.authUrl).host;
  if (path.startsWith('/rest/2.0/pcs/superfile2')) return emu.uploadDomain;
  if (path.startsWith('/file/') || path.startsWith('/content/')) return emu.downloadDomain;
  return emu.apiDomain;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function forward(host: string, method: string, pathAndQuery: string, headers: IncomingMessage['headers'], body: Buffer): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  const [hostname, port] = host.split(':');
  return new Promise((resolve, reject) => {
    const h = { ...headers, host, 'content-length': String(body.length) };
    delete h['transfer-encoding'];
    const req = httpRequest({ hostname, port: Number(port), method, path: pathAndQuery, headers: h }, (res) => {
      readBody(res).then((b) => resolve({ status: res.statusCode ?? 500, headers: res.headers, body: b }), reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function startAnswerProxy(emu: EmulatorHandle, hooks: ProxyHooks = {}): Promise<AnswerProxy> {
  const calls: ProxyCall[] = [];
  let self = '';
  const proxy: AnswerProxy = {
    url: '',
    host: '',
    calls,
    hooks,
    count: (path) => calls.filter((c) => c.path === path).length,
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', `http://${self}`);
    const body = await readBody(req);
    const isForm = /application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '');
    const call: ProxyCall = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      body,
      headers: req.headers,
      ...(isForm ? { form: new URLSearchParams(body.toString('utf8')) } : {}),
    };
    calls.push(call);
    const send = (status: number, json: unknown, headers: Record<string, string | string[]> = {}): void => {
      const text = JSON.stringify(json);
      res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
      res.end(text);
    };
    const own = await proxy.hooks.intercept?.(call);
    if (own) return send(own.status ?? 200, own.json);
    const out = call.form ? Buffer.from(call.form.toString()) : body;
    const qs = call.query.toString();
    const up = await forward(targetOf(emu, url.pathname), call.method, url.pathname + (qs ? `?${qs}` : ''), req.headers, out);
    const passHeaders: Record<string, string | string[]> = {};
    for (const k of ['set-cookie', 'location', 'etag', 'content-range', 'accept-ranges']) {
      const v = up.headers[k];
      if (v !== undefined) passHeaders[k] = v;
    }
    let json: any;
    if (/^\s*[{[]/.test(up.body.toString('utf8', 0, Math.min(up.body.length, 16)))) {
      try {
        json = JSON.parse(up.body.toString('utf8'));
      } catch {
        json = undefined;
      }
    }
    if (json === undefined) {
      res.writeHead(up.status, { ...passHeaders, 'content-type': String(up.headers['content-type'] ?? 'application/octet-stream'), 'content-length': String(up.body.length) });
      res.end(up.body);
      return;
    }
    if (url.pathname === '/oauth/tokeninfo' && json?.data) {
      if (typeof json.data.api_domain === 'string') json.data.api_domain = self;
      if (typeof json.data.upload_domain === 'string') json.data.upload_domain = self;
    }
    if (proxy.hooks.answer) json = proxy.hooks.answer(call, json) ?? json;
    send(up.status, json, passHeaders);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as AddressInfo).port;
  self = `127.0.0.1:${port}`;
  proxy.url = `http://${self}`;
  proxy.host = self;
  return proxy;
}

/** The Baidu-family obfuscation of an md5 (the inverse of src/terabox/md5.ts), as a service sends it. */
export function obfuscateMd5(hex: string): string {
  const swapped = hex.slice(8, 16) + hex.slice(0, 8) + hex.slice(24, 32) + hex.slice(16, 24);
  let out = '';
  for (let i = 0; i < 32; i++) {
    const n = parseInt(swapped[i]!, 16) ^ (i & 15);
    out += i === 9 ? String.fromCharCode(0x67 + n) : n.toString(16);
  }
  return out;
}
