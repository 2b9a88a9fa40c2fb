/**
 * The bridge's own pages (issue 11): /healthz, /readyz, /metrics and the status page, their
 * authentication, their invisibility to WebDAV, the 503 of a share not attached yet, and the CSRF
 * protection of the status page's buttons.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BridgeMetrics } from '../../src/dav/metrics.js';
import type { ServiceMonitor, ShareState, StatusSnapshot } from '../../src/dav/service.js';
import { parsePrometheusText, sampleSum } from '../helpers/prometheus.js';
import { startHarness, parseMultistatus } from './harness.js';

const USER = { username: 'u', password: 'pw' };
const AUTH = { Authorization: 'Basic ' + Buffer.from('u:pw').toString('base64') };

class FakeMonitor implements ServiceMonitor {
  state: ShareState = { state: 'ready' };
  isReady = true;
  retried: string[] = [];
  removed: string[] = [];
  share(): ShareState {
    return this.state;
  }
  async ready(): Promise<boolean> {
    return this.isReady;
  }
  async snapshot(): Promise<StatusSnapshot> {
    return {
      version: '9.9.9',
      emulator: false,
      account: { name: 'alice@example.org', type: 'Premium', quota: { used: 3 * 2 ** 30, total: 10 * 2 ** 30 } },
      driveFolder: '/From: Other Applications/my-app/dav',
      appFolder: '/From: Other Applications/my-app',
      uploadMode: 'writeback',
      uploads: {
        inFlight: [{ id: 'u1', path: '/big.iso', size: 1000, done: 250, since: Date.now() - 5000 }],
        queued: [{ id: 'u2', path: '/next.bin', size: 10, done: 0, since: Date.now() }],
        failed: [{ id: 'u3', path: '/bad <name>.txt', size: 5, done: 0, since: Date.now(), error: 'quota exceeded (errno -10)' }],
        spoolBytes: 1010,
        spoolMaxBytes: 10_000,
      },
      cache: { hits: 3, misses: 1 },
      shares: {
        folder: '/Shared with me',
        list: [{ name: 'Holiday', link: 'https://www.terabox.com/s/1AbCdEf', addedAt: Date.now() - 3_600_000 }],
        transfers: [{ id: 't1', from: '/Shared with me/Holiday/a.mp4', to: '/a.mp4', state: 'failed', startedAt: Date.now() - 5000, error: 'quota exceeded' }],
      },
      startedAt: Date.now() - 60_000,
    };
  }
  async retryUpload(id: string): Promise<void> {
    this.retried.push(id);
  }
  async removeUpload(id: string): Promise<void> {
    this.removed.push(id);
  }
}

test('/healthz and /readyz answer without credentials and say nothing more than ok / not ok', async () => {
  const monitor = new FakeMonitor();
  const h = await startHarness({ users: [USER], monitor });
  try {
    const hz = await h.req('GET', '/healthz');
    assert.equal(hz.status, 200);
    assert.equal(hz.text, 'ok\n');
    assert.equal((await h.req('GET', '/readyz')).status, 200);
    monitor.isReady = false;
    const nr = await h.req('GET', '/readyz');
    assert.equal(nr.status, 503);
    assert.equal(nr.text, 'not ready\n');
    assert.equal((await h.req('HEAD', '/healthz')).status, 200);
    assert.equal((await h.req('PUT', '/healthz', { body: 'x' })).status, 405);
    // the share itself still wants credentials
    assert.equal((await h.req('PROPFIND', '/', { headers: { Depth: '0' } })).status, 401);
  } finally {
    await h.close();
  }
});

test('/metrics: behind the share\'s auth unless metricsPublic; valid Prometheus text whose WebDAV counters move', async () => {
  const metrics = new BridgeMetrics();
  const h = await startHarness({ users: [USER], metrics });
  try {
    assert.equal((await h.req('GET', '/metrics')).status, 401);
    const before = parsePrometheusText((await h.req('GET', '/metrics', { headers: AUTH })).text);
    await h.req('PUT', '/a.txt', { headers: AUTH, body: 'hello world' });
    await h.req('GET', '/a.txt', { headers: AUTH });
    await h.req('GET', '/missing', { headers: AUTH });
    await h.req('GET', '/a.txt', { headers: { Authorization: 'Basic ' + Buffer.from('u:wrong').toString('base64') } });
    await new Promise((r) => setTimeout(r, 20));
    const m = await h.req('GET', '/metrics', { headers: AUTH });
    assert.match(m.headers['content-type']!, /^text\/plain; version=0\.0\.4/);
    const after = parsePrometheusText(m.text);
    const delta = (name: string, labels: Record<string, string> = {}) => sampleSum(after, name, labels) - sampleSum(before, name, labels);
    assert.equal(delta('tbdav_webdav_requests_total', { method: 'PUT', status: '201' }), 1);
    assert.equal(delta('tbdav_webdav_requests_total', { method: 'GET', status: '200' }), 2, 'the GET and the first /metrics');
    assert.equal(delta('tbdav_webdav_requests_total', { method: 'GET', status: '404' }), 1);
    assert.equal(delta('tbdav_webdav_requests_total', { method: 'GET', status: '401' }), 1);
    assert.equal(delta('tbdav_login_failures_total'), 1);
    assert.ok(delta('tbdav_webdav_bytes_total', { direction: 'in' }) >= 11, 'the PUT body counted');
    assert.ok(delta('tbdav_webdav_bytes_total', { direction: 'out' }) >= 11, 'the GET body counted');
    assert.equal(delta('tbdav_webdav_request_duration_seconds_count', { method: 'PUT' }), 1);
    assert.equal(after.get('tbdav_webdav_request_duration_seconds')?.type, 'histogram');
    assert.ok(after.has('tbdav_process_resident_memory_bytes'), 'process metrics too');
  } finally {
    await h.close();
  }
  const pub = await startHarness({ users: [USER], metrics: new BridgeMetrics(), metricsPublic: true });
  try {
    assert.equal((await pub.req('GET', '/metrics')).status, 200);
  } finally {
    await pub.close();
  }
});

test('the status page: same auth as the share, hidden from WebDAV, upload buttons protected against cross-site posts', async () => {
  const monitor = new FakeMonitor();
  const h = await startHarness({ users: [USER, { username: 'ro', password: 'r', readOnly: true }], monitor, metrics: new BridgeMetrics() });
  try {
    assert.equal((await h.req('GET', '/.terabox-dav/')).status, 401);
    const moved = await h.req('GET', '/.terabox-dav', { headers: AUTH });
    assert.equal(moved.status, 301);
    assert.equal(moved.headers['location'], `${h.url}/.terabox-dav/`);
    const page = await h.req('GET', '/.terabox-dav/', { headers: AUTH });
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type']!, /^text\/html/);
    assert.match(page.text, /alice@example\.org/);
    assert.match(page.text, /Premium/);
    assert.match(page.text, /3\.00 GiB used of 10\.0 GiB \(30\.0 %\)/);
    assert.match(page.text, /From: Other Applications\/my-app\//);
    assert.match(page.text, /move or copy them into/);
    assert.match(page.text, /big\.iso/);
    assert.match(page.text, /<progress max="1000" value="250">/);
    assert.match(page.text, /bad &lt;name&gt;\.txt/, 'names are escaped');
    assert.match(page.text, /quota exceeded \(errno -10\)/);
    assert.match(page.text, /9\.9\.9/);
    assert.match(page.text, /75\.0 %/, 'cache hit ratio');
    assert.doesNotMatch(page.text, /<script/, 'no JavaScript needed');
    assert.match(page.text, /<table id="shares">.*Holiday.*terabox\.com\/s\/1AbCdEf/s);
    assert.match(page.text, /<table id="transfers">.*\/Shared with me\/Holiday\/a\.mp4.*failed: quota exceeded/s);

    // Hidden from WebDAV.
    await h.req('PUT', '/file.txt', { headers: AUTH, body: 'x' });
    const listing = parseMultistatus((await h.req('PROPFIND', '/', { headers: { ...AUTH, Depth: '1' } })).text).map((e) => e.href);
    assert.deepEqual(listing.sort(), ['/', '/file.txt']);
    assert.equal((await h.req('PROPFIND', '/.terabox-dav/', { headers: { ...AUTH, Depth: '0' } })).status, 404);
    assert.equal((await h.req('PUT', '/.terabox-dav/x', { headers: AUTH, body: 'x' })).status, 403);
    assert.equal((await h.req('MKCOL', '/.terabox-dav', { headers: AUTH })).status, 403);

    // Buttons: the form's token is required, and a foreign Origin is refused.
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;
    const form = (id: string, token: string) => `id=${encodeURIComponent(id)}&csrf=${encodeURIComponent(token)}`;
    const post = (path: string, body: string, headers: Record<string, string> = {}) =>
      h.req('POST', path, { headers: { ...AUTH, 'Content-Type': 'application/x-www-form-urlencoded', ...headers }, body });
    assert.equal((await post('/.terabox-dav/uploads/retry', form('u3', 'forged'))).status, 403);
    assert.equal((await post('/.terabox-dav/uploads/retry', form('u3', csrf), { Origin: 'https://evil.example' })).status, 403);
    assert.deepEqual(monitor.retried, []);
    const ok = await post('/.terabox-dav/uploads/retry', form('u3', csrf), { Origin: h.url });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers['location'], `${h.url}/.terabox-dav/?notice=retried`);
    assert.deepEqual(monitor.retried, ['u3']);
    assert.equal((await post('/.terabox-dav/uploads/remove', form('u3', csrf))).status, 303, 'no Origin at all (old browsers): the token suffices');
    assert.deepEqual(monitor.removed, ['u3']);
    assert.match((await h.req('GET', '/.terabox-dav/?notice=retried', { headers: AUTH })).text, /queued again/);

    // A read-only user sees the page without buttons and cannot post.
    const ro = { Authorization: 'Basic ' + Buffer.from('ro:r').toString('base64') };
    const roPage = await h.req('GET', '/.terabox-dav/', { headers: ro });
    assert.doesNotMatch(roPage.text, /<form/);
    const roCsrf = /name="csrf"/.test(roPage.text) ? '' : csrf;
    const roPost = await h.req('POST', '/.terabox-dav/uploads/remove', { headers: { ...ro, 'Content-Type': 'application/x-www-form-urlencoded' }, body: form('u2', roCsrf) });
    assert.equal(roPost.status, 403);
    assert.deepEqual(monitor.removed, ['u3']);
  } finally {
    await h.close();
  }
});

test('a bridge without a FileSystem answers 503 + Retry-After pointing to the status page, then serves once attached', async () => {
  const monitor = new FakeMonitor();
  monitor.state = { state: 'login', code: { qrPng: Buffer.from('89504e47', 'hex'), userCode: 'ABCD-1234', verificationUrl: 'https://example.org/device', expiresAt: Date.now() + 300_000 } };
  const h = await startHarness({ users: [USER], monitor });
  const fs = h.vfs;
  try {
    // startHarness attached its vfs; build a second, detached bridge for this test.
    const { startBridge } = await import('../../src/dav/server.js');
    const b = await startBridge({ users: [USER], monitor, port: 0 });
    try {
      const r = await fetch(`${b.url}/`, { method: 'PROPFIND', headers: { ...AUTH, Depth: '0' } });
      assert.equal(r.status, 503);
      assert.ok(Number(r.headers.get('retry-after')) > 0);
      assert.match(await r.text(), /not logged in to TeraBox yet: open http:\/\/127\.0\.0\.1:\d+\/\.terabox-dav\/ in a browser/);
      assert.equal((await fetch(`${b.url}/`, { method: 'PROPFIND', headers: { Depth: '0' } })).status, 401, 'auth first');
      const page = await fetch(`${b.url}/.terabox-dav/`, { headers: AUTH });
      const html = await page.text();
      assert.match(html, /ABCD-1234/);
      assert.match(html, /<img[^>]+src="\/\.terabox-dav\/login-qr\.png/);
      const qr = await fetch(`${b.url}/.terabox-dav/login-qr.png`, { headers: AUTH });
      assert.equal(qr.headers.get('content-type'), 'image/png');
      assert.deepEqual(Buffer.from(await qr.arrayBuffer()), Buffer.from('89504e47', 'hex'));
      monitor.state = { state: 'ready' };
      b.attach(fs);
      assert.equal(b.attached, true);
      const ok = await fetch(`${b.url}/`, { method: 'PROPFIND', headers: { ...AUTH, Depth: '0' } });
      assert.equal(ok.status, 207);
      await ok.arrayBuffer();
      assert.throws(() => b.attach(fs), /attached already/);
    } finally {
      await b.close();
    }
  } finally {
    await h.close();
  }
});
