/**
 * Who is asking, as the client sees it: the client's address, and the scheme and host of the URL it
 * used. Behind a reverse proxy the socket's peer is the proxy; its `Forwarded` (RFC 7239) or
 * `X-Forwarded-For/-Proto/-Host` headers are believed only when the peer is one of
 * `server.trustedProxies` (addresses or CIDR ranges). Anyone else can write those headers, so from
 * an untrusted peer they are ignored.
 *
 * The address feeds the log line and the login throttle; scheme and host feed the URLs the bridge
 * writes (Location headers, status page links) and the same-server checks of Destination and of
 * tagged If headers.
 *
 * Shared state: `infos` (per request, keyed by the request object; garbage-collected with it) —
 * event loop only.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ConfigError } from '../shared/errors.js';

export interface ClientInfo {
  /** The client's address (the proxy's own when it is not trusted or says nothing). */
  address: string;
  /** The socket's peer (the proxy, behind one). */
  peer: string;
  /** 'http' or 'https', as the client used it. */
  proto: 'http' | 'https';
  /** Host (and port) of the URL the client used; undefined when neither Host nor the proxy says. */
  host: string | undefined;
  /** The request came through a trusted proxy. */
  viaProxy: boolean;
}

/** The set of trusted proxy addresses. */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly size: number;

  /** `entries`: IPv4/IPv6 addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`); ConfigError otherwise. */
  constructor(entries: readonly string[] = []) {
    for (const raw of entries) {
      const e = raw.trim();
      const [addr, bits, extra] = e.split('/');
      const family = isIP(addr ?? '');
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (!family || extra !== undefined) throw new ConfigError('server.trustedProxies', `${JSON.stringify(raw)} is not an IP address or CIDR range`);
      if (bits === undefined) {
        this.list.addAddress(addr!, type);
        continue;
      }
      const n = Number(bits);
      if (!/^\d{1,3}$/.test(bits) || n > (family === 6 ? 128 : 32)) {
        throw new ConfigError('server.trustedProxies', `${JSON.stringify(raw)}: bad prefix length`);
      }
      this.list.addSubnet(addr!, n, type);
    }
    this.size = entries.length;
  }

  has(address: string): boolean {
    const a = normalizeAddress(address);
    const family = isIP(a);
    if (!family) return false;
    return this.list.check(a, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/** `::ffff:1.2.3.4` -> `1.2.3.4`; brackets and a zone id off. */
export function normalizeAddress(a: string): string {
  let s = a.trim().replace(/^\[|\]$/g, '');
  const pct = s.indexOf('%');
  if (pct !== -1) s = s.slice(0, pct);
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  return m ? m[1]! : s;
}

const HOST_RE = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** A node from a Forwarded `for=` or an X-Forwarded-For item: the address, or undefined (obfuscated, unknown). */
function nodeAddress(raw: string): string | undefined {
  let s = raw.trim().replace(/^"|"$/g, '');
  // `[v6]:port` or `v4:port`
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (bracket) s = bracket[1]!;
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(s)) s = s.slice(0, s.lastIndexOf(':'));
  s = normalizeAddress(s);
  return isIP(s) ? s : undefined;
}

interface ForwardedHop {
  for?: string;
  proto?: string;
  host?: string;
}

/** RFC 7239 `Forwarded`, every header line joined; hops in order (client side first). */
export function parseForwarded(header: string): ForwardedHop[] {
  const hops: ForwardedHop[] = [];
  // Split on commas outside quotes, then on semicolons outside quotes.
  const split = (s: string, sep: string): string[] => {
    const out: string[] = [];
    let cur = '';
    let quoted = false;
    for (const ch of s) {
      if (ch === '"') quoted = !quoted;
      if (ch === sep && !quoted) {
        out.push(cur);
        cur = '';
      } else cur += ch;
    }
    out.push(cur);
    return out;
  };
  for (const element of split(header, ',')) {
    const hop: ForwardedHop = {};
    for (const pair of split(element, ';')) {
      const eq = pair.indexOf('=');
      if (eq === -1) continue;
      const k = pair.slice(0, eq).trim().toLowerCase();
      const v = pair.slice(eq + 1).trim().replace(/^"|"$/g, '');
      if (k === 'for' || k === 'proto' || k === 'host') hop[k] = v;
    }
    hops.push(hop);
  }
  return hops;
}

/**
 * The client as seen through the trusted proxies: walking the forwarded chain from the nearest hop
 * back, every trusted address is skipped; the first untrusted one is the client (a client can put
 * anything at the far end of the chain, only what trusted hops appended counts).
 */
export function computeClientInfo(req: IncomingMessage, trusted: TrustedProxies): ClientInfo {
  const peer = normalizeAddress(req.socket.remoteAddress ?? 'unknown');
  const ownProto = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  const ownHost = first(req.headers.host);
  const direct: ClientInfo = { address: peer, peer, proto: ownProto, host: ownHost && HOST_RE.test(ownHost) ? ownHost : undefined, viaProxy: false };
  if (trusted.size === 0 || !trusted.has(peer)) return direct;

  const fwdRaw = req.headers['forwarded'];
  let hops: ForwardedHop[] | undefined;
  let chain: string[] = [];
  if (fwdRaw !== undefined) {
    hops = parseForwarded(Array.isArray(fwdRaw) ? fwdRaw.join(',') : fwdRaw);
    chain = hops.map((h) => h.for ?? '');
  } else {
    const xff = req.headers['x-forwarded-for'];
    if (xff !== undefined) chain = (Array.isArray(xff) ? xff.join(',') : xff).split(',');
  }
  let address = peer;
  let at = -1;
  for (let i = chain.length - 1; i >= 0; i--) {
    const a = nodeAddress(chain[i]!);
    if (a === undefined) break; // unknown or obfuscated: stop believing further back
    address = a;
    at = i;
    if (!trusted.has(a)) break;
  }
  let proto: string | undefined;
  let host: string | undefined;
  if (hops) {
    // The hop whose `for` is the client was written by the proxy that received the client's request.
    const hop = hops[at === -1 ? hops.length - 1 : at];
    proto = hop?.proto;
    host = hop?.host;
  } else {
    // Set (overwritten, not appended) by the proxy facing the client: the first value.
    proto = first(req.headers['x-forwarded-proto'])?.split(',')[0]?.trim();
    host = first(req.headers['x-forwarded-host'])?.split(',')[0]?.trim();
  }
  const p = proto?.toLowerCase();
  return {
    address,
    peer,
    proto: p === 'https' || p === 'http' ? p : ownProto,
    host: host && HOST_RE.test(host) ? host : direct.host,
    viaProxy: true,
  };
}

const infos = new WeakMap<IncomingMessage, ClientInfo>();

/** Remember the client info of a request (server.ts, once per request). */
export function setClientInfo(req: IncomingMessage, info: ClientInfo): void {
  infos.set(req, info);
}

/** The client info of a request; without one (tests calling handlers directly), the socket's view. */
export function clientInfo(req: IncomingMessage): ClientInfo {
  return infos.get(req) ?? computeClientInfo(req, EMPTY);
}

const EMPTY = new TrustedProxies();

/** `https://host:port` as the client addressed the bridge (undefined without a Host). */
export function publicOrigin(req: IncomingMessage): string | undefined {
  const i = clientInfo(req);
  return i.host ? `${i.proto}://${i.host}` : undefined;
}
