/**
 * Per-user options with real clients (issue 11): litmus as a read-write user confined to a folder
 * (`root`) passes all 104 tests, and everything it did stays inside that folder; rclone as a
 * read-only user (`readOnly`, its own `root`) lists and downloads byte-identical files, and every
 * write it tries is refused (403) without changing anything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestStack } from '../helpers/stack.js';
import { run, which } from './_e2e-util.js';
import { LITMUS, runLitmusSuites } from './_litmus.js';

const RCLONE = which('rclone');
const SKIP = !LITMUS ? 'litmus is not installed' : !RCLONE ? 'rclone is not installed' : false;

const ADMIN = { username: 'admin', password: 'admin pw' };
const RW = { username: 'writer', password: 'a?>b:c~~>?', root: '/home/writer' };
const RO = { username: 'viewer', password: 'view only', readOnly: true, root: '/media' };

test('litmus as a read-write user with its own root; rclone as a read-only user', { skip: SKIP, timeout: 300_000 }, async () => {
  const stack = await startTestStack({ users: [ADMIN, RW, RO] });
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-users-'));
  const admin = stack.authHeaders(ADMIN);
  try {
    // --- litmus as `writer` (root /home/writer) ---
    const { total } = await runLitmusSuites(`${stack.url}/`, RW);
    assert.equal(total, 104);
    // litmus worked in /litmus of ITS share: nothing of it outside /home/writer.
    const top = await fetch(`${stack.url}/`, { method: 'PROPFIND', headers: { ...admin, depth: '1' } });
    const hrefs = [...(await top.text()).matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]).sort();
    assert.deepEqual(hrefs, ['/', '/home/'], 'litmus left nothing at the top of the drive folder');

    // --- files for the viewer, put there by the admin ---
    const files: Record<string, Buffer> = { 'film.mkv': randomBytes(3 * 1024 * 1024 + 5), 'series/ep 1 #.mp4': randomBytes(70_000), 'notes ü.txt': Buffer.from('hello') };
    for (const [rel, body] of Object.entries(files)) {
      const parts = rel.split('/');
      let p = '/media';
      await fetch(`${stack.url}${p}`, { method: 'MKCOL', headers: admin });
      for (const seg of parts.slice(0, -1)) {
        p += '/' + encodeURIComponent(seg);
        await fetch(`${stack.url}${p}`, { method: 'MKCOL', headers: admin });
      }
      const put = await fetch(`${stack.url}/media/${parts.map(encodeURIComponent).join('/')}`, { method: 'PUT', headers: admin, body });
      assert.equal(put.status, 201);
    }

    // --- rclone as `viewer` (readOnly, root /media) ---
    const obscured = await run(RCLONE!, ['obscure', RO.password], { timeoutMs: 10_000, env: { ...process.env, HOME: dir } });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: dir,
      RCLONE_CONFIG: join(dir, 'rclone.conf'),
      RCLONE_CONFIG_V_TYPE: 'webdav',
      RCLONE_CONFIG_V_URL: stack.url,
      RCLONE_CONFIG_V_VENDOR: 'other',
      RCLONE_CONFIG_V_USER: RO.username,
      RCLONE_CONFIG_V_PASS: obscured.stdout.trim(),
    };
    const rc = (...args: string[]) => run(RCLONE!, [...args, '--retries', '1', '--low-level-retries', '1'], { env, timeoutMs: 60_000 });
    const ls = await rc('lsf', '-R', '--files-only', 'V:');
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(ls.stdout.split('\n').filter(Boolean).map((l) => l.normalize('NFC')).sort(), Object.keys(files).sort(), 'the viewer sees /media as its root');
    const back = join(dir, 'back');
    const copy = await rc('copy', 'V:', back);
    assert.equal(copy.code, 0, copy.stderr);
    for (const [rel, body] of Object.entries(files)) assert.ok((await readFile(join(back, rel))).equals(body), `${rel} identical`);

    const local = join(dir, 'up');
    await mkdir(local, { recursive: true });
    await writeFile(join(local, 'new.txt'), 'should not arrive');
    const refusals: [string, string[]][] = [
      ['copy up', ['copy', local, 'V:']],
      ['mkdir', ['mkdir', 'V:newdir']],
      ['delete', ['delete', 'V:series']],
      ['moveto', ['moveto', 'V:film.mkv', 'V:renamed.mkv']],
      ['copyto', ['copyto', 'V:notes ü.txt', 'V:notes copy.txt']],
    ];
    for (const [what, args] of refusals) {
      const r = await rc(...args);
      assert.notEqual(r.code, 0, `${what} must fail for a read-only user`);
      assert.match(r.stderr, /403|Forbidden/, `${what}: refused with 403:\n${r.stderr.slice(-1500)}`);
    }
    const after = await rc('lsf', '-R', '--files-only', 'V:');
    assert.deepEqual(after.stdout.split('\n').filter(Boolean).map((l) => l.normalize('NFC')).sort(), Object.keys(files).sort(), 'nothing changed');
  } finally {
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  }
});
