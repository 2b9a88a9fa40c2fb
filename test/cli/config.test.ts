import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_KEYS, envName, hasCredentials, loadConfig, redactConfig } from '../../src/cli/config.js';
import { isTbdavError, type ConfigError } from '../../src/shared/errors.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { withConfigTable } from '../helpers/config-table.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');

const withTmp = <T>(fn: (dir: string) => Promise<T>): Promise<T> => withTempDir('tbdav-config-', fn);

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(isTbdavError(err, 'TBDAV_CONFIG'), `expected a ConfigError, got ${String(err)}`);
    return err as ConfigError;
  }
  assert.fail('expected a ConfigError');
}

test('defaults apply with no file, env or flags', () => {
  const c = loadConfig({ env: {}, home: '/home/u', cwd: '/' });
  assert.equal(c.server.host, '127.0.0.1');
  assert.equal(c.server.port, 8080);
  assert.deepEqual(c.server.users, []);
  assert.equal(c.terabox.authUrl, 'https://www.terabox.com');
  assert.equal(c.terabox.root, '/From: Other Applications/terabox-dav');
  assert.equal(c.stateDir, '/home/u/.local/state/terabox-dav');
  assert.equal(c.cacheDir, '/home/u/.cache/terabox-dav');
  assert.equal(c.cache.ttlSeconds, 300);
  assert.equal(c.upload.concurrency, 4);
  assert.deepEqual(c.ignore, ['._*', '.DS_Store', 'Thumbs.db', 'desktop.ini']);
  assert.equal(c.log.level, 'info');
  assert.equal(c.server.tls, undefined);
  assert.equal(hasCredentials(c), false);
});

test('XDG variables move the state and cache defaults', () => {
  const c = loadConfig({ env: { XDG_STATE_HOME: '/x/state', XDG_CACHE_HOME: '/x/cache' }, home: '/home/u' });
  assert.equal(c.stateDir, '/x/state/terabox-dav');
  assert.equal(c.cacheDir, '/x/cache/terabox-dav');
});

test('precedence: flag > env > file > default, key by key', () =>
  withTmp(async (dir) => {
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ server: { port: 1001, host: '10.0.0.1' }, cache: { ttlSeconds: 7 }, log: { level: 'warn' } }));
    const env = { TERABOX_DAV_SERVER_PORT: '1002', TERABOX_DAV_SERVER_HOST: '10.0.0.2' };
    const c = loadConfig({ configFile: file, env, flags: { 'server.port': '1003' }, home: dir });
    assert.equal(c.server.port, 1003, 'flag wins over env and file');
    assert.equal(c.server.host, '10.0.0.2', 'env wins over file');
    assert.equal(c.cache.ttlSeconds, 7, 'file wins over default');
    assert.equal(c.log.level, 'warn');
    assert.equal(c.upload.concurrency, 4, 'default when nobody sets it');
    // the file may also be named by TERABOX_DAV_CONFIG
    const c2 = loadConfig({ env: { TERABOX_DAV_CONFIG: file }, home: dir });
    assert.equal(c2.server.port, 1001);
  }));

test('env names follow the documented mapping', () => {
  assert.equal(envName('server.port'), 'TERABOX_DAV_SERVER_PORT');
  assert.equal(envName('terabox.clientId'), 'TERABOX_DAV_TERABOX_CLIENT_ID');
  assert.equal(envName('cache.ttlSeconds'), 'TERABOX_DAV_CACHE_TTL_SECONDS');
  assert.equal(envName('stateDir'), 'TERABOX_DAV_STATE_DIR');
  assert.equal(envName('server.tls.cert'), 'TERABOX_DAV_SERVER_TLS_CERT');
  const env: Record<string, string> = {
    TERABOX_DAV_TERABOX_CLIENT_ID: 'id1',
    TERABOX_DAV_TERABOX_CLIENT_SECRET: 'secret-1',
    TERABOX_DAV_TERABOX_PRIVATE_SECRET: 'private-1',
    TERABOX_DAV_SERVER_USERS: 'alice:pw1,bob:pw:2',
    TERABOX_DAV_IGNORE: '*.tmp, ~$*',
    TERABOX_DAV_TERABOX_CALLS_PER_SECOND: '2.5',
  };
  const c = loadConfig({ env, home: '/h' });
  assert.equal(hasCredentials(c), true);
  assert.equal(c.terabox.clientSecret, 'secret-1');
  assert.deepEqual(c.server.users, [
    { username: 'alice', password: 'pw1' },
    { username: 'bob', password: 'pw:2' },
  ]);
  assert.deepEqual(c.ignore, ['*.tmp', '~$*']);
  assert.equal(c.terabox.callsPerSecond, 2.5);
});

