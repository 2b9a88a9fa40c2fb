/**
 * davfs2 (Debian package) mounting the whole bridge (emulator stack, port 0) with `use_locks 1`
 * (LOCK, PUT with a tagged If header, UNLOCK): a tree is copied in, a file renamed, another
 * deleted; after unmount the server holds exactly the expected files; a second mount shows
 * them byte-identical. Readdir through davfs2 fails with EINVAL on these machines even against
 * Apache, so everything is checked by path (stat, cmp, mv, rm), never by listing.
 *
 * Everything that touches the mount runs in a child shell: a FUSE call blocks its thread until
 * davfs2 has talked to the bridge, and the bridge lives in this process (its libuv pool must stay free).
 * Needs root and /dev/fuse; skipped with the reason printed otherwise. Never leaves a mount behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startTestStack, type TestStack, type TestStackOptions } from '../helpers/stack.js';
import { run, which } from './_e2e-util.js';

const MOUNT_DAVFS = which('mount.davfs');
const KiB = 1024;

function skipReason(): string | false {
  if (!MOUNT_DAVFS) return 'davfs2 is not installed (apt-get install davfs2)';
  if (process.getuid?.() !== 0) return 'mount -t davfs needs root';
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse on this machine';
  if (!readFileSync('/proc/filesystems', 'utf8').includes('fuse')) return 'the kernel offers no fuse filesystem';
  return false;
}
const SKIP = skipReason();
if (SKIP) console.log(`davfs2 e2e skipped: ${SKIP}`);

/** Group id of the davfs2 system user (its cache dir must be group-writable for it). */
function davfs2Gid(): number {
  const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('davfs2:'));
  if (!line) throw new Error('davfs2 group missing: the package creates it');
  return Number(line.split(':')[2]);
}

function isMounted(mnt: string): boolean {
  return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt);
}

