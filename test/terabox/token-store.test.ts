/**
 * FileTokenStore: atomic, private, survives reload; logout removes the file. Sign helper.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { FileTokenStore, MemoryTokenStore, TOKEN_FILE, tokenFilePath } from '../../src/terabox/auth/token-store.js';
import { TeraboxClient } from '../../src/terabox/client.js';
import { oauthSign } from '../../src/terabox/auth/sign.js';

test('FileTokenStore saves with mode 0600, loads back, clears', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-tokens-'));
  try {
    const store = new FileTokenStore(join(dir, 'state'));
    assert.equal(await store.load(), null);
    const t = {
      accessToken: 'access-aaaaaa',
      refreshToken: 'refresh-bbbbbb',
      expiresAt: 1_900_000_000_000,
      obtainedAt: 1_800_000_000_000,
      domains: { apiDomain: 'api.example:1', uploadDomain: 'up.example:2', fetchedAt: 1_800_000_000_001 },
    };
    await Promise.all([store.save({ ...t, accessToken: 'first-one' }), store.save(t)]);
    const st = await stat(store.file);
    assert.equal(st.mode & 0o777, 0o600);
    assert.deepEqual(await store.load(), t, 'the last save wins');
    assert.deepEqual(await new FileTokenStore(join(dir, 'state')).load(), t, 'a new instance reads it');
    assert.deepEqual((await readdir(join(dir, 'state'))).sort(), [TOKEN_FILE], 'no temp file left');
    assert.equal(store.file, tokenFilePath(join(dir, 'state')), 'one place names the token file');
    assert.equal(JSON.parse(await readFile(store.file, 'utf8')).refreshToken, 'refresh-bbbbbb');
    await store.clear();
    assert.equal(await store.load(), null);
    await writeFile(store.file, '{not json');
    await assert.rejects(store.load(), { code: 'TBDAV_AUTH' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('oauth sign is md5(client_id_timestamp_client_secret_private_secret)', () => {
  const want = createHash('md5').update('cid_1705570481_csecret_psecret').digest('hex');
  assert.equal(oauthSign('cid', 1705570481, 'csecret', 'psecret'), want);
  assert.equal(oauthSign('cid', '1705570481', 'csecret', 'psecret'), want);
});

test('no saved login: TBDAV_NOT_LOGGED_IN (a code, not a message to match), before any request', async () => {
  // an auth URL nothing listens on: the error must come before any request is tried
  const client = new TeraboxClient({
    authUrl: 'http://127.0.0.1:9',
    clientId: 'cid',
    clientSecret: 'csecret',
    privateSecret: 'psecret',
    tokenStore: new MemoryTokenStore(),
    maxRetries: 0,
  });
  try {
    await assert.rejects(client.quota(), { code: 'TBDAV_NOT_LOGGED_IN' });
    await assert.rejects(client.refresh(), { code: 'TBDAV_NOT_LOGGED_IN' });
  } finally {
    await client.close();
  }
});
