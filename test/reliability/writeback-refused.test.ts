/**
 * Write-back never loses an acknowledged body (issue 9), through the whole stack and the CLI:
 * a PUT answered 201 whose upload the service then refuses for good (drive full: precreate errno -10)
 *  - stays readable at its path from the local body (PROPFIND lists it, GET and HEAD serve it),
 *  - is listed by `terabox-dav uploads list` (asking the running server, and on the state folder
 *    when serve is stopped) and in the log at every start,
 *  - lands once space is freed and the user runs `terabox-dav uploads retry PATH` (talking to serve),
 *  - or is given up with `terabox-dav uploads remove PATH` (then GET answers 404).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/cli/config.js';
import { startStack, vfsDirs, type Stack } from '../../src/cli/stack.js';
import { writebackDirs } from '../../src/vfs/writeback.js';
import { askServer } from '../../src/vfs/uploads-control.js';
import { parseMultistatus } from '../dav/harness.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';
import { captureLogger } from '../helpers/logs.js';

const MiB = 1024 * 1024;
const md5 = (b: Buffer | ArrayBuffer): string => createHash('md5').update(Buffer.from(b as ArrayBuffer)).digest('hex');

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('a write-back upload refused for good (drive full) stays readable and reported, and lands after `uploads retry`; `uploads remove` gives one up', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-wb-refused-'));
  const stateDir = join(dir, 'state');
  const cacheDir = join(dir, 'cache');
  const config: Config = loadConfig({ env: {}, home: dir, cwd: dir, flags: { 'server.port': 0, stateDir, cacheDir, 'upload.mode': 'writeback' } });
  // the embedded emulator keeps its drive under stateDir: the restarted stack sees the same files
  const emulator = withEnvVariant({ quotaTotalBytes: 3 * MiB });
  const cli = (...args: string[]) => runCli(['uploads', ...args, '--stateDir', stateDir, '--cacheDir', cacheDir], { env: cleanEnv(dir), timeoutMs: 60_000 });
  const { journalDir } = writebackDirs(vfsDirs(config).stateDir, vfsDirs(config).cacheDir);
  let s: Stack | undefined;
  const url2 = (): string => (s!.url.endsWith('/') ? s!.url : s!.url + '/');
  try {
    s = await startStack(config, { logger: captureLogger().logger, emulator });
    const url = s.url.endsWith('/') ? s.url : s.url + '/';
    const old = randomBytes(2 * MiB);
    assert.equal((await fetch(url + 'old.bin', { method: 'PUT', body: old })).status, 201);
    await until('old.bin stored', () => s!.writeback!.usage().pending === 0);

    // 2 MiB more do not fit in 3 MiB: answered 201 (journalled), then refused by the service
    const data = randomBytes(2 * MiB + 17);
    assert.equal((await fetch(url + 'new.bin', { method: 'PUT', body: data })).status, 201);
    await until('new.bin refused', () => s!.writeback!.pending('/new.bin')?.state === 'failed');
    assert.equal(s.writeback!.pending('/new.bin')?.failed?.code, 'TBDAV_QUOTA');

    // still there for clients: listed, readable
    const pf = await fetch(url, { method: 'PROPFIND', headers: { Depth: '1' } });
    const listed = parseMultistatus(await pf.text()).find((e) => e.href.endsWith('/new.bin'));
    assert.ok(listed, 'PROPFIND lists the refused file');
    assert.equal(listed.props['{DAV:}getcontentlength']?.value, String(data.length));
    const get = await fetch(url + 'new.bin');
    assert.equal(get.status, 200);
    assert.equal(md5(await get.arrayBuffer()), md5(data));
    const head = await fetch(url + 'new.bin', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(data.length));

    // listed through the running server's control socket
    const live = await askServer(journalDir, { op: 'list' });
    assert.ok(live?.ok);
    assert.deepEqual(
      live.uploads?.map((u) => [u.path, u.state, u.failed?.code]),
      [['/new.bin', 'failed', 'TBDAV_QUOTA']],
    );
    const listLive = await cli('list');
    assert.equal(listLive.code, 0, listLive.stderr);
    assert.match(listLive.stdout, /failed .*\/new\.bin .*TBDAV_QUOTA \(the drive is full\)/);

    await s.close();
    s = undefined;

    // serve stopped: the CLI reads the journal itself
    const listOff = await cli('list');
    assert.equal(listOff.code, 0, listOff.stderr);
    assert.match(listOff.stdout, /failed .*\/new\.bin .*TBDAV_QUOTA/);
    assert.match(listOff.stdout, /serve is not running/);

    // every start reports it, and the file is still served
    const cap = captureLogger();
    s = await startStack(config, { logger: cap.logger, emulator });
    assert.ok(cap.lines.some((l) => /error/.test(l) && /\/new\.bin.*refused by the service \(TBDAV_QUOTA/.test(l)), 'listed in the log at start');
    const again = await fetch(url2() + 'new.bin');
    assert.equal(again.status, 200);
    assert.equal(md5(await again.arrayBuffer()), md5(data));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(s.writeback!.pending('/new.bin')?.state, 'failed', 'not retried by itself');

    // the user frees space and retries (the CLI talks to the running server)
    assert.equal((await fetch(url2() + 'old.bin', { method: 'DELETE' })).status, 204);
    const retry = await cli('retry', '/new.bin');
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(retry.stdout, /Retrying the upload of \/new\.bin now/);
    await until('new.bin stored', () => s!.writeback!.pending('/new.bin') === undefined);
    assert.equal((await s.remote.stat('/new.bin')).size, data.length, 'the drive has it');
    const stored = await fetch(url2() + 'new.bin');
    assert.equal(md5(await stored.arrayBuffer()), md5(data));

    // another refused one, given up by the user
    assert.equal((await fetch(url2() + 'third.bin', { method: 'PUT', body: randomBytes(2 * MiB) })).status, 201);
    await until('third.bin refused', () => s!.writeback!.pending('/third.bin')?.state === 'failed');
    const remove = await cli('remove', '/third.bin');
    assert.equal(remove.code, 0, remove.stderr);
    assert.equal((await fetch(url2() + 'third.bin')).status, 404);
    assert.deepEqual((await readdir(journalDir)).filter((f) => f.endsWith('.json')), []);
    const none = await cli('remove', '/third.bin');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no write-back upload is pending at \/third\.bin/);
  } finally {
    await s?.close();
    await rm(dir, { recursive: true, force: true });
  }
});
