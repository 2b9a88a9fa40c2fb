/**
 * drive-path.ts: the one join of terabox.root and a share path never yields `//` or another
 * malformed path (fuzzed roots and paths), `/` as root works, malformed paths are refused before
 * any request, and a root outside the app folder gets a warning at start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDrivePath, drivePath, drivePathProblem, normaliseRoot, rootWarning } from '../../src/terabox/drive-path.js';
import { TeraboxClient } from '../../src/terabox/client.js';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { MemoryTokenStore } from '../../src/terabox/auth/token-store.js';
import { captureLogger } from '../helpers/logs.js';
import { prng } from '../helpers/random.js'; // seeded: a failure can be replayed

test("root '/' never yields '//': '/x' -> '/x', '/' -> '/'", () => {
  const root = normaliseRoot('/');
  assert.equal(root, '/');
  assert.equal(drivePath(root, '/x'), '/x');
  assert.equal(drivePath(root, '/litmus/a b'), '/litmus/a b');
  assert.equal(drivePath(root, '/'), '/');
  assert.equal(drivePath(normaliseRoot('//'), '/x'), '/x');
  assert.equal(drivePath(normaliseRoot(''), '/x'), '/x');
  assert.equal(drivePath(normaliseRoot('/From: Other Applications/app/'), '/x'), '/From: Other Applications/app/x');
  assert.equal(drivePath(normaliseRoot('From: Other Applications//app'), '/'), '/From: Other Applications/app');
});

test('fuzz: every join of a root and a share path is well formed, or refused when the share path is not', () => {
  const rnd = prng(20261205);
  const pieces = ['', '/', '//', 'a', 'b c', 'From: Other Applications', 'app', '.', '..', '...', 'ü', '%2F', ' '];
  const pick = (): string => pieces[Math.floor(rnd() * pieces.length)]!;
  let joined = 0;
  for (let i = 0; i < 5000; i++) {
    const rootRaw = Array.from({ length: Math.floor(rnd() * 4) }, pick).join(rnd() < 0.5 ? '/' : '');
    const pathRaw = '/' + Array.from({ length: Math.floor(rnd() * 4) }, pick).join(rnd() < 0.7 ? '/' : '');
    let root: string;
    try {
      root = normaliseRoot(rootRaw);
    } catch (err) {
      assert.equal((err as { code?: string }).code, 'TBDAV_BAD_REQUEST', `root ${JSON.stringify(rootRaw)}`);
      assert.ok(/(^|\/)\.\.?(\/|$)/.test(rootRaw.replace(/\/+/g, '/')), `only . and .. roots are refused: ${JSON.stringify(rootRaw)}`);
      continue;
    }
    assert.equal(drivePathProblem(root), undefined, `root ${JSON.stringify(rootRaw)} -> ${root}`);
    let out: string;
    try {
      out = drivePath(root, pathRaw);
    } catch (err) {
      assert.equal((err as { code?: string }).code, 'TBDAV_BAD_REQUEST');
      assert.notEqual(drivePathProblem(pathRaw), undefined, `a well-formed path was refused: ${JSON.stringify(pathRaw)}`);
      continue;
    }
    joined++;
    assert.equal(drivePathProblem(out), undefined, `${JSON.stringify(root)} + ${JSON.stringify(pathRaw)} -> ${JSON.stringify(out)}`);
    assert.ok(!out.includes('//'), out);
    assert.ok(out === root || out.startsWith(root === '/' ? '/' : root + '/'), `${out} lies under ${root}`);
    if (pathRaw !== '/') assert.ok(out.endsWith(pathRaw), `${out} ends with ${pathRaw}`);
  }
  assert.ok(joined > 1000, `enough well-formed cases (${joined})`);
});

test('malformed drive paths are named', () => {
  for (const bad of ['', 'a', '//a', '/a/', '/a//b', '/a/./b', '/a/../b', '/a\0b']) {
    assert.throws(() => checkDrivePath(bad, 'x'), { code: 'TBDAV_BAD_REQUEST' }, JSON.stringify(bad));
  }
  for (const good of ['/', '/a', '/a b/c', '/From: Other Applications/app/...', '/a/.b']) assert.equal(checkDrivePath(good, 'x'), good);
});

test('a root outside /From: Other Applications/<app> gets a warning; inside it none', () => {
  assert.equal(rootWarning('/From: Other Applications/terabox-dav'), undefined);
  assert.equal(rootWarning('/From: Other Applications/terabox-dav/sub'), undefined);
  for (const r of ['/', '/From: Other Applications', '/From: Other Applications/', '/photos', '/From: Other Device/app']) {
    assert.match(rootWarning(r) ?? '', /not inside the app folder.*From: Other Applications\/<app name>/, r);
  }
  const { logger, logs } = captureLogger('json');
  const client = new TeraboxClient({ authUrl: 'http://127.0.0.1:9', clientId: 'c', clientSecret: 's', privateSecret: 'p', tokenStore: new MemoryTokenStore(), logger });
  try {
    new TeraboxRemote(client, { root: '/', logger });
    assert.equal(logs.filter((l) => /"level":"warn"/.test(l) && /not inside the app folder/.test(l)).length, 1);
    new TeraboxRemote(client, { root: '/From: Other Applications/x', logger });
    assert.equal(logs.filter((l) => /not inside the app folder/.test(l)).length, 1, 'no warning inside the app folder');
  } finally {
    void client.close();
  }
});

test('the client refuses a malformed path before any request', async () => {
  const client = new TeraboxClient({ authUrl: 'http://127.0.0.1:9', clientId: 'c', clientSecret: 's', privateSecret: 'p', tokenStore: new MemoryTokenStore(), maxRetries: 0 });
  try {
    await assert.rejects(client.list('//litmus'), { code: 'TBDAV_BAD_REQUEST' });
    await assert.rejects(client.filemetas(['/a/', '/b']), { code: 'TBDAV_BAD_REQUEST' });
    await assert.rejects(client.precreate('/a//b', ['d41d8cd98f00b204e9800998ecf8427e']), { code: 'TBDAV_BAD_REQUEST' });
    await assert.rejects(client.createDir('/a/..'), { code: 'TBDAV_BAD_REQUEST' });
    await assert.rejects(client.filemanager('delete', ['//x']), { code: 'TBDAV_BAD_REQUEST' });
    await assert.rejects(client.filemanager('rename', [{ path: '/x', newname: 'a/b' }]), { code: 'TBDAV_BAD_REQUEST' });
    await assert.rejects(client.filemanager('move', [{ path: '/x', dest: '/y/', newname: 'z' }]), { code: 'TBDAV_BAD_REQUEST' });
    // share/transfer's destination is a drive folder like any other
    await assert.rejects(client.shareTransfer(1, 2, 'k', { fsIds: [3], path: '/saved//here', async: 0 }), { code: 'TBDAV_BAD_REQUEST' });
  } finally {
    await client.close();
  }
});
