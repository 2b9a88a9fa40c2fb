import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, parseMultistatus } from './harness.js';

const LOCKINFO = '<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>me</D:owner></D:lockinfo>';

function tokenOf(h: Record<string, string>): string {
  const t = h['lock-token'];
  assert.ok(t, 'Lock-Token header');
  return t.replace(/^<|>$/g, '');
}

test('LOCK guards PUT/DELETE/MOVE; tagged and untagged If carry the token; UNLOCK frees', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/doc.txt', { body: 'v1' });
    const lock = await h.req('LOCK', '/doc.txt', { headers: { Depth: '0', Timeout: 'Second-3600' }, body: LOCKINFO });
    assert.equal(lock.status, 200, lock.text);
    const token = tokenOf(lock.headers);
    assert.equal((await h.req('PUT', '/doc.txt', { body: 'v2' })).status, 423);
    assert.equal((await h.req('DELETE', '/doc.txt')).status, 423);
    assert.equal((await h.req('MOVE', '/doc.txt', { headers: { Destination: '/x.txt' } })).status, 423);
    // untagged and tagged If headers both carry the token
    assert.equal((await h.req('PUT', '/doc.txt', { body: 'v2', headers: { If: `(<${token}>)` } })).status, 204);
    assert.equal((await h.req('PUT', '/doc.txt', { body: 'v3', headers: { If: `<${h.url}/doc.txt> (<${token}>)` } })).status, 204);
    // lockdiscovery in PROPFIND
    const pf = await h.req('PROPFIND', '/doc.txt', { headers: { Depth: '0' }, body: '<propfind xmlns="DAV:"><prop><lockdiscovery/></prop></propfind>' });
    assert.ok(parseMultistatus(pf.text)[0]!.props['{DAV:}lockdiscovery']!.value.includes(token));
    const un = await h.req('UNLOCK', '/doc.txt', { headers: { 'Lock-Token': `<${token}>` } });
    assert.equal(un.status, 204);
    assert.equal((await h.req('PUT', '/doc.txt', { body: 'v4' })).status, 204);
    assert.equal((await h.req('GET', '/doc.txt')).text, 'v4');
  } finally {
    await h.close();
  }
});

test('LOCK on an unmapped URL creates an empty file (Finder/Explorer flow), then PUT with the token', async () => {
  const h = await startHarness();
  try {
    const lock = await h.req('LOCK', '/new.txt', { headers: { Timeout: 'Second-3600' }, body: LOCKINFO });
    assert.ok(lock.status === 201 || lock.status === 200, `${lock.status} ${lock.text}`);
    const token = tokenOf(lock.headers);
    assert.equal((await h.req('HEAD', '/new.txt')).status, 200);
    assert.equal((await h.req('PUT', '/new.txt', { body: 'content', headers: { If: `(<${token}>)` } })).status, 204);
    assert.equal((await h.req('UNLOCK', '/new.txt', { headers: { 'Lock-Token': `<${token}>` } })).status, 204);
    assert.equal((await h.req('GET', '/new.txt')).text, 'content');
  } finally {
    await h.close();
  }
});

test('a depth-infinity lock on a folder guards new members', async () => {
  const h = await startHarness();
  try {
    await h.req('MKCOL', '/d');
    const lock = await h.req('LOCK', '/d', { headers: { Depth: 'infinity' }, body: LOCKINFO });
    assert.equal(lock.status, 200, lock.text);
    const token = tokenOf(lock.headers);
    assert.equal((await h.req('PUT', '/d/a.txt', { body: 'x' })).status, 423);
    assert.equal((await h.req('MKCOL', '/d/sub')).status, 423);
    assert.equal((await h.req('PUT', '/d/a.txt', { body: 'x', headers: { If: `(<${token}>)` } })).status, 201);
    assert.equal((await h.req('DELETE', '/d')).status, 423);
  } finally {
    await h.close();
  }
});

