/**
 * A write-back upload TeraBox refused for good (a name it does not accept: '?') stays readable at
 * its path; the natural cure, renaming it, and giving it up, deleting it, must answer as WebDAV
 * clients expect. The file never reached the drive, so the service's refusal of the old name when
 * the vfs makes sure nothing is left there is not a failure of the MOVE or the DELETE (both did what
 * was asked, yet answered 400 'TeraBox refuses this name', and rclone/Finder reported them failed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { parsePrometheusText, sampleSum } from '../helpers/prometheus.js';
import { readAll } from '../helpers/streams.js';

async function failedUploads(s: TestStack): Promise<number> {
  return sampleSum(parsePrometheusText(await (await fetch(`${s.url}/metrics`)).text()), 'tbdav_writeback_failed_uploads');
}

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`never: ${what}`);
}

test('a write-back upload refused for its name: MOVE to a good name answers 201 and the file lands; DELETE answers 204', { timeout: 90_000 }, async () => {
  const s = await startTestStack({ configPatch: { upload: { mode: 'writeback' } } });
  try {
    // MOVE: the cure
    assert.equal((await fetch(`${s.url}/bad%3F.bin`, { method: 'PUT', body: 'renamed to land' })).status, 201);
    await until('the upload is refused for good', async () => (await failedUploads(s)) === 1);
    const moved = await fetch(`${s.url}/bad%3F.bin`, { method: 'MOVE', headers: { destination: `${s.url}/good.bin` } });
    assert.equal(moved.status, 201, await moved.text());
    assert.equal(await (await fetch(`${s.url}/good.bin`)).text(), 'renamed to land');
    assert.equal((await fetch(`${s.url}/bad%3F.bin`)).status, 404);
    await until('the renamed upload lands on the drive', async () => {
      try {
        return (await readAll(await s.remote.openRead('/good.bin'))).toString() === 'renamed to land';
      } catch {
        return false;
      }
    });
    assert.equal(await failedUploads(s), 0);

    // DELETE: giving it up
    assert.equal((await fetch(`${s.url}/worse%3F.bin`, { method: 'PUT', body: 'given up' })).status, 201);
    await until('the second upload is refused for good', async () => (await failedUploads(s)) === 1);
    const deleted = await fetch(`${s.url}/worse%3F.bin`, { method: 'DELETE' });
    assert.equal(deleted.status, 204, await deleted.text());
    assert.equal((await fetch(`${s.url}/worse%3F.bin`)).status, 404);
    assert.equal(await failedUploads(s), 0);
  } finally {
    await s.close();
  }
});
