/**
 * Bad input over the full stack (bridge -> vfs -> TeraboxRemote -> emulator, loopback, port 0):
 * a bounded, seeded fuzz run of random methods, headers, malformed XML bodies, huge headers, path
 * traversal (.., %2e%2e, %2f, backslashes, NUL), bad Depth/Overwrite/Destination, bogus lock tokens
 * and If headers, garbage Range, overlong names and paths.
 *
 * Holds when: the bridge answers every request with a 2xx/3xx/4xx (never 5xx — but 502 for a
 * COPY/MOVE whose Destination is another server, as RFC 4918 asks — never a dropped connection), no answer carries a stack trace, the process keeps serving, nothing logged an
 * uncaught exception, and the emulator's drive has no path outside the app root (terabox.root) —
 * two sentinel folders outside it survive untouched.
 *
 * Replay a failure with TBDAV_FUZZ_SEED=<seed printed in the failure>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestStack } from '../helpers/stack.js';
import { STACK_TRACE_RE, captureLogger, isInsideRoot, prng, rawRequest, readEmulatorMeta, spyApiPaths, type RawAnswer } from './helpers.js';

const USER = { username: 'fuzzer', password: 'fuzz-pass-9c1e7a' };
const SEED = Number(process.env.TBDAV_FUZZ_SEED ?? 20261128);
const REQUESTS = Number(process.env.TBDAV_FUZZ_REQUESTS ?? 500);
const CONCURRENCY = 8;

const METHODS = [
  'GET', 'HEAD', 'PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE', 'PROPFIND', 'PROPPATCH', 'LOCK', 'UNLOCK',
  'OPTIONS', 'POST', 'PATCH', 'TRACE', 'SEARCH', 'REPORT', 'ACL', 'FOO', 'get', 'M-SEARCH', 'BIND', 'VERSION-CONTROL',
];

const GOOD_PATHS = ['/', '/dir', '/dir/', '/dir/a.txt', '/dir/sub/', '/b.bin', '/new.txt', '/dir/new-folder', '/dir/sub/n.txt'];
const BAD_PATHS = [
  '/../escape.txt', '/../../escape', '/dir/../../escape.txt', '/%2e%2e/escape.txt', '/%2E%2E/%2e%2E/escape',
  '/dir/%2e%2e%2f%2e%2e%2fescape.txt', '/%2fetc%2fpasswd', '/dir%2f..%2f..%2fescape', '/..\\..\\escape.txt',
  '/dir\\..\\..\\escape', '/dir%5c..%5c..%5cescape', '/a%00b.txt', '/dir/%00', '/%ZZbad', '/%', '/%e0%a4',
  '/%c0%ae%c0%ae/escape', '/./dir/./a.txt', '//dir//a.txt', '/dir/a.txt/', '/dir/a.txt/child',
  '*', 'http://evil.example/../escape', 'http://127.0.0.1/dir/a.txt', 'dir/a.txt', '',
  '/' + 'n'.repeat(300), '/' + 'n'.repeat(1100) + '.txt', '/dir/' + 'deep/'.repeat(400) + 'x',
  '/\u00e9t\u00e9/caf\u00e9.txt', '/%e2%80%ae%6c%6f%6c', '/dir/a.txt?x=../../escape', '/dir/a.txt#frag', '/%7f',
];

const DESTINATIONS = [
  '/dir/moved.txt', 'http://HOST/dir/copied.txt', 'http://HOST/../escape.txt', 'http://HOST/%2e%2e/escape.txt',
  'http://HOST/dir/%2e%2e%2f%2e%2e%2fescape', 'http://other.example/dir/x', 'ftp://HOST/x', 'garbage', '',
  'http://HOST/dir\\..\\..\\escape', 'http://HOST/a%00b', 'http://HOST/', 'http://HOST/dir/a.txt',
  'http://HOST/dir/sub/inside', '/' + 'd'.repeat(5000), 'http://[::1', 'http://HOST:99999/x', 'javascript:alert(1)',
];

const HEADER_VALUES: Record<string, string[]> = {
  Depth: ['0', '1', 'infinity', 'Infinity', '2', '-1', 'abc', '', '1,1', '0 ', '99999999999999999999'],
  Overwrite: ['T', 'F', 't', 'X', 'TT', '', 'true'],
  If: [
    '(<opaquelocktoken:00000000-0000-0000-0000-000000000000>)', '(<urn:uuid:nope>)', '<http://HOST/dir/a.txt> (Not <urn:x>)',
    '((((', '(', ')', '<>', '([W/"etag"])', '(["x"] [y])', '(Not)', '<http://other/> (<urn:a>) (<urn:b>)', 'garbage', '(<' + 'x'.repeat(3000) + '>)',
  ],
  'Lock-Token': ['<opaquelocktoken:bogus>', 'bogus', '<>', '<urn:uuid:' + 'f'.repeat(100) + '>', ''],
  Timeout: ['Second-3600', 'Infinite', 'Second-99999999999999', 'Second--1', 'garbage', 'Second-0, Infinite'],
  Range: [
    'bytes=abc', 'bytes=5-1', 'bytes=-0', 'bytes=0-0', 'bytes=99999999999999999999-', 'bytes=-99999999999999999999',
    'bytes=0-1,2-3,4-5,6-7', 'items=0-1', 'bytes=', 'bytes=--1', 'bytes=1-2-3', 'bytes=' + '0-1,'.repeat(500) + '0-1', 'bytes=1000000-',
  ],
  'If-Match': ['*', '"nope"', 'W/"x"', 'garbage'],
  'If-None-Match': ['*', '"nope"', ','],
  'If-Modified-Since': ['yesterday', 'Thu, 01 Jan 1970 00:00:00 GMT', '0'],
  'If-Range': ['"x"', 'Thu, 01 Jan 1970 00:00:00 GMT', 'garbage'],
  'Content-Type': ['text/xml', 'application/xml; charset=utf-16', 'multipart/form-data; boundary=x', '%%%'],
  'X-Expected-Entity-Length': ['-5', 'abc', '99999999999999999999', '3'],
  'X-OC-Mtime': ['abc', '-1', '99999999999999999999', '1700000000'],
  'Content-Range': ['bytes 0-1/2', 'bytes */*', 'garbage'],
  Expect: ['100-continue', 'garbage'],
  'Transfer-Encoding': ['chunked'],
  'X-Request-Id': ['<script>', '../../x', 'a'.repeat(200)],
  Authorization: ['Basic', 'Basic !!!', 'Bearer x', 'Basic ' + Buffer.from('fuzzer:wrong').toString('base64'), 'Basic ' + Buffer.from(':').toString('base64')],
};

