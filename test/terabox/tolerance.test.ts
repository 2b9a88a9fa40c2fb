/**
 * The client tolerates every plausible answer where the spec is silent (issue 9), over the emulator
 * behind an answer-rewriting proxy (answer-proxy.ts) that acts out another service: md5s in the
 * obfuscated form, a multi-shard md5 by the content rule or by no known rule, a create whose size
 * differs, upload sessions refused with errno 2, a create (or rapid upload) answering another path,
 * and `filemanager` parameters where the spec puts them. Each test fails without its tolerance.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';
import { FileTokenStore } from '../../src/terabox/auth/token-store.js';
import { AUTH_REPEATS, TeraboxClient } from '../../src/terabox/client.js';
import { TeraboxRemote, SESSION_RESTARTS } from '../../src/terabox/remote.js';
import { serviceMd5 } from '../../src/terabox/shards.js';
import { startAnswerProxy, obfuscateMd5, type AnswerProxy } from './answer-proxy.js';
import { captureLogger } from '../helpers/logs.js';
import { makeSpool, readAll } from './setup.js';

const MiB = 1024 * 1024;
let dir: string;
let emu: EmulatorHandle;
let proxy: AnswerProxy;
let n = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tbdav-tolerance-'));
  emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emu') }));
  proxy = await startAnswerProxy(emu);
});
after(async () => {
  await proxy?.close();
  await emu?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A fresh client + remote (own root folder, own log) through the proxy. */
async function rig(): Promise<{ client: TeraboxClient; remote: TeraboxRemote; logs: string[]; root: string; close(): Promise<void> }> {
  const { logger, logs } = captureLogger('json');
  const client = new TeraboxClient({
    authUrl: proxy.url,
    ...emu.credentials,
    tokenStore: new FileTokenStore(join(dir, `state-${++n}`)),
    logger,
    callsPerSecond: 1000,
    concurrency: 8,
    retryBaseMs: 5,
    retryMaxMs: 50,
  });
  await client.exchangeCode(emu.issueAuthorizationCode());
  const root = `${emu.appRoot}/t${n}`;
  await client.createDir(root);
  const remote = new TeraboxRemote(client, { root, logger });
  return { client, remote, logs, root, close: () => client.close() };
}

function warnings(logs: string[], re: RegExp): number {
  return logs.filter((l) => /"level":"warn"/.test(l) && re.test(l)).length;
}

test('md5s in the obfuscated form (create, precreate rapid info, list, filemetas, search): PUTs succeed, one md5 and one hash whichever endpoint', async () => {
  const r = await rig();
  proxy.hooks = {
    answer(_call, json) {
      const ob = (o: any): void => {
        if (o && typeof o.md5 === 'string' && /^[0-9a-f]{32}$/.test(o.md5)) o.md5 = obfuscateMd5(o.md5);
      };
      ob(json);
      ob(json.info);
      for (const x of Array.isArray(json.list) ? json.list : []) ob(x);
      for (const x of Array.isArray(json.info) ? json.info : []) ob(x);
      return json;
    },
  };
  try {
    const one = await makeSpool(dir, 'ob1.bin', 1);
    const big = await makeSpool(dir, 'ob9.bin', 9 * MiB);
    const w1 = await r.remote.write('/one.bin', one, { overwrite: false });
    const w9 = await r.remote.write('/nine.bin', big, { overwrite: false });
    assert.equal(w1.entry.hash, one.contentMd5);
    assert.equal(w9.entry.hash, serviceMd5(big.blockMd5s));
    // rapid upload of the same content: precreate's info carries the md5
    const again = await r.remote.write('/nine-again.bin', big, { overwrite: false });
    assert.equal(again.rapid, true);
    assert.equal(again.entry.hash, w9.entry.hash);
    const listed = await r.remote.list('/');
    assert.deepEqual(
      listed.map((e) => [e.name, e.hash]),
      [
        ['nine-again.bin', w9.entry.hash],
        ['nine.bin', w9.entry.hash],
        ['one.bin', one.contentMd5],
      ],
    );
    assert.equal((await r.remote.stat('/nine.bin')).hash, w9.entry.hash);
    const found = await r.client.search('nine', { dir: r.root });
    assert.ok(found.list.length >= 2 && found.list.every((f) => f.md5 === w9.entry.hash), 'search md5 decoded');
    assert.deepEqual(await readAll(await r.remote.openRead('/nine.bin')), big.data);
  } finally {
    proxy.hooks = {};
    await r.close();
  }
});