test('PROPPATCH of Windows Win32* properties succeeds and PROPFIND returns them', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/w.txt', { body: 'x' });
    const body =
      '<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>' +
      '<Z:Win32CreationTime>Mon, 01 Jan 2024 00:00:00 GMT</Z:Win32CreationTime><Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>' +
      '</D:prop></D:set></D:propertyupdate>';
    const r = await h.req('PROPPATCH', '/w.txt', { body });
    assert.equal(r.status, 207, r.text);
    assert.ok(!/40[0-9] /.test(r.text.replace(/HTTP\/1\.1 200/g, '')), r.text);
    const pf = await h.req('PROPFIND', '/w.txt', {
      headers: { Depth: '0' },
      body: '<propfind xmlns="DAV:"><prop><Win32FileAttributes xmlns="urn:schemas-microsoft-com:"/></prop></propfind>',
    });
    const e = parseMultistatus(pf.text)[0]!;
    assert.deepEqual(e.props['{urn:schemas-microsoft-com:}Win32FileAttributes'], { status: 200, value: '00000020' });
  } finally {
    await h.close();
  }
});

test('PROPPATCH with several <set> elements keeps the keep-alive connection usable', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/m.txt', { body: 'x' });
    const sets = Array.from({ length: 5 }, (_, i) => `<D:set><D:prop><p${i} xmlns="http://example.com/neon/litmus/">v${i}</p${i}></D:prop></D:set>`).join('');
    const r = await h.req('PROPPATCH', '/m.txt', { body: `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:">${sets}</D:propertyupdate>` });
    assert.equal(r.status, 207);
    // the same keep-alive connection answers the next requests
    for (let i = 0; i < 3; i++) {
      const p = await h.req('PROPFIND', '/m.txt', {
        headers: { Depth: '0' },
        body: '<propfind xmlns="DAV:"><prop><p4 xmlns="http://example.com/neon/litmus/"/></prop></propfind>',
      });
      assert.equal(p.status, 207);
      assert.match(p.text, />v4</);
    }
  } finally {
    await h.close();
  }
});

test('LOCK answer: Lock-Token in <>, lockdiscovery elements in the DAV: namespace', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/l.txt', { body: 'x' });
    const r = await h.req('LOCK', '/l.txt', { headers: { Depth: '0' }, body: LOCKINFO.replace('exclusive', 'shared') });
    assert.equal(r.status, 200);
    assert.match(r.headers['lock-token']!, /^<[^<>]+>$/);
    assert.equal(r.headers['dav'], '1, 2');
    assert.ok(!/POST/.test(r.headers['allow'] ?? ''));
    assert.equal(Number(r.headers['content-length']), r.body.length);
    const { parseXml } = await import('../../src/dav/xml.js');
    const root = parseXml(r.text);
    const active = root.children[0]!.children[0]!;
    const scope = active.children.find((c) => c.local === 'lockscope')!.children[0]!;
    const type = active.children.find((c) => c.local === 'locktype')!.children[0]!;
    assert.deepEqual([scope.ns, scope.local], ['DAV:', 'shared']);
    assert.deepEqual([type.ns, type.local], ['DAV:', 'write']);
  } finally {
    await h.close();
  }
});

test('locks survive a restart with lockStateFile', async () => {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { startBridge } = await import('../../src/dav/server.js');
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-lockstate-'));
  const h = await startHarness({ lockStateFile: join(dir, 'locks.json') });
  try {
    await h.req('PUT', '/keep.txt', { body: 'v1' });
    const lock = await h.req('LOCK', '/keep.txt', { headers: { Depth: '0', Timeout: 'Second-600' }, body: LOCKINFO });
    assert.equal(lock.status, 200);
    const token = tokenOf(lock.headers);
    await h.bridge.close();
    const again = await startBridge({ fs: h.vfs, port: 0, lockStateFile: join(dir, 'locks.json') });
    try {
      const put = (headers: Record<string, string>) => fetch(`${again.url}/keep.txt`, { method: 'PUT', body: 'v2', headers }).then((r) => r.status);
      assert.equal(await put({}), 423);
      assert.equal(await put({ If: `(<${token}>)` }), 204);
      const pf = await fetch(`${again.url}/keep.txt`, { method: 'PROPFIND', headers: { Depth: '0' } }).then((r) => r.text());
      assert.ok(pf.includes(token));
    } finally {
      await again.close();
    }
  } finally {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  }
});
