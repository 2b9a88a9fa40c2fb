/**
 * Service variants: the points where the spec is silent, or where its table and its example
 * disagree, and the emulator can act out each plausible answer. The client must survive every
 * variant; tests pick one per emulator (`EmulatorOptions.variant`, `handle.setOptions({variant})`)
 * or a named preset (`VARIANT_PRESETS`, chosen by env TBDAV_EMULATOR_VARIANT in the test helpers,
 * never by src/). docs/protocol-notes.md "Service variants" says what each one does.
 *
 * Also here: the obfuscated md5 form of the Baidu family (spec examples of create 3.4.3, search
 * 3.4.7, share/transfer 3.5.4, share/list `emd5`), the emulator's own encoder and decoder.
 */

export interface ServiceVariant {
  /** md5 reported for a multi-shard file: md5 of the JSON block list (default) or the content md5. */
  md5Rule: 'blocklist' | 'content';
  /**
   * How md5s leave the service: `plain` hex everywhere (default); `examples` as the spec's examples
   * (obfuscated in create, search, share/transfer; plain in list, filemetas, precreate's rapid-upload
   * info and share listings); `obfuscated` every md5 of every API answer.
   */
  md5Form: 'plain' | 'examples' | 'obfuscated';
  /** tokeninfo's `upload_domain`: `absent` as the spec's example; api_domain then serves superfile2 too. */
  uploadDomain: 'present' | 'absent';
  /** Name of the array in /openapi/api/list's answer: `list` (spec example) or `info` (spec table). */
  listArray: 'list' | 'info';
  /** list pages hold num-1 entries (page p = entries [(p-1)(num-1), p(num-1))): shorter than asked before the end. */
  listPageShort: boolean;
  /** errno of superfile2/create for an unknown or expired uploadid (default 31190). */
  sessionGoneErrno: number;
  /** Redirects between the dlink and the bytes: 0 (the dlink serves them), 1 (default), 2. */
  dlinkHops: 0 | 1 | 2;
  /** A spent refresh token presented again: `refuse` (200004, default) or `revoke` the whole login family (and 200004). */
  refreshReuse: 'refuse' | 'revoke';
}

export const DEFAULT_VARIANT: Readonly<ServiceVariant> = Object.freeze({
  md5Rule: 'blocklist',
  md5Form: 'plain',
  uploadDomain: 'present',
  listArray: 'list',
  listPageShort: false,
  sessionGoneErrno: 31190,
  dlinkHops: 1,
  refreshReuse: 'refuse',
});

export type VariantPresetName =
  | 'default'
  | 'spec-examples'
  | 'content-md5'
  | 'obfuscated'
  | 'session-errno-2'
  | 'dlink-direct'
  | 'dlink-two-hops'
  | 'revoke-family'
  | 'short-pages';

/** Named presets (each a full variant). `spec-examples` answers as the spec's example answers do. */
export const VARIANT_PRESETS: Readonly<Record<VariantPresetName, Readonly<ServiceVariant>>> = Object.freeze({
  default: DEFAULT_VARIANT,
  'spec-examples': Object.freeze({ ...DEFAULT_VARIANT, md5Form: 'examples', uploadDomain: 'absent', listArray: 'info' }),
  'content-md5': Object.freeze({ ...DEFAULT_VARIANT, md5Rule: 'content' }),
  obfuscated: Object.freeze({ ...DEFAULT_VARIANT, md5Form: 'obfuscated' }),
  'session-errno-2': Object.freeze({ ...DEFAULT_VARIANT, sessionGoneErrno: 2 }),
  'dlink-direct': Object.freeze({ ...DEFAULT_VARIANT, dlinkHops: 0 }),
  'dlink-two-hops': Object.freeze({ ...DEFAULT_VARIANT, dlinkHops: 2 }),
  'revoke-family': Object.freeze({ ...DEFAULT_VARIANT, refreshReuse: 'revoke' }),
  'short-pages': Object.freeze({ ...DEFAULT_VARIANT, listPageShort: true }),
} satisfies Record<VariantPresetName, ServiceVariant>);

export function isVariantPresetName(name: string): name is VariantPresetName {
  return Object.prototype.hasOwnProperty.call(VARIANT_PRESETS, name);
}

