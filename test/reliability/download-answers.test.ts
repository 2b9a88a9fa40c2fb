/**
 * Nothing unverified reaches the client (issue 9.7), over the full stack (bridge -> vfs ->
 * TeraboxRemote -> emulator, port 0): the download host answers some requests with a 200 whose
 * Content-Length is not the file's (badLength) or a 206 whose Content-Range is not the range asked
 * (badRange), both with a cut body. At 0 % and at 10 % of such answers, whole GETs and Range GETs of
 * files from 1 byte to 9 MiB give the WebDAV client exactly the bytes; at 10 % the log names the
 * answers asked again. A dlink that redirects 0, 1 or 2 times (variant dlinkHops) reads the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { captureLogger } from './helpers.js';
import { BYTES_PATH } from '../terabox/setup.js';

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const MiB = 1024 * 1024;

async function putFiles(s: TestStack, sizes: number[]): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const [i, n] of sizes.entries()) {
    const data = randomBytes(n);
    const res = await fetch(`${s.url}/f${i}.bin`, { method: 'PUT', body: data });
    assert.ok(res.status === 201 || res.status === 204, `PUT f${i}: ${res.status}`);
    await res.arrayBuffer();
    files.set(`/f${i}.bin`, data);
  }
  return files;
}

async function getExact(s: TestStack, files: Map<string, Buffer>, label: string): Promise<void> {
  for (const [path, data] of files) {
    const res = await fetch(s.url + path);
    assert.equal(res.status, 200, `${label} GET ${path}`);
    const got = Buffer.from(await res.arrayBuffer());
    assert.equal(got.length, data.length, `${label} GET ${path}: length`);
    assert.equal(md5(got), md5(data), `${label} GET ${path}: bytes`);
    if (data.length < 3) continue;
    for (const [a, b] of [[1, data.length - 2], [Math.floor(data.length / 3), Math.floor(data.length / 2)], [data.length - 1, data.length - 1]]) {
      const r = await fetch(s.url + path, { headers: { range: `bytes=${a}-${b}` } });
      assert.equal(r.status, 206, `${label} GET ${path} ${a}-${b}`);
      assert.equal(md5(Buffer.from(await r.arrayBuffer())), md5(data.subarray(a, b + 1)), `${label} GET ${path} ${a}-${b}: bytes`);
    }
  }
}

for (const rate of [0, 0.1]) {
  test(`download answers with a wrong length or range (${rate * 100} %), bodies cut: the client gets exactly the bytes`, { timeout: 180_000 }, async () => {
    const cap = captureLogger();
    const s = await startTestStack({ logger: cap.logger });
    try {
      const files = await putFiles(s, [1, 700, 4096, 65_536, 1_000_000, 4 * MiB + 3, 9 * MiB + 5]);
      s.emulator.setOptions({ faults: { rate, seed: 97, kinds: ['badLength', 'badRange'], endpoints: [BYTES_PATH] } });
      const before = s.counters.faultsInjected;
      for (let round = 0; round < 3; round++) await getExact(s, files, `${rate * 100} % round ${round}`);
      if (rate > 0) {
        assert.ok(s.counters.faultsInjected - before >= 3, `bad answers were injected (${s.counters.faultsInjected - before})`);
        assert.ok(cap.lines.some((l) => /asking again|resuming/.test(l) && /host (answers|sends|answered)/.test(l)), 'the log names the answers asked again');
      } else {
        assert.equal(s.counters.faultsInjected, before);
      }
    } finally {
      s.emulator.setOptions({ faults: { rate: 0 } });
      await s.close();
    }
  });
}

for (const dlinkHops of [0, 1, 2] as const) {
  test(`a dlink that redirects ${dlinkHops} time(s): whole and ranged GETs exact`, { timeout: 60_000 }, async () => {
    const s = await startTestStack({ emulator: { variant: { dlinkHops } } });
    try {
      const files = await putFiles(s, [5, 3 * MiB + 17]);
      await getExact(s, files, `${dlinkHops} hops`);
      if (dlinkHops === 2) assert.ok((s.counters.requests['/hop'] ?? 0) > 0, 'the middle hop was taken');
    } finally {
      await s.close();
    }
  });
}
