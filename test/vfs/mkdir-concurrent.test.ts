/**
 * Concurrent MKCOLs of one folder (rclone --transfers 8 makes the parent of each upload): one makes
 * it, the others are answered EXISTS, and the new folder's listing (seeded empty by the one that made
 * it) stays known, so the uploads into it need no remote lookups (issue 10: 3 calls per small file).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isTbdavError } from '../../src/shared/errors.js';
import { withFixture } from './fixture.js';

test('8 concurrent mkdir of one path: one made, 7 EXISTS, then PUTs into it need no stat', async () => {
  await withFixture(async (f) => {
    const calls: string[] = [];
    const mkdir = f.remote.mkdir.bind(f.remote);
    const stat = f.remote.stat.bind(f.remote);
    f.remote.mkdir = async (p, o) => {
      calls.push(`mkdir ${p}`);
      await new Promise((r) => setTimeout(r, 5)); // a remote answers later than the next MKCOL arrives
      return mkdir(p, o);
    };
    f.remote.stat = async (p, o) => {
      calls.push(`stat ${p}`);
      return stat(p, o);
    };
    const got = await Promise.allSettled(Array.from({ length: 8 }, () => f.vfs.mkdir('/small')));
    assert.equal(got.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of got.filter((x) => x.status === 'rejected')) assert.ok(isTbdavError((r as PromiseRejectedResult).reason, 'TBDAV_EXISTS'));
    calls.length = 0;
    await Promise.all(Array.from({ length: 8 }, (_, i) => f.put(`/small/f${i}`, `file ${i}`, true)));
    assert.deepEqual(calls, [], 'the cache knows the new folder is empty: no lookups');
    assert.equal((await f.names('/small')).length, 8);
  });
});