/** Files written into the mount: relative path -> content. */
function makeTree(): Record<string, Buffer> {
  return {
    'empty.txt': Buffer.alloc(0),
    'one kib.bin': randomBytes(KiB),
    'docs/three MiB.bin': randomBytes(3 * 1024 * KiB),
    'docs/deep/nested #1.txt': Buffer.from('nested file\n'),
    'docs/Crème brûlée.txt': Buffer.from('accents é à ü\n'),
    'docs/to rename.txt': Buffer.from('rename me\n'),
    'docs/to delete.txt': Buffer.from('delete me\n'),
  };
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

async function mountScenario(configPatch?: TestStackOptions['configPatch']): Promise<void> {
  const user = { username: 'dv', password: 'dav pw #1' };
  const stack: TestStack = await startTestStack({ users: [user], configPatch });
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-davfs2-'));
  const mnt = join(dir, 'mnt');
  const src = join(dir, 'src');
  const conf = join(dir, 'davfs2.conf');
  const url = `${stack.url}/`;
  const sh = async (script: string, timeoutMs = 60_000): Promise<string> => {
    const res = await run('sh', ['-ec', script], { timeoutMs });
    assert.equal(res.timedOut, false, `timed out: ${script}\n${res.stderr}`);
    assert.equal(res.code, 0, `failed (${res.code}): ${script}\n${res.stdout}\n${res.stderr}`);
    return res.stdout;
  };
  const mount = async (): Promise<void> => {
    await sh(`mount -t davfs ${q(url)} ${q(mnt)} -o ${q(`conf=${conf}`)}`, 30_000);
    assert.ok(isMounted(mnt), 'mounted');
  };
  const unmount = async (): Promise<void> => {
    // umount.davfs waits for mount.davfs, which uploads what is still dirty in its cache first.
    await sh(`umount ${q(mnt)}`, 90_000);
    assert.equal(isMounted(mnt), false, 'unmounted');
  };
  try {
    await chmod(dir, 0o755);
    const cache = join(dir, 'cache');
    await mkdir(cache);
    await chown(cache, userInfo().uid, davfs2Gid());
    await chmod(cache, 0o775);
    await mkdir(mnt);
    const secrets = join(dir, 'secrets');
    await writeFile(secrets, `${url} ${user.username} "${user.password}"\n`, { mode: 0o600 });
    await writeFile(conf, [`use_locks 1`, `secrets ${secrets}`, `cache_dir ${cache}`, `ask_auth 0`, `delay_upload 0`, ''].join('\n'));

    const tree = makeTree();
    for (const [rel, body] of Object.entries(tree)) {
      await mkdir(join(src, rel, '..'), { recursive: true });
      await writeFile(join(src, rel), body);
    }

    // First mount: copy in (cp -r makes folders with MKCOL), rename, delete, check by path.
    await mount();
    await sh(`cp -r ${q(src)}/. ${q(mnt)}/`);
    for (const rel of Object.keys(tree)) await sh(`cmp ${q(join(src, rel))} ${q(join(mnt, rel))}`);
    await sh(`mv ${q(join(mnt, 'docs/to rename.txt'))} ${q(join(mnt, 'docs/deep/renamed ü.txt'))}`);
    await sh(`rm ${q(join(mnt, 'docs/to delete.txt'))}`);
    await sh(`test ! -e ${q(join(mnt, 'docs/to rename.txt'))} && test ! -e ${q(join(mnt, 'docs/to delete.txt'))}`);
    assert.equal((await sh(`stat -c %s ${q(join(mnt, 'docs/three MiB.bin'))}`)).trim(), String(3 * 1024 * KiB));
    await unmount();

    // The server holds exactly what davfs2 was told (checked over HTTP, not through davfs2's cache).
    const expected: Record<string, Buffer> = { ...tree };
    expected['docs/deep/renamed ü.txt'] = tree['docs/to rename.txt']!;
    delete expected['docs/to rename.txt'];
    delete expected['docs/to delete.txt'];
    const href = (rel: string): string => stack.url + '/' + rel.split('/').map(encodeURIComponent).join('/');
    for (const [rel, body] of Object.entries(expected)) {
      const res = await fetch(href(rel), { headers: stack.authHeaders() });
      assert.equal(res.status, 200, `GET ${rel}`);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(body), `server content of ${rel}`);
    }
    for (const gone of ['docs/to rename.txt', 'docs/to delete.txt']) {
      const res = await fetch(href(gone), { method: 'HEAD', headers: stack.authHeaders() });
      assert.equal(res.status, 404, `${gone} is gone`);
    }
    // No lock left behind by davfs2's LOCK/UNLOCK pairs: a lock-free PUT succeeds.
    const put = await fetch(href('docs/deep/nested #1.txt'), { method: 'PUT', body: 'after', headers: stack.authHeaders() });
    assert.ok(put.status === 204 || put.status === 201, `PUT after unmount: ${put.status}`);
    expected['docs/deep/nested #1.txt'] = Buffer.from('after');

    // Second mount (fresh cache): every file compares equal by path.
    await rm(cache, { recursive: true, force: true });
    await mkdir(cache);
    await chown(cache, userInfo().uid, davfs2Gid());
    await chmod(cache, 0o775);
    await mount();
    for (const [rel, body] of Object.entries(expected)) {
      const local = join(dir, 'expect.bin');
      await writeFile(local, body);
      await sh(`cmp ${q(local)} ${q(join(mnt, rel))}`);
    }
    await sh(`test ! -e ${q(join(mnt, 'docs/to delete.txt'))}`);

    // While davfs2 holds a file open for writing it holds a WebDAV lock: another client meets 423,
    // and what davfs2 wrote lands on close.
    const held = 'one kib.bin';
    const holder = run('sh', ['-ec', `exec 3>>${q(join(mnt, held))}; echo appended >&3; sleep 6`], { timeoutMs: 30_000 });
    const lockProp = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>';
    let lockXml = '';
    for (let i = 0; i < 40 && !/locktoken/.test(lockXml); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      const pf = await fetch(href(held), { method: 'PROPFIND', headers: { ...stack.authHeaders(), depth: '0' }, body: lockProp });
      lockXml = await pf.text();
    }
    assert.match(lockXml, /locktoken/, 'davfs2 locked the file it opened for writing');
    const blocked = await fetch(href(held), { method: 'PUT', body: 'other client', headers: stack.authHeaders() });
    await blocked.arrayBuffer();
    assert.equal(blocked.status, 423, 'another client cannot write a file davfs2 holds');
    const held1 = await holder;
    assert.equal(held1.code, 0, held1.stderr);
    await unmount();
    const unlocked = await fetch(href(held), { method: 'PROPFIND', headers: { ...stack.authHeaders(), depth: '0' }, body: lockProp });
    assert.doesNotMatch(await unlocked.text(), /locktoken/, 'davfs2 released its lock');
    const content = await fetch(href(held), { headers: stack.authHeaders() });
    const heldNow = Buffer.from(await content.arrayBuffer());
    assert.ok(heldNow.equals(Buffer.concat([expected[held]!, Buffer.from('appended\n')])), `the held file has davfs2's append, not the other client's body (got ${heldNow.length} bytes: ${heldNow.subarray(0, 40).toString('latin1')})`);
    assert.equal(statSync(mnt).isDirectory(), true);
    assert.equal((await readFile(join(src, 'one kib.bin'))).length, KiB);
  } finally {
    if (isMounted(mnt)) {
      try {
        execFileSync('umount', ['-l', mnt], { timeout: 20_000 });
      } catch (err) {
        console.log(`davfs2 e2e: lazy unmount of ${mnt} failed: ${(err as Error).message}`);
      }
    }
    await stack.close();
    if (!isMounted(mnt)) await rm(dir, { recursive: true, force: true });
  }
}

test('davfs2: mount, copy a tree in, rename, delete, unmount, mount again and compare by path', { skip: SKIP, timeout: 150_000 }, async () => {
  await mountScenario();
});

test('davfs2: the same with write-back uploads', { skip: SKIP, timeout: 150_000 }, async () => {
  await mountScenario({ upload: { mode: 'writeback' } });
});
