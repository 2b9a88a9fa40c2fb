/**
 * Locks survive a restart of the bridge when it keeps them in a state file (BridgeOptions.lockStateFile,
 * src/dav/locks-persist.ts): a client that holds a token keeps writing, others still meet 423,
 * UNLOCK after the restart works, and an expired lock does not come back.
 * Bridge over Vfs over MemoryRemote (the same remote and state dirs across the restart).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBridge, type Bridge } from '../../src/dav/server.js';
import { Vfs } from '../../src/vfs/vfs.js';
import { MemoryRemote } from '../../src/remote/memory.js';

test('a lock token taken before a restart still unlocks writes after it; others still get 423', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-lockrestart-'));
  const remote = new MemoryRemote();
  const lockStateFile = join(dir, 'state', 'locks.json');
  let vfs: Vfs | undefined;
  let bridge: Bridge | undefined;
  const start = async (): Promise<Bridge> => {
    vfs = await Vfs.open({ remote, stateDir: join(dir, 'state'), cacheDir: join(dir, 'cache') });
    bridge = await startBridge({ fs: vfs, port: 0, lockStateFile });
    return bridge;
  };
  const stop = async (): Promise<void> => {
    await bridge?.close({ drainMs: 1000 });
    await vfs?.close();
    bridge = undefined;
    vfs = undefined;
  };
  const call = async (b: Bridge, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Response> =>
    fetch(b.url + path, { method, headers, body });
  const status = async (b: Bridge, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<number> => {
    const r = await call(b, method, path, headers, body);
    await r.arrayBuffer();
    return r.status;
  };
  const lockinfo = '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>restart</D:owner></D:lockinfo>';
  try {
    let b = await start();
    assert.equal(await status(b, 'PUT', '/kept.txt', {}, 'v1'), 201);
    const lock = await call(b, 'LOCK', '/kept.txt', { timeout: 'Second-3600', 'content-type': 'application/xml' }, lockinfo);
    await lock.text();
    assert.equal(lock.status, 200);
    const token = (lock.headers.get('lock-token') ?? '').replace(/^<|>$/g, '');
    const short = await call(b, 'LOCK', '/short.txt', { timeout: 'Second-1', 'content-type': 'application/xml' }, lockinfo);
    await short.text();
    assert.equal(short.status, 201);
    await stop();
    assert.ok((await readFile(lockStateFile, 'utf8')).includes(token), 'the token is in the state file');

    await new Promise((r) => setTimeout(r, 1500)); // the 1-second lock expires while the bridge is down
    b = await start();
    assert.equal(await status(b, 'PUT', '/kept.txt', {}, 'intruder'), 423, 'still locked after the restart');
    assert.equal(await status(b, 'PUT', '/kept.txt', { if: `(<${token}>)` }, 'v2'), 204, 'the token still works');
    const pf = await (await call(b, 'PROPFIND', '/kept.txt', { depth: '0' }, '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>')).text();
    assert.ok(pf.includes(token) && pf.includes('restart'), 'lockdiscovery with token and owner after the restart');
    assert.equal(await status(b, 'PUT', '/short.txt', {}, 'free'), 204, 'the expired lock did not come back');
    assert.equal(await status(b, 'UNLOCK', '/kept.txt', { 'lock-token': `<${token}>` }), 204);
    await stop();

    b = await start();
    assert.equal(await status(b, 'PUT', '/kept.txt', {}, 'v3'), 204, 'UNLOCK was persisted too');
    assert.equal(await (await call(b, 'GET', '/kept.txt')).text(), 'v3');
  } finally {
    await stop();
    await rm(dir, { recursive: true, force: true });
  }
});
