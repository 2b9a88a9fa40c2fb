/** Cache behaviour through the Vfs (remote call counts on MemoryRemote) and of MetadataCache alone. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetadataCache } from '../../src/vfs/metadata-cache.js';
import type { Entry } from '../../src/remote/types.js';
import { isTbdavError } from '../../src/shared/errors.js';
import { withFixture } from './fixture.js';

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const file = (path: string, size = 1): Entry => ({ path, name: path.slice(path.lastIndexOf('/') + 1), isDir: false, size, mtime: 1, ctime: 1 });

test('a second list within the TTL makes no remote call; stat of children answers from the listing', async () => {
  const c = clock();
  await withFixture(
    async (f) => {
      await f.vfs.mkdir('/d');
      await f.put('/d/a.txt', 'a');
      await f.put('/d/b.txt', 'bb');
      // start with a cold cache
      const vfs = await f.reopen();
      const remote = f.remote;
      remote.resetCalls();
      assert.deepEqual((await vfs.list('/d')).map((e) => e.name), ['a.txt', 'b.txt']);
      assert.equal(remote.calls.list, 1);
      remote.resetCalls();
      assert.deepEqual((await vfs.list('/d')).map((e) => e.name), ['a.txt', 'b.txt']);
      assert.equal((await vfs.stat('/d/b.txt')).size, 2);
      await assert.rejects(vfs.stat('/d/missing'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
      assert.deepEqual({ ...remote.calls }, {});
    },
    {},
    { now: c.now, cacheTtlMs: 60_000 },
  );
});

test('after the TTL a listing is fetched again and shows changes made elsewhere', async () => {
  const c = clock();
  await withFixture(
    async (f) => {
      await f.vfs.mkdir('/d');
      await f.put('/d/a.txt', 'a');
      assert.deepEqual(await f.names('/d'), ['a.txt']);
      // a change behind the Vfs's back: remove through the remote itself
      await f.remote.remove('/d/a.txt');
      c.advance(59_000);
      f.remote.resetCalls();
      assert.deepEqual(await f.names('/d'), ['a.txt'], 'still cached within the TTL');
      assert.equal(f.remote.calls.list, undefined);
      c.advance(2_000);
      assert.deepEqual(await f.names('/d'), []);
      assert.equal(f.remote.calls.list, 1);
    },
    {},
    { now: c.now, cacheTtlMs: 60_000 },
  );
});

test('own writes are visible at once in cached listings (put, mkdir, remove, move, copy)', async () => {
  const c = clock();
  await withFixture(
    async (f) => {
      await f.vfs.mkdir('/d');
      await f.vfs.mkdir('/e');
      assert.deepEqual(await f.names('/d'), []);
      assert.deepEqual(await f.names('/e'), []);
      assert.deepEqual(await f.names('/'), ['d', 'e']);
      f.remote.resetCalls();
      await f.put('/d/a.txt', 'aaa');
      assert.deepEqual(await f.names('/d'), ['a.txt']);
      assert.equal((await f.vfs.stat('/d/a.txt')).size, 3);
      await f.vfs.mkdir('/d/sub');
      assert.deepEqual(await f.names('/d'), ['a.txt', 'sub']);
      await f.vfs.move('/d/a.txt', '/e/moved.txt', { overwrite: false });
      assert.deepEqual(await f.names('/d'), ['sub']);
      assert.deepEqual(await f.names('/e'), ['moved.txt']);
      await f.vfs.copy('/e/moved.txt', '/d/copy.txt', { overwrite: false, depth: 'infinity' });
      assert.deepEqual(await f.names('/d'), ['copy.txt', 'sub']);
      await f.vfs.remove('/d/sub');
      assert.deepEqual(await f.names('/d'), ['copy.txt']);
      assert.equal(f.remote.calls.list, undefined, 'no listing had to be fetched again');
      // and the cache agrees with the remote
      assert.deepEqual((await f.remote.list('/d')).map((e) => e.name), ['copy.txt']);
      assert.deepEqual((await f.remote.list('/e')).map((e) => e.name), ['moved.txt']);
    },
    {},
    { now: c.now },
  );
});

test('moving a folder carries its cached listings; deleting a folder drops its subtree', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/a');
    await f.vfs.mkdir('/a/b');
    await f.put('/a/b/x', 'x');
    assert.deepEqual(await f.names('/a/b'), ['x']);
    await f.vfs.move('/a', '/z', { overwrite: false });
    f.remote.resetCalls();
    assert.deepEqual(await f.names('/z/b'), ['x']);
    assert.equal((await f.vfs.stat('/z/b/x')).path, '/z/b/x');
    assert.equal(f.remote.calls.list, undefined);
    await assert.rejects(f.vfs.stat('/a/b/x'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    await f.vfs.remove('/z');
    await assert.rejects(f.vfs.list('/z/b'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    await assert.rejects(f.vfs.stat('/z/b/x'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
  });
});

test('concurrent lists of the same folder share one remote call', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    await f.put('/d/a', 'a');
    await f.reopen();
    f.remote.resetCalls();
    const results = await Promise.all(Array.from({ length: 10 }, () => f.names('/d')));
    for (const r of results) assert.deepEqual(r, ['a']);
    assert.equal(f.remote.calls.list, 1);
  });
});

test('MetadataCache: a fetch that started before a write is not stored', async () => {
  const c = new MetadataCache({ ttlMs: 1000 });
  let release!: (v: Entry[]) => void;
  const p = c.list('/d', () => new Promise<Entry[]>((r) => (release = r)));
  c.putEntry(file('/d/new'));
  release([file('/d/old')]);
  assert.deepEqual((await p).map((e) => e.name), ['old']);
  assert.equal(c.getListing('/d'), undefined, 'stale fetch not cached');
  let calls = 0;
  const l = await c.list('/d', async () => {
    calls++;
    return [file('/d/old'), file('/d/new')];
  });
  assert.deepEqual(l.map((e) => e.name), ['old', 'new']);
  assert.equal(calls, 1);
});

test('MetadataCache: lookup answers entry / null / undefined; TTL honoured; maxEntries bounds it', () => {
  let t = 0;
  const c = new MetadataCache({ ttlMs: 100, now: () => t, maxEntries: 16 });
  c.setListing('/d', [file('/d/a')]);
  assert.equal(c.lookup('/d/a')?.path, '/d/a');
  assert.equal(c.lookup('/d/zz'), null);
  assert.equal(c.lookup('/other/x'), undefined);
  t = 100;
  assert.equal(c.lookup('/d/a'), undefined);
  assert.equal(c.getListing('/d'), undefined);
  t = 0;
  for (let i = 0; i < 50; i++) c.setListing(`/f${i}`, [file(`/f${i}/x`)]);
  const kept = Array.from({ length: 50 }, (_, i) => c.getListing(`/f${i}`)).filter((l) => l !== undefined).length;
  assert.ok(kept > 0 && kept <= 8, `kept ${kept} listings of 2 entries each within 16`);
  assert.ok(c.getListing('/f49'), 'the most recent listing is kept');
});

test('PUT of a new file into a listed folder costs one remote call (the write); a repeated stat of a missing path none', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    assert.deepEqual(await f.names('/d'), []);
    f.remote.resetCalls();
    const r = await f.put('/d/new.bin', 'data');
    assert.equal(r.created, true);
    assert.deepEqual({ ...f.remote.calls }, { write: 1 });
    // outside any cached listing: one stat, then the NOT_FOUND is remembered for the TTL
    const vfs = await f.reopen();
    f.remote.resetCalls();
    await assert.rejects(vfs.stat('/d/ghost'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    await assert.rejects(vfs.stat('/d/ghost'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    assert.deepEqual({ ...f.remote.calls }, { stat: 1 });
    // and our own write replaces the remembered absence at once
    await f.put('/d/ghost', 'boo');
    assert.equal((await vfs.stat('/d/ghost')).size, 3);
  });
});

test('a folder removed elsewhere: after the TTL, list answers NOT_FOUND and its entries are forgotten', async () => {
  const c = clock();
  await withFixture(
    async (f) => {
      await f.vfs.mkdir('/d');
      await f.put('/d/a', 'a');
      assert.deepEqual(await f.names('/'), ['d']);
      await f.remote.remove('/d');
      c.advance(1_001);
      await assert.rejects(f.vfs.list('/d'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
      await assert.rejects(f.vfs.stat('/d/a'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
      assert.deepEqual(await f.names('/'), []);
    },
    {},
    { now: c.now, cacheTtlMs: 1_000 },
  );
});

test('a PROPFIND-like stat + list of a folder, repeated within the TTL, makes no second remote call', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    await f.vfs.mkdir('/d/e');
    await f.put('/d/e/x', 'x');
    const vfs = await f.reopen();
    f.remote.resetCalls();
    assert.equal((await vfs.stat('/d/e')).isDir, true);
    assert.deepEqual((await vfs.list('/d/e')).map((e) => e.name), ['x']);
    const first = { ...f.remote.calls };
    assert.deepEqual(first, { stat: 1, list: 1 });
    f.remote.resetCalls();
    assert.equal((await vfs.stat('/d/e')).isDir, true);
    assert.deepEqual((await vfs.list('/d/e')).map((e) => e.name), ['x']);
    assert.equal((await vfs.stat('/d/e/x')).size, 1);
    assert.deepEqual({ ...f.remote.calls }, {});
  });
});

test('a stat answered NOT_FOUND while our own PUT of that path completed does not hide the new file', async () => {
  await withFixture(async (f) => {
    await f.vfs.mkdir('/d');
    const vfs = await f.reopen(); // cold cache: stats go to the remote
    const orig = f.remote.stat.bind(f.remote);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let slowCalls = 0;
    f.remote.stat = async (path, opts) => {
      if (path === '/d/new') {
        slowCalls++;
        if (slowCalls === 1) {
          // the first stat sees "absent", then is held until the PUT has finished
          const answer = orig(path, opts).then(
            (e) => ({ e }),
            (err: unknown) => ({ err }),
          );
          await gate;
          const a = await answer;
          if ('err' in a) throw a.err;
          return a.e;
        }
      }
      return orig(path, opts);
    };
    const slowStat = vfs.stat('/d/new').then(
      () => 'found',
      (err: unknown) => (isTbdavError(err, 'TBDAV_NOT_FOUND') ? 'absent' : String(err)),
    );
    // let the slow stat reach the remote, then store the file through the Vfs
    await new Promise((r) => setImmediate(r));
    const r = await f.put('/d/new', 'fresh');
    assert.equal(r.created, true);
    open();
    const first = await slowStat;
    assert.ok(first === 'absent' || first === 'found', first);
    f.remote.stat = orig;
    assert.equal((await vfs.stat('/d/new')).size, 5, 'the late NOT_FOUND did not overwrite our write');
  });
});

test('MetadataCache: changes tracked for stats in flight stay bounded when stats never pause', async () => {
  const cache = new MetadataCache();
  const entry = (path: string): Entry => ({ path, name: path.slice(1), isDir: false, size: 1, mtime: 1, ctime: 1 });
  // A chain of overlapping stats (each starts before the previous ends) with a write between each
  // start and end: there is never a moment with no stat in flight.
  let release: () => void = () => undefined;
  let prev = cache.statThrough('/s0', () => new Promise((r) => (release = () => r(null))));
  for (let i = 1; i <= 2000; i++) {
    let releaseNext: () => void = () => undefined;
    const next = cache.statThrough(`/s${i}`, () => new Promise((r) => (releaseNext = () => r(null))));
    cache.putEntry(entry(`/w${i}`));
    release();
    await prev;
    prev = next;
    release = releaseNext;
  }
  assert.ok(cache.trackedChanges < 200, `tracked changes stay bounded (${cache.trackedChanges} after 2000 writes)`);
  // The race rule still holds for the reader in flight: a write to its path after it started wins.
  cache.putEntry(entry('/s2000'));
  release();
  assert.equal((await prev)?.path, '/s2000');
  assert.equal(cache.trackedChanges, 0);
});
