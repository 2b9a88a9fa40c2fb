/**
 * Stable ETags (issue 9.3) through the whole stack (bridge, vfs, write-back queue, TeraboxRemote,
 * emulator): the ETag of a file is the same in PUT's answer, PROPFIND, GET and HEAD; it does not
 * change when its write-back upload lands or when the metadata cache is refreshed; and a PUT with
 * `If-Match` on the ETag the client was given succeeds after the upload landed. A 20 MiB file is
 * five shards, so TeraBox's md5 (of the block list, under the default service variant) differs from
 * the content md5 the file had while pending. Run under the default variant (or the one of
 * TBDAV_EMULATOR_VARIANT) and under md5Rule 'content' (the content-md5 preset).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { VARIANT_PRESETS, type EmulatorOptions } from '../../src/emulator/index.js';
import { parseMultistatus } from '../dav/harness.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

const MiB = 1024 * 1024;
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

async function drained(s: TestStack, timeoutMs = 90_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((s.writeback?.usage().pending ?? 0) > 0) {
    if (Date.now() > until) throw new Error(`write-back queue did not drain: ${JSON.stringify(s.writeback?.usage())}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The ETag of `path` as PROPFIND (Depth 1 on its folder and Depth 0 on it), GET and HEAD report it. */
async function etagsOf(s: TestStack, path: string): Promise<Record<string, string | null>> {
  const propfind = async (target: string, depth: string): Promise<string | null> => {
    const r = await fetch(s.url + target, { method: 'PROPFIND', headers: { Depth: depth, 'Content-Type': 'application/xml' }, body: '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>' });
    assert.equal(r.status, 207);
    const entry = parseMultistatus(await r.text()).find((e) => decodeURIComponent(new URL(e.href, s.url).pathname) === path);
    return entry?.props['{DAV:}getetag']?.value ?? null;
  };
  const get = await fetch(s.url + path);
  await get.arrayBuffer();
  assert.equal(get.status, 200);
  const head = await fetch(s.url + path, { method: 'HEAD' });
  assert.equal(head.status, 200);
  return {
    'PROPFIND depth 1': await propfind('/', '1'),
    'PROPFIND depth 0': await propfind(path, '0'),
    GET: get.headers.get('etag'),
    HEAD: head.headers.get('etag'),
  };
}

function allEqual(etags: Record<string, string | null>, want: string, when: string): void {
  for (const [where, etag] of Object.entries(etags)) assert.equal(etag, want, `${when}: ${where} reports ${etag}, PUT answered ${want}`);
}

async function stableAcrossLanding(emulator: Partial<EmulatorOptions>): Promise<void> {
  // throttled so that the upload is certainly still running when the pending ETags are read
  const s = await startTestStack({
    emulator: { ...emulator, throughputBytesPerSec: 8 * MiB },
    configPatch: { upload: { mode: 'writeback' }, cache: { ttlSeconds: 1 } },
  });
  try {
    const data = randomBytes(20 * MiB + 123);
    const put = await fetch(s.url + '/e.bin', { method: 'PUT', body: data });
    assert.equal(put.status, 201);
    const etag = put.headers.get('etag');
    assert.ok(etag, 'PUT answers an ETag');
    assert.equal((await s.vfs.stat('/e.bin')).pending, true, 'still uploading: the pending ETags are read now');
    allEqual(await etagsOf(s, '/e.bin'), etag, 'while the upload is pending');

    await drained(s);
    const stored = await s.remote.stat('/e.bin');
    assert.equal(stored.size, data.length);
    if (stored.hash !== md5(data)) assert.notEqual(`"${stored.hash}"`, etag, 'the service md5 is not the content md5 here (block list rule)');
    allEqual(await etagsOf(s, '/e.bin'), etag, 'after the upload landed');

    // the cache expires (ttl 1 s): listings and entries come from the service again
    await new Promise((r) => setTimeout(r, 1200));
    allEqual(await etagsOf(s, '/e.bin'), etag, 'after a cache refresh');

    // a client that cached by ETag can still write conditionally
    const cond = await fetch(s.url + '/e.bin', { method: 'PUT', body: 'replaced', headers: { 'If-Match': etag } });
    assert.ok(cond.status === 204 || cond.status === 200, `If-Match on the ETag PUT answered: ${cond.status}`);
    const next = cond.headers.get('etag');
    assert.ok(next && next !== etag, 'new content, new ETag');
  } finally {
    await s.close();
  }
}

test('ETag of a 20 MiB write-back file: identical in PUT, PROPFIND, GET and HEAD, before and after the upload lands, and after a cache refresh', { timeout: 180_000 }, async () => {
  await stableAcrossLanding({});
});

test('the same under the service variant that reports the content md5 for multi-shard files (content-md5)', { timeout: 180_000 }, async () => {
  await stableAcrossLanding({ variant: { ...VARIANT_PRESETS['content-md5'] } });
});

test('write-through: the ETag of PUT is the one PROPFIND, GET and HEAD report, also after a cache refresh; the same content elsewhere has the same ETag', { timeout: 120_000 }, async () => {
  const s = await startTestStack({ configPatch: { cache: { ttlSeconds: 1 } } });
  try {
    const data = randomBytes(9 * MiB + 5);
    const put = await fetch(s.url + '/w.bin', { method: 'PUT', body: data });
    assert.equal(put.status, 201);
    const etag = put.headers.get('etag')!;
    allEqual(await etagsOf(s, '/w.bin'), etag, 'after PUT');
    await new Promise((r) => setTimeout(r, 1200));
    allEqual(await etagsOf(s, '/w.bin'), etag, 'after a cache refresh');
    const copy = await fetch(s.url + '/w.bin', { method: 'COPY', headers: { Destination: s.url + '/w2.bin' } });
    assert.equal(copy.status, 201);
    allEqual(await etagsOf(s, '/w2.bin'), etag, 'a copy (same content)');
  } finally {
    await s.close();
  }
});
