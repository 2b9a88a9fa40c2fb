/**
 * Show the device-code QR code of /oauth/devicecode in a terminal.
 *
 * The service sends the QR code only as a PNG (`qrcode_url`, a data: URL); its content is not
 * documented, so instead of re-encoding a guess we decode the PNG itself (node:zlib), find the
 * module grid from the top-left finder square (7 modules wide) and print the modules with Unicode
 * half blocks, two module rows per text line, with a light quiet zone. Works for any
 * non-interlaced 8-bit or 1-bit greyscale / RGB / palette / alpha PNG.
 */
import { inflateSync } from 'node:zlib';

export interface Bitmap {
  width: number;
  height: number;
  /** true = dark pixel, row-major. */
  dark: boolean[];
}

/** Bytes of a `data:image/png;base64,...` URL (or of plain base64). */
export function pngFromDataUrl(url: string): Buffer {
  const comma = url.indexOf(',');
  const b64 = url.startsWith('data:') && comma >= 0 ? url.slice(comma + 1) : url;
  return Buffer.from(b64, 'base64');
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Decode a PNG into dark/light pixels (threshold on luminance; transparent = light). */
export function decodePng(png: Buffer): Bitmap {
  if (png.length < 8 || !png.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG image');
  let off = 8;
  let width = 0;
  let height = 0;
  let depth = 0;
  let colorType = 0;
  let interlace = 0;
  let palette: Buffer | undefined;
  let trns: Buffer | undefined;
  const idat: Buffer[] = [];
  while (off + 8 <= png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    off += 12 + len;
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      depth = data[8]!;
      colorType = data[9]!;
      interlace = data[12]!;
    } else if (type === 'PLTE') palette = data;
    else if (type === 'tRNS') trns = data;
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
  }
  if (!width || !height || width * height > 16_000_000) throw new Error('PNG without a usable header');
  if (interlace !== 0) throw new Error('interlaced PNG not supported');
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colorType];
  if (!channels || (depth !== 8 && !(depth < 8 && (colorType === 0 || colorType === 3)))) {
    throw new Error(`PNG colour type ${colorType} depth ${depth} not supported`);
  }
  const raw = inflateSync(Buffer.concat(idat));
  const bitsPerPixel = channels * depth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = pixels.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? cur[x - bpp]! : 0;
      const b = prev[x]!;
      const c = x >= bpp ? prev[x - bpp]! : 0;
      const v = src[x]!;
      cur[x] = (filter === 0 ? v : filter === 1 ? v + a : filter === 2 ? v + b : filter === 3 ? v + ((a + b) >> 1) : v + paeth(a, b, c)) & 0xff;
    }
  }
  const dark: boolean[] = new Array<boolean>(width * height);
  const maxGrey = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    const row = pixels.subarray(y * stride, (y + 1) * stride);
    for (let x = 0; x < width; x++) {
      let r: number;
      let g: number;
      let bl: number;
      let alpha = 255;
      if (depth < 8) {
        const bit = x * depth;
        const v = (row[bit >> 3]! >> (8 - depth - (bit & 7))) & maxGrey;
        if (colorType === 3) {
          r = palette?.[v * 3] ?? 0;
          g = palette?.[v * 3 + 1] ?? 0;
          bl = palette?.[v * 3 + 2] ?? 0;
          alpha = trns?.[v] ?? 255;
        } else r = g = bl = Math.round((v * 255) / maxGrey);
      } else {
        const p = row.subarray(x * channels, x * channels + channels);
        if (colorType === 0 || colorType === 4) {
          r = g = bl = p[0]!;
          if (colorType === 4) alpha = p[1]!;
        } else if (colorType === 3) {
          r = palette?.[p[0]! * 3] ?? 0;
          g = palette?.[p[0]! * 3 + 1] ?? 0;
          bl = palette?.[p[0]! * 3 + 2] ?? 0;
          alpha = trns?.[p[0]!] ?? 255;
        } else {
          r = p[0]!;
          g = p[1]!;
          bl = p[2]!;
          if (colorType === 6) alpha = p[3]!;
        }
      }
      const lum = 0.299 * r + 0.587 * g + 0.114 * bl;
      dark[y * width + x] = alpha >= 128 && lum < 128;
    }
  }
  return { width, height, dark };
}

