/**
 * SIGTERM of `terabox-dav serve` (child process over the embedded emulator): the server stops
 * accepting new connections, lets the PUT in flight finish (its client gets 201), and exits 0; after
 * a restart the file is there with all its bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanEnv, startCli } from '../helpers/cli.js';

function slowPut(url: string, body: Buffer, chunk: number, everyMs: number, onFirstChunk: () => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PUT', headers: { 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    let off = 0;
    const tick = (): void => {
      if (off >= body.length) return void req.end();
      req.write(body.subarray(off, off + chunk));
      if (off === 8 * chunk) onFirstChunk(); // well after the connection is up and the request is being served
      off += chunk;
      setTimeout(tick, everyMs);
    };
    tick();
  });
}

test('SIGTERM: stop accepting, finish the PUT in flight, exit 0; the file survives the restart', { timeout: 90_000 }, async () => {
  const home = await mkdtemp(join(tmpdir(), 'tbdav-sigterm-'));
  try {
    const env = cleanEnv(home, { TERABOX_DAV_SERVER_PORT: '0' });
    const serve = startCli(['serve'], { env });
    const [, url] = (await serve.waitFor(/WebDAV URL: (\S+)\n/)) as unknown as [string, string];
    const body = randomBytes(2 * 1024 * 1024);
    let signalled = false;
    const put = slowPut(url + '/in-flight.bin', body, 64 * 1024, 40, () => {
      signalled = true;
      serve.child.kill('SIGTERM');
    });
    // After the signal, new connections are refused (or at least not served).
    while (!signalled) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(signalled);
    const late = await fetch(url + '/late.txt', { method: 'PUT', body: 'late' }).then(
      (r) => r.status,
      () => 'refused',
    );
    assert.ok(late === 'refused' || late === 503, `a request after SIGTERM is refused (${late})`);
    const status = await put;
    assert.ok(status === 201 || status === 204, `the PUT in flight completed: ${status}`);
    const end = await serve.exited;
    assert.equal(end.code, 0, end.stderr.slice(-2000));
    const again = startCli(['serve'], { env });
    try {
      const [, url2] = (await again.waitFor(/WebDAV URL: (\S+)\n/)) as unknown as [string, string];
      const get = await fetch(url2 + '/in-flight.bin');
      assert.equal(get.status, 200);
      assert.ok(Buffer.from(await get.arrayBuffer()).equals(body), 'all bytes after the restart');
    } finally {
      const e2 = await again.stop('SIGTERM');
      assert.equal(e2.code, 0);
    }
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
