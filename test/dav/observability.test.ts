import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { captureLogger } from '../helpers/logs.js';
import type { CallOptions } from '../../src/remote/types.js';
import { startHarness } from './harness.js';

test('each request is logged at info with method, path, status, bytes, ms, request id; secrets redacted', async () => {
  // info: the level serve logs at by default (a request's line is at info)
  const { logger, lines, records: parsed } = captureLogger('json', 'info');
  const h = await startHarness({ logger });
  try {
    await h.req('PUT', '/a.txt', { body: 'hello', headers: { 'X-Request-Id': 'req-42' } });
    await h.req('GET', '/a.txt?access_token=supersecretvalue123');
    await new Promise((r) => setTimeout(r, 50));
    const records = parsed();
    const put = records.find((r) => r['requestId'] === 'req-42');
    assert.ok(put, 'PUT logged with the given request id');
    assert.equal(put['level'], 'info');
    assert.match(String(put['message']), /^PUT \/a\.txt: 201/);
    assert.equal(put['status'], 201);
    assert.equal(typeof put['ms'], 'number');
    assert.ok(Number(put['bytesIn']) >= 5);
    const get = records.find((r) => String(r['message']).startsWith('GET '));
    assert.ok(get);
    assert.ok(Number(get['bytesOut']) > 5);
    assert.ok(!lines.join('').includes('supersecretvalue123'), 'token redacted');
  } finally {
    await h.close();
  }
});

test('the request id reaches the FileSystem in CallOptions', async () => {
  const h = await startHarness();
  try {
    const seen: (string | undefined)[] = [];
    const orig = h.vfs.stat.bind(h.vfs);
    h.vfs.stat = (path: string, opts?: CallOptions) => {
      seen.push(opts?.requestId);
      return orig(path, opts);
    };
    await h.req('PROPFIND', '/', { headers: { Depth: '0', 'X-Request-Id': 'trace-7' } });
    assert.ok(seen.includes('trace-7'), JSON.stringify(seen));
  } finally {
    await h.close();
  }
});

test('TLS: https with PEM file paths', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-tls-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
    ]);
    const h = await startHarness({ tls: { cert, key: await readFile(key, 'utf8') } });
    try {
      assert.match(h.url, /^https:\/\//);
      const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
      const r = await request(h.url + '/', { method: 'OPTIONS', dispatcher });
      await r.body.dump();
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['dav'], '1, 2');
      await dispatcher.close();
    } finally {
      await h.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
