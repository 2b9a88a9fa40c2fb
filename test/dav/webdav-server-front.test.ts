/**
 * What webdav-server's executeRequest does when given a raw request (the installed version,
 * measured here on port 0), and the answers of our bridge, which hosts it (src/dav/host.ts), to
 * the same requests. These are the behaviours host.ts has to keep away from clients
 * (docs/architecture.md, "How dav/ uses webdav-server"); if an upgrade changes them, revisit host.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { v2 } from 'webdav-server';
import { startHarness } from './harness.js';

function basic(user: string, pass: string): string {
  return 'Basic ' + Buffer.from(`${user}:${pass}`, 'utf8').toString('base64');
}

/** One raw request (undici would normalise the target); the head of the answer, or 'none' after 2 s. */
function rawHead(port: number, requestLine: string, extra = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(`${requestLine}\r\nHost: 127.0.0.1:${port}\r\n${extra}Connection: close\r\n\r\n`));
    let data = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve('none');
    }, 2000);
    s.on('data', (d) => (data += d.toString('latin1')));
    s.on('end', () => {
      clearTimeout(timer);
      resolve(data.split('\r\n\r\n')[0]!);
    });
    s.on('error', reject);
  });
}

test('webdav-server 2.6.3 executeRequest: throws on a bad escape, bare 403 + CORS for "..", CORS, Server and a Digest challenge on every answer', async () => {
  const dav = new v2.WebDAVServer({ version: 'x' });
  const thrown: string[] = [];
  const server = http.createServer((req, res) => {
    try {
      dav.executeRequest(req, res);
    } catch (err) {
      thrown.push((err as Error).name);
      res.statusCode = 599; // marks "the library threw"; without this catch the request hangs
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    assert.match(await rawHead(port, 'GET /bad%zz HTTP/1.1'), /^HTTP\/1\.1 599/);
    assert.deepEqual(thrown, ['URIError']);
    const up = await rawHead(port, 'GET /../x HTTP/1.1');
    assert.match(up, /^HTTP\/1\.1 403/);
    assert.match(up, /Access-Control-Allow-Origin: \*/);
    const options = await rawHead(port, 'OPTIONS / HTTP/1.1');
    assert.match(options, /Access-Control-Allow-Credentials: true/);
    assert.match(options, /Server: webdav-server\/x/);
    assert.match(options, /WWW-Authenticate: Digest/);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('our bridge answers the same requests with 400, and never sends CORS, Server or Digest headers', async () => {
  const h = await startHarness({ users: [{ username: 'bob', password: 'pw' }], realm: 'r' });
  try {
    const auth = `Authorization: ${basic('bob', 'pw')}\r\n`;
    for (const line of ['GET /bad%zz HTTP/1.1', 'GET /../x HTTP/1.1']) {
      assert.match(await rawHead(h.bridge.port, line, auth), /^HTTP\/1\.1 400/, line);
    }
    const answers = [
      await rawHead(h.bridge.port, 'OPTIONS / HTTP/1.1', auth),
      await rawHead(h.bridge.port, 'PROPFIND / HTTP/1.1', `${auth}Depth: 0\r\n`),
      await rawHead(h.bridge.port, 'GET / HTTP/1.1'),
      await rawHead(h.bridge.port, 'POST / HTTP/1.1', auth),
    ];
    assert.deepEqual(
      answers.map((a) => a.split('\r\n')[0]),
      ['HTTP/1.1 200 OK', 'HTTP/1.1 207 Multi-Status', 'HTTP/1.1 401 Unauthorized', 'HTTP/1.1 405 Method Not Allowed'],
    );
    for (const a of answers) {
      assert.doesNotMatch(a, /^(Access-Control-|Server:)/im);
      assert.doesNotMatch(a, /Digest/);
    }
    assert.match(answers[2]!, /WWW-Authenticate: Basic realm="r"/);
  } finally {
    await h.close();
  }
});