test('multi-shard md5 by the content rule: accepted, the rule learned and logged once', async () => {
  const r = await rig();
  const a = await makeSpool(dir, 'c1.bin', 5 * MiB);
  const b = await makeSpool(dir, 'c2.bin', 5 * MiB);
  const contentOf = new Map([serviceMd5(a.blockMd5s), serviceMd5(b.blockMd5s)].map((k, i) => [k, [a, b][i]!.contentMd5]));
  proxy.hooks = {
    answer(call, json) {
      if (call.path === '/openapi/api/create' && contentOf.has(json.md5)) json.md5 = contentOf.get(json.md5);
      return json;
    },
  };
  try {
    assert.equal(r.remote.fileMd5Rule, undefined);
    const w = await r.remote.write('/c1.bin', a, { overwrite: false });
    assert.equal(w.entry.hash, a.contentMd5, 'recorded as the service reports it');
    assert.equal(r.remote.fileMd5Rule, 'content');
    await r.remote.write('/c2.bin', b, { overwrite: false });
    assert.equal(r.logs.filter((l) => /md5 of a multi-shard file as its content md5/.test(l)).length, 1, 'logged once');
    assert.equal(warnings(r.logs, /md5/), 0);
  } finally {
    proxy.hooks = {};
    await r.close();
  }
});

test('the block-list rule is learned from the emulator as it is', async () => {
  const r = await rig();
  try {
    await r.remote.write('/b.bin', await makeSpool(dir, 'b.bin', 5 * MiB), { overwrite: false });
    assert.equal(r.remote.fileMd5Rule, 'blocklist');
  } finally {
    await r.close();
  }
});

test('a file md5 by an unknown rule (or in an unknown form) never refuses the file: recorded, warned once', async () => {
  const r = await rig();
  const odd = ['0123456789abcdef0123456789abcdef', 'not-an-md5-at-all'];
  let i = 0;
  proxy.hooks = {
    answer(call, json) {
      if (call.path === '/openapi/api/create' && json.errno === 0) json.md5 = odd[i++ % odd.length];
      return json;
    },
  };
  try {
    const w1 = await r.remote.write('/u1.bin', await makeSpool(dir, 'u1.bin', 5 * MiB), { overwrite: false });
    const w2 = await r.remote.write('/u2.bin', await makeSpool(dir, 'u2.bin', 100), { overwrite: false });
    assert.equal(w1.entry.hash, odd[0]);
    assert.equal(w2.entry.hash, odd[1]);
    assert.equal(warnings(r.logs, /neither the content md5/), 1, 'warned once');
    assert.equal(r.remote.fileMd5Rule, undefined, 'nothing learned from an unknown rule');
  } finally {
    proxy.hooks = {};
    await r.close();
  }
});

test('a create answering another size is refused (TBDAV_INTEGRITY) and the file removed', async () => {
  const r = await rig();
  proxy.hooks = {
    answer(call, json) {
      if (call.path === '/openapi/api/create' && json.errno === 0) json.size = Number(json.size) + 1;
      return json;
    },
  };
  try {
    await assert.rejects(r.remote.write('/sz.bin', await makeSpool(dir, 'sz.bin', 1000), { overwrite: false }), { code: 'TBDAV_INTEGRITY' });
  } finally {
    proxy.hooks = {};
  }
  try {
    await assert.rejects(r.remote.stat('/sz.bin'), { code: 'TBDAV_NOT_FOUND' });
  } finally {
    await r.close();
  }
});

