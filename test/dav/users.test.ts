/** Per-user options (issue 11): `readOnly` (writes 403) and `root` (a folder seen as `/`). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startHarness, parseMultistatus } from './harness.js';

const auth = (u: string, p: string) => ({ Authorization: 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64') });
const ALICE = auth('alice', 'a-pw');
const BOB = auth('bob', 'b-pw');
const TV = auth('tv', 't-pw');
const users = [
  { username: 'alice', password: 'a-pw' },
  { username: 'bob', password: 'b-pw', root: '/home/bob' },
  { username: 'tv', password: 't-pw', readOnly: true, root: '/media' },
];

test('root: the user sees its folder as /, created on first use; paths, hrefs, Destination and lock roots are its own', async () => {
  const h = await startHarness({ users });
  try {
    // The folder does not exist yet: bob's first request creates it.
    assert.equal((await h.req('PROPFIND', '/', { headers: { ...BOB, Depth: '0' } })).status, 207);
    assert.equal((await h.req('PROPFIND', '/home/bob', { headers: { ...ALICE, Depth: '0' } })).status, 207);

    assert.equal((await h.req('PUT', '/note.txt', { headers: BOB, body: 'from bob' })).status, 201);
    assert.equal((await h.req('GET', '/home/bob/note.txt', { headers: ALICE })).text, 'from bob', 'stored inside bob\'s folder');
    assert.equal((await h.req('GET', '/note.txt', { headers: BOB })).text, 'from bob');
    assert.equal((await h.req('GET', '/note.txt', { headers: ALICE })).status, 404);

    assert.equal((await h.req('MKCOL', '/sub', { headers: BOB })).status, 201);
    const list = parseMultistatus((await h.req('PROPFIND', '/', { headers: { ...BOB, Depth: '1' } })).text).map((e) => e.href).sort();
    assert.deepEqual(list, ['/', '/note.txt', '/sub/']);

    assert.equal((await h.req('COPY', '/note.txt', { headers: { ...BOB, Destination: `${h.url}/sub/copy.txt` } })).status, 201);
    assert.equal((await h.req('GET', '/home/bob/sub/copy.txt', { headers: ALICE })).text, 'from bob');
    assert.equal((await h.req('MOVE', '/sub/copy.txt', { headers: { ...BOB, Destination: '/moved.txt' } })).status, 201);
    assert.equal((await h.req('GET', '/home/bob/moved.txt', { headers: ALICE })).status, 200);

    // Nothing above the folder is reachable.
    const up = await new Promise<number>((resolve, reject) => {
      const rq = http.request(`${h.url}/x`, { method: 'GET', path: '/../note.txt', headers: BOB }, (m) => {
        m.resume();
        m.on('end', () => resolve(m.statusCode ?? 0));
      });
      rq.on('error', reject);
      rq.end();
    });
    assert.equal(up, 400);
    assert.equal((await h.req('DELETE', '/', { headers: BOB })).status, 403);

    // One lock table: bob's lock binds alice, and each sees the lock root in its own terms.
    const lockBody = '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>';
    const lock = await h.req('LOCK', '/note.txt', { headers: { ...BOB, Depth: '0', 'Content-Type': 'application/xml' }, body: lockBody });
    assert.equal(lock.status, 200);
    assert.match(lock.text, /<D:lockroot><D:href>\/note\.txt<\/D:href>/);
    const token = lock.headers['lock-token']!.replace(/[<>]/g, '');
    assert.equal((await h.req('PUT', '/home/bob/note.txt', { headers: ALICE, body: 'alice was here' })).status, 423);
    const disc = await h.req('PROPFIND', '/home/bob/note.txt', {
      headers: { ...ALICE, Depth: '0' },
      body: '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>',
    });
    assert.match(disc.text, /<D:lockroot><D:href>\/home\/bob\/note\.txt<\/D:href>/);
    // A tagged If header names bob's URL; it resolves inside bob's folder.
    const put = await h.req('PUT', '/note.txt', { headers: { ...BOB, If: `<${h.url}/note.txt> (<${token}>)` }, body: 'v2' });
    assert.equal(put.status, 204);
    assert.equal((await h.req('UNLOCK', '/note.txt', { headers: { ...BOB, 'Lock-Token': `<${token}>` } })).status, 204);
  } finally {
    await h.close();
  }
});

test('readOnly: reads work, every write answers 403 before the body is read, OPTIONS announces class 1', async () => {
  const h = await startHarness({ users });
  try {
    assert.equal((await h.req('MKCOL', '/media', { headers: ALICE })).status, 201);
    assert.equal((await h.req('PUT', '/media/film.mkv', { headers: ALICE, body: 'frames' })).status, 201);

    assert.equal((await h.req('GET', '/film.mkv', { headers: TV })).text, 'frames');
    const ranged = await h.req('GET', '/film.mkv', { headers: { ...TV, Range: 'bytes=1-2' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.text, 'ra');
    assert.equal((await h.req('PROPFIND', '/', { headers: { ...TV, Depth: '1' } })).status, 207);

    const lockBody = '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>';
    const writes: [string, string, Record<string, string>, string?][] = [
      ['PUT', '/film.mkv', {}, 'overwritten'],
      ['PUT', '/new.txt', {}, 'x'],
      ['DELETE', '/film.mkv', {}],
      ['MKCOL', '/dir', {}],
      ['COPY', '/film.mkv', { Destination: '/copy.mkv' }],
      ['MOVE', '/film.mkv', { Destination: '/moved.mkv' }],
      ['PROPPATCH', '/film.mkv', {}, '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x xmlns="urn:x">1</x></D:prop></D:set></D:propertyupdate>'],
      ['LOCK', '/film.mkv', { 'Content-Type': 'application/xml' }, lockBody],
      ['UNLOCK', '/film.mkv', { 'Lock-Token': '<urn:uuid:0>' }],
    ];
    for (const [method, path, headers, body] of writes) {
      const r = await h.req(method, path, { headers: { ...TV, ...headers }, ...(body === undefined ? {} : { body }) });
      assert.equal(r.status, 403, `${method} ${path}: ${r.status} ${r.text}`);
    }
    assert.equal((await h.req('GET', '/media/film.mkv', { headers: ALICE })).text, 'frames', 'nothing changed');
    const names = parseMultistatus((await h.req('PROPFIND', '/media', { headers: { ...ALICE, Depth: '1' } })).text).map((e) => e.href).sort();
    assert.deepEqual(names, ['/media/', '/media/film.mkv']);

    const opt = await h.req('OPTIONS', '/', { headers: TV });
    assert.equal(opt.headers['dav'], '1');
    assert.doesNotMatch(opt.headers['allow']!, /PUT|DELETE|LOCK/);
    const optRw = await h.req('OPTIONS', '/', { headers: ALICE });
    assert.equal(optRw.headers['dav'], '1, 2');
  } finally {
    await h.close();
  }
});