test('lists and users as text: a JSON array, comma-separated items, or empty', () => {
  const j = loadConfig({ env: { TERABOX_DAV_IGNORE: ' ["a,b", "c"] ', TERABOX_DAV_SERVER_USERS: '[{"username":"u","password":"p,q"}]' }, home: '/h' });
  assert.deepEqual(j.ignore, ['a,b', 'c']);
  assert.deepEqual(j.server.users, [{ username: 'u', password: 'p,q' }]);
  const e = loadConfig({ env: { TERABOX_DAV_IGNORE: '  ', TERABOX_DAV_SERVER_USERS: '' }, home: '/h' });
  assert.deepEqual(e.ignore, []);
  assert.deepEqual(e.server.users, []);
  assert.equal(configError(() => loadConfig({ env: { TERABOX_DAV_IGNORE: '[oops' } })).message, 'config ignore: must be a JSON list of strings or a comma-separated list (from TERABOX_DAV_IGNORE)');
  const users = 'config server.users: must be a JSON list of {"username","password"} or name:password,name2:password2 (from TERABOX_DAV_SERVER_USERS)';
  assert.equal(configError(() => loadConfig({ env: { TERABOX_DAV_SERVER_USERS: '[{' } })).message, users);
  assert.equal(configError(() => loadConfig({ env: { TERABOX_DAV_SERVER_USERS: 'alice:pw,nocolon' } })).message, users);
});

test('bad values name the key and where they came from', () =>
  withTmp(async (dir) => {
    assert.equal(configError(() => loadConfig({ env: { TERABOX_DAV_SERVER_PORT: 'eighty' } })).message, 'config server.port: must be an integer 0-65535 (from TERABOX_DAV_SERVER_PORT)');
    assert.match(configError(() => loadConfig({ env: {}, flags: { 'server.port': '70000' } })).message, /^config server\.port: must be an integer 0-65535 \(from flag --server\.port\)$/);
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ server: { port: '8080' } }));
    assert.match(configError(() => loadConfig({ env: {}, configFile: file })).message, /^config server\.port: must be an integer 0-65535 \(in .*c\.json\)$/);
    await writeFile(file, JSON.stringify({ log: { level: 'loud' } }));
    assert.match(configError(() => loadConfig({ env: {}, configFile: file })).message, /^config log\.level: must be one of error, warn/);
    await writeFile(file, JSON.stringify({ terabox: { authUrl: 'ftp://x' } }));
    assert.equal(configError(() => loadConfig({ env: {}, configFile: file })).key, 'terabox.authUrl');
    await writeFile(file, JSON.stringify({ terabox: { root: 'relative/path' } }));
    assert.equal(configError(() => loadConfig({ env: {}, configFile: file })).key, 'terabox.root');
    await writeFile(file, JSON.stringify({ server: { users: [{ username: 'a', password: 'scrypt$oops' }] } }));
    assert.equal(configError(() => loadConfig({ env: {}, configFile: file })).key, 'server.users[0].password');
    await writeFile(file, JSON.stringify({ server: { tls: { cert: 'c.pem' } } }));
    assert.equal(configError(() => loadConfig({ env: {}, configFile: file })).key, 'server.tls.key');
    await writeFile(file, '{ "server": ');
    assert.match(configError(() => loadConfig({ env: {}, configFile: file })).message, /not valid JSON/);
    assert.match(configError(() => loadConfig({ env: {}, configFile: join(dir, 'missing.json') })).message, /config file not found/);
  }));

test('half-given credentials name the missing key', () => {
  const e = configError(() => loadConfig({ env: { TERABOX_DAV_TERABOX_CLIENT_ID: 'abc' } }));
  assert.equal(e.key, 'terabox.clientSecret');
  assert.match(e.message, /embedded emulator/);
});

