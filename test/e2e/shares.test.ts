/**
 * Shares and streaming over the whole bridge (emulator stack, port 0), issue 12's acceptance:
 * shares with and without a code under /Shared with me, browsed over WebDAV and by rclone, read
 * with Range; writes answered 403 with a body saying why; COPY of a file and of a folder into the
 * drive by share/transfer (no download byte counted), 202 + status entry when it outlasts the
 * wait; -9 (verified again), -12 (403) and 105 (the share disappears); a virtual .m3u8 next to
 * each video that ffprobe opens and whose segments all fetch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { addShare } from '../../src/terabox/shares.js';
import { DURATION_PROP } from '../../src/vfs/streaming.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { run, which } from './_e2e-util.js';
import { RCLONE, rcloneRemote } from './_rclone.js';

const FFMPEG = which('ffmpeg');
const FFPROBE = which('ffprobe');
const user = { username: 'sh', password: 'share pass' };

function href(stack: TestStack, path: string): string {
  return stack.url + path.split('/').map(encodeURIComponent).join('/');
}

async function dav(stack: TestStack, method: string, path: string, init: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(href(stack, path), { method, headers: { ...stack.authHeaders(), ...init.headers }, ...(init.body !== undefined ? { body: init.body } : {}) });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

async function put(stack: TestStack, path: string, body: string | Buffer): Promise<void> {
  const parts = path.split('/').filter(Boolean);
  for (let i = 1; i < parts.length; i++) await dav(stack, 'MKCOL', '/' + parts.slice(0, i).join('/'));
  const r = await dav(stack, 'PUT', path, { body });
  assert.ok(r.status === 201 || r.status === 204, `PUT ${path}: ${r.status} ${r.text}`);
}

/** Names in a Depth 1 PROPFIND of a folder (the folder itself left out). */
async function names(stack: TestStack, path: string): Promise<string[]> {
  const r = await dav(stack, 'PROPFIND', path, { headers: { depth: '1' } });
  assert.equal(r.status, 207, `PROPFIND ${path}: ${r.text}`);
  const hrefs = [...r.text.matchAll(/<D:href>([^<]*)<\/D:href>/gi)].map((m) => decodeURIComponent(m[1]!.replace(/\/$/, '')));
  const self = path.replace(/\/$/, '');
  return hrefs.filter((h) => h !== self && h !== '').map((h) => h.slice(h.lastIndexOf('/') + 1)).sort();
}

/** Share drive paths (relative to the bridge root) and add the share as `terabox-dav share add` does. */
async function share(stack: TestStack, paths: string[], pwd: string, name?: string): Promise<{ shareid: number; name: string }> {
  const c = stack.emulator.createShare(
    paths.map((p) => stack.emulator.appRoot + p),
    pwd,
  );
  const rec = await addShare(stack.client, stack.shares.store, { link: `https://www.terabox.com/s/${c.shorturl}`, pwd, ...(name ? { name } : {}) });
  stack.shares.registry.invalidate();
  return { shareid: c.shareid, name: rec.name };
}

