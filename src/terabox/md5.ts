/**
 * The md5s the service sends, in ONE decoding step.
 *
 * The spec's own examples carry two forms (issue 9):
 *  - plain: 32 hex digits (list, filemetas, share listings, superfile2);
 *  - obfuscated, the Baidu-family form (create 3.4.3, search 3.4.7, share/transfer 3.5.4, the
 *    `emd5` of share/list 3.5.3): the 10th character is a letter g..v. Public TeraBox/Baidu clients
 *    decode it: the 10th character becomes the nibble (letter - 'g'), every nibble is xored with its
 *    index mod 16, then the 8-character groups are swapped pairwise (chars 8-15, 0-7, 24-31, 16-23).
 *    `00a2d1a60t56e3f8f972ff76028d8da7` -> `84fd2e17018194c18b264048f851ba11`.
 * Anything else is kept as the service sent it (an ETag can still use it) but is never compared as
 * if it were a content md5 (`isHexMd5` says which values may be).
 *
 * The client passes every answer through `decodeAnswerMd5s` where answers are parsed
 * (TeraboxClient.api), so the same content yields the same md5 whichever endpoint reported it.
 */

const HEX32 = /^[0-9a-f]{32}$/;
const OBFUSCATED = /^[0-9a-f]{9}[g-v][0-9a-f]{22}$/;

/** Which form a value the service called an md5 is in. */
export type Md5Form = 'plain' | 'obfuscated' | 'other';

export function md5Form(raw: string): Md5Form {
  const v = raw.toLowerCase();
  if (HEX32.test(v)) return 'plain';
  if (OBFUSCATED.test(v)) return 'obfuscated';
  return 'other';
}

/** True for a value that can be compared with an md5 we computed: 32 lowercase hex digits. */
export function isHexMd5(value: unknown): value is string {
  return typeof value === 'string' && HEX32.test(value);
}

/** The obfuscated form back to hex (the caller checked the form). */
function deobfuscate(v: string): string {
  let nibbles = '';
  for (let i = 0; i < 32; i++) {
    const n = i === 9 ? v.charCodeAt(i) - 0x67 /* 'g' */ : parseInt(v[i]!, 16);
    nibbles += (n ^ (i & 15)).toString(16);
  }
  return nibbles.slice(8, 16) + nibbles.slice(0, 8) + nibbles.slice(24, 32) + nibbles.slice(16, 24);
}

/**
 * One md5 as the service sent it -> lowercase hex when it is plain or obfuscated, the value
 * unchanged otherwise (see isHexMd5).
 */
export function decodeServiceMd5(raw: string): string {
  const v = raw.trim().toLowerCase();
  if (HEX32.test(v)) return v;
  if (OBFUSCATED.test(v)) return deobfuscate(v);
  return raw;
}

/** Keys of an answer that hold an md5 of content (file md5, shard md5, share listing's emd5). */
const MD5_KEYS: ReadonlySet<string> = new Set(['md5', 'emd5']);

/**
 * Decode, in place, every md5 of a parsed JSON answer: any string under a key `md5` or `emd5`, at
 * any depth (create and superfile2 at the top, list/search/share listings under `list`, filemetas
 * under `info`, precreate's rapid upload under `info`, share/transfer under `extra.list[].meta`).
 * `block_list` arrays are what we sent (or indexes) and are left alone. Returns the same object.
 */
export function decodeAnswerMd5s<T>(answer: T): T {
  walk(answer, 0);
  return answer;
}

function walk(node: unknown, depth: number): void {
  if (depth > 8 || node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const item of node) walk(item, depth + 1);
    return;
  }
  const o = node as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'string') {
      if (MD5_KEYS.has(k)) o[k] = decodeServiceMd5(v);
    } else if (v !== null && typeof v === 'object' && k !== 'block_list' && k !== 'thumbs') {
      walk(v, depth + 1);
    }
  }
}
