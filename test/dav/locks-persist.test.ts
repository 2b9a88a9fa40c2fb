import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LockFile, type PersistedLock } from '../../src/dav/locks-persist.js';
import { withTempDir } from '../helpers/temp-dir.js';

const withDir = (fn: (dir: string) => Promise<void>): Promise<void> => withTempDir('tbdav-lockfile-', fn);

const lock = (token: string, expiresAt: number, extra: Partial<PersistedLock> = {}): PersistedLock => ({
  token,
  root: '/a b/é.txt',
  rootIsDir: false,
  depth: 0,
  scope: 'exclusive',
  ownerXml: '<D:href xmlns:D="DAV:">me &amp; you</D:href>',
  expiresAt,
  ...extra,
});

test('save + flush + load round-trips live locks; expired ones are left out; the file is private', async () => {
  await withDir(async (dir) => {
    let now = 1_000_000;
    const file = join(dir, 'state', 'locks.json');
    const lf = new LockFile({ file, now: () => now });
    const a = lock('urn:uuid:a', now + 60_000);
    const b = lock('urn:uuid:b', now + 120_000, { root: '/dir', rootIsDir: true, depth: 'infinity', scope: 'shared', ownerXml: '' });
    lf.save([a, b, lock('urn:uuid:old', now - 1)]);
    await lf.flush();
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const again = new LockFile({ file, now: () => now });
    assert.deepEqual(await again.load(), [a, b]);
    now += 90_000; // a has expired meanwhile
    assert.deepEqual(await new LockFile({ file, now: () => now }).load(), [b]);
  });
});

test('a missing file is an empty table', async () => {
  await withDir(async (dir) => {
    assert.deepEqual(await new LockFile({ file: join(dir, 'none.json') }).load(), []);
  });
});

test('a corrupt or foreign file is moved aside and read as empty; malformed records are dropped', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'locks.json');
    await writeFile(file, '{"version":1,"locks":[');
    assert.deepEqual(await new LockFile({ file }).load(), []);
    assert.equal(await readFile(`${file}.corrupt`, 'utf8'), '{"version":1,"locks":[');
    await writeFile(file, JSON.stringify({ version: 99, locks: [] }));
    assert.deepEqual(await new LockFile({ file }).load(), []);
    const good = lock('urn:uuid:g', Date.now() + 60_000);
    await writeFile(file, JSON.stringify({ version: 1, locks: [good, { token: 'x' }, { ...good, depth: 2 }, { ...good, root: 'relative' }] }));
    assert.deepEqual(await new LockFile({ file }).load(), [good]);
  });
});

test('many saves in a row: the last snapshot wins and no temp file is left', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'locks.json');
    const lf = new LockFile({ file });
    const far = Date.now() + 3_600_000;
    for (let i = 0; i < 50; i++) lf.save(Array.from({ length: i + 1 }, (_, j) => lock(`urn:uuid:${j}`, far)));
    await lf.flush();
    const loaded = await new LockFile({ file }).load();
    assert.equal(loaded.length, 50);
    assert.deepEqual(await readdir(dir), ['locks.json']);
    lf.save([]);
    await lf.flush();
    assert.deepEqual(await new LockFile({ file }).load(), []);
  });
});

test('a write that fails is reported by flush() and the next save succeeds', async () => {
  await withDir(async (dir) => {
    // The state "file" path sits under a regular file: mkdir fails with ENOTDIR.
    const blocker = join(dir, 'blocker');
    await writeFile(blocker, 'x');
    const bad = new LockFile({ file: join(blocker, 'locks.json') });
    bad.save([lock('urn:uuid:z', Date.now() + 60_000)]);
    await assert.rejects(bad.flush(), (err: unknown) => (err as { code?: string }).code === 'TBDAV_FATAL');
    await bad.flush(); // the error was reported once
    await rm(blocker);
    bad.save([lock('urn:uuid:z', Date.now() + 60_000)]);
    await bad.flush();
    assert.equal((await new LockFile({ file: join(blocker, 'locks.json') }).load()).length, 1);
  });
});
