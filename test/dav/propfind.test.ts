import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, parseMultistatus, PROPFIND_ALLPROP } from './harness.js';

const PROP = (inner: string) => `<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:X="http://example.com/ns/"><D:prop>${inner}</D:prop></D:propfind>`;

test('PROPFIND Depth 1 lists the folder with every live property, hrefs encoded', async () => {
  const h = await startHarness();
  try {
    assert.equal((await h.req('MKCOL', '/docs')).status, 201);
    assert.equal((await h.req('PUT', '/docs/report%202024.pdf', { body: 'x'.repeat(1234) })).status, 201);
    assert.equal((await h.req('PUT', '/docs/notes.txt', { body: 'abc' })).status, 201);
    assert.equal((await h.req('MKCOL', '/docs/sub')).status, 201);
    const r = await h.req('PROPFIND', '/docs', { headers: { Depth: '1' }, body: PROPFIND_ALLPROP });
    assert.equal(r.status, 207);
    assert.match(r.headers['content-type']!, /^application\/xml/);
    const ms = parseMultistatus(r.text);
    const byHref = new Map(ms.map((e) => [e.href, e.props]));
    assert.deepEqual([...byHref.keys()].sort(), ['/docs/', '/docs/notes.txt', '/docs/report%202024.pdf', '/docs/sub/']);
    const pdf = byHref.get('/docs/report%202024.pdf')!;
    assert.equal(pdf['{DAV:}getcontentlength']!.value, '1234');
    assert.equal(pdf['{DAV:}getcontenttype']!.value, 'application/pdf');
    assert.equal(pdf['{DAV:}displayname']!.value, 'report 2024.pdf');
    assert.equal(pdf['{DAV:}resourcetype']!.value, '');
    assert.match(pdf['{DAV:}getetag']!.value, /^"[^"]+"$/);
    assert.match(pdf['{DAV:}getlastmodified']!.value, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    assert.match(pdf['{DAV:}creationdate']!.value, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    assert.match(pdf['{DAV:}supportedlock']!.value, /exclusive/);
    assert.ok('{DAV:}lockdiscovery' in pdf);
    const sub = byHref.get('/docs/sub/')!;
    assert.match(sub['{DAV:}resourcetype']!.value, /<D:collection\/>/);
    assert.equal(sub['{DAV:}getcontentlength'], undefined);
    // the etag is the one GET sends
    const g = await h.req('HEAD', '/docs/report%202024.pdf');
    assert.equal(g.headers['etag'], pdf['{DAV:}getetag']!.value);
    // quota is not part of allprop
    assert.equal(pdf['{DAV:}quota-available-bytes'], undefined);
  } finally {
    await h.close();
  }
});

test('PROPFIND Depth 0, empty body = allprop, on a file', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/f.bin', { body: 'abc' });
    const r = await h.req('PROPFIND', '/f.bin', { headers: { Depth: '0' } });
    assert.equal(r.status, 207);
    const ms = parseMultistatus(r.text);
    assert.equal(ms.length, 1);
    assert.equal(ms[0]!.href, '/f.bin');
    assert.equal(ms[0]!.props['{DAV:}getcontentlength']!.value, '3');
    // Depth 1 on a file: just the file
    const r1 = await h.req('PROPFIND', '/f.bin', { headers: { Depth: '1' } });
    assert.equal(parseMultistatus(r1.text).length, 1);
  } finally {
    await h.close();
  }
});

test('PROPFIND Depth infinity and missing Depth answer 403 propfind-finite-depth', async () => {
  const h = await startHarness();
  try {
    for (const headers of [{ Depth: 'infinity' }, {} as Record<string, string>]) {
      const r = await h.req('PROPFIND', '/', { headers, body: PROPFIND_ALLPROP });
      assert.equal(r.status, 403);
      assert.match(r.text, /<D:error xmlns:D="DAV:"><D:propfind-finite-depth\/><\/D:error>/);
    }
    const bad = await h.req('PROPFIND', '/', { headers: { Depth: '2' } });
    assert.equal(bad.status, 400);
  } finally {
    await h.close();
  }
});

test('PROPFIND prop: unknown props 404, quota answered from fs.quota, dead props', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/a.txt', { body: 'hello' });
    await h.vfs.patchProps('/a.txt', { '{http://example.com/ns/}color': 'blue &amp; green' });
    const r = await h.req('PROPFIND', '/a.txt', {
      headers: { Depth: '0' },
      body: PROP('<D:getcontentlength/><D:quota-available-bytes/><D:quota-used-bytes/><X:color/><X:missing/><D:nonexistent/>'),
    });
    assert.equal(r.status, 207);
    const [e] = parseMultistatus(r.text);
    assert.equal(e!.props['{DAV:}getcontentlength']!.status, 200);
    const q = await h.vfs.quota();
    assert.equal(e!.props['{DAV:}quota-used-bytes']!.value, String(q.used));
    assert.equal(e!.props['{DAV:}quota-available-bytes']!.value, String(q.total - q.used));
    assert.deepEqual(e!.props['{http://example.com/ns/}color'], { status: 200, value: 'blue &amp; green' });
    assert.equal(e!.props['{http://example.com/ns/}missing']!.status, 404);
    assert.equal(e!.props['{DAV:}nonexistent']!.status, 404);
  } finally {
    await h.close();
  }
});

