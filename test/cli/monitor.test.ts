/** StackMonitor (src/cli/monitor.ts): readiness rules and what the status page gets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BridgeMetrics } from '../../src/dav/metrics.js';
import { appFolderOf, StackMonitor, type MonitorParts } from '../../src/cli/monitor.js';

function fakeParts(opts: { quotaFails?: boolean; spool?: { pendingBytes: number; maxBytes: number } } = {}): MonitorParts & { quotaCalls: number } {
  const parts = {
    quotaCalls: 0,
    client: {
      uinfo: async () => ({ uname: 'alice', vip_type: 1 }),
      quota: async () => {
        parts.quotaCalls++;
        if (opts.quotaFails) throw new Error('unreachable');
        return { used: 5, total: 10 };
      },
      http: { pacerStats: () => ({ intervalMs: 50, backoffs: 2, rateLimited: 3 }) },
    },
    writeback: {
      usage: () => ({ pendingBytes: opts.spool?.pendingBytes ?? 0, reservedBytes: 0, maxBytes: opts.spool?.maxBytes ?? 100, pending: 1 }),
      pendingUnder: () => [{ id: 'w1', path: '/a.bin', size: 10, contentMd5: '', createdAt: 1, state: 'uploading', attempts: 1 }],
    },
    shares: {
      store: { load: async () => [{ name: 'Holiday', link: 'https://www.terabox.com/s/1AbC?pwd=ab12', addedAt: 5 }] },
      transfers: { list: () => [] },
    },
  };
  return parts as unknown as MonitorParts & { quotaCalls: number };
}

test('appFolderOf: the app folder the platform confines the app to', () => {
  assert.equal(appFolderOf('/From: Other Applications/my-app/dav'), '/From: Other Applications/my-app');
  assert.equal(appFolderOf('/From: Other Applications/my-app'), '/From: Other Applications/my-app');
  assert.equal(appFolderOf('/elsewhere'), undefined);
});

test('ready: logged in, the service answered within a minute (asked when quiet), spool not full', async () => {
  let now = 1_000_000;
  const metrics = new BridgeMetrics({ processMetrics: false, now: () => now });
  const m = new StackMonitor({ metrics, emulator: false, driveFolder: '/x', uploadMode: 'writeback', now: () => now });
  assert.equal(await m.ready(), false, 'starting');
  const parts = fakeParts();
  m.setParts(parts);
  m.setState({ state: 'ready' });
  metrics.observer.apiCall!({ endpoint: 'list', errno: 0, httpStatus: 200, ms: 3 });
  assert.equal(await m.ready(), true);
  assert.equal(parts.quotaCalls, 0, 'a recent answer needs no probe');
  now += 61_000;
  assert.equal(await m.ready(), true, 'quiet: asked the service');
  assert.equal(parts.quotaCalls, 1);
  assert.equal(await m.ready(), true);
  assert.equal(parts.quotaCalls, 1, 'one probe per 30 s at most');
  const down = new StackMonitor({ metrics, emulator: false, driveFolder: '/x', uploadMode: 'writeback', now: () => now });
  down.setParts(fakeParts({ quotaFails: true }));
  down.setState({ state: 'ready' });
  assert.equal(await down.ready(), false, 'unreachable');
  const full = new StackMonitor({ metrics, emulator: false, driveFolder: '/x', uploadMode: 'writeback', now: () => now });
  full.setParts(fakeParts({ spool: { pendingBytes: 100, maxBytes: 100 } }));
  full.setState({ state: 'ready' });
  assert.equal(await full.ready(), false, 'spool full');
  m.setState({ state: 'login' });
  assert.equal(await m.ready(), false, 'not logged in');
});

test('snapshot: account, uploads, pacer, and share links without their extraction code', async () => {
  const metrics = new BridgeMetrics({ processMetrics: false });
  const m = new StackMonitor({ metrics, emulator: false, driveFolder: '/From: Other Applications/a/b', appFolder: '/From: Other Applications/a', uploadMode: 'writeback', sharesFolder: '/Shared with me' });
  m.setParts(fakeParts());
  m.setState({ state: 'ready' });
  const s = await m.snapshot();
  assert.deepEqual(s.account, { name: 'alice', type: 'Premium', quota: { used: 5, total: 10 } });
  assert.equal(s.uploads?.inFlight[0]?.path, '/a.bin');
  assert.deepEqual(s.pacer, { intervalMs: 50, backoffs: 2, rateLimited: 3 });
  assert.deepEqual(s.shares?.list, [{ name: 'Holiday', link: 'https://www.terabox.com/s/1AbC', addedAt: 5 }]);
  assert.ok(!JSON.stringify(s).includes('ab12'), 'the extraction code is never shown');
});
