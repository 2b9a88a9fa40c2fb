/**
 * MountFs, ReadOnlyFs and StreamingFs over MemoryRemotes (no service): the mount folder appears and
 * shadows, writes inside answer TBDAV_FORBIDDEN, COPY out goes to the mount's copyOut and answers
 * `accepted` (202) after the wait with a TransferLog entry followed to its end; hidden names;
 * virtual playlists next to videos only, read-only, with the size they are read with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRemote } from '../../src/remote/memory.js';
import type { CopyOutHandle, SegmentResponse, Streaming } from '../../src/remote/capabilities.js';
import { isTbdavError } from '../../src/shared/errors.js';
import { MountFs, type Mount } from '../../src/vfs/mounts.js';
import { ReadOnlyFs } from '../../src/vfs/read-only-fs.js';
import { DURATION_PROP, StreamingFs } from '../../src/vfs/streaming.js';
import { TransferLog } from '../../src/vfs/transfers.js';
import { body, fixture, readAll } from './fixture.js';
import { Readable } from 'node:stream';

/** A MemoryRemote holding `files` (written through a Vfs of its own, closed after). */
async function shareRemote(files: Record<string, string>): Promise<MemoryRemote> {
  const g = await fixture();
  try {
    for (const [path, content] of Object.entries(files)) {
      const parts = path.split('/').filter(Boolean);
      for (let i = 1; i < parts.length; i++) await g.vfs.mkdir('/' + parts.slice(0, i).join('/')).catch(() => undefined);
      await g.put(path, content);
    }
    return g.remote;
  } finally {
    await g.close();
  }
}

