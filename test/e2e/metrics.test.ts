/**
 * /metrics over the whole stack (issue 11 acceptance): it parses as Prometheus text and its counters
 * move with a scripted WebDAV session — WebDAV requests by method and status, bytes in and out,
 * upstream calls by endpoint and errno (injected rate-limit answers show as errno 31034 and as
 * backoffs), the write-back queue and spool while an upload waits; /healthz and /readyz answer as
 * specified.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestStack } from '../helpers/stack.js';
import { parsePrometheusText, sampleSum, type Family } from '../helpers/prometheus.js';

const USER = { username: 'm', password: 'metrics pw' };

test('/metrics counters move with a scripted session; /healthz and /readyz', { timeout: 120_000 }, async () => {
  const s = await startTestStack({ users: [USER], configPatch: { upload: { mode: 'writeback' } } });
  const auth = s.authHeaders();
  const scrape = async (): Promise<Map<string, Family>> => {
    const r = await fetch(`${s.url}/metrics`, { headers: auth });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(await r.text());
  };
  try {
    assert.equal((await fetch(`${s.url}/metrics`)).status, 401, 'behind auth by default');
    const hz = await fetch(`${s.url}/healthz`);
    assert.equal(hz.status, 200);
    assert.equal(await hz.text(), 'ok\n');
    const rz = await fetch(`${s.url}/readyz`);
    assert.equal(rz.status, 200);
    assert.equal(await rz.text(), 'ok\n');

    const drained = async (): Promise<void> => {
      for (let i = 0; i < 300; i++) {
        const m = await scrape();
        if (sampleSum(m, 'tbdav_writeback_queued_uploads') + sampleSum(m, 'tbdav_writeback_uploading') === 0) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail('the write-back queue never drained');
    };
    const before = await scrape();
    const delta = (after: Map<string, Family>, name: string, labels: Record<string, string> = {}): number => sampleSum(after, name, labels) - sampleSum(before, name, labels);

    // 1. A write-back upload held back by a slow service: the queue and the spool show it.
    const body = randomBytes(3 * 1024 * 1024);
    s.emulator.setOptions({ throughputBytesPerSec: 200 * 1024 });
    const put = await fetch(`${s.url}/big.bin`, { method: 'PUT', headers: auth, body });
    assert.equal(put.status, 201);
    const during = await scrape();
    assert.equal(sampleSum(during, 'tbdav_writeback_queued_uploads') + sampleSum(during, 'tbdav_writeback_uploading'), 1, 'the upload waits or runs');
    assert.ok(sampleSum(during, 'tbdav_writeback_spool_bytes') >= body.length, 'its body is in the spool');
    assert.equal(sampleSum(during, 'tbdav_writeback_spool_max_bytes'), s.config.upload.spoolMaxBytes);
    s.emulator.setOptions({ throughputBytesPerSec: 0 });

    await drained();

    // 2. Reads, listings, a folder, a delete.
    const got = await fetch(`${s.url}/big.bin`, { headers: auth });
    assert.equal(Buffer.from(await got.arrayBuffer()).length, body.length);
    assert.equal((await fetch(`${s.url}/dir`, { method: 'MKCOL', headers: auth })).status, 201);
    for (const p of ['/', '/dir/']) (await fetch(`${s.url}${p}`, { method: 'PROPFIND', headers: { ...auth, depth: '1' } })).body?.cancel();
    assert.equal((await fetch(`${s.url}/nothing-here`, { headers: auth })).status, 404);
    assert.equal((await fetch(`${s.url}/big.bin`, { method: 'DELETE', headers: auth })).status, 204);
    // The service forgets the access token: the next call refreshes it.
    s.emulator.expireAccessTokens();
    assert.equal((await fetch(`${s.url}/dir2`, { method: 'MKCOL', headers: auth })).status, 201);

    // 3. The service says "too often" for a while, during a background upload.
    s.emulator.setOptions({ faults: { rate: 1, kinds: ['errno31034'], seed: 7 } });
    assert.equal((await fetch(`${s.url}/small.txt`, { method: 'PUT', headers: auth, body: 'small' })).status, 201);
    await new Promise((r) => setTimeout(r, 1500));
    s.emulator.setOptions({ faults: { rate: 0 } });
    await drained();

    const after = await scrape();
    assert.equal(delta(after, 'tbdav_webdav_requests_total', { method: 'PUT', status: '201' }), 2);
    assert.equal(delta(after, 'tbdav_webdav_requests_total', { method: 'MKCOL', status: '201' }), 2);
    assert.ok(delta(after, 'tbdav_token_refreshes_total', { result: 'ok' }) >= 1, 'token refreshes counted');
    assert.equal(delta(after, 'tbdav_webdav_requests_total', { method: 'DELETE', status: '204' }), 1);
    assert.equal(delta(after, 'tbdav_webdav_requests_total', { method: 'GET', status: '404' }), 1);
    assert.ok(delta(after, 'tbdav_webdav_requests_total', { method: 'PROPFIND', status: '207' }) >= 2);
    assert.ok(delta(after, 'tbdav_webdav_bytes_total', { direction: 'in' }) >= body.length, 'the PUT body came in');
    assert.ok(delta(after, 'tbdav_webdav_bytes_total', { direction: 'out' }) >= body.length, 'the GET body went out');
    assert.equal(delta(after, 'tbdav_webdav_request_duration_seconds_count', { method: 'PUT' }), 2);
    for (const endpoint of ['precreate', 'superfile2', 'create', 'list']) {
      assert.ok(delta(after, 'tbdav_upstream_calls_total', { endpoint, errno: '0' }) >= 1, `${endpoint} calls counted`);
    }
    assert.ok(delta(after, 'tbdav_upstream_calls_total', { errno: '31034' }) >= 1, 'rate-limited answers by errno');
    assert.ok(delta(after, 'tbdav_backoffs_total') >= 1, 'backoffs counted');
    assert.ok(sampleSum(after, 'tbdav_pacer_rate_limited_answers') >= 1, 'the pacer saw them too');
    assert.ok(delta(after, 'tbdav_cache_lookups_total', { result: 'hit' }) >= 1, 'cache hits counted');
    assert.ok(delta(after, 'tbdav_cache_lookups_total', { result: 'miss' }) >= 1, 'cache misses counted');
    assert.ok(delta(after, 'tbdav_upstream_bytes_total', { direction: 'up' }) >= body.length, 'shard bytes sent counted');
    assert.equal(after.get('tbdav_upstream_calls_total')?.type, 'counter');
    assert.equal(after.get('tbdav_webdav_request_duration_seconds')?.type, 'histogram');
  } finally {
    await s.close();
  }
});
