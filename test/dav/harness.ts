/** Test harness for test/dav: Vfs over MemoryRemote (temp dirs) behind startBridge on port 0. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent, type Dispatcher } from 'undici';
import { MemoryRemote } from '../../src/remote/memory.js';
import { Vfs } from '../../src/vfs/vfs.js';
import { startBridge, type Bridge, type BridgeOptions } from '../../src/dav/server.js';
import type { FileSystem } from '../../src/vfs/types.js';

export interface DavHarness {
  bridge: Bridge;
  remote: MemoryRemote;
  vfs: Vfs;
  url: string;
  /** HTTP request to the bridge; body read as text (or Buffer with raw: true). */
  req(method: string, path: string, opts?: ReqOptions): Promise<Res>;
  close(): Promise<void>;
}

export interface ReqOptions {
  headers?: Record<string, string>;
  body?: string | Buffer | NodeJS.ReadableStream | AsyncIterable<Buffer>;
}

export interface Res {
  status: number;
  headers: Record<string, string>;
  text: string;
  body: Buffer;
}

export async function startHarness(extra: Partial<BridgeOptions> & { fs?: FileSystem } = {}): Promise<DavHarness> {
  const root = await mkdtemp(join(tmpdir(), 'tbdav-dav-'));
  const remote = new MemoryRemote();
  const vfs = await Vfs.open({ remote, stateDir: join(root, 'state'), cacheDir: join(root, 'cache') });
  const bridge = await startBridge({ fs: extra.fs ?? vfs, port: 0, ...extra });
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
  const harness: DavHarness = {
    bridge,
    remote,
    vfs,
    url: bridge.url,
    async req(method, path, opts = {}) {
      const res = await request(bridge.url + path, {
        method: method as Dispatcher.HttpMethod,
        headers: opts.headers,
        body: opts.body as never,
        dispatcher,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
      return { status: res.statusCode, headers, text: body.toString('utf8'), body };
    },
    async close() {
      await bridge.close();
      await dispatcher.close();
      await vfs.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  return harness;
}

/** Minimal multistatus reader for tests: href -> { status per prop `{ns}local` -> value inner XML }. */
export interface PropfindEntry {
  href: string;
  props: Record<string, { status: number; value: string }>;
}

import { parseXml, type XmlElement } from '../../src/dav/xml.js';

export function parseMultistatus(text: string): PropfindEntry[] {
  const root = parseXml(text);
  if (root.ns !== 'DAV:' || root.local !== 'multistatus') throw new Error(`not a multistatus: ${text.slice(0, 200)}`);
  const kids = (el: XmlElement, local: string) => el.children.filter((c) => c.ns === 'DAV:' && c.local === local);
  return kids(root, 'response').map((resp) => {
    const href = kids(resp, 'href')[0]!.text;
    const props: PropfindEntry['props'] = {};
    for (const ps of kids(resp, 'propstat')) {
      const status = Number(/HTTP\/1\.1 (\d{3})/.exec(kids(ps, 'status')[0]!.text)![1]);
      for (const p of kids(ps, 'prop')[0]!.children) props[`{${p.ns}}${p.local}`] = { status, value: p.inner };
    }
    return { href, props };
  });
}

export const PROPFIND_ALLPROP = '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>';