test('an upload session refused with errno 2 (not one of 31190/31363/31355/31023): a fresh session, bounded', async () => {
  const r = await rig();
  const refused = new Set<string>();
  let refuseFirst = 1; // how many distinct upload ids to refuse
  proxy.hooks = {
    intercept(call) {
      if (call.path !== '/rest/2.0/pcs/superfile2') return undefined;
      const id = call.query.get('uploadid') ?? '';
      if (refused.has(id) || refused.size < refuseFirst) {
        refused.add(id);
        return { json: { errno: 2, error_code: 2, error_msg: 'invalid uploadid', request_id: 1 } };
      }
      return undefined;
    },
  };
  try {
    const f = await makeSpool(dir, 'gone.bin', 9 * MiB);
    const pre0 = proxy.count('/openapi/api/precreate');
    const w = await r.remote.write('/gone.bin', f, { overwrite: false });
    assert.equal(w.entry.size, f.size);
    assert.equal(proxy.count('/openapi/api/precreate') - pre0, 2, 'one fresh session');
    assert.deepEqual(await readAll(await r.remote.openRead('/gone.bin')), f.data);

    // every session refused: 1 + SESSION_RESTARTS sessions, then a clear retryable error
    refuseFirst = Infinity;
    const g = await makeSpool(dir, 'gone2.bin', 5 * MiB);
    const pre1 = proxy.count('/openapi/api/precreate');
    await assert.rejects(r.remote.write('/gone2.bin', g, { overwrite: false }), (e: any) => {
      assert.equal(e.code, 'TBDAV_RETRYABLE');
      assert.match(e.message, /refused 3 fresh upload sessions in a row.*errno 2/);
      return true;
    });
    assert.equal(proxy.count('/openapi/api/precreate') - pre1, 1 + SESSION_RESTARTS);

    // not about the session: quota (-10) at create is not retried with fresh sessions
    refuseFirst = 0;
    refused.clear();
    proxy.hooks.answer = (call, json) => (call.path === '/openapi/api/create' ? { errno: -10, request_id: 2 } : json);
    const pre2 = proxy.count('/openapi/api/precreate');
    await assert.rejects(r.remote.write('/q.bin', await makeSpool(dir, 'q.bin', 10), { overwrite: false }), { code: 'TBDAV_QUOTA' });
    assert.equal(proxy.count('/openapi/api/precreate') - pre2, 1);
  } finally {
    proxy.hooks = {};
    await r.close();
  }
});

test('a create that answers another path (rtype not honoured): moved into place, never reported at the asked path while elsewhere', async () => {
  const r = await rig();
  // a service that takes rtype 1 (rename on conflict) whatever we send
  proxy.hooks = {
    intercept(call) {
      if ((call.path === '/openapi/api/create' || call.path === '/openapi/api/precreate') && call.form?.get('isdir') !== '1') call.form?.set('rtype', '1');
      return undefined;
    },
  };
  try {
    const old = await makeSpool(dir, 'p-old.bin', 100);
    const neu = await makeSpool(dir, 'p-new.bin', 200);
    await r.remote.write('/p.bin', old, { overwrite: false });
    const w = await r.remote.write('/p.bin', neu, { overwrite: true });
    assert.equal(w.entry.path, '/p.bin');
    assert.deepEqual((await r.remote.list('/')).map((e) => [e.name, e.size]), [['p.bin', 200]], 'one file, the new one, no renamed copy');
    assert.deepEqual(await readAll(await r.remote.openRead('/p.bin')), neu.data);
    assert.ok(proxy.calls.some((c) => c.path === '/openapi/api/create' && c.form?.get('rtype') === '1'));

    // rapid upload (the same content again) landing on a renamed path
    const rapid = await r.remote.write('/p.bin', neu, { overwrite: true });
    assert.equal(rapid.rapid, true);
    assert.deepEqual((await r.remote.list('/')).map((e) => [e.name, e.size]), [['p.bin', 200]]);
    assert.equal(rapid.entry.id, (await r.remote.stat('/p.bin')).id, 'the entry is the file at the path');

    // without overwrite, something appearing at the path meanwhile: EXISTS, and the renamed copy removed
    const racer = await makeSpool(dir, 'p-race.bin', 300);
    const other = await makeSpool(dir, 'p-other.bin', 50);
    proxy.hooks.answer = (call, json) => json;
    let raced = false;
    const orig = proxy.hooks.intercept!;
    proxy.hooks.intercept = async (call) => {
      if (call.path === '/openapi/api/create' && call.form?.get('isdir') !== '1' && !raced) {
        raced = true;
        // someone else writes /race.bin right before our create
        const c2 = new TeraboxClient({ authUrl: emu.authUrl, ...emu.credentials, tokenStore: new FileTokenStore(join(dir, 'racer')) });
        await c2.exchangeCode(emu.issueAuthorizationCode());
        await new TeraboxRemote(c2, { root: r.root }).write('/race.bin', other, { overwrite: false });
        await c2.close();
      }
      return orig(call);
    };
    await assert.rejects(r.remote.write('/race.bin', racer, { overwrite: false }), { code: 'TBDAV_EXISTS' });
    assert.deepEqual(
      (await r.remote.list('/')).map((e) => [e.name, e.size]),
      [
        ['p.bin', 200],
        ['race.bin', 50],
      ],
      "the other writer's file stays, our renamed copy is gone",
    );
  } finally {
    proxy.hooks = {};
    await r.close();
  }
});

