import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { qrLikePng } from '../../src/emulator/util.js';
import { decodePng, pngFromDataUrl, pngToTerminalQr, qrModules, renderModules } from '../../src/cli/qr-terminal.js';

function finderAt(grid: boolean[][], x0: number, y0: number): void {
  for (let dy = 0; dy < 7; dy++) {
    for (let dx = 0; dx < 7; dx++) {
      const ring = Math.max(Math.abs(dx - 3), Math.abs(dy - 3));
      assert.equal(grid[y0 + dy]![x0 + dx], ring !== 2, `finder module ${x0 + dx},${y0 + dy}`);
    }
  }
}

test('the module grid of the emulator QR image is recovered at any scale', () => {
  const reference = qrModules(decodePng(qrLikePng('device-code-1', 4)));
  assert.equal(reference.length, 25);
  assert.equal(reference[0]!.length, 25);
  finderAt(reference, 0, 0);
  finderAt(reference, 18, 0);
  finderAt(reference, 0, 18);
  for (const scale of [1, 3, 7]) assert.deepEqual(qrModules(decodePng(qrLikePng('device-code-1', scale))), reference, `scale ${scale}`);
  assert.notDeepEqual(qrModules(decodePng(qrLikePng('device-code-2', 4))), reference);
});

test('data URLs decode and render as half-block lines with a quiet zone', () => {
  const url = 'data:image/png;base64,' + qrLikePng('abc', 2).toString('base64');
  const lines = pngToTerminalQr(pngFromDataUrl(url));
  assert.equal(lines.length, Math.ceil((25 + 4) / 2));
  for (const l of lines) assert.equal([...l].length, 29);
  assert.equal(lines[0], '█'.repeat(29), 'top quiet zone is light');
  assert.deepEqual(renderModules([[true, false]], 0), [' ▀']);
});

test('1-bit greyscale PNGs with filters decode too', () => {
  // 16x2 image, bit depth 1: row 0 alternating bytes via Sub filter, row 1 via Up filter.
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    return Buffer.concat([len, Buffer.from(type), data, Buffer.alloc(4)]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(16, 0);
  ihdr.writeUInt32BE(2, 4);
  ihdr[8] = 1;
  const raw = Buffer.from([0, 0b11110000, 0b00001111, 2, 0, 0b11111111]);
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
  const bmp = decodePng(png);
  const row0 = bmp.dark.slice(0, 16).map((d) => (d ? 1 : 0)).join('');
  const row1 = bmp.dark.slice(16).map((d) => (d ? 1 : 0)).join('');
  assert.equal(row0, '0000111111110000'); // 1 bits are white in greyscale
  assert.equal(row1, '0000111111110001'); // Up: 0b11110000, then 0b11111111 + 0b00001111 = 0b00001110 (mod 256)
});

test('not a PNG, or not a QR code, is refused', () => {
  assert.throws(() => decodePng(Buffer.from('hello')), /not a PNG/);
  assert.throws(() => pngToTerminalQr(qrLikePng('x').subarray(0, 8)), /header/);
});