const XML_BODIES = [
  '',
  '<',
  '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>',
  '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
  '<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getcontentlength/><x:y xmlns:x="urn:x"/></prop></propfind>',
  '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><D:propfind xmlns:D="DAV:"><D:prop>&lol3;</D:prop></D:propfind>',
  '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><Z:a xmlns:Z="urn:z">&xxe;</Z:a></D:prop></D:set></D:propertyupdate>',
  '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><Z:a xmlns:Z="urn:z">v</Z:a></D:prop></D:set><D:remove><D:prop><D:getetag/></D:prop></D:remove></D:propertyupdate>',
  '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><a>no namespace</a></D:prop></D:set></D:propertyupdate>',
  '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>x</D:owner></D:lockinfo>',
  '<D:lockinfo xmlns:D="DAV:"><D:lockscope/><D:locktype/></D:lockinfo>',
  '<a>' + '<b>'.repeat(5000) + '</b>'.repeat(5000) + '</a>',
  '<x xmlns:a="' + 'u'.repeat(20000) + '"/>',
  '\u0000\u0001\u0002<<<>>>',
  '\ufeff<?xml version="1.0" encoding="EBCDIC"?><x/>',
  '<D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/></D:prop></D:propfind><trailing/>',
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function randomBytesFrom(r: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

interface FuzzCase {
  label: string;
  bytes: Buffer;
  /** COPY/MOVE to a well-formed URL of another server: RFC 4918 answers 502 there. */
  foreignDestination: boolean;
}

/** Build one raw request. Header values/paths are sent as latin1 bytes, exactly as chosen. */
function makeCase(r: () => number, i: number, hostPort: string, auth: string): FuzzCase {
  const method = pick(r, METHODS);
  let target = r() < 0.5 ? pick(r, GOOD_PATHS) : pick(r, BAD_PATHS);
  if (method === 'PUT' && r() < 0.5) target = `/fz-${i}.txt`;
  const headers: [string, string][] = [['Host', hostPort]];
  if (r() < 0.9) headers.push(['Authorization', auth]);
  const nHeaders = Math.floor(r() * 4);
  for (let k = 0; k < nHeaders; k++) {
    const name = pick(r, Object.keys(HEADER_VALUES));
    if (name === 'Transfer-Encoding') continue; // bodies are framed below
    headers.push([name, pick(r, HEADER_VALUES[name]!).replace(/HOST/g, hostPort)]);
  }
  if (method === 'COPY' || method === 'MOVE' || r() < 0.05) headers.push(['Destination', pick(r, DESTINATIONS).replace(/HOST/g, hostPort)]);
  const special = r();
  if (special < 0.03) headers.push(['X-Huge', 'h'.repeat(70_000)]); // beyond node's header limit: 431
  else if (special < 0.06) for (let k = 0; k < 150; k++) headers.push([`X-Many-${k}`, 'v']);
  else if (special < 0.08) headers.push(['Bad Header', 'x']);
  else if (special < 0.10) headers.push(['X-Ctl', 'a\u0001b']);

  let body: Buffer;
  const kind = r();
  if (['PROPFIND', 'PROPPATCH', 'LOCK', 'SEARCH', 'REPORT'].includes(method) || kind < 0.2) body = Buffer.from(pick(r, XML_BODIES), 'utf8');
  else if (method === 'PUT' || kind < 0.3) body = randomBytesFrom(r, Math.floor(r() * 3000));
  else body = Buffer.alloc(0);

  const framing = r();
  let bodyBytes = body;
  if (framing < 0.1 && body.length > 0) {
    headers.push(['Transfer-Encoding', 'chunked']);
    bodyBytes = Buffer.concat([Buffer.from(body.length.toString(16) + '\r\n'), body, Buffer.from('\r\n0\r\n\r\n')]);
  } else if (framing < 0.13) {
    headers.push(['Content-Length', pick(r, ['abc', '-1', '1e3', '99999999999999999999', '5, 6'])]);
    bodyBytes = Buffer.alloc(0);
  } else if (body.length > 0 || r() < 0.5) {
    headers.push(['Content-Length', String(body.length)]);
  }
  headers.push(['Connection', 'close']);
  const head = `${method} ${target} HTTP/1.1\r\n` + headers.map(([k, v]) => `${k}: ${v}`).join('\r\n') + '\r\n\r\n';
  const label = `#${i} ${method} ${target.slice(0, 80)} [${headers.map(([k, v]) => `${k}=${v.slice(0, 40)}`).join(' ; ').slice(0, 400)}] body ${body.length} B`;
  const dest = headers.find(([k]) => k === 'Destination')?.[1];
  let foreignDestination = false;
  if ((method === 'COPY' || method === 'MOVE') && dest) {
    try {
      const u = new URL(dest);
      foreignDestination = u.host !== hostPort;
    } catch {
      foreignDestination = false; // unparseable: must be a 400
    }
  }
  return { label, bytes: Buffer.concat([Buffer.from(head, 'latin1'), bodyBytes]), foreignDestination };
}

/** Directed cases run before the random ones: every attack path with common methods, every If value on every method that checks it. */
function directedCases(hostPort: string, auth: string): FuzzCase[] {
  const out: FuzzCase[] = [];
  const mk = (method: string, target: string, extra: [string, string][], body = ''): void => {
    const headers: [string, string][] = [['Host', hostPort], ['Authorization', auth], ...extra, ['Content-Length', String(Buffer.byteLength(body))], ['Connection', 'close']];
    const head = `${method} ${target} HTTP/1.1\r\n` + headers.map(([k, v]) => `${k}: ${v}`).join('\r\n') + '\r\n\r\n';
    let foreignDestination = false;
    const dest = extra.find(([k]) => k === 'Destination')?.[1];
    if (dest) {
      try {
        foreignDestination = new URL(dest).host !== hostPort;
      } catch {
        foreignDestination = false;
      }
    }
    out.push({ label: `directed ${method} ${target.slice(0, 80)} [${extra.map(([k, v]) => `${k}=${v.slice(0, 60)}`).join(' ; ')}] body ${JSON.stringify(body.slice(0, 60))}`, bytes: Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body, 'utf8')]), foreignDestination });
  };
  for (const p of BAD_PATHS) {
    for (const m of ['GET', 'PROPFIND', 'PUT', 'DELETE', 'MKCOL']) mk(m, p, m === 'PROPFIND' ? [['Depth', '1']] : [], m === 'PUT' ? 'escape' : '');
    mk('MOVE', '/dir/a.txt', [['Destination', `http://${hostPort}${p.startsWith('/') ? p : '/' + p}`]]);
    mk('COPY', '/dir/a.txt', [['Destination', p]]);
  }
  for (const d of DESTINATIONS) for (const m of ['COPY', 'MOVE']) mk(m, '/b.bin', [['Destination', d.replace(/HOST/g, hostPort)], ['Overwrite', 'F']]);
  for (const v of HEADER_VALUES.If!) for (const m of ['PROPPATCH', 'LOCK', 'UNLOCK', 'PUT', 'DELETE', 'GET', 'PROPFIND', 'MKCOL']) mk(m, '/dir/a.txt', [['If', v.replace(/HOST/g, hostPort)]], m === 'PROPPATCH' ? XML_BODIES[7]! : '');
  for (const v of HEADER_VALUES.Range!) mk('GET', '/b.bin', [['Range', v]]);
  for (const v of HEADER_VALUES.Depth!) for (const m of ['PROPFIND', 'COPY', 'DELETE', 'LOCK']) mk(m, '/dir', [['Depth', v], ['Destination', `http://${hostPort}/dir-copy`]]);
  for (const b of XML_BODIES) for (const m of ['PROPFIND', 'PROPPATCH', 'LOCK']) mk(m, '/dir/a.txt', [['Content-Type', 'text/xml']], b);
  for (const m of METHODS) mk(m, '/dir/a.txt', []);
  return out;
}