/** The module grid of a QR code image: true = dark module. */
export function qrModules(bmp: Bitmap): boolean[][] {
  const at = (x: number, y: number): boolean => bmp.dark[y * bmp.width + x]!;
  let minX = bmp.width;
  let minY = bmp.height;
  let maxX = -1;
  let maxY = -1;
  for (let y = 0; y < bmp.height; y++) {
    for (let x = 0; x < bmp.width; x++) {
      if (!at(x, y)) continue;
      minX = Math.min(minX, x);
      maxX = Math.max(maxX, x);
      minY = Math.min(minY, y);
      maxY = Math.max(maxY, y);
    }
  }
  if (maxX < 0) throw new Error('blank image');
  // The top-left finder square, walked along its diagonal: dark 1, light 1, dark 3, light 1, dark 1
  // modules. (Its first row alone is not enough: a data module may touch it in a QR-like image.)
  const runs: number[] = [];
  let d = 0;
  let cur = true;
  while (runs.length < 5 && minX + d <= maxX && minY + d <= maxY) {
    let n = 0;
    while (minX + d <= maxX && minY + d <= maxY && at(minX + d, minY + d) === cur) {
      n++;
      d++;
    }
    runs.push(n);
    cur = !cur;
  }
  // The last dark run may continue into a data module (real QR codes have a light separator
  // there, QR-like images may not): measure on the first four runs (6 modules).
  const module = runs.length === 5 ? (runs[0]! + runs[1]! + runs[2]! + runs[3]!) / 6 : 0;
  if (module < 1 || runs.slice(0, 4).some((n, i) => Math.abs(n - (i === 2 ? 3 : 1) * module) > module / 2 + 1) || runs[4]! < module / 2) {
    throw new Error('no QR finder pattern found');
  }
  const cols = Math.round((maxX - minX + 1) / module);
  const rows = Math.round((maxY - minY + 1) / module);
  if (cols < 21 || rows < 21 || cols > 200 || rows > 200) throw new Error('image does not look like a QR code');
  const grid: boolean[][] = [];
  for (let r = 0; r < rows; r++) {
    const line: boolean[] = [];
    for (let c = 0; c < cols; c++) {
      const x = Math.min(maxX, Math.floor(minX + (c + 0.5) * module));
      const y = Math.min(maxY, Math.floor(minY + (r + 0.5) * module));
      line.push(at(x, y));
    }
    grid.push(line);
  }
  return grid;
}

/**
 * Text lines showing the modules with half blocks: light modules are drawn (printed glyphs are
 * light on the usual dark terminal), dark modules are spaces, with a 2-module quiet zone.
 */
export function renderModules(grid: boolean[][], quiet = 2): string[] {
  const cols = (grid[0]?.length ?? 0) + quiet * 2;
  const light = (r: number, c: number): boolean => {
    const rr = r - quiet;
    const cc = c - quiet;
    if (rr < 0 || cc < 0 || rr >= grid.length || cc >= (grid[0]?.length ?? 0)) return true;
    return !grid[rr]![cc];
  };
  const lines: string[] = [];
  const total = grid.length + quiet * 2;
  for (let r = 0; r < total; r += 2) {
    let line = '';
    for (let c = 0; c < cols; c++) {
      const top = light(r, c);
      const bottom = r + 1 < total ? light(r + 1, c) : false;
      line += top && bottom ? '█' : top ? '▀' : bottom ? '▄' : ' ';
    }
    lines.push(line);
  }
  return lines;
}

/** The QR code of a PNG as terminal lines; throws when the image is not a QR code we can read. */
export function pngToTerminalQr(png: Buffer): string[] {
  return renderModules(qrModules(decodePng(png)));
}