test('MountFs: the folder, listings, reads, 403 writes, COPY out (201, 202 + log, failure), hidden names', async () => {
  const f = await fixture();
  try {
    await f.put('/mine.txt', 'mine');
    await f.vfs.mkdir('/Shared with me'); // a drive folder of that name is shadowed
    await f.put('/.terabox-dav-transfer-abc', 'staging');
    const remote = await shareRemote({ '/docs/a.txt': 'aaa', '/docs/b.txt': 'bbbb' });
    let release: (() => void) | undefined;
    let fail: Error | undefined;
    const copies: string[] = [];
    const mount: Mount = {
      name: 'Friends',
      fs: new ReadOnlyFs({ remote, reason: 'a read-only share' }),
      copyOut: {
        async copyOut(from: string, to: string): Promise<CopyOutHandle> {
          copies.push(`${from} -> ${to}`);
          const work = async (): Promise<void> => {
            if (fail) throw fail;
            const src = await remote.stat(from);
            if (src.isDir) await f.vfs.mkdir(to);
            else await f.vfs.put(to, body(await readAll(await remote.openRead(from))), { overwrite: true });
          };
          if (release !== undefined) {
            // a copy the service finished before answering: settled when the handle is returned
            const done = work();
            await done.catch(() => undefined);
            return { done };
          }
          return { done: new Promise<void>((r) => (release = r)).then(work) };
        },
      },
    };
    let mounts: Mount[] = [];
    const changed: string[] = [];
    const log = new TransferLog();
    const fs = new MountFs({ main: f.vfs, folder: '/Shared with me', mounts: async () => mounts, onMainChanged: (p) => changed.push(p), hide: (n) => n.startsWith('.terabox-dav-transfer-'), transfers: log, copyWaitMs: 500 });

    assert.deepEqual((await fs.list('/')).map((e) => e.name), ['Shared with me', 'mine.txt'], 'no mounts: the drive folder as it is; staging hidden');
    assert.deepEqual((await fs.list('/Shared with me')).map((e) => e.name), []);
    mounts = [mount];
    assert.deepEqual((await fs.list('/Shared with me')).map((e) => e.name), ['Friends']);
    assert.deepEqual((await fs.list('/Shared with me/Friends/docs')).map((e) => e.path), ['/Shared with me/Friends/docs/a.txt', '/Shared with me/Friends/docs/b.txt']);
    const st = await fs.stat('/Shared with me/Friends/docs/b.txt');
    assert.equal(st.size, 4);
    assert.equal((await readAll((await fs.openRead('/Shared with me/Friends/docs/b.txt', { start: 1, end: 2 })).stream)).toString(), 'bb');
    await assert.rejects(fs.stat('/Shared with me/Nobody'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    await assert.rejects(fs.stat('/.terabox-dav-transfer-abc'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));

    const forbidden = (e: unknown): boolean => isTbdavError(e, 'TBDAV_FORBIDDEN') && /read-only|share remove/.test((e as Error).message);
    await assert.rejects(fs.put('/Shared with me/Friends/docs/c.txt', body('x'), { overwrite: true }), forbidden);
    await assert.rejects(fs.mkdir('/Shared with me/Friends/new'), forbidden);
    await assert.rejects(fs.mkdir('/Shared with me/Other'), forbidden);
    await assert.rejects(fs.remove('/Shared with me/Friends/docs/a.txt'), forbidden);
    await assert.rejects(fs.remove('/Shared with me/Friends'), forbidden);
    await assert.rejects(fs.patchProps('/Shared with me/Friends/docs/a.txt', { '{urn:x}a': '1' }), forbidden);
    await assert.rejects(fs.move('/Shared with me/Friends/docs/a.txt', '/a.txt', { overwrite: true }), forbidden);
    await assert.rejects(fs.move('/mine.txt', '/Shared with me/Friends/mine.txt', { overwrite: true }), forbidden);
    await assert.rejects(fs.copy('/mine.txt', '/Shared with me/Friends/mine.txt', { overwrite: true, depth: 'infinity' }), forbidden);
    assert.deepEqual(copies, [], 'nothing copied by refusals');

    // COPY out, complete within the wait: 201
    release = () => undefined;
    let res = await fs.copy('/Shared with me/Friends/docs/a.txt', '/a.txt', { overwrite: true, depth: 'infinity' });
    assert.deepEqual(res, { created: true });
    assert.equal((await f.read('/a.txt')).toString(), 'aaa');
    assert.deepEqual(copies, ['/docs/a.txt -> /a.txt']);
    assert.ok(changed.includes('/a.txt'));
    await assert.rejects(fs.copy('/Shared with me/Friends/docs/a.txt', '/a.txt', { overwrite: false, depth: 'infinity' }), (e: unknown) => isTbdavError(e, 'TBDAV_PRECONDITION'));

    // slower than the wait: accepted (202) and followed in the log
    release = undefined;
    res = await fs.copy('/Shared with me/Friends/docs/b.txt', '/b.txt', { overwrite: true, depth: 'infinity' });
    assert.deepEqual(res, { created: true, accepted: true });
    assert.deepEqual(log.list().map((e) => [e.from, e.to, e.state]), [['/Shared with me/Friends/docs/b.txt', '/b.txt', 'running']]);
    release!();
    for (let i = 0; i < 50 && log.list()[0]!.state === 'running'; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(log.list()[0]!.state, 'done');
    assert.equal((await f.read('/b.txt')).toString(), 'bbbb');

    // a failure in the background is logged as failed
    release = undefined;
    fail = new Error('the service gave up');
    res = await fs.copy('/Shared with me/Friends/docs/a.txt', '/c.txt', { overwrite: true, depth: 'infinity' });
    assert.equal(res.accepted, true);
    release!();
    for (let i = 0; i < 50 && log.list()[1]!.state === 'running'; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual([log.list()[1]!.state, log.list()[1]!.error], ['failed', 'the service gave up']);
    // a failure within the wait is the COPY's error
    release = () => undefined;
    await assert.rejects(fs.copy('/Shared with me/Friends/docs/a.txt', '/d.txt', { overwrite: true, depth: 'infinity' }), /the service gave up/);
  } finally {
    await f.close();
  }
});

test('StreamingFs: a virtual .m3u8 next to videos where a source streams; read-only; duration property; HLS URLs signed', async () => {
  const f = await fixture();
  try {
    await f.vfs.mkdir('/v');
    await f.put('/v/movie.mkv', 'not really a movie');
    await f.put('/v/notes.txt', 'text');
    await f.put('/v/real.mp4', 'x');
    await f.put('/v/real.mp4.m3u8', '#EXTM3U\n# my own');
    await f.vfs.mkdir('/nostream');
    await f.put('/nostream/clip.mp4', 'y');
    const asked: string[] = [];
    const streaming: Streaming = {
      async playlist(path) {
        asked.push(path);
        return '#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttps://cdn.invalid/seg0?sig=1\n#EXTINF:5,\nhttps://cdn.invalid/seg1?sig=2\n#EXT-X-ENDLIST\n';
      },
      async openSegment(url): Promise<SegmentResponse> {
        return { status: 200, contentLength: url.length, body: Readable.from([Buffer.from(url)]) };
      },
      async mediaInfo() {
        return { durationSec: 15.4 };
      },
    };
    const fs = new StreamingFs({ inner: f.vfs, type: 'M3U8_AUTO_720', sourceFor: async (p) => (p.startsWith('/v/') ? { streaming, path: p } : undefined) });
    assert.deepEqual((await fs.list('/v')).map((e) => e.name), ['movie.mkv', 'movie.mkv.m3u8', 'notes.txt', 'real.mp4', 'real.mp4.m3u8']);
    assert.deepEqual((await fs.list('/nostream')).map((e) => e.name), ['clip.mp4']);
    const st = await fs.stat('/v/movie.mkv.m3u8');
    const text = (await readAll((await fs.openRead('/v/movie.mkv.m3u8')).stream)).toString();
    assert.equal(st.size, Buffer.byteLength(text), 'the size listed is the size read');
    assert.match(text, /^#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=2500000\n\.\.\/\.terabox-dav\/hls\/[\w-]{22}\/[\w-]+\/index\.m3u8\n$/);
    assert.equal((await readAll((await fs.openRead('/v/real.mp4.m3u8')).stream)).toString(), '#EXTM3U\n# my own', 'a real file wins');
    await assert.rejects(fs.stat('/v/notes.txt.m3u8'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    await assert.rejects(fs.stat('/nostream/clip.mp4.m3u8'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    const ro = (e: unknown): boolean => isTbdavError(e, 'TBDAV_FORBIDDEN') && /virtual playlist/.test((e as Error).message);
    await assert.rejects(fs.put('/v/movie.mkv.m3u8', body('x'), { overwrite: true }), ro);
    await assert.rejects(fs.remove('/v/movie.mkv.m3u8'), ro);
    await assert.rejects(fs.move('/v/movie.mkv.m3u8', '/v/x.m3u8', { overwrite: true }), ro);
    await assert.rejects(fs.copy('/v/notes.txt', '/v/movie.mkv.m3u8', { overwrite: true, depth: 'infinity' }), ro);
    assert.deepEqual(await fs.getProps('/v/movie.mkv.m3u8'), { [DURATION_PROP]: '15' });
    assert.deepEqual(await f.remote.list('/v').then((l) => l.map((e) => e.name)), ['movie.mkv', 'notes.txt', 'real.mp4', 'real.mp4.m3u8'], 'nothing uploaded');

    const [, sig, encoded] = /hls\/([\w-]+)\/([\w-]+)\/index/.exec(text)!;
    const media = await fs.hlsPlaylist(sig!, encoded!);
    assert.equal(media, '#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nseg/0.ts\n#EXTINF:5,\nseg/1.ts\n#EXT-X-ENDLIST\n');
    assert.deepEqual(asked, ['/v/movie.mkv']);
    const seg = await fs.hlsSegment(sig!, encoded!, 1, undefined);
    assert.equal((await readAll(seg.body)).toString(), 'https://cdn.invalid/seg1?sig=2');
    await assert.rejects(fs.hlsSegment(sig!, encoded!, 2, undefined), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'));
    await assert.rejects(fs.hlsPlaylist('A'.repeat(22), encoded!), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'), 'a forged signature');
    const other = Buffer.from('/nostream/clip.mp4').toString('base64url');
    await assert.rejects(fs.hlsPlaylist(sig!, other), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'), 'a signature of another path');
  } finally {
    await f.close();
  }
});

test('MountFs: a nested mount folder shows the folders on its way, virtual where the drive has none', async () => {
  const f = await fixture();
  try {
    await f.put('/top.txt', 't');
    const remote = await shareRemote({ '/x.txt': 'x' });
    let mounts: Mount[] = [];
    const fs = new MountFs({ main: f.vfs, folder: '/TeraBox/Shared', mounts: async () => mounts });
    await assert.rejects(fs.stat('/TeraBox'), (e: unknown) => isTbdavError(e, 'TBDAV_NOT_FOUND'), 'no shares: nothing invented');
    mounts = [{ name: 'S', fs: new ReadOnlyFs({ remote, reason: 'ro' }) }];
    assert.deepEqual((await fs.list('/')).map((e) => [e.name, e.isDir]), [['TeraBox', true], ['top.txt', false]]);
    assert.equal((await fs.stat('/TeraBox')).isDir, true);
    assert.deepEqual((await fs.list('/TeraBox')).map((e) => e.path), ['/TeraBox/Shared']);
    assert.deepEqual((await fs.list('/TeraBox/Shared/S')).map((e) => e.path), ['/TeraBox/Shared/S/x.txt']);
    await f.vfs.mkdir('/TeraBox');
    await f.put('/TeraBox/mine.txt', 'm');
    assert.deepEqual((await fs.list('/TeraBox')).map((e) => e.name), ['Shared', 'mine.txt'], 'a real folder on the way keeps its files');
  } finally {
    await f.close();
  }
});
