import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isTbdavError } from '../../src/shared/errors.js';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { parseShareLink } from '../../src/terabox/share-link.js';
import { SHARES_FILE, ShareStore } from '../../src/terabox/share-store.js';
import { ShareRegistry, addShare } from '../../src/terabox/shares.js';
import { makeSpool, startRig, type Rig } from './setup.js';

let rig: Rig;

before(async () => {
  rig = await startRig();
  const drive = new TeraboxRemote(rig.client, { root: rig.emu.appRoot });
  await drive.mkdir('/films');
  await drive.write('/films/a.mp4', await makeSpool(rig.dir, 'a', 1000), { overwrite: false });
  await drive.write('/loose.txt', await makeSpool(rig.dir, 'b', 10), { overwrite: false });
});
after(async () => {
  await rig.close();
});

test('share links: /s/1xxx with or without ?pwd, surl= pages, bare ids; bad input refused', () => {
  assert.deepEqual(parseShareLink('https://www.terabox.com/s/1AbC-d_E'), { surl: 'AbC-d_E', shorturl: '1AbC-d_E' });
  assert.deepEqual(parseShareLink(' https://terabox.app/s/1xyz?pwd=ab12 '), { surl: 'xyz', shorturl: '1xyz', pwd: 'ab12' });
  assert.deepEqual(parseShareLink('https://www.terabox.com/sharing/link?surl=xyz'), { surl: 'xyz', shorturl: '1xyz' });
  assert.deepEqual(parseShareLink('1xyz'), { surl: 'xyz', shorturl: '1xyz' });
  for (const bad of ['', 'ftp://x/s/1abc', 'https://www.terabox.com/', 'https://www.terabox.com/s/2abc', 'https://x/s/1abc?pwd=TOOLONG', '1a b']) {
    assert.throws(() => parseShareLink(bad), (e: unknown) => isTbdavError(e, 'TBDAV_BAD_REQUEST'), bad);
  }
});

test('addShare: with and without a code, stored 0600; wrong code, missing code, expired link, taken name', async () => {
  const store = new ShareStore(join(rig.dir, 'state-a'));
  const withCode = rig.emu.createShare([`${rig.emu.appRoot}/films`], 'ab12');
  const open = rig.emu.createShare([`${rig.emu.appRoot}/films`, `${rig.emu.appRoot}/loose.txt`], '');
  const link = `https://www.terabox.com/s/${withCode.shorturl}`;

  await assert.rejects(addShare(rig.client, store, { link, pwd: 'zz99' }), (e: unknown) => isTbdavError(e, 'TBDAV_FORBIDDEN') && /wrong extraction code/.test((e as Error).message));
  await assert.rejects(addShare(rig.client, store, { link }), (e: unknown) => isTbdavError(e, 'TBDAV_FORBIDDEN') && /needs an extraction code: give it with --pwd/.test((e as Error).message));
  await assert.rejects(addShare(rig.client, store, { link: 'https://www.terabox.com/s/1doesnotexist' }), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND') && /invalid or has expired/.test((e as Error).message));
  assert.deepEqual(await store.load(), [], 'nothing stored after refusals');

  const a = await addShare(rig.client, store, { link: `${link}?pwd=ab12` });
  assert.equal(a.name, 'films');
  assert.equal(a.pwd, 'ab12');
  assert.equal(a.shareid, String(withCode.shareid));
  assert.ok(a.sekey.length > 10);
  const b = await addShare(rig.client, store, { link: `https://www.terabox.com/s/${open.shorturl}` });
  assert.match(b.name, /^share-/, 'two items: a generic name');
  await assert.rejects(addShare(rig.client, store, { link, pwd: 'ab12', name: 'films' }), (e: unknown) => isTbdavError(e, 'TBDAV_EXISTS'));
  const c = await addShare(rig.client, store, { link, pwd: 'ab12' });
  assert.equal(c.name, 'films (2)');
  await assert.rejects(addShare(rig.client, store, { link, pwd: 'ab12', name: 'a/b' }), (e: unknown) => isTbdavError(e, 'TBDAV_BAD_REQUEST'));

  const file = join(store.dir, SHARES_FILE);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const saved = JSON.parse(await readFile(file, 'utf8')) as { version: number; shares: { name: string }[] };
  assert.deepEqual(saved.shares.map((s) => s.name), ['films', b.name, 'films (2)']);
  assert.equal(await store.remove('films (2)'), true);
  assert.equal(await store.remove('films (2)'), false);
});

test('ShareRegistry follows the store: added and removed shares, unchanged ones kept', async () => {
  const store = new ShareStore(join(rig.dir, 'state-b'));
  let now = 0;
  const registry = new ShareRegistry(rig.client, store, { driveRoot: rig.emu.appRoot, now: () => now, checkEveryMs: 1000 });
  assert.deepEqual(await registry.current(), []);
  const sh = rig.emu.createShare([`${rig.emu.appRoot}/films`], '');
  await addShare(rig.client, store, { link: `https://www.terabox.com/s/${sh.shorturl}`, name: 'one' });
  assert.equal((await registry.current()).length, 0, 'not looked at again before checkEveryMs');
  now += 1000;
  const [first] = await registry.current();
  assert.equal(first?.record.name, 'one');
  await addShare(rig.client, store, { link: `https://www.terabox.com/s/${sh.shorturl}`, name: 'two' });
  now += 1000;
  const both = await registry.current();
  assert.deepEqual(both.map((r) => r.record.name), ['one', 'two']);
  assert.equal(both[0], first, 'an unchanged share keeps its remote (and its caches)');
  await store.remove('one');
  now += 1000;
  assert.deepEqual((await registry.current()).map((r) => r.record.name), ['two']);
  await writeFile(join(store.dir, SHARES_FILE), 'not json');
  now += 1000;
  assert.deepEqual((await registry.current()).map((r) => r.record.name), ['two'], 'a broken file keeps what was known');
});

test('two processes changing shares.json at once lose no change (file lock around each read-modify-write)', async () => {
  // two stores on one state dir: each its own in-process chain, as two processes have
  const dirOf = join(rig.dir, 'state-lock');
  const a = new ShareStore(dirOf);
  const b = new ShareStore(dirOf);
  const record = (name: string) => ({ name, link: `https://terabox.com/s/1${name}`, surl: name, shorturl: `1${name}`, pwd: '', sekey: '', shareid: '1', uk: '2', addedAt: Date.now() });
  const names = Array.from({ length: 12 }, (_, i) => `s${i}`);
  await Promise.all(names.map((n, i) => (i % 2 ? a : b).add(record(n))));
  assert.deepEqual((await a.load()).map((s) => s.name).sort(), [...names].sort());
  await Promise.all(names.slice(0, 6).map((n, i) => (i % 2 ? b : a).remove(n)));
  assert.deepEqual((await b.load()).map((s) => s.name).sort(), names.slice(6).sort());
});
