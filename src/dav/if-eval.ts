/**
 * The WebDAV If header (RFC 4918 §10.4): parse, evaluate against resources, list submitted tokens.
 *
 *   If = 1*No-tag-list | 1*Tagged-list;  List = "(" 1*(["Not"] (Coded-URL | "[" entity-tag "]")) ")"
 *
 * The header is true when at least one list is true; a list is true when all its conditions are;
 * a state-token condition is true when it names a lock covering the resource, an entity-tag
 * condition when it equals the resource's current ETag. Untagged lists apply to the request URI,
 * tagged lists to their resource (lists tagged with another server's URL never match).
 */
import { TbdavError } from '../shared/errors.js';
import { decodePath, pathOfTarget } from './paths.js';

export interface IfCondition {
  not: boolean;
  kind: 'token' | 'etag';
  value: string;
}

export interface IfList {
  /** Raw resource tag (URL or path), undefined for untagged lists. */
  tag: string | undefined;
  conditions: IfCondition[];
}

function bad(what: string): TbdavError {
  return new TbdavError('TBDAV_BAD_REQUEST', `malformed If header: ${what}`);
}

export function parseIf(header: string): IfList[] {
  const lists: IfList[] = [];
  let i = 0;
  const n = header.length;
  let tag: string | undefined;
  let tagged: boolean | undefined;
  const skip = (): void => {
    while (i < n && /\s/.test(header[i]!)) i++;
  };
  for (;;) {
    skip();
    if (i >= n) break;
    const c = header[i]!;
    if (c === '<') {
      const end = header.indexOf('>', i);
      if (end === -1) throw bad('unterminated resource tag');
      if (tagged === false) throw bad('tagged list after untagged ones');
      tagged = true;
      tag = header.slice(i + 1, end).trim();
      i = end + 1;
      skip();
      if (header[i] !== '(') throw bad('resource tag without list');
      continue;
    }
    if (c !== '(') throw bad(`unexpected '${c}'`);
    if (tagged === undefined) tagged = false;
    i++;
    const conditions: IfCondition[] = [];
    for (;;) {
      skip();
      if (i >= n) throw bad('unterminated list');
      if (header[i] === ')') {
        i++;
        break;
      }
      let not = false;
      if (/^not\b/i.test(header.slice(i, i + 4)) || header.slice(i, i + 3).toLowerCase() === 'not') {
        not = true;
        i += 3;
        skip();
      }
      const ch = header[i];
      if (ch === '<') {
        const end = header.indexOf('>', i);
        if (end === -1) throw bad('unterminated state token');
        conditions.push({ not, kind: 'token', value: header.slice(i + 1, end).trim() });
        i = end + 1;
      } else if (ch === '[') {
        const end = header.indexOf(']', i);
        if (end === -1) throw bad('unterminated entity tag');
        conditions.push({ not, kind: 'etag', value: header.slice(i + 1, end).trim() });
        i = end + 1;
      } else {
        throw bad('condition is neither <state-token> nor [etag]');
      }
    }
    if (conditions.length === 0) throw bad('empty list');
    lists.push({ tag: tagged ? tag : undefined, conditions });
  }
  if (lists.length === 0) throw bad('no list');
  return lists;
}

/** Every state token named in the header (the tokens the request "submits"). */
export function submittedTokens(lists: IfList[]): Set<string> {
  const out = new Set<string>();
  for (const l of lists) for (const c of l.conditions) if (c.kind === 'token') out.add(c.value);
  return out;
}

export interface IfResource {
  /** Current ETag, undefined when the resource does not exist. */
  etag: string | undefined;
  /** Tokens of the locks covering the resource. */
  lockTokens: ReadonlySet<string>;
}

/**
 * Evaluate the lists. `resolve(path)` describes a resource; `requestPath` is the request URI's path;
 * `host` the request's Host header (tags naming another host never match).
 */
export async function evaluateIf(
  lists: IfList[],
  requestPath: string,
  host: string | undefined,
  resolve: (path: string) => Promise<IfResource>,
): Promise<boolean> {
  const cache = new Map<string, Promise<IfResource>>();
  const get = (p: string): Promise<IfResource> => {
    let v = cache.get(p);
    if (!v) {
      v = resolve(p);
      cache.set(p, v);
    }
    return v;
  };
  const bare = (t: string): string => t.replace(/^W\//, '');
  for (const list of lists) {
    let path: string | undefined = requestPath;
    if (list.tag !== undefined) path = tagPath(list.tag, host);
    if (path === undefined) continue;
    const res = await get(path);
    let ok = true;
    for (const c of list.conditions) {
      const hit = c.kind === 'token' ? res.lockTokens.has(c.value) : res.etag !== undefined && bare(res.etag) === bare(c.value);
      if (hit === c.not) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  return false;
}

function tagPath(tag: string, host: string | undefined): string | undefined {
  try {
    if (/^[a-z][a-z0-9+.-]*:/i.test(tag)) {
      const url = new URL(tag);
      if (!host || url.host.toLowerCase() !== new URL(`${url.protocol}//${host}/`).host.toLowerCase()) return undefined;
    }
    return decodePath(pathOfTarget(tag)).path;
  } catch {
    return undefined;
  }
}
