/**
 * A retry after an attempt the service REFUSED (errno 31034, HTTP 429: it did nothing) is the first
 * time the request acts, so "exists" / "not found" after it is the truth, not the echo of an earlier
 * attempt of ours (issue 10: under a frequency limit, concurrent MKCOLs of one folder were otherwise
 * taken as made by us and "maybe not empty", and every upload into the folder paid a lookup).
 * Over the emulator behind the answer proxy, which refuses the first attempt in the emulator's place.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';
import { FileTokenStore } from '../../src/terabox/auth/token-store.js';
import { TeraboxClient } from '../../src/terabox/client.js';
import { startAnswerProxy, type AnswerProxy } from './answer-proxy.js';

let dir: string;
let emu: EmulatorHandle;
let proxy: AnswerProxy;
let client: TeraboxClient;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tbdav-refused-'));
  emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emu') }));
  proxy = await startAnswerProxy(emu);
  client = new TeraboxClient({ authUrl: proxy.url, ...emu.credentials, tokenStore: new FileTokenStore(join(dir, 'state')), callsPerSecond: 1000, retryBaseMs: 5, retryMaxMs: 50 });
  await client.exchangeCode(emu.issueAuthorizationCode());
});
after(async () => {
  await client?.close();
  await proxy?.close();
  await emu?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The first call to `path` answered in the emulator's place with `json`, the rest forwarded. */
function refuseFirst(path: string, json: unknown, status = 200): void {
  let refused = false;
  proxy.hooks = {
    intercept(call) {
      if (call.path !== path || refused) return undefined;
      refused = true;
      return { status, json };
    },
  };
}

test('createDir: "exists" after a 31034 refusal is someone else\'s folder (EXISTS), not ours', async () => {
  const folder = `${emu.appRoot}/made-elsewhere`;
  await client.createDir(folder);
  refuseFirst('/openapi/api/create', { errno: 31034, errmsg: 'hit frequency limit' });
  try {
    await assert.rejects(client.createDir(folder), (err: unknown) => (err as { errno?: number }).errno === -8);
  } finally {
    proxy.hooks = {};
  }
  assert.equal(proxy.count('/openapi/api/create'), 3, 'the refused attempt and its retry (after the first createDir)');
});

test('createDir: "exists" after a 429 refusal is not ours either', async () => {
  const folder = `${emu.appRoot}/made-elsewhere-429`;
  await client.createDir(folder);
  refuseFirst('/openapi/api/create', { errno: 0 }, 429);
  try {
    await assert.rejects(client.createDir(folder), (err: unknown) => (err as { errno?: number }).errno === -8);
  } finally {
    proxy.hooks = {};
  }
});

test('filemanager delete: "not found" after a 31034 refusal is NOT_FOUND (nothing was deleted by us)', async () => {
  refuseFirst('/openapi/api/filemanager', { errno: 31034, errmsg: 'hit frequency limit' });
  try {
    await assert.rejects(client.filemanager('delete', [`${emu.appRoot}/never-there`]), { code: 'TBDAV_NOT_FOUND' });
  } finally {
    proxy.hooks = {};
  }
});
