/** ContentMd5Memory (src/vfs/content-md5.ts): backend hash -> content md5 of what we uploaded, kept across restarts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ContentMd5Memory } from '../../src/vfs/content-md5.js';
import { withTempDir } from '../helpers/temp-dir.js';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

test('remembered by hash and size, across a reopen; a line cut by a crash is skipped', async () => {
  await withTempDir('tbdav-md5mem-', async (dir) => {
    const m = await ContentMd5Memory.open(dir);
    await m.remember(md5('list-a'), 10, md5('a'));
    await m.remember(md5('b'), 3, md5('b')); // a hash equal to the content md5 is kept too
    await m.remember(undefined, 3, md5('c')); // nothing to key on
    assert.equal(m.lookup(md5('list-a'), 10), md5('a'));
    assert.equal(m.lookup(md5('list-a'), 11), undefined, 'another size is other content');
    assert.equal(m.lookup(undefined, 10), undefined);
    await appendFile(join(dir, 'content-md5.log'), 'deadbeef 12 0123'); // cut mid-line
    const again = await ContentMd5Memory.open(dir);
    assert.equal(again.lookup(md5('list-a'), 10), md5('a'));
    assert.equal(again.lookup(md5('b'), 3), md5('b'));
    assert.equal(again.lookup('deadbeef', 12), undefined);
  });
});

test('bounded: the oldest go first, and the log is compacted', async () => {
  await withTempDir('tbdav-md5mem-', async (dir) => {
    const m = await ContentMd5Memory.open(dir, { maxEntries: 3 });
    for (let i = 0; i < 10; i++) await m.remember(md5(`h${i}`), i, md5(`c${i}`));
    assert.equal(m.lookup(md5('h0'), 0), undefined);
    for (let i = 7; i < 10; i++) assert.equal(m.lookup(md5(`h${i}`), i), md5(`c${i}`));
    const lines = (await readFile(join(dir, 'content-md5.log'), 'utf8')).split('\n').filter(Boolean);
    assert.ok(lines.length <= 6, `compacted (${lines.length} lines)`);
    const again = await ContentMd5Memory.open(dir, { maxEntries: 3 });
    for (let i = 7; i < 10; i++) assert.equal(again.lookup(md5(`h${i}`), i), md5(`c${i}`));
  });
});

test('remembered at once, written together: many uploads in a row share appends; flush waits for them', async () => {
  await withTempDir('tbdav-md5mem-', async (dir) => {
    const m = await ContentMd5Memory.open(dir);
    const writes = Array.from({ length: 20 }, (_, i) => m.remember(md5(`list-${i}`), 1000 + i, md5(`c${i}`)));
    for (let i = 0; i < 20; i++) assert.equal(m.lookup(md5(`list-${i}`), 1000 + i), md5(`c${i}`), 'known before it is on disk');
    await m.flush();
    await Promise.all(writes);
    const lines = (await readFile(join(dir, 'content-md5.log'), 'utf8')).split('\n').filter(Boolean);
    assert.equal(lines.length, 20);
    const again = await ContentMd5Memory.open(dir);
    for (let i = 0; i < 20; i++) assert.equal(again.lookup(md5(`list-${i}`), 1000 + i), md5(`c${i}`));
  });
});
