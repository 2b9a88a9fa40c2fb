/**
 * `npm start`-style serve with no credentials: the embedded emulator starts, the share works
 * (PUT + GET round trip), and SIGINT stops everything with exit code 0. Defaults only (HOME is
 * a temp dir), as on a fresh machine; the port comes from the environment (0 = any free one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanEnv, startCli } from '../helpers/cli.js';

test('serve without credentials runs the embedded emulator and serves; SIGINT exits 0', async () => {
  const home = await mkdtemp(join(tmpdir(), 'tbdav-cli-serve-'));
  try {
    const env = cleanEnv(home, { TERABOX_DAV_SERVER_PORT: '0' });
    const first = startCli(['serve'], { env });
    let url: string;
    try {
      await first.waitFor(/Press Ctrl-C to stop\.\n/);
      url = /WebDAV URL: (\S+)\n/.exec(first.stdout())![1]!;
      assert.match(first.stdout(), /EMBEDDED EMULATOR/);
      for (const hint of ['Connect to Server', 'Map network drive', 'BasicAuthLevel', 'mount -t davfs', 'rclone config create tb webdav url=']) {
        assert.ok(first.stdout().includes(hint), `mount help mentions ${hint}`);
      }
      const body = Buffer.alloc(300_000, 'x');
      const put = await fetch(url + '/round-trip.bin', { method: 'PUT', body });
      assert.ok([201, 204].includes(put.status), `PUT ${put.status}`);
      await put.arrayBuffer();
      const get = await fetch(url + '/round-trip.bin');
      assert.equal(get.status, 200);
      assert.deepEqual(Buffer.from(await get.arrayBuffer()), body);
    } finally {
      const end = await first.stop('SIGINT');
      assert.equal(end.code, 0, end.stderr);
      assert.match(end.stdout, /Stopped\./);
    }
    // the emulated drive lives under the default state dir and survives a restart
    assert.ok((await readdir(join(home, '.local/state/terabox-dav/emulator'))).length > 0);
    const second = startCli(['serve'], { env });
    try {
      const [, url2] = (await second.waitFor(/WebDAV URL: (\S+)\n/)) as unknown as [string, string];
      const get = await fetch(url2 + '/round-trip.bin');
      assert.equal(get.status, 200);
      assert.equal((await get.arrayBuffer()).byteLength, 300_000);
    } finally {
      const end = await second.stop('SIGTERM');
      assert.equal(end.code, 0, end.stderr);
    }
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
