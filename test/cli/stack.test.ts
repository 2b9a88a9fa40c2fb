import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/cli/config.js';
import { STREAMING_KEY_FILE, startStack, tokenDir } from '../../src/cli/stack.js';
import { silentLogger } from '../../src/shared/logger.js';
import { startTestStack } from '../helpers/stack.js';

test('test stack: PUT then GET round trip through bridge, vfs, remote and emulator; close removes the temp dir', async () => {
  const s = await startTestStack({ users: [{ username: 'alice', password: 'pw' }] });
  let closed = false;
  try {
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+/);
    const denied = await fetch(s.url + '/', { method: 'PROPFIND', headers: { depth: '0' } });
    assert.equal(denied.status, 401);
    await denied.arrayBuffer();
    const body = 'hello from the test stack\n'.repeat(100);
    const put = await fetch(s.url + '/dir-less.txt', { method: 'PUT', body, headers: s.authHeaders() });
    assert.ok(put.status === 201 || put.status === 204, `PUT status ${put.status}`);
    await put.arrayBuffer();
    const get = await fetch(s.url + '/dir-less.txt', { headers: s.authHeaders() });
    assert.equal(get.status, 200);
    assert.equal(await get.text(), body);
    // the bytes really went through the emulator's upload endpoint
    assert.ok(s.counters.bytesUploaded >= body.length, `bytesUploaded ${s.counters.bytesUploaded}`);
    const entry = await s.remote.stat('/dir-less.txt');
    assert.equal(entry.size, body.length);
    await s.close();
    closed = true;
    await assert.rejects(stat(s.dir), { code: 'ENOENT' });
  } finally {
    if (!closed) await s.close();
  }
});

test('upload.mode writeback: the stack wires the queue; PUT answered, file readable at once, then stored on the drive', async () => {
  const s = await startTestStack({ configPatch: { upload: { mode: 'writeback' } } });
  try {
    assert.ok(s.writeback, 'queue built for writeback mode');
    const body = Buffer.alloc(200_000, 'w');
    const put = await fetch(s.url + '/wb.bin', { method: 'PUT', body });
    assert.ok(put.status === 201 || put.status === 204, `PUT status ${put.status}`);
    await put.arrayBuffer();
    const get = await fetch(s.url + '/wb.bin');
    assert.equal(get.status, 200);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), body);
    // the background upload reaches the drive (bounded wait, no timing assertion)
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const e = await s.remote.stat('/wb.bin');
        assert.equal(e.size, body.length);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await s.close();
  }
});

test('upload.mode writethrough (default) builds no queue', async () => {
  const s = await startTestStack();
  try {
    assert.equal(s.writeback, undefined);
    assert.equal(s.config.upload.mode, 'writethrough');
  } finally {
    await s.close();
  }
});

test('the virtual playlists survive a restart: same content and ETag (the signing key is kept in the state dir, 0600)', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-hls-key-'));
  const config = loadConfig({ env: {}, home: dir, cwd: dir, flags: { 'server.port': 0, stateDir: join(dir, 'state'), cacheDir: join(dir, 'cache') } });
  config.streaming.enabled = true;
  const playlist = async (): Promise<{ text: string; etag: string | null }> => {
    const stack = await startStack(config, { logger: silentLogger() });
    try {
      if (!(await fetch(`${stack.url}/clip.mp4`)).ok) {
        assert.equal((await fetch(`${stack.url}/clip.mp4`, { method: 'PUT', body: randomBytes(70_000) })).status, 201);
      }
      const r = await fetch(`${stack.url}/clip.mp4.m3u8`);
      assert.equal(r.status, 200);
      return { text: await r.text(), etag: r.headers.get('etag') };
    } finally {
      await stack.close();
    }
  };
  try {
    const first = await playlist();
    assert.match(first.text, /#EXTM3U/);
    const second = await playlist();
    assert.equal(second.text, first.text, 'the playlist (its signed URL) is the same after the restart');
    assert.equal(second.etag, first.etag);
    const key = await stat(join(tokenDir(config), STREAMING_KEY_FILE));
    assert.equal(key.mode & 0o777, 0o600);
    assert.equal(key.size, 32);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