/** The full variant for a partial one (missing fields from `base`, default DEFAULT_VARIANT); throws on a bad value. */
export function resolveVariant(partial: Partial<ServiceVariant> | undefined, base: Readonly<ServiceVariant> = DEFAULT_VARIANT): ServiceVariant {
  const v: ServiceVariant = { ...base, ...stripUndefined(partial ?? {}) };
  const bad = (field: string): never => {
    throw new RangeError(`emulator variant: bad ${field} ${JSON.stringify((v as unknown as Record<string, unknown>)[field])}`);
  };
  if (v.md5Rule !== 'blocklist' && v.md5Rule !== 'content') bad('md5Rule');
  if (v.md5Form !== 'plain' && v.md5Form !== 'examples' && v.md5Form !== 'obfuscated') bad('md5Form');
  if (v.uploadDomain !== 'present' && v.uploadDomain !== 'absent') bad('uploadDomain');
  if (v.listArray !== 'list' && v.listArray !== 'info') bad('listArray');
  if (typeof v.listPageShort !== 'boolean') bad('listPageShort');
  if (!Number.isSafeInteger(v.sessionGoneErrno) || v.sessionGoneErrno === 0) bad('sessionGoneErrno');
  if (v.dlinkHops !== 0 && v.dlinkHops !== 1 && v.dlinkHops !== 2) bad('dlinkHops');
  if (v.refreshReuse !== 'refuse' && v.refreshReuse !== 'revoke') bad('refreshReuse');
  return v;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, val] of Object.entries(o)) if (val !== undefined) (out as Record<string, unknown>)[k] = val;
  return out;
}

// ---------------------------------------------------------------- md5 forms

/** Where an md5 leaves the service (which answers the `examples` form obfuscates). */
export type Md5Place = 'create' | 'precreate' | 'search' | 'transfer' | 'list' | 'filemetas' | 'share';

/** Where the spec's examples print the obfuscated form (3.4.3, 3.4.7, 3.5.4); precreate's rapid `info` (3.4.1) is plain. */
const OBFUSCATED_IN_EXAMPLES: ReadonlySet<Md5Place> = new Set(['create', 'search', 'transfer']);

/** The md5 as the variant sends it at `place` (plain lowercase hex in, plain or obfuscated out). */
export function md5ForWire(v: Pick<ServiceVariant, 'md5Form'>, md5: string, place: Md5Place): string {
  if (v.md5Form === 'obfuscated' || (v.md5Form === 'examples' && OBFUSCATED_IN_EXAMPLES.has(place))) return obfuscateMd5(md5);
  return md5;
}

const HEX = /^[0-9a-f]{32}$/;

/** Swap the 8-character groups pairwise: chars 8-15, 0-7, 24-31, 16-23 (its own inverse). */
function swapGroups(s: string): string {
  return s.slice(8, 16) + s.slice(0, 8) + s.slice(24, 32) + s.slice(16, 24);
}

/** xor every nibble with its index mod 16 (its own inverse). */
function xorNibbles(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) out += (parseInt(s[i]!, 16) ^ (i & 15)).toString(16);
  return out;
}

/**
 * The obfuscated form of a plain md5, as the spec's examples show it: swap the 8-character groups
 * pairwise, xor each nibble with its index mod 16, then write the 10th character as a letter
 * 'g'..'v' ('g' + nibble). Example (spec 3.4.3 / 3.4.8): 84fd2e17018194c18b264048f851ba11 ->
 * 00a2d1a60t56e3f8f972ff76028d8da7. Deterministic: one md5, one form.
 */
export function obfuscateMd5(md5: string): string {
  const h = md5.toLowerCase();
  if (!HEX.test(h)) throw new RangeError('obfuscateMd5: not a 32-hex md5');
  const x = xorNibbles(swapGroups(h));
  return x.slice(0, 9) + String.fromCharCode(0x67 + parseInt(x[9]!, 16)) + x.slice(10);
}

/** The inverse (what the public clients do; the emulator uses it only in its own tests). */
export function deobfuscateMd5(s: string): string {
  if (!/^[0-9a-f]{9}[g-v][0-9a-f]{22}$/.test(s)) throw new RangeError('deobfuscateMd5: not an obfuscated md5');
  const n = s.slice(0, 9) + (s.charCodeAt(9) - 0x67).toString(16) + s.slice(10);
  return swapGroups(xorNibbles(n));
}
