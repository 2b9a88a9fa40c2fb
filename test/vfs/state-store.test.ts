import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isTbdavError } from '../../src/shared/errors.js';
import { StateStore } from '../../src/vfs/state-store.js';
import { withTempDir } from '../helpers/temp-dir.js';

const withDir = (fn: (dir: string) => Promise<void>): Promise<void> => withTempDir('tbdav-state-', fn);

test('state is written atomically to state.json and read back on open', async () => {
  await withDir(async (dir) => {
    const s = await StateStore.open(dir);
    await s.patchProps('/a', { '{urn:x}p': 'v' });
    await s.setMtime('/a', 1234);
    await s.setLocal({ path: '/.DS_Store', kind: 'ignored', size: 0, mtime: 1, ctime: 1, contentMd5: 'd41d8cd98f00b204e9800998ecf8427e' });
    const text = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { version: number; props: unknown };
    assert.equal(text.version, 1);
    assert.deepEqual(text.props, { '/a': { '{urn:x}p': 'v' } });
    assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');
    await s.close();
    const t = await StateStore.open(dir);
    assert.deepEqual(t.getProps('/a'), { '{urn:x}p': 'v' });
    assert.equal(t.getMtime('/a'), 1234);
    assert.equal(t.getLocal('/.DS_Store')?.kind, 'ignored');
    assert.deepEqual(t.listLocal('/').map((f) => f.path), ['/.DS_Store']);
    await t.close();
  });
});

test('many quick mutations are grouped into few writes and all land', async () => {
  await withDir(async (dir) => {
    const s = await StateStore.open(dir, { debounceMs: 10 });
    const all = [];
    for (let i = 0; i < 200; i++) all.push(s.patchProps(`/f${i}`, { '{urn:x}i': String(i) }));
    await Promise.all(all);
    await s.close();
    const t = await StateStore.open(dir);
    for (let i = 0; i < 200; i++) assert.deepEqual(t.getProps(`/f${i}`), { '{urn:x}i': String(i) });
    await t.close();
  });
});

test('patchProps is all or nothing and removes with null; a closed store refuses mutations', async () => {
  await withDir(async (dir) => {
    const s = await StateStore.open(dir);
    await s.patchProps('/a', { '{urn:x}a': '1', '{urn:x}b': '2' });
    assert.throws(() => s.patchProps('/a', { '{urn:x}a': null, '': 'bad' }), (e: unknown) => isTbdavError(e, 'TBDAV_BAD_REQUEST'));
    assert.deepEqual(s.getProps('/a'), { '{urn:x}a': '1', '{urn:x}b': '2' });
    await s.patchProps('/a', { '{urn:x}a': null });
    assert.deepEqual(s.getProps('/a'), { '{urn:x}b': '2' });
    await s.close();
    await assert.rejects(s.patchProps('/a', { '{urn:x}c': '3' }), (e: unknown) => isTbdavError(e, 'TBDAV_FATAL'));
  });
});

test('tree operations are prefix-aware: /a does not capture /ab', async () => {
  await withDir(async (dir) => {
    const s = await StateStore.open(dir);
    await s.patchProps('/a', { '{x}n': 'a' });
    await s.patchProps('/a/b', { '{x}n': 'ab-child' });
    await s.patchProps('/ab', { '{x}n': 'ab' });
    await s.moveTree('/a', '/z');
    assert.deepEqual(s.getProps('/z'), { '{x}n': 'a' });
    assert.deepEqual(s.getProps('/z/b'), { '{x}n': 'ab-child' });
    assert.deepEqual(s.getProps('/ab'), { '{x}n': 'ab' });
    assert.deepEqual(s.getProps('/a/b'), {});
    await s.copyTree('/z', '/c', false);
    assert.deepEqual(s.getProps('/c'), { '{x}n': 'a' });
    assert.deepEqual(s.getProps('/c/b'), {});
    await s.deleteTree('/z');
    assert.deepEqual(s.getProps('/z/b'), {});
    assert.deepEqual(s.getProps('/ab'), { '{x}n': 'ab' });
    await s.close();
  });
});

test('local blobs: adopted, copied independently, removed with their record', async () => {
  await withDir(async (dir) => {
    const s = await StateStore.open(join(dir, 'state'));
    const src = join(dir, 'incoming');
    await writeFile(src, 'blob-content');
    const blob = await s.adoptBlob(src);
    await s.setLocal({ path: '/d/x', kind: 'ignored', size: 12, mtime: 1, ctime: 1, contentMd5: 'm', blob });
    await s.copyTree('/d', '/e', true);
    const copy = s.getLocal('/e/x')!;
    assert.notEqual(copy.blob, blob);
    assert.equal(await readFile(s.blobPath(copy.blob!), 'utf8'), 'blob-content');
    await s.deleteTree('/d');
    assert.equal(s.getLocal('/d/x'), undefined);
    assert.deepEqual((await readdir(s.blobDir)).sort(), [copy.blob!]);
    await s.close();
  });
});

test('a corrupt state.json is refused with TBDAV_FATAL, not silently reset', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'state.json'), '{not json');
    await assert.rejects(StateStore.open(dir), (e: unknown) => isTbdavError(e, 'TBDAV_FATAL'));
  });
});