test('unknown keys are refused with a suggestion', () =>
  withTmp(async (dir) => {
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ server: { prot: 9000 } }));
    assert.equal(configError(() => loadConfig({ env: {}, configFile: file })).message, 'config server.prot: unknown key (did you mean server.port?)');
    await writeFile(file, JSON.stringify({ servr: { port: 9000 } }));
    assert.equal(configError(() => loadConfig({ env: {}, configFile: file })).key, 'servr');
    assert.match(configError(() => loadConfig({ env: { TERABOX_DAV_SERVER_PROT: '1' } })).message, /^config TERABOX_DAV_SERVER_PROT: unknown environment variable \(did you mean TERABOX_DAV_SERVER_PORT\?\)$/);
    assert.equal(configError(() => loadConfig({ env: {}, flags: { 'cache.ttl': '1' } })).key, 'cache.ttl');
  }));

test('relative paths in the file resolve against the file, ~ against home', () =>
  withTmp(async (dir) => {
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ stateDir: 'state', cacheDir: '~/cache', server: { tls: { cert: 'a.pem', key: 'b.pem' } } }));
    const c = loadConfig({ env: {}, configFile: file, home: '/home/me', cwd: '/elsewhere' });
    assert.equal(c.stateDir, join(dir, 'state'));
    assert.equal(c.cacheDir, '/home/me/cache');
    assert.deepEqual(c.server.tls, { cert: join(dir, 'a.pem'), key: join(dir, 'b.pem') });
    const c2 = loadConfig({ env: { TERABOX_DAV_STATE_DIR: 'rel' }, cwd: '/work/x' });
    assert.equal(c2.stateDir, '/work/x/rel');
  }));

test('redactConfig hides every secret and nothing else', () => {
  const c = loadConfig({
    env: {
      TERABOX_DAV_TERABOX_CLIENT_ID: 'client-id-visible',
      TERABOX_DAV_TERABOX_CLIENT_SECRET: 'client-secret-hidden',
      TERABOX_DAV_TERABOX_PRIVATE_SECRET: 'private-secret-hidden',
      TERABOX_DAV_SERVER_USERS: 'alice:password-hidden',
    },
  });
  const text = JSON.stringify(redactConfig(c));
  assert.ok(!text.includes('hidden'), text);
  assert.ok(text.includes('client-id-visible'));
  assert.ok(text.includes('alice'));
  assert.equal(c.terabox.clientSecret, 'client-secret-hidden', 'the original is untouched');
});

test('config.example.json holds every key and loads without error', async () => {
  const file = join(repo, 'config.example.json');
  const c = loadConfig({ env: {}, configFile: file, home: '/home/u' });
  const { readFile } = await import('node:fs/promises');
  const raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  const get = (o: unknown, k: string): unknown => k.split('.').reduce<unknown>((acc, p) => (acc as Record<string, unknown> | undefined)?.[p], o);
  for (const def of CONFIG_KEYS) assert.notEqual(get(raw, def.key), undefined, `config.example.json lacks ${def.key}`);
  assert.equal(c.server.port, 8080);
});

test('the README configuration table is the one generated from CONFIG_KEYS (npm run readme:config)', async () => {
  const { readFile } = await import('node:fs/promises');
  const readme = await readFile(join(repo, 'README.md'), 'utf8');
  for (const def of CONFIG_KEYS) {
    assert.ok(readme.includes(`| \`${def.key}\` | \`${envName(def.key)}\` |`), `README lacks a row for ${def.key}`);
  }
  // Defaults, docs and flags too: a hand edit or a changed key without regenerating fails here.
  assert.equal(withConfigTable(readme), readme, 'README configuration table is stale: run npm run readme:config');
});

