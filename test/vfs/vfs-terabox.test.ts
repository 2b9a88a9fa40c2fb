/**
 * The Vfs over TeraboxRemote over the emulator (port 0): the same semantics as over MemoryRemote,
 * checked where the real error mapping and the API economy matter (0-byte refusal -> placeholder,
 * listings served from cache, multi-shard upload and ranged reads).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { Vfs } from '../../src/vfs/vfs.js';
import { startRig, type Rig } from '../terabox/setup.js';
import { readAll } from './fixture.js';

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const rigs: Rig[] = [];
let n = 0;

async function setup(emuOptions: Record<string, unknown> = {}): Promise<{ rig: Rig; vfs: Vfs; dir: string }> {
  const rig = await startRig(emuOptions);
  rigs.push(rig);
  const root = `${rig.emu.appRoot}/vfs-${++n}`;
  await rig.client.createDir(root);
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-vfs-tb-'));
  const remote = new TeraboxRemote(rig.client, { root, logger: rig.logger });
  const vfs = await Vfs.open({ remote, stateDir: join(dir, 'state'), cacheDir: join(dir, 'cache'), logger: rig.logger });
  return { rig, vfs, dir };
}

after(async () => {
  for (const r of rigs) await r.close();
});

test('terabox: a 0-byte PUT refused by the service becomes a local placeholder, replaced by real content', { timeout: 30_000 }, async () => {
  const { vfs, dir } = await setup({ refuseZeroByte: true });
  try {
    const r = await vfs.put('/new.txt', Readable.from([]), { overwrite: true, expectedSize: 0 });
    assert.equal(r.created, true);
    assert.equal(r.entry.local, true, 'kept as a placeholder');
    assert.deepEqual((await vfs.list('/')).map((e) => [e.name, e.size]), [['new.txt', 0]]);
    const r2 = await vfs.put('/new.txt', Readable.from([Buffer.from('content')]), { overwrite: true });
    assert.equal(r2.created, false);
    assert.equal(r2.entry.local, undefined);
    assert.equal((await vfs.remote.stat('/new.txt')).size, 7);
    assert.equal((await readAll((await vfs.openRead('/new.txt')).stream)).toString(), 'content');
  } finally {
    await vfs.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('terabox: listings within the TTL make no API call; own writes show at once', { timeout: 30_000 }, async () => {
  const { rig, vfs, dir } = await setup();
  try {
    await vfs.mkdir('/d');
    await vfs.put('/d/a.txt', Readable.from([Buffer.from('a')]), { overwrite: true });
    assert.deepEqual((await vfs.list('/d')).map((e) => e.name), ['a.txt']);
    const before = { ...rig.emu.counters.requests };
    assert.deepEqual((await vfs.list('/d')).map((e) => e.name), ['a.txt']);
    assert.equal((await vfs.stat('/d/a.txt')).size, 1);
    await assert.rejects(vfs.stat('/d/none'));
    assert.deepEqual({ ...rig.emu.counters.requests }, before, 'no request reached the service');
    await vfs.move('/d/a.txt', '/d/b.txt', { overwrite: false });
    assert.deepEqual((await vfs.list('/d')).map((e) => e.name), ['b.txt']);
    await vfs.remove('/d/b.txt');
    assert.deepEqual(await vfs.list('/d'), []);
  } finally {
    await vfs.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('terabox: a 9 MiB PUT is stored in three shards and reads back whole and by range', { timeout: 50_000 }, async () => {
  const { vfs, dir } = await setup();
  try {
    const data = randomBytes(9 * 1024 * 1024);
    const parts: Buffer[] = [];
    for (let i = 0; i < data.length; i += 100_003) parts.push(data.subarray(i, i + 100_003));
    const r = await vfs.put('/big.bin', Readable.from(parts), { overwrite: true, expectedSize: data.length });
    assert.equal(r.created, true);
    assert.equal(r.entry.size, data.length);
    assert.equal(r.entry.contentMd5, md5(data));
    const got = await readAll((await vfs.openRead('/big.bin')).stream);
    assert.equal(md5(got), md5(data));
    const a = 4 * 1024 * 1024 - 7;
    assert.deepEqual(await readAll((await vfs.openRead('/big.bin', { start: a, end: a + 99 })).stream), data.subarray(a, a + 100));
  } finally {
    await vfs.close();
    await rm(dir, { recursive: true, force: true });
  }
});
