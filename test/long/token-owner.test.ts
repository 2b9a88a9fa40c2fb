/**
 * One token owner across processes (issue 9 acceptance): `terabox-dav serve` and `terabox-dav
 * whoami` run side by side as child processes on one state dir, with 5 s access tokens, for 40 s
 * (TBDAV_TOKEN_OWNER_SECONDS). serve keeps working (PUT, GET, PROPFIND through it) while whoami is
 * run again and again, and serve idles now and then so that whoami refreshes the pair serve holds.
 * Holds when every WebDAV request and every whoami succeeds and the emulator
 * never saw a refresh token presented twice (counters.refreshTokenReuse 0), under refreshReuse
 * 'refuse' (200004) and 'revoke' (the whole login dies on reuse).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startEmulator } from '../../src/emulator/index.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';
import { FileTokenStore } from '../../src/terabox/auth/token-store.js';
import { TeraboxClient } from '../../src/terabox/client.js';
import { cleanEnv, runCli, startCli, writeCliConfig } from '../helpers/cli.js';

const SECONDS = Number(process.env.TBDAV_TOKEN_OWNER_SECONDS ?? 40);

for (const refreshReuse of ['refuse', 'revoke'] as const) {
  test(`serve + whoami side by side, 5 s tokens, ${SECONDS} s, refreshReuse '${refreshReuse}': every call succeeds, no refresh token reused`, { timeout: (SECONDS + 120) * 1000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tbdav-token-owner-'));
    const emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emu'), accessTokenTtlSec: 5, variant: { refreshReuse } }));
    let serve: ReturnType<typeof startCli> | undefined;
    try {
      const { file, stateDir } = await writeCliConfig(dir, emu, '/owner');
      // log in (as `login --code` would): the pair lands in the state dir's token file
      const login = new TeraboxClient({ authUrl: emu.authUrl, ...emu.credentials, tokenStore: new FileTokenStore(stateDir) });
      await login.exchangeCode(emu.issueAuthorizationCode());
      await login.close();

      const env = cleanEnv(dir);
      serve = startCli(['serve', '--config', file], { env });
      const [, url] = await serve.waitFor(/WebDAV URL: (\S+)\n/, 60_000);
      const base = url!.replace(/\/$/, '');
      const deadline = Date.now() + SECONDS * 1000;
      const failures: string[] = [];
      let davCalls = 0;
      let whoamis = 0;

      const davLoop = async (): Promise<void> => {
        for (let i = 0; Date.now() < deadline; i++) {
          const body = randomBytes(1000 + i);
          const name = `/f${i % 7}.bin`;
          const put = await fetch(base + name, { method: 'PUT', body });
          await put.arrayBuffer();
          if (put.status !== 201 && put.status !== 204) failures.push(`PUT ${name}: ${put.status}`);
          const get = await fetch(base + name);
          const back = Buffer.from(await get.arrayBuffer());
          if (get.status !== 200 || !back.equals(body)) failures.push(`GET ${name}: ${get.status}, ${back.length} bytes`);
          const pf = await fetch(base + '/', { method: 'PROPFIND', headers: { depth: '1' } });
          await pf.arrayBuffer();
          if (pf.status !== 207) failures.push(`PROPFIND: ${pf.status}`);
          davCalls += 3;
          // every fifth round serve idles for longer than half a token's life: a whoami started then
          // finds the saved pair due and refreshes it, while serve still holds the old one in memory
          // (serve must adopt the new pair, not send its spent refresh token)
          await new Promise((r) => setTimeout(r, i % 5 === 4 ? 3500 : 200));
        }
      };
      const whoamiLoop = async (): Promise<void> => {
        while (Date.now() < deadline) {
          const r = await runCli(['whoami', '--config', file], { env, timeoutMs: 60_000 });
          whoamis++;
          if (r.code !== 0 || !/User:/.test(r.stdout)) failures.push(`whoami: exit ${r.code}: ${r.stderr.trim()}`);
        }
      };
      await Promise.all([davLoop(), whoamiLoop()]);

      assert.deepEqual(failures, [], 'every call succeeded');
      assert.ok(whoamis >= 3, `whoami ran several times (${whoamis})`);
      assert.ok(davCalls >= 30, `serve answered many requests (${davCalls})`);
      const refreshes = emu.counters.requests['/oauth/refreshtoken'] ?? 0;
      assert.ok(refreshes >= Math.floor(SECONDS / 5), `tokens were refreshed along the way (${refreshes})`);
      assert.equal(emu.counters.refreshTokenReuse, 0, 'no refresh token presented twice');
    } finally {
      const end = await serve?.stop('SIGTERM');
      if (end && end.code !== 0) console.error(end.stderr);
      await emu.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}