test('shares under /Shared with me: browse, Range, 403 writes, COPY by share/transfer (201 and 202), -9/-12/105', { timeout: 120_000 }, async () => {
  const stack = await startTestStack({ users: [user], emulator: { shareTransferAsyncMs: 300 }, configPatch: { shares: { copyWaitSeconds: 5 }, cache: { ttlSeconds: 1 } } });
  try {
    const photo = Buffer.alloc(200_000);
    for (let i = 0; i < photo.length; i++) photo[i] = (i * 13) % 256;
    await put(stack, '/src/Trip/photo.jpg', photo);
    await put(stack, '/src/Trip/notes/day1.txt', 'day one');
    await put(stack, '/src/Trip/notes/day2.txt', 'day two, longer');
    await put(stack, '/src/solo.txt', 'alone');

    assert.ok(!(await names(stack, '/')).includes('Shared with me'), 'no shares: no folder');
    const trip = await share(stack, ['/src/Trip'], 'ab12');
    const solo = await share(stack, ['/src/solo.txt'], '', 'Solo');
    assert.equal(trip.name, 'Trip');
    assert.deepEqual(await names(stack, '/'), ['Shared with me', 'src']);
    assert.deepEqual(await names(stack, '/Shared with me'), ['Solo', 'Trip']);
    assert.deepEqual(await names(stack, '/Shared with me/Trip'), ['Trip']);
    assert.deepEqual(await names(stack, '/Shared with me/Trip/Trip'), ['notes', 'photo.jpg']);
    assert.deepEqual(await names(stack, '/Shared with me/Solo'), ['solo.txt']);

    // GET with Range
    const ranged = await fetch(href(stack, '/Shared with me/Trip/Trip/photo.jpg'), { headers: { ...stack.authHeaders(), range: 'bytes=1000-1999' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('content-range'), `bytes 1000-1999/${photo.length}`);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(photo.subarray(1000, 2000)));
    assert.equal((await dav(stack, 'GET', '/Shared with me/Solo/solo.txt')).text, 'alone');

    // writes: 403 with a reason
    const inShare = '/Shared with me/Trip/Trip';
    const refusals: [string, string, Record<string, string>, string?][] = [
      ['PUT', `${inShare}/new.txt`, {}, 'x'],
      ['PUT', `${inShare}/photo.jpg`, {}, 'x'],
      ['MKCOL', `${inShare}/newdir`, {}],
      ['DELETE', `${inShare}/photo.jpg`, {}],
      ['DELETE', '/Shared with me/Trip', {}],
      ['MOVE', `${inShare}/photo.jpg`, { destination: href(stack, '/src/moved.jpg') }],
      ['MOVE', '/src/solo.txt', { destination: href(stack, `${inShare}/solo.txt`) }],
      ['COPY', '/src/solo.txt', { destination: href(stack, `${inShare}/solo.txt`) }],
      ['MKCOL', '/Shared with me/Other', {}],
    ];
    for (const [method, path, headers, body] of refusals) {
      const r = await dav(stack, method, path, { headers, ...(body !== undefined ? { body } : {}) });
      assert.equal(r.status, 403, `${method} ${path}: ${r.status} ${r.text}`);
      assert.match(r.text, /read-only|terabox-dav share remove/, `${method} ${path} says why: ${r.text}`);
    }
    const pp = await dav(stack, 'PROPPATCH', `${inShare}/photo.jpg`, {
      headers: { 'content-type': 'application/xml' },
      body: '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x"><D:set><D:prop><Z:a>1</Z:a></D:prop></D:set></D:propertyupdate>',
    });
    assert.ok(pp.status === 403 || (pp.status === 207 && /403/.test(pp.text)), `PROPPATCH: ${pp.status} ${pp.text}`);
    assert.ok(!(await names(stack, '/src')).includes('moved.jpg'));

    // COPY a file and a folder into the drive: share/transfer, no download byte
    let served = stack.counters.bytesServed;
    let r = await dav(stack, 'COPY', `${inShare}/photo.jpg`, { headers: { destination: href(stack, '/saved-photo.jpg') } });
    assert.equal(r.status, 201, r.text);
    r = await dav(stack, 'COPY', `${inShare}/notes`, { headers: { destination: href(stack, '/notes') } });
    assert.equal(r.status, 201, r.text);
    r = await dav(stack, 'COPY', '/Shared with me/Trip', { headers: { destination: href(stack, '/whole-trip') } });
    assert.equal(r.status, 201, r.text);
    assert.equal(stack.counters.bytesServed - served, 0, 'no byte downloaded for the copies');
    assert.equal((stack.counters.requests['/openapi/share/transfer'] ?? 0) >= 3, true);
    const saved = Buffer.from(await (await fetch(href(stack, '/saved-photo.jpg'), { headers: stack.authHeaders() })).arrayBuffer());
    assert.ok(saved.equals(photo), 'copied file content');
    assert.deepEqual(await names(stack, '/notes'), ['day1.txt', 'day2.txt']);
    assert.equal((await dav(stack, 'GET', '/notes/day2.txt')).text, 'day two, longer');
    assert.equal((await dav(stack, 'GET', '/whole-trip/Trip/notes/day1.txt')).text, 'day one');
    assert.ok(!(await names(stack, '/')).some((n) => n.startsWith('.terabox-dav-transfer')), 'no staging folder left');
    // onto an existing file: Overwrite F -> 412, T -> 204
    r = await dav(stack, 'COPY', '/Shared with me/Solo/solo.txt', { headers: { destination: href(stack, '/saved-photo.jpg'), overwrite: 'F' } });
    assert.equal(r.status, 412);
    r = await dav(stack, 'COPY', '/Shared with me/Solo/solo.txt', { headers: { destination: href(stack, '/saved-photo.jpg') } });
    assert.equal(r.status, 204, r.text);
    assert.equal((await dav(stack, 'GET', '/saved-photo.jpg')).text, 'alone');

    // a copy that outlasts shares.copyWaitSeconds: 202, followed to the end in the background
    stack.emulator.setOptions({ shareTransferAsyncMs: 8000 });
    served = stack.counters.bytesServed;
    r = await dav(stack, 'COPY', `${inShare}/notes`, { headers: { destination: href(stack, '/later') } });
    assert.equal(r.status, 202, r.text);
    const entries = stack.shares.transfers.list();
    assert.equal(entries.length, 1);
    assert.deepEqual([entries[0]!.from, entries[0]!.to, entries[0]!.state], [`${inShare}/notes`, '/later', 'running']);
    for (let i = 0; i < 300 && stack.shares.transfers.list()[0]!.state === 'running'; i++) await sleep(100);
    assert.equal(stack.shares.transfers.list()[0]!.state, 'done');
    assert.equal(stack.counters.bytesServed - served, 0);
    assert.deepEqual(await names(stack, '/later'), ['day1.txt', 'day2.txt']);
    stack.emulator.setOptions({ shareTransferAsyncMs: 300 });

    // -9: the service forgot the key (same code): verified again, the client sees nothing
    stack.emulator.setSharePwd(trip.shareid, 'ab12');
    const fresh = await fetch(href(stack, `${inShare}/notes/day1.txt`), { headers: stack.authHeaders() });
    assert.equal(fresh.status, 200);
    assert.equal(await fresh.text(), 'day one');
    const stored = JSON.parse(await readFile(stack.shares.store.file, 'utf8')) as { shares: { name: string; sekey: string }[] };
    assert.ok(stored.shares.find((s) => s.name === 'Trip')!.sekey.length > 10, 'the new key is stored');

    // -12: the sharer changed the code: 403 saying so
    stack.emulator.setSharePwd(trip.shareid, 'cd34');
    r = await dav(stack, 'GET', `${inShare}/notes/day2.txt`);
    assert.equal(r.status, 403, r.text);
    assert.match(r.text, /extraction code is no longer accepted/);

    // 105: the link expired: the share disappears from the tree (once the cached listing is stale)
    stack.emulator.removeShare(solo.shareid);
    await sleep(1100);
    assert.deepEqual(await names(stack, '/Shared with me'), ['Trip']);
    assert.equal((await dav(stack, 'GET', '/Shared with me/Solo/solo.txt')).status, 404);
  } finally {
    await stack.close();
  }
});

test('rclone browses and reads a share', { skip: RCLONE ? false : 'rclone is not installed', timeout: 90_000 }, async () => {
  const stack = await startTestStack({ users: [user] });
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-shares-rclone-'));
  try {
    await put(stack, '/pub/a.txt', 'aaa');
    await put(stack, '/pub/deep/b.bin', Buffer.alloc(100_000, 5));
    await share(stack, ['/pub'], 'ab12', 'Pub');
    const rc = await rcloneRemote({ dir, url: stack.url, user, flags: ['--retries', '1'], timeoutMs: 60_000 });
    const ls = await rc.run('lsf', '-R', 'X:Shared with me');
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(ls.stdout.split('\n').filter(Boolean).sort(), ['Pub/', 'Pub/pub/', 'Pub/pub/a.txt', 'Pub/pub/deep/', 'Pub/pub/deep/b.bin']);
    const back = join(dir, 'back');
    const cp = await rc.run('copy', 'X:Shared with me/Pub', back);
    assert.equal(cp.code, 0, cp.stderr);
    assert.equal(await readFile(join(back, 'pub/a.txt'), 'utf8'), 'aaa');
    assert.ok((await readFile(join(back, 'pub/deep/b.bin'))).equals(Buffer.alloc(100_000, 5)));
    const w = await rc.run('copyto', join(back, 'pub/a.txt'), 'X:Shared with me/Pub/pub/new.txt', '--low-level-retries', '1');
    assert.notEqual(w.code, 0, 'rclone cannot write into a share');
    assert.match(w.stderr, /403/);
  } finally {
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('streaming: a virtual .m3u8 next to each video that ffprobe opens, segments relayed; read-only', { skip: FFMPEG && FFPROBE ? false : 'ffmpeg is not installed', timeout: 90_000 }, async () => {
  const stack = await startTestStack({ users: [user], configPatch: { streaming: { enabled: true } } });
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-hls-'));
  try {
    const clipFile = join(dir, 'clip.ts');
    const made = await run(FFMPEG!, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=duration=6:size=160x120:rate=10', '-c:v', 'mpeg2video', '-b:v', '400k', '-f', 'mpegts', clipFile], { timeoutMs: 30_000 });
    assert.equal(made.code, 0, made.stderr);
    const clip = await readFile(clipFile);
    await put(stack, '/Videos/clip.ts', clip);
    await put(stack, '/Videos/readme.txt', 'not a video');
    await share(stack, ['/Videos'], '', 'Vids');

    assert.deepEqual(await names(stack, '/Videos'), ['clip.ts', 'clip.ts.m3u8', 'readme.txt']);
    assert.deepEqual(await names(stack, '/Shared with me/Vids/Videos'), ['clip.ts', 'clip.ts.m3u8', 'readme.txt']);
    const propfind = await dav(stack, 'PROPFIND', '/Videos/clip.ts.m3u8', { headers: { depth: '0' } });
    assert.match(propfind.text, /application\/vnd\.apple\.mpegurl/);
    const dead = await dav(stack, 'PROPFIND', '/Shared with me/Vids/Videos/clip.ts.m3u8', {
      headers: { depth: '0', 'content-type': 'application/xml' },
      body: '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:T="urn:terabox-dav:"><D:prop><T:duration/></D:prop></D:propfind>',
    });
    assert.match(dead.text, /duration[^>]*>\d+</, `the duration as a property: ${dead.text}`);
    assert.equal(DURATION_PROP, '{urn:terabox-dav:}duration');

    for (const path of ['/Videos/clip.ts.m3u8', '/Shared with me/Vids/Videos/clip.ts.m3u8']) {
      // the player fetches the playlist with credentials; the stream URLs need none
      const url = new URL(href(stack, path));
      url.username = user.username;
      url.password = encodeURIComponent(user.password);
      const probe = await run(FFPROBE!, ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name', '-of', 'json', url.toString()], { timeoutMs: 60_000 });
      assert.equal(probe.code, 0, `ffprobe ${path}: ${probe.stderr}`);
      const info = JSON.parse(probe.stdout) as { format: { duration: string }; streams: { codec_name: string }[] };
      assert.ok(Number(info.format.duration) > 0, probe.stdout);
      assert.equal(info.streams[0]!.codec_name, 'mpeg2video');

      const master = await dav(stack, 'GET', path);
      const variant = new URL(master.text.split('\n').find((l) => l && !l.startsWith('#'))!, href(stack, path));
      const media = await fetch(variant);
      assert.equal(media.status, 200, 'no credentials needed');
      const segs = (await media.text()).split('\n').filter((l) => l && !l.startsWith('#'));
      assert.ok(segs.length >= 5);
      let total = 0;
      for (const s of segs) {
        const res = await fetch(new URL(s, variant));
        assert.equal(res.status, 200);
        total += (await res.arrayBuffer()).byteLength;
      }
      assert.equal(total, clip.length, 'the segments add up to the video');
      const part = await fetch(new URL(segs[1]!, variant), { headers: { range: 'bytes=0-187' } });
      assert.equal(part.status, 206);
      assert.equal((await part.arrayBuffer()).byteLength, 188);
      assert.equal(Buffer.from(await (await fetch(new URL(segs[1]!, variant))).arrayBuffer())[0], 0x47, 'a segment starts on a TS packet');
      const forged = new URL(variant);
      forged.pathname = forged.pathname.replace(/hls\/[^/]+\//, 'hls/AAAAAAAAAAAAAAAAAAAAAA/');
      assert.equal((await fetch(forged)).status, 404);
    }
    // virtual files are read-only and never uploaded
    for (const [method, body] of [['PUT', 'x'], ['DELETE', undefined]] as const) {
      const r = await dav(stack, method, '/Videos/clip.ts.m3u8', body ? { body } : {});
      assert.equal(r.status, 403, `${method}: ${r.text}`);
      assert.match(r.text, /virtual playlist/);
    }
    const drive = await stack.client.listAll(`${stack.emulator.appRoot}/Videos`);
    assert.deepEqual(drive.map((f) => f.server_filename).sort(), ['clip.ts', 'readme.txt']);
  } finally {
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- davfs2

const MOUNT_DAVFS = which('mount.davfs');
function davfsSkip(): string | false {
  if (!MOUNT_DAVFS) return 'davfs2 is not installed (apt-get install davfs2)';
  if (process.getuid?.() !== 0) return 'mount -t davfs needs root';
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse on this machine';
  return false;
}
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const isMounted = (mnt: string): boolean => readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt);

test('davfs2 browses and reads a share by path; writes into it fail', { skip: davfsSkip(), timeout: 120_000 }, async () => {
  const stack = await startTestStack({ users: [user] });
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-shares-davfs2-'));
  const mnt = join(dir, 'mnt');
  // Everything touching the mount runs in a child shell (a FUSE call blocks until the bridge, in this process, answers).
  const sh = async (script: string, expectOk = true): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const res = await run('sh', ['-ec', script], { timeoutMs: 60_000 });
    assert.equal(res.timedOut, false, `timed out: ${script}`);
    if (expectOk) assert.equal(res.code, 0, `failed: ${script}\n${res.stderr}`);
    return res;
  };
  try {
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 256;
    await put(stack, '/pub/big.bin', big);
    await put(stack, '/pub/sub/small.txt', 'small file\n');
    await share(stack, ['/pub'], 'ab12', 'Pub');
    await chmod(dir, 0o755);
    const cache = join(dir, 'cache');
    await mkdir(cache);
    const gid = Number(readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('davfs2:'))!.split(':')[2]);
    await chown(cache, userInfo().uid, gid);
    await chmod(cache, 0o775);
    await mkdir(mnt);
    const secrets = join(dir, 'secrets');
    const url = `${stack.url}/`;
    await writeFile(secrets, `${url} ${user.username} "${user.password}"\n`, { mode: 0o600 });
    const conf = join(dir, 'davfs2.conf');
    await writeFile(conf, [`use_locks 0`, `secrets ${secrets}`, `cache_dir ${cache}`, `ask_auth 0`, `delay_upload 0`, ''].join('\n'));
    await sh(`mount -t davfs ${q(url)} ${q(mnt)} -o ${q(`conf=${conf}`)}`);
    assert.ok(isMounted(mnt));
    const base = join(mnt, 'Shared with me', 'Pub', 'pub');
    assert.equal((await sh(`stat -c %s ${q(join(base, 'big.bin'))}`)).stdout.trim(), String(big.length));
    const local = join(dir, 'expect.bin');
    await writeFile(local, big);
    await sh(`cmp ${q(local)} ${q(join(base, 'big.bin'))}`);
    assert.equal((await sh(`cat ${q(join(base, 'sub', 'small.txt'))}`)).stdout, 'small file\n');
    assert.equal((await sh(`dd if=${q(join(base, 'big.bin'))} bs=1000 skip=100 count=1 2>/dev/null | od -An -tu1 | head -1`)).stdout.trim().split(/\s+/)[0], String((100_000 * 31) % 256));
    const mk = await sh(`mkdir ${q(join(base, 'newdir'))}`, false);
    assert.notEqual(mk.code, 0, 'mkdir inside a share fails');
    const rmr = await sh(`rm ${q(join(base, 'sub', 'small.txt'))}`, false);
    assert.notEqual(rmr.code, 0, 'rm inside a share fails');
    await sh(`umount ${q(mnt)}`);
    assert.equal((await dav(stack, 'GET', '/Shared with me/Pub/pub/sub/small.txt')).text, 'small file\n', 'still there');
  } finally {
    if (isMounted(mnt)) {
      try {
        execFileSync('umount', ['-l', mnt], { timeout: 20_000 });
      } catch (err) {
        console.log(`shares davfs2: lazy unmount of ${mnt} failed: ${(err as Error).message}`);
      }
    }
    await stack.close();
    if (!isMounted(mnt)) await rm(dir, { recursive: true, force: true });
  }
});
