/**
 * API economy (issue 4, item 7): upstream calls per WebDAV operation over the full stack
 * (emulator -> client -> TeraboxRemote -> Vfs -> bridge), counted by the emulator, so that a change
 * which adds calls fails here. The expected numbers are in ECONOMY below; bench/README.md shows the
 * same table (keep them in step).
 *
 * Keys are the emulator's counter keys: API paths, '/rest/2.0/pcs/superfile2' (upload host), and
 * '/file' + '/content' (the dlink on the download host: '/file' answers with a redirect to the CDN
 * '/content'). OAuth calls are left out (a token refresh is not a cost of the operation).
 * Each row is measured alone, after its preconditions were set up and the counters were snapshotted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestStack, type TestStack } from '../helpers/stack.js';

const MiB = 1024 * 1024;

type Calls = Record<string, number>;

/** The table (bench/README.md "API economy" shows the same). */
export const ECONOMY: Record<string, Calls> = {
  'PROPFIND Depth 1, cold (folder made behind the cache)': { '/openapi/api/list': 1, '/openapi/api/filemetas': 1 },
  'PROPFIND Depth 1, warm (within the TTL)': {},
  // download.connections 4 (default) over a fast link (the emulator unthrottled): one connection
  // proves fast, the 9 MiB GET stays one GET through the dlink (over a throttled link it would go
  // parallel: 2 MiB ranges, each through the dlink; test/reliability/download-connections.test.ts)
  'GET whole file, first (9 MiB)': { '/openapi/api/download': 1, '/file': 1, '/content': 1 },
  'GET whole file, again (dlink reused)': { '/file': 1, '/content': 1 },
  // issue 10: the vfs knows from its cache whether the file is there (201 vs 204): no filemetas
  'PUT new (9 MiB, 3 shards)': { '/openapi/api/precreate': 1, '/rest/2.0/pcs/superfile2': 3, '/openapi/api/create': 1 },
  'PUT new small (10 KiB)': { '/openapi/api/precreate': 1, '/rest/2.0/pcs/superfile2': 1, '/openapi/api/create': 1 },
  'PUT new into a folder made behind the cache (the cache knows nothing: it asks)': {
    '/openapi/api/filemetas': 2,
    '/openapi/api/precreate': 1,
    '/rest/2.0/pcs/superfile2': 1,
    '/openapi/api/create': 1,
  },
  'PUT rapid (same 9 MiB to another path)': { '/openapi/api/precreate': 1 },
  'PUT overwrite (new 9 MiB content)': { '/openapi/api/precreate': 1, '/rest/2.0/pcs/superfile2': 3, '/openapi/api/create': 1 },
  MOVE: { '/openapi/api/filemetas': 1, '/openapi/api/filemanager': 1 },
  COPY: { '/openapi/api/filemetas': 2, '/openapi/api/filemanager': 1 },
  DELETE: { '/openapi/api/filemanager': 1 },
  MKCOL: { '/openapi/api/filemetas': 1, '/openapi/api/create': 1 },
};

function snapshot(s: TestStack): Calls {
  return { ...s.counters.requests };
}