test('fuzz: random methods, headers, bodies and traversal never crash, never 5xx, never leak a stack, never leave terabox.root', { timeout: 120_000 }, async () => {
  const cap = captureLogger();
  const s = await startTestStack({ users: [USER], logger: cap.logger });
  try {
    const port = Number(new URL(s.url).port);
    const hostPort = `127.0.0.1:${port}`;
    const auth = s.authHeaders().authorization!;
    const appRoot = s.emulator.appRoot;
    // Every drive path any API call carries from now on (the emulator itself refuses paths outside
    // the app folder with errno -7, so an escape would only show as a 4xx: look at what is sent).
    const sent = spyApiPaths(s.client);
    // Fixtures inside the share.
    for (const [m, p, b] of [['MKCOL', '/dir', ''], ['MKCOL', '/dir/sub', ''], ['PUT', '/dir/a.txt', 'hello'], ['PUT', '/b.bin', 'x'.repeat(10_000)]] as const) {
      const res = await fetch(s.url + p, { method: m, body: b || undefined, headers: s.authHeaders() });
      await res.arrayBuffer();
      assert.ok(res.status === 201 || res.status === 204, `fixture ${m} ${p}: ${res.status}`);
    }

    const r = prng(SEED);
    const cases = [...directedCases(hostPort, auth), ...Array.from({ length: REQUESTS }, (_, i) => makeCase(r, i, hostPort, auth))];
    const failures: string[] = [];
    const statuses = new Map<number | string, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < cases.length) {
        const c = cases[next++]!;
        const a: RawAnswer = await rawRequest(port, c.bytes, 10_000);
        const key = a.status ?? (a.noAnswer ? 'none' : 'unparsed');
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        if (process.env.TBDAV_FUZZ_REPORT) appendFileSync(process.env.TBDAV_FUZZ_REPORT, `${a.status ?? 'none'} ${c.label}\n`);
        if (a.status === undefined) failures.push(`${c.label}: no answer (${a.error ?? 'closed'}) head=${JSON.stringify(a.head.slice(0, 100))}`);
        else if (a.status >= 500 && !(a.status === 502 && c.foreignDestination)) failures.push(`${c.label}: ${a.status} ${a.body.toString('utf8').slice(0, 200)}`);
        const whole = a.head + '\n' + a.body.toString('utf8');
        if (STACK_TRACE_RE.test(whole)) failures.push(`${c.label}: stack trace or file path in the answer: ${JSON.stringify(whole.slice(0, 300))}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    // Still serving, and nothing escaped to the process-level safety net.
    const put = await fetch(s.url + '/after-fuzz.txt', { method: 'PUT', body: 'still here', headers: s.authHeaders() });
    assert.ok(put.status === 201 || put.status === 204, `PUT after the fuzz run: ${put.status}`);
    await put.arrayBuffer();
    const ok = await fetch(s.url + '/after-fuzz.txt', { headers: s.authHeaders() });
    assert.equal(ok.status, 200, 'the bridge still serves after the fuzz run');
    assert.equal(await ok.text(), 'still here');
    const uncaught = cap.lines.filter((l) => /uncaught|unhandled/i.test(l));

    // Nothing sent upstream outside terabox.root, nothing stored outside it.
    const outOfRoot = sent.filter((x) => (x.key === 'newname' ? x.path === '..' || x.path === '.' || /[/\\]/.test(x.path) : !isInsideRoot(x.path, appRoot)));
    const meta = await readEmulatorMeta(join(s.stateDir, 'emulator'));
    const escaped = meta.nodes.map((n) => n.path).filter((p) => p !== '/From: Other Applications' && !isInsideRoot(p, appRoot));

    const summary = `seed ${SEED}, statuses ${JSON.stringify(Object.fromEntries(statuses))}`;
    // An uncaught exception fails the test at once and hides the rest: print everything found.
    if (failures.length || uncaught.length || outOfRoot.length || escaped.length) {
      const report = `fuzz findings (${summary}):\n${[...failures, ...uncaught, ...outOfRoot.map((x) => JSON.stringify(x)), ...escaped].join('\n')}\n`;
      process.stderr.write(report);
      if (process.env.TBDAV_FUZZ_REPORT) await writeFile(process.env.TBDAV_FUZZ_REPORT + ".summary", report);
    }
    assert.deepEqual(failures, [], `${failures.length} bad answers (${summary}):\n${failures.slice(0, 30).join('\n')}`);
    assert.deepEqual(uncaught, [], `uncaught errors logged (${summary})`);
    assert.deepEqual(outOfRoot.slice(0, 20), [], `API calls with paths outside ${appRoot} (${summary})`);
    assert.ok(sent.length > 50, `the spy saw the API traffic (${sent.length} paths)`);
    assert.deepEqual(escaped, [], `paths outside ${appRoot} on the drive (${summary})`);
    // The run did reach the storage: some fuzz PUTs landed inside the root.
    assert.ok(meta.nodes.some((n) => n.path.startsWith(appRoot + '/fz-')), `no fuzz PUT reached the drive (${summary})`);
  } finally {
    await s.close();
  }
});
