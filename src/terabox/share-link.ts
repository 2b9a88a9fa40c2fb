/**
 * Share links as users paste them, and the two forms of the link id the API wants:
 *  - `shorturl`: the part after `/s/` (shorturlinfo, spec 3.5.2), e.g. `1AbC-dEf`;
 *  - `surl`: the part after `/s/1` (share/verify 3.5.1, share/list 3.5.3), e.g. `AbC-dEf`.
 *
 * Accepted: `https://<host>/s/1xxx` (any TeraBox host, with or without `?pwd=CODE`),
 * `https://<host>/sharing/link?surl=xxx` and other pages with a `surl=` query (the id without the
 * leading 1), and a bare `1xxx` (the part after /s/).
 */
import { TbdavError } from '../shared/errors.js';

export interface ParsedShareLink {
  surl: string;
  shorturl: string;
  /** An extraction code given in the link (`?pwd=`), if any. */
  pwd?: string;
}

const ID_RE = /^[A-Za-z0-9_-]{2,128}$/;
const PWD_RE = /^[0-9a-z]{4}$/;

function bad(input: string, why: string): TbdavError {
  return new TbdavError('TBDAV_BAD_REQUEST', `share link ${JSON.stringify(input.slice(0, 200))}: ${why}`);
}

function fromShorturl(input: string, shorturl: string): ParsedShareLink {
  if (!ID_RE.test(shorturl)) throw bad(input, 'the link id has characters a TeraBox link does not have');
  if (!shorturl.startsWith('1') || shorturl.length < 3) throw bad(input, 'a share link looks like https://www.terabox.com/s/1xxxx');
  return { shorturl, surl: shorturl.slice(1) };
}

export function parseShareLink(raw: string): ParsedShareLink {
  const input = raw.trim();
  if (input === '') throw bad(input, 'empty');
  let parsed: ParsedShareLink;
  let pwd: string | null = null;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) {
    let url: URL;
    try {
      url = new URL(input);
    } catch {
      throw bad(input, 'not a URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad(input, 'not an http(s) link');
    pwd = url.searchParams.get('pwd');
    const m = /^\/s\/([^/]+)\/?$/.exec(url.pathname);
    const surlParam = url.searchParams.get('surl');
    if (m) parsed = fromShorturl(input, decodeURIComponent(m[1]!));
    else if (surlParam) {
      if (!ID_RE.test(surlParam)) throw bad(input, 'the surl has characters a TeraBox link does not have');
      parsed = { surl: surlParam, shorturl: `1${surlParam}` };
    } else throw bad(input, 'no /s/<id> path and no surl= parameter');
  } else {
    parsed = fromShorturl(input, input.replace(/^\/?s\//, ''));
  }
  if (pwd !== null && pwd !== '') {
    if (!PWD_RE.test(pwd)) throw bad(input, 'the pwd in the link is not 4 digits or lowercase letters');
    parsed.pwd = pwd;
  }
  return parsed;
}

/** The canonical link of a share (for listings and messages). */
export function shareLinkOf(shorturl: string): string {
  return `https://www.terabox.com/s/${shorturl}`;
}

export function isValidSharePwd(pwd: string): boolean {
  return pwd === '' || PWD_RE.test(pwd);
}