test('PROPFIND propname lists names without values; bad XML is 400; absent path 404', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/a.txt', { body: 'hello' });
    const r = await h.req('PROPFIND', '/a.txt', {
      headers: { Depth: '0' },
      body: '<?xml version="1.0"?><propfind xmlns="DAV:"><propname/></propfind>',
    });
    assert.equal(r.status, 207);
    const [e] = parseMultistatus(r.text);
    assert.equal(e!.props['{DAV:}getetag']!.value, '');
    assert.equal(e!.props['{DAV:}getcontentlength']!.value, '');
    assert.equal((await h.req('PROPFIND', '/a.txt', { headers: { Depth: '0' }, body: '<propfind xmlns="DAV:"><prop>' })).status, 400);
    assert.equal((await h.req('PROPFIND', '/nope', { headers: { Depth: '0' } })).status, 404);
    // a prefix bound to the empty namespace is not well-formed (litmus propfind_invalid2)
    const inv = '<D:propfind xmlns:D="DAV:"><D:prop><bar:foo xmlns:bar=""/></D:prop></D:propfind>';
    assert.equal((await h.req('PROPFIND', '/a.txt', { headers: { Depth: '0' }, body: inv })).status, 400);
    assert.equal((await h.req('PROPFIND', '/a.txt', { headers: { Depth: '0' }, body: '<D:propfind xmlns:D="DAV:"><D:prop><x:y/></D:prop></D:propfind>' })).status, 400);
  } finally {
    await h.close();
  }
});

test('PROPFIND answers names with XML specials, %, #, accents and emoji, and they round-trip', async () => {
  const h = await startHarness();
  try {
    const names = ['a & b <c>.txt', '100% sure.txt', 'hash#tag.txt', 'café crème.txt', 'emoji 😀.txt', "quote's \"x\".txt"];
    for (const n of names) {
      const r = await h.req('PUT', '/' + encodeURIComponent(n), { body: n });
      assert.equal(r.status, 201, n);
    }
    const r = await h.req('PROPFIND', '/', { headers: { Depth: '1' } });
    const ms = parseMultistatus(r.text);
    const hrefs = ms.map((e) => e.href).filter((x) => x !== '/');
    assert.equal(hrefs.length, names.length);
    for (const href of hrefs) {
      const g = await h.req('GET', href);
      assert.equal(g.status, 200, href);
      assert.equal(g.text, decodeURIComponent(href.slice(1)));
      assert.ok(!/[ #<>&]/.test(href), `href not encoded: ${href}`);
    }
    const dn = ms.map((e) => e.props['{DAV:}displayname']?.value).filter(Boolean);
    assert.ok(dn.includes('a &amp; b &lt;c&gt;.txt'));
  } finally {
    await h.close();
  }
});

test('PROPFIND of 10,000 entries is streamed and complete', async () => {
  const h = await startHarness();
  try {
    await h.req('MKCOL', '/big');
    const N = 10_000;
    // fill through the Vfs (not the subject here), in parallel batches
    const { Readable } = await import('node:stream');
    for (let i = 0; i < N; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, N - i) }, (_, j) =>
          h.vfs.put(`/big/file-${String(i + j).padStart(5, '0')}.txt`, Readable.from([Buffer.from('x')]), { overwrite: true }),
        ),
      );
    }
    const r = await h.req('PROPFIND', '/big', { headers: { Depth: '1' } });
    assert.equal(r.status, 207);
    assert.equal(r.headers['content-length'], undefined, 'streamed (chunked), not one buffer');
    const ms = parseMultistatus(r.text);
    assert.equal(ms.length, N + 1);
    assert.equal(new Set(ms.map((e) => e.href)).size, N + 1);
  } finally {
    await h.close();
  }
});

test('PROPFIND oc:checksums (rclone owncloud/nextcloud vendors) gives MD5 when the content md5 is known', async () => {
  const h = await startHarness();
  try {
    await h.req('PUT', '/c.txt', { body: 'hello' });
    const r = await h.req('PROPFIND', '/c.txt', {
      headers: { Depth: '0' },
      body: '<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:getcontentlength/><oc:checksums/></d:prop></d:propfind>',
    });
    const [e] = parseMultistatus(r.text);
    assert.equal(e!.props['{DAV:}getcontentlength']!.value, '5');
    assert.match(e!.props['{http://owncloud.org/ns}checksums']!.value, /MD5:5d41402abc4b2a76b9719d911017c592/);
    // a folder has none
    const d = await h.req('PROPFIND', '/', {
      headers: { Depth: '0' },
      body: '<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:checksums/></d:prop></d:propfind>',
    });
    assert.equal(parseMultistatus(d.text)[0]!.props['{http://owncloud.org/ns}checksums']!.status, 404);
  } finally {
    await h.close();
  }
});
