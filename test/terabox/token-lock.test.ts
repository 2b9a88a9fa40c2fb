/**
 * One token owner across processes (issue 9): clients with their own memory but one state dir (as
 * `serve` and a CLI command are) refresh under the token store's file lock and re-read the store
 * first, so a refresh token is never presented twice, even when the service revokes the whole login
 * on reuse. The child-process version (serve + whoami for 40 s) is test/long/token-owner.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator } from '../../src/emulator/index.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';
import { FileTokenStore, TOKEN_FILE } from '../../src/terabox/auth/token-store.js';
import { TeraboxClient } from '../../src/terabox/client.js';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { makeSpool } from './setup.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

for (const refreshReuse of ['refuse', 'revoke'] as const) {
  test(`refreshReuse '${refreshReuse}': four clients on one state dir refreshing at once, 10 rounds: no refresh token sent twice, every call succeeds`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tbdav-token-lock-'));
    dirs.push(dir);
    const emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emu'), variant: { refreshReuse } }));
    const stateDir = join(dir, 'state');
    const make = () => new TeraboxClient({ authUrl: emu.authUrl, ...emu.credentials, tokenStore: new FileTokenStore(stateDir), retryBaseMs: 5, retryMaxMs: 50 });
    const first = make();
    const clients = [first, make(), make(), make()];
    try {
      await first.exchangeCode(emu.issueAuthorizationCode());
      for (const c of clients) await c.quota(); // each holds the first pair in memory
      for (let round = 0; round < 10; round++) {
        await Promise.all(clients.map((c) => c.refresh()));
        await Promise.all(clients.map((c) => c.quota()));
      }
      assert.equal(emu.counters.refreshTokenReuse, 0);
      const refreshes = emu.counters.requests['/oauth/refreshtoken'] ?? 0;
      assert.ok(refreshes >= 10 && refreshes <= 40, `one refresh per client that held the stored pair (${refreshes})`);
      const pairs = await Promise.all(clients.map((c) => c.auth.tokens()));
      const saved = await new FileTokenStore(stateDir).load();
      for (const p of pairs) assert.equal(p!.refreshToken, saved!.refreshToken, 'everyone ends on the stored pair');
      await assert.rejects(stat(join(stateDir, `${TOKEN_FILE}.lock`)), { code: 'ENOENT' }, 'the lock is let go');
    } finally {
      for (const c of clients) await c.close();
      await emu.close();
    }
  });
}

test('a pair saved by another process is adopted before refreshing; a logout elsewhere wins', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-token-lock-'));
  dirs.push(dir);
  const emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emu') }));
  const stateDir = join(dir, 'state');
  const a = new TeraboxClient({ authUrl: emu.authUrl, ...emu.credentials, tokenStore: new FileTokenStore(stateDir) });
  const b = new TeraboxClient({ authUrl: emu.authUrl, ...emu.credentials, tokenStore: new FileTokenStore(stateDir) });
  try {
    await a.exchangeCode(emu.issueAuthorizationCode());
    await b.quota();
    await a.refresh();
    const n0 = emu.counters.requests['/oauth/refreshtoken'] ?? 0;
    const got = await b.refresh();
    assert.equal((emu.counters.requests['/oauth/refreshtoken'] ?? 0) - n0, 0);
    assert.equal(got.refreshToken, (await a.auth.tokens())!.refreshToken);
    await a.logout();
    await assert.rejects(b.refresh(), { code: 'TBDAV_NOT_LOGGED_IN' });
  } finally {
    await a.close();
    await b.close();
    await emu.close();
  }
});

test('the observer hears every refresh attempt (ok or refused) and the shard bytes sent', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-token-lock-'));
  dirs.push(dir);
  const emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emu') }));
  const refreshes: boolean[] = [];
  let up = 0;
  const observer = { tokenRefresh: (e: { ok: boolean }) => refreshes.push(e.ok), transfer: (e: { direction: string; bytes: number }) => (up += e.direction === 'up' ? e.bytes : 0) };
  const c = new TeraboxClient({ authUrl: emu.authUrl, ...emu.credentials, tokenStore: new FileTokenStore(join(dir, 'state')), observer });
  try {
    await c.exchangeCode(emu.issueAuthorizationCode());
    await c.refresh();
    assert.deepEqual(refreshes, [true]);
    const f = await makeSpool(dir, 'obs.bin', 5 * 1024 * 1024 + 3);
    await new TeraboxRemote(c, { root: emu.appRoot }).write('/obs.bin', f, { overwrite: false });
    assert.equal(up, f.size);
    // a refused refresh: the stored pair's refresh token spent behind our back
    const store = new FileTokenStore(join(dir, 'state'));
    const t = (await store.load())!;
    await store.save({ ...t, refreshToken: 'not-a-refresh-token-at-all' });
    const d = new TeraboxClient({ authUrl: emu.authUrl, ...emu.credentials, tokenStore: new FileTokenStore(join(dir, 'state')), observer });
    await assert.rejects(d.refresh(), { code: 'TBDAV_AUTH' });
    await d.close();
    assert.deepEqual(refreshes, [true, false]);
  } finally {
    await c.close();
    await emu.close();
  }
});
