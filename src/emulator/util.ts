/**
 * Small helpers of the emulator: deterministic PRNG, ids, md5, name rules, categories, a tiny PNG
 * encoder and the device-code QR code (qrcode-generator computes the modules).
 */
import { createHash, randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import qrcode from 'qrcode-generator';

/** mulberry32: a small deterministic PRNG; same seed -> same sequence. */
export function createPrng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function randomDigits(n: number): string {
  let s = '';
  const b = randomBytes(n);
  for (let i = 0; i < n; i++) s += String(b[i]! % 10);
  return s.replace(/^0/, '1');
}

export function md5Hex(data: string | Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

export const EMPTY_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';

export function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A request id like the service's (a large decimal number, as a string-safe number). */
let reqSeq = 0;
export function requestId(): number {
  reqSeq = (reqSeq + 1) % 100000;
  return Date.now() * 100000 + reqSeq;
}

/**
 * Name rules (what xpan refuses, answered with errno -7): empty, only dots, over 255 UTF-8 bytes,
 * any of \ ? | " > < : * , or a control character.
 */
export function isValidName(name: string): boolean {
  if (name.length === 0) return false;
  if (/^\.+$/.test(name)) return false;
  if (Buffer.byteLength(name, 'utf8') > 255) return false;
  // Windows' reserved characters and control characters. NOT the comma: the spec's own share/transfer
  // example (3.5.4) answers "Gia Itzel & BOYFRIEND, LADYBOY.mp4", so the service stores such names.
  // eslint-disable-next-line no-control-regex
  if (/[\\?|"><:*\u0000-\u001f\u007f]/.test(name)) return false;
  return true;
}

const CATEGORY_BY_EXT: Record<string, number> = {};
function setCat(cat: number, exts: string): void {
  for (const e of exts.split(' ')) CATEGORY_BY_EXT[e] = cat;
}
setCat(1, 'mp4 mkv avi mov wmv flv webm m4v 3gp ts mpg mpeg rmvb rm vob m2ts');
setCat(2, 'mp3 wav flac aac ogg m4a wma ape opus amr');
setCat(3, 'jpg jpeg png gif bmp webp heic heif tif tiff svg ico raw');
setCat(4, 'txt pdf doc docx xls xlsx ppt pptx md csv rtf odt ods odp epub json xml html htm');
setCat(5, 'exe apk msi dmg ipa deb rpm app bat sh');
setCat(7, 'torrent');

/** Category by extension: 1 video, 2 audio, 3 image, 4 document, 5 application, 6 other, 7 seed. */
export function categoryOf(name: string): number {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return 6;
  return CATEGORY_BY_EXT[name.slice(dot + 1).toLowerCase()] ?? 6;
}

// ------------------------------------------------------------------ PNG

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A greyscale PNG of a square module grid: `dark(x, y)` per module, `quiet` light modules around. */
export function modulesPng(modules: number, dark: (x: number, y: number) => boolean, scale: number, quiet: number): Buffer {
  const size = (modules + quiet * 2) * scale;
  const raw = Buffer.alloc((size + 1) * size);
  for (let py = 0; py < size; py++) {
    raw[py * (size + 1)] = 0; // filter: none
    for (let px = 0; px < size; px++) {
      const mx = Math.floor(px / scale) - quiet;
      const my = Math.floor(py / scale) - quiet;
      const on = mx >= 0 && my >= 0 && mx < modules && my < modules && dark(mx, my);
      raw[py * (size + 1) + 1 + px] = on ? 0 : 255;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  ihdr[10] = 0;
  ihdr[11] = 0;
  ihdr[12] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * A real, decodable QR code (error correction M, smallest version that fits) of `text` as a PNG
 * with the standard 4-module quiet zone. What /oauth/devicecode answers in `qrcode_url`.
 */
export function qrCodePng(text: string, scale = 4): Buffer {
  const qr = qrcode(0, 'M');
  qr.addData(text, 'Byte');
  qr.make();
  return modulesPng(qr.getModuleCount(), (x, y) => qr.isDark(y, x), scale, 4);
}

/**
 * A valid greyscale PNG showing a QR-like 25x25 module pattern derived from `text` (finder squares
 * in three corners, data modules from a hash of the text). Not decodable: kept for tests of image
 * handling that want a fixed 25-module grid; the emulator answers real QR codes (qrCodePng).
 */
export function qrLikePng(text: string, scale = 4): Buffer {
  const modules = 25;
  const bits = createHash('sha512').update(text).digest();
  const dark = (x: number, y: number): boolean => {
    const finder = (fx: number, fy: number): boolean | undefined => {
      const dx = x - fx;
      const dy = y - fy;
      if (dx < 0 || dy < 0 || dx > 6 || dy > 6) return undefined;
      const ring = Math.max(Math.abs(dx - 3), Math.abs(dy - 3));
      return ring !== 2;
    };
    const f = finder(0, 0) ?? finder(modules - 7, 0) ?? finder(0, modules - 7);
    if (f !== undefined) return f;
    const i = y * modules + x;
    return ((bits[(i >> 3) % bits.length]! >> (i & 7)) & 1) === 1;
  };
  return modulesPng(modules, dark, scale, 2);
}