test('a create answering its path in another convention: the file is found in place by fs_id, nothing moved', async () => {
  const r = await rig();
  proxy.hooks = {
    answer(call, json) {
      if (call.path === '/openapi/api/create' && typeof json.path === 'string' && json.isdir === 0) json.path = json.path.slice(emu.appRoot.length);
      return json;
    },
  };
  try {
    const f = await makeSpool(dir, 'conv.bin', 100);
    const fm0 = proxy.count('/openapi/api/filemanager');
    const w = await r.remote.write('/conv.bin', f, { overwrite: false });
    assert.equal(w.entry.size, 100);
    assert.equal(proxy.count('/openapi/api/filemanager') - fm0, 0, 'nothing moved or deleted');
    assert.deepEqual((await r.remote.list('/')).map((e) => e.name), ['conv.bin']);
  } finally {
    proxy.hooks = {};
    await r.close();
  }
});

test('filemanager: opera and async in the query, only filelist in the body (spec 3.4.4)', async () => {
  const r = await rig();
  try {
    await r.remote.write('/fm.bin', await makeSpool(dir, 'fm.bin', 10), { overwrite: false });
    await r.remote.move!('/fm.bin', '/fm2.bin', { overwrite: false });
    await r.remote.remove('/fm2.bin');
    const fms = proxy.calls.filter((c) => c.path === '/openapi/api/filemanager');
    assert.ok(fms.length >= 2);
    for (const c of fms) {
      assert.ok(c.query.get('opera'), 'opera in the query');
      assert.match(c.query.get('async') ?? '', /^[012]$/, 'async in the query');
      assert.deepEqual([...c.form!.keys()], ['filelist'], 'only filelist in the body');
    }
  } finally {
    await r.close();
  }
});

test('random bytes through a service answering like every example at once still round-trip', async () => {
  const r = await rig();
  proxy.hooks = {
    answer(call, json) {
      if (call.path === '/openapi/api/create' && typeof json.md5 === 'string') json.md5 = obfuscateMd5(json.md5);
      return json;
    },
  };
  try {
    const data = randomBytes(4 * MiB + 17);
    const f = await makeSpool(dir, 'ex.bin', data.length, 4 * MiB, data);
    await r.remote.write('/ex.bin', f, { overwrite: false });
    assert.deepEqual(await readAll(await r.remote.openRead('/ex.bin')), data);
  } finally {
    proxy.hooks = {};
    await r.close();
  }
});

test("terabox.root '/': the paths sent are '/litmus', never '//litmus'", async () => {
  const r = await rig();
  try {
    const top = new TeraboxRemote(r.client, { root: '/' });
    const from = proxy.calls.length;
    // outside the app folder the service refuses (-7); what matters here is the path it was sent
    await top.list('/litmus').catch(() => undefined);
    await top.stat('/litmus/a.txt').catch(() => undefined);
    const sent = proxy.calls.slice(from).flatMap((c) => [c.query.get('dir'), c.query.get('target')]).filter((x): x is string => Boolean(x));
    assert.ok(sent.length >= 2, JSON.stringify(sent));
    assert.ok(sent.includes('/litmus'));
    assert.ok(sent.some((t) => t.includes('"/litmus/a.txt"')));
    for (const p of sent) assert.doesNotMatch(p, /\/\//, p);
  } finally {
    await r.close();
  }
});

test('a repeat refused for its fresh token too (busy machine, short tokens) refreshes again, while each refusal is of a newer token, at most AUTH_REPEATS times', async () => {
  const r = await rig();
  const refusedTokens: string[] = [];
  let refuse = 2;
  proxy.hooks.intercept = (call) => {
    if (call.path !== '/openapi/api/quota' || refuse === 0) return undefined;
    refuse--;
    refusedTokens.push(call.query.get('access_tokens') ?? '');
    return { json: { errno: 111, errmsg: 'access token expired' } };
  };
  try {
    const refreshes0 = proxy.count('/oauth/refreshtoken');
    const q = await r.client.quota();
    assert.equal(typeof q.total, 'number', 'the third attempt answered');
    assert.equal(proxy.count('/oauth/refreshtoken') - refreshes0, 2, 'one refresh per refusal');
    assert.equal(new Set(refusedTokens).size, 2, 'each refusal was of another token');

    // A service that refuses every token: bounded, the token error comes out.
    refuse = Infinity;
    const quotas0 = proxy.count('/openapi/api/quota');
    const refreshes1 = proxy.count('/oauth/refreshtoken');
    await assert.rejects(r.client.quota(), (err: unknown) => (err as { errno?: number }).errno === 111);
    assert.equal(proxy.count('/oauth/refreshtoken') - refreshes1, AUTH_REPEATS);
    assert.equal(proxy.count('/openapi/api/quota') - quotas0, AUTH_REPEATS + 1);
  } finally {
    proxy.hooks.intercept = undefined;
    await r.close();
  }
});