/** Calls made since `before`, without OAuth. */
function since(s: TestStack, before: Calls): Calls {
  const out: Calls = {};
  const now = s.counters.requests;
  for (const k of new Set([...Object.keys(before), ...Object.keys(now)])) {
    if (k.startsWith('/oauth/')) continue;
    const d = (now[k] ?? 0) - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

async function call(s: TestStack, method: string, path: string, init: { headers?: Record<string, string>; body?: Buffer | string } = {}) {
  const res = await fetch(s.url + path, { method, headers: init.headers, body: init.body });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

test('API economy: upstream calls per WebDAV operation match the table', { timeout: 50_000 }, async () => {
  const s = await startTestStack();
  const measured: Record<string, Calls> = {};
  const measure = async (row: string, fn: () => Promise<void>): Promise<void> => {
    assert.ok(ECONOMY[row], `row ${row} is in the table`);
    const before = snapshot(s);
    await fn();
    measured[row] = since(s, before);
  };
  try {
    // Setup (not measured): the root is known, a working folder exists.
    assert.equal((await call(s, 'MKCOL', '/w')).status, 201);
    // The client learns once per process whether this service's short list pages are the last
    // (one extra list call the first time a folder answers a short page; docs/protocol-notes.md):
    // the rows below count the calls after that.
    await s.remote.mkdir('/learn');
    await s.remote.list('/');

    await measure('MKCOL', async () => {
      assert.equal((await call(s, 'MKCOL', '/w/made')).status, 201);
    });

    // A folder with 3 children made straight through the remote: the vfs has never listed it.
    await s.remote.mkdir('/cold');
    for (const n of ['a', 'b', 'c']) await s.remote.mkdir(`/cold/${n}`);
    let coldBody = '';
    await measure('PROPFIND Depth 1, cold (folder made behind the cache)', async () => {
      const r = await call(s, 'PROPFIND', '/cold', { headers: { Depth: '1' } });
      assert.equal(r.status, 207);
      coldBody = r.body.toString();
      for (const n of ['a', 'b', 'c']) assert.match(coldBody, new RegExp(`/cold/${n}/`));
    });
    await measure('PROPFIND Depth 1, warm (within the TTL)', async () => {
      const r = await call(s, 'PROPFIND', '/cold', { headers: { Depth: '1' } });
      assert.equal(r.status, 207);
      assert.equal(r.body.toString(), coldBody, 'warm answer is the same as the cold one');
    });

    const nine = randomBytes(9 * MiB);
    await measure('PUT new (9 MiB, 3 shards)', async () => {
      assert.equal((await call(s, 'PUT', '/w/a.bin', { body: nine })).status, 201);
    });
    await measure('PUT new small (10 KiB)', async () => {
      assert.equal((await call(s, 'PUT', '/w/small.txt', { body: randomBytes(10 * 1024) })).status, 201);
    });
    await s.remote.mkdir('/behind');
    await measure('PUT new into a folder made behind the cache (the cache knows nothing: it asks)', async () => {
      assert.equal((await call(s, 'PUT', '/behind/small.txt', { body: randomBytes(10 * 1024) })).status, 201);
    });
    await measure('PUT rapid (same 9 MiB to another path)', async () => {
      assert.equal((await call(s, 'PUT', '/w/b.bin', { body: nine })).status, 201);
    });
    const other = randomBytes(9 * MiB);
    await measure('PUT overwrite (new 9 MiB content)', async () => {
      assert.equal((await call(s, 'PUT', '/w/a.bin', { body: other })).status, 204);
    });
    await measure('GET whole file, first (9 MiB)', async () => {
      const r = await call(s, 'GET', '/w/a.bin');
      assert.equal(r.status, 200);
      assert.equal(md5(r.body), md5(other));
    });
    await measure('GET whole file, again (dlink reused)', async () => {
      const r = await call(s, 'GET', '/w/a.bin');
      assert.equal(r.status, 200);
      assert.equal(md5(r.body), md5(other));
    });
    await measure('MOVE', async () => {
      assert.equal((await call(s, 'MOVE', '/w/b.bin', { headers: { Destination: '/w/c.bin' } })).status, 201);
    });
    await measure('COPY', async () => {
      assert.equal((await call(s, 'COPY', '/w/c.bin', { headers: { Destination: '/w/made/c.bin' } })).status, 201);
    });
    await measure('DELETE', async () => {
      assert.equal((await call(s, 'DELETE', '/w/c.bin')).status, 204);
    });

    // The rapid-uploaded copy is readable and intact (a rapid upload that lost data would be cheap too).
    const copied = await call(s, 'GET', '/w/made/c.bin');
    assert.equal(copied.status, 200);
    assert.equal(md5(copied.body), md5(nine));

    assert.deepEqual(measured, ECONOMY);
  } finally {
    await s.close();
  }
});

test('a Range GET of the last 1 MiB of a 200 MiB file pulls at most 2 MiB from the CDN', { timeout: 55_000 }, async () => {
  const s = await startTestStack();
  try {
    // 200 MiB of distinct 1 MiB blocks (a random block with its index written in), streamed from memory in 1 MiB pieces.
    const block = randomBytes(MiB);
    const size = 200 * MiB;
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (i >= 200) return ctrl.close();
        const b = Buffer.from(block);
        b.writeUInt32BE(i++, 0);
        ctrl.enqueue(b);
      },
    });
    const put = await fetch(s.url + '/big.bin', { method: 'PUT', body, duplex: 'half', headers: { 'content-length': String(size) } } as RequestInit);
    await put.arrayBuffer();
    assert.equal(put.status, 201);

    const before = snapshot(s);
    const served = s.counters.bytesServed;
    const r = await call(s, 'GET', '/big.bin', { headers: { Range: `bytes=${size - MiB}-` } });
    assert.equal(r.status, 206);
    const expected = Buffer.from(block);
    expected.writeUInt32BE(199, 0);
    assert.equal(md5(r.body), md5(expected));
    const pulled = s.counters.bytesServed - served;
    assert.ok(pulled >= MiB && pulled <= 2 * MiB, `pulled ${pulled} bytes from the CDN for a 1 MiB range`);
    assert.deepEqual(since(s, before), { '/openapi/api/download': 1, '/file': 1, '/content': 1 });
  } finally {
    await s.close();
  }
});

test('existence checks made together share filemetas calls: 150 paths, 2 calls (batches of 100), each its own answer', { timeout: 60_000 }, async () => {
  const s = await startTestStack();
  try {
    await s.remote.mkdir('/batch');
    const body = Buffer.from('ten bytes\n');
    const local = join(s.dir, 'ten.bin');
    await writeFile(local, body);
    const spool = { localPath: local, size: body.length, shardSize: 4 * MiB, blockMd5s: [md5(body)], contentMd5: md5(body) };
    const names = Array.from({ length: 120 }, (_, i) => `f${i}.txt`);
    for (const n of names) await s.remote.write(`/batch/${n}`, spool, { overwrite: false }); // the first uploaded, the rest rapid
    const asked = [...names.map((n) => `/batch/${n}`), ...Array.from({ length: 30 }, (_, i) => `/batch/none-${i}`)];
    const before = snapshot(s);
    // asked in one tick: they fall in one batching window whatever the machine's load
    const got = await Promise.allSettled(asked.map((p) => s.remote.stat(p)));
    assert.deepEqual(since(s, before), { '/openapi/api/filemetas': 2 });
    assert.deepEqual(
      got.map((r) => (r.status === 'fulfilled' ? r.value.path : (r.reason as { code: string }).code)),
      asked.map((p, i) => (i < names.length ? p : 'TBDAV_NOT_FOUND')),
    );
  } finally {
    await s.close();
  }
});
