/**
 * The rclone instructions `serve` prints work as printed: `rclone config create tb webdav url=URL
 * vendor=other`, then copy a file up, list, and read it back through the share.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cleanEnv, startCli } from '../helpers/cli.js';

const run = promisify(execFile);

test('the printed rclone command configures a working remote', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-cli-rclone-'));
  const env = cleanEnv(dir, { TERABOX_DAV_SERVER_PORT: '0', RCLONE_CONFIG: join(dir, 'rclone.conf') });
  const serve = startCli(['serve'], { env });
  try {
    await serve.waitFor(/Press Ctrl-C to stop\.\n/);
    const line = serve.stdout().split('\n').find((l) => l.includes('rclone config create'));
    assert.ok(line, serve.stdout());
    const cmd = line.slice(line.indexOf('rclone config create')).split(' && ')[0]!.trim().split(/\s+/);
    assert.deepEqual(cmd.slice(0, 5), ['rclone', 'config', 'create', 'tb', 'webdav']);
    const opts = { env, timeout: 30_000 };
    await run(cmd[0]!, cmd.slice(1), opts);
    const local = join(dir, 'up');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(local);
    const content = 'rclone via terabox-dav\n'.repeat(1000);
    await writeFile(join(local, 'note.txt'), content);
    await run('rclone', ['copy', local, 'tb:fromrclone'], opts);
    const { stdout: listing } = await run('rclone', ['ls', 'tb:fromrclone'], opts);
    assert.match(listing, new RegExp(`^\\s*${content.length} note\\.txt$`, 'm'));
    await run('rclone', ['copy', 'tb:fromrclone/note.txt', join(dir, 'down')], opts);
    assert.equal(await readFile(join(dir, 'down', 'note.txt'), 'utf8'), content);
  } finally {
    const end = await serve.stop('SIGTERM');
    assert.equal(end.code, 0, end.stderr);
    await rm(dir, { recursive: true, force: true });
  }
});
