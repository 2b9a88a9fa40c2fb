import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type DavHarness } from './harness.js';

async function seed(h: DavHarness): Promise<void> {
  await h.req('MKCOL', '/src');
  await h.req('PUT', '/src/a.txt', { body: 'A' });
  await h.req('MKCOL', '/src/sub');
  await h.req('PUT', '/src/sub/b.txt', { body: 'B' });
  await h.req('PUT', '/file.txt', { body: 'F' });
}

test('COPY: 201 new, 204 replaced with Overwrite T (default), 412 with F, Depth 0 and infinity', async () => {
  const h = await startHarness();
  try {
    await seed(h);
    let r = await h.req('COPY', '/file.txt', { headers: { Destination: '/copy.txt' } });
    assert.equal(r.status, 201);
    assert.equal((await h.req('GET', '/copy.txt')).text, 'F');
    await h.req('PUT', '/file.txt', { body: 'F2' });
    r = await h.req('COPY', '/file.txt', { headers: { Destination: '/copy.txt', Overwrite: 'F' } });
    assert.equal(r.status, 412);
    assert.equal((await h.req('GET', '/copy.txt')).text, 'F');
    r = await h.req('COPY', '/file.txt', { headers: { Destination: '/copy.txt' } });
    assert.equal(r.status, 204);
    assert.equal((await h.req('GET', '/copy.txt')).text, 'F2');
    // absolute URL destination, folder, depth infinity
    r = await h.req('COPY', '/src', { headers: { Destination: `${h.url}/dst` } });
    assert.equal(r.status, 201);
    assert.equal((await h.req('GET', '/dst/sub/b.txt')).text, 'B');
    assert.equal((await h.req('GET', '/src/sub/b.txt')).text, 'B');
    // depth 0: the folder without its members
    r = await h.req('COPY', '/src', { headers: { Destination: '/shallow', Depth: '0' } });
    assert.equal(r.status, 201);
    assert.equal((await h.req('PROPFIND', '/shallow', { headers: { Depth: '0' } })).status, 207);
    assert.equal((await h.req('GET', '/shallow/a.txt')).status, 404);
    assert.equal((await h.req('COPY', '/src', { headers: { Destination: '/x', Depth: '1' } })).status, 400);
  } finally {
    await h.close();
  }
});

test('MOVE: 201/204, 412 with Overwrite F, source gone, Depth must be infinity', async () => {
  const h = await startHarness();
  try {
    await seed(h);
    let r = await h.req('MOVE', '/src', { headers: { Destination: '/moved' } });
    assert.equal(r.status, 201);
    assert.equal((await h.req('GET', '/src/a.txt')).status, 404);
    assert.equal((await h.req('GET', '/moved/sub/b.txt')).text, 'B');
    await h.req('PUT', '/other.txt', { body: 'O' });
    r = await h.req('MOVE', '/other.txt', { headers: { Destination: '/file.txt', Overwrite: 'F' } });
    assert.equal(r.status, 412);
    r = await h.req('MOVE', '/other.txt', { headers: { Destination: '/file.txt', Overwrite: 'T' } });
    assert.equal(r.status, 204);
    assert.equal((await h.req('GET', '/file.txt')).text, 'O');
    assert.equal((await h.req('GET', '/other.txt')).status, 404);
    assert.equal((await h.req('MOVE', '/file.txt', { headers: { Destination: '/f2.txt', Depth: '0' } })).status, 400);
    // rename with Unicode
    r = await h.req('MOVE', '/file.txt', { headers: { Destination: '/%C3%A9t%C3%A9%20%F0%9F%98%80.txt' } });
    assert.equal(r.status, 201);
    assert.equal((await h.vfs.stat('/été 😀.txt')).size, 1);
  } finally {
    await h.close();
  }
});

test('COPY/MOVE errors: 409 missing destination parent, 403 same path or into itself, 404 source, 502 other host, 400 no Destination', async () => {
  const h = await startHarness();
  try {
    await seed(h);
    assert.equal((await h.req('COPY', '/file.txt', { headers: { Destination: '/nope/x.txt' } })).status, 409);
    assert.equal((await h.req('MOVE', '/file.txt', { headers: { Destination: '/nope/x.txt' } })).status, 409);
    assert.equal((await h.req('COPY', '/file.txt', { headers: { Destination: '/file.txt' } })).status, 403);
    assert.equal((await h.req('MOVE', '/src', { headers: { Destination: '/src/sub/inner' } })).status, 403);
    assert.equal((await h.req('COPY', '/absent', { headers: { Destination: '/x' } })).status, 404);
    assert.equal((await h.req('COPY', '/file.txt', { headers: { Destination: 'http://elsewhere.example:1234/x' } })).status, 502);
    assert.equal((await h.req('COPY', '/file.txt')).status, 400);
    assert.equal((await h.req('COPY', '/file.txt', { headers: { Destination: 'http://[::1' } })).status, 400);
    assert.equal((await h.req('COPY', '/file.txt', { headers: { Destination: `http://127.0.0.1:${h.bridge.port}:99999/x` } })).status, 400);
    assert.equal((await h.req('COPY', '/file.txt', { headers: { Destination: `ftp://127.0.0.1:${h.bridge.port}/x` } })).status, 400);
    assert.equal((await h.req('COPY', '/file.txt', { headers: { Destination: `${h.url}/with%20space.txt` } })).status, 201);
    assert.equal((await h.req('GET', '/with%20space.txt')).text, 'F');
    assert.equal((await h.req('COPY', '/file.txt', { headers: { Destination: '/x', Overwrite: 'maybe' } })).status, 400);
    assert.equal((await h.req('COPY', '/file.txt', { headers: { Destination: '/../etc/passwd' } })).status, 400);
  } finally {
    await h.close();
  }
});

test('MOVE keeps dead properties with the resource', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/p.txt', { body: 'x' });
    await h.vfs.patchProps('/p.txt', { '{urn:x:}k': 'v' });
    assert.equal((await h.req('MOVE', '/p.txt', { headers: { Destination: '/q.txt' } })).status, 201);
    const r = await h.req('PROPFIND', '/q.txt', {
      headers: { Depth: '0' },
      body: '<propfind xmlns="DAV:"><prop><k xmlns="urn:x:"/></prop></propfind>',
    });
    assert.match(r.text, />v<\//);
  } finally {
    await h.close();
  }
});

test('COPY/MOVE honour X-OC-Mtime (rclone owncloud vendor)', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/m.txt', { body: 'x' });
    assert.equal((await h.req('COPY', '/m.txt', { headers: { Destination: '/c.txt', 'X-OC-Mtime': '1500000000' } })).status, 201);
    assert.equal((await h.vfs.stat('/c.txt')).mtime, 1_500_000_000_000);
    assert.equal((await h.req('MOVE', '/m.txt', { headers: { Destination: '/n.txt', 'X-OC-Mtime': '1400000000' } })).status, 201);
    assert.equal((await h.vfs.stat('/n.txt')).mtime, 1_400_000_000_000);
  } finally {
    await h.close();
  }
});