test('server.users: readOnly and root per user (issue 11); server.trustedProxies: addresses and CIDR ranges', () =>
  withTmp(async (dir) => {
    const file = join(dir, 'c.json');
    await writeFile(
      file,
      JSON.stringify({
        server: {
          users: [
            { username: 'a', password: 'p' },
            { username: 'tv', password: 'q', readOnly: true, root: '/Videos//Films/' },
          ],
          trustedProxies: ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8'],
        },
      }),
    );
    const c = loadConfig({ env: {}, configFile: file, home: '/h' });
    assert.deepEqual(c.server.users, [
      { username: 'a', password: 'p' },
      { username: 'tv', password: 'q', readOnly: true, root: '/Videos/Films' },
    ]);
    assert.deepEqual(c.server.trustedProxies, ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']);
    assert.deepEqual(loadConfig({ env: {}, home: '/h' }).server.trustedProxies, []);
    assert.deepEqual(loadConfig({ env: { TERABOX_DAV_SERVER_TRUSTED_PROXIES: '127.0.0.1, 192.168.0.0/16' }, home: '/h' }).server.trustedProxies, ['127.0.0.1', '192.168.0.0/16']);
    const bad = async (server: unknown): Promise<string> => {
      await writeFile(file, JSON.stringify({ server }));
      return configError(() => loadConfig({ env: {}, configFile: file })).key;
    };
    assert.equal(await bad({ users: [{ username: 'a', password: 'p', readOnly: 'yes' }] }), 'server.users[0].readOnly');
    assert.equal(await bad({ users: [{ username: 'a', password: 'p', root: 'Videos' }] }), 'server.users[0].root');
    assert.equal(await bad({ users: [{ username: 'a', password: 'p', root: '/a/../b' }] }), 'server.users[0].root');
    assert.equal(await bad({ users: [{ username: 'a', password: 'p', admin: true }] }), 'server.users[0].admin');
    assert.equal(await bad({ trustedProxies: ['nginx.local'] }), 'server.trustedProxies');
    assert.equal(await bad({ trustedProxies: ['10.0.0.0/33'] }), 'server.trustedProxies');
    // redacted dump keeps the options, hides the password
    const { redactConfig } = await import('../../src/cli/config.js');
    await writeFile(file, JSON.stringify({ server: { users: [{ username: 'tv', password: 'secret-pw', readOnly: true, root: '/V' }] } }));
    const dump = JSON.stringify(redactConfig(loadConfig({ env: {}, configFile: file })));
    assert.ok(!dump.includes('secret-pw') && dump.includes('"readOnly":true') && dump.includes('"root":"/V"'), dump);
  }));

test('shares.* and streaming.* (issue 12): defaults, booleans from text, a folder that is not the root', () =>
  withTempDir('tbdav-config-', async (dir) => {
    const base = { home: '/home/u', cwd: '/' };
    const d = loadConfig({ env: {}, ...base });
    assert.deepEqual(d.shares, { folder: '/Shared with me', copyWaitSeconds: 60 });
    assert.deepEqual(d.streaming, { enabled: false, type: 'M3U8_AUTO_720' });
    for (const [text, want] of [['true', true], ['YES', true], ['1', true], ['off', false], ['0', false]] as const) {
      assert.equal(loadConfig({ env: { TERABOX_DAV_STREAMING_ENABLED: text }, ...base }).streaming.enabled, want, text);
    }
    assert.equal(loadConfig({ env: {}, flags: { 'streaming.enabled': 'true' }, ...base }).streaming.enabled, true);
    assert.throws(() => loadConfig({ env: { TERABOX_DAV_STREAMING_ENABLED: 'maybe' }, ...base }), (e: unknown) => isTbdavError(e, 'TBDAV_CONFIG') && /streaming\.enabled: must be true or false/.test((e as Error).message));
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ streaming: { enabled: 'true' } }));
    assert.throws(() => loadConfig({ env: {}, configFile: file, ...base }), /streaming\.enabled: must be true or false \(a JSON boolean\)/);
    await writeFile(file, JSON.stringify({ streaming: { enabled: true, type: 'M3U8_AUTO_1080' }, shares: { folder: '/TeraBox shares/', copyWaitSeconds: 5 } }));
    const c = loadConfig({ env: {}, configFile: file, ...base });
    assert.deepEqual([c.streaming.enabled, c.streaming.type, c.shares.folder, c.shares.copyWaitSeconds], [true, 'M3U8_AUTO_1080', '/TeraBox shares', 5]);
    assert.throws(() => loadConfig({ env: { TERABOX_DAV_SHARES_FOLDER: '/' }, ...base }), /shares\.folder: must be a folder below the root/);
    assert.throws(() => loadConfig({ env: { TERABOX_DAV_STREAMING_TYPE: 'M3U8_MP3_128' }, ...base }), /streaming\.type: must be one of/);
  }));
