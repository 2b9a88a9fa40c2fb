/**
 * The client over the emulator acting out each service variant where the spec is silent (issue 9;
 * src/emulator/variants.ts): tokeninfo without upload_domain, the list array under `info`, list
 * pages shorter than asked (and the paging learned once), upload sessions forgotten mid-upload with
 * errno 2, md5s in every form and by either rule, and token errnos on any endpoint (through the
 * answer proxy). Each test names the variant it needs; none depends on TBDAV_EMULATOR_VARIANT.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator, type EmulatorHandle, type ServiceVariant } from '../../src/emulator/index.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';
import { FileTokenStore, tokenFilePath } from '../../src/terabox/auth/token-store.js';
import { TeraboxClient, type FileRange } from '../../src/terabox/client.js';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import type { CallOptions } from '../../src/remote/types.js';
import type { Superfile2Response } from '../../src/terabox/api/types.js';
import { serviceMd5 } from '../../src/terabox/shards.js';
import { startAnswerProxy } from './answer-proxy.js';
import { captureLogger } from '../helpers/logs.js';
import { makeSpool, readAll } from './setup.js';

const MiB = 1024 * 1024;
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface VRig {
  dir: string;
  emu: EmulatorHandle;
  client: TeraboxClient;
  remote: TeraboxRemote;
  root: string;
  logs: string[];
  stateDir: string;
  count(path: string): number;
  close(): Promise<void>;
}

async function withVariant(variant: Partial<ServiceVariant>, fn: (r: VRig) => Promise<void>, Ctor: typeof TeraboxClient = TeraboxClient): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-variant-'));
  dirs.push(dir);
  const emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emu'), variant }));
  const { logger, logs } = captureLogger('json');
  const stateDir = join(dir, 'state');
  const client = new Ctor({ authUrl: emu.authUrl, ...emu.credentials, tokenStore: new FileTokenStore(stateDir), logger, callsPerSecond: 1000, concurrency: 8, retryBaseMs: 5, retryMaxMs: 50 });
  try {
    await client.exchangeCode(emu.issueAuthorizationCode());
    const root = `${emu.appRoot}/v`;
    await client.createDir(root);
    const remote = new TeraboxRemote(client, { root, logger });
    await fn({ dir, emu, client, remote, root, logs, stateDir, count: (p) => emu.counters.requests[p] ?? 0, close: () => client.close() });
  } finally {
    await client.close();
    await emu.close();
  }
}

test('tokeninfo without upload_domain (the spec example): shards go to api_domain, no undefined domain is cached', async () => {
  await withVariant({ uploadDomain: 'absent' }, async (r) => {
    const f = await makeSpool(r.dir, 'u.bin', 9 * MiB);
    await r.remote.write('/u.bin', f, { overwrite: false });
    assert.deepEqual(await readAll(await r.remote.openRead('/u.bin')), f.data);
    const saved = JSON.parse(await readFile(tokenFilePath(r.stateDir), 'utf8'));
    assert.equal(saved.domains.apiDomain, r.emu.apiDomain);
    assert.equal(saved.domains.uploadDomain, r.emu.apiDomain, 'api_domain stands in for upload_domain');
    assert.ok(!JSON.stringify(saved).includes('undefined'));
    assert.equal(r.count('/rest/2.0/pcs/superfile2'), 3);
  });
});

test('a token file saved without uploadDomain (older clients) still uploads', async () => {
  await withVariant({ uploadDomain: 'absent' }, async (r) => {
    const file = tokenFilePath(r.stateDir);
    const saved = JSON.parse(await readFile(file, 'utf8'));
    await r.client.quota(); // domains fetched and saved
    const withDomains = JSON.parse(await readFile(file, 'utf8'));
    delete withDomains.domains.uploadDomain;
    await writeFile(file, JSON.stringify(withDomains));
    const c2 = new TeraboxClient({ authUrl: r.emu.authUrl, ...r.emu.credentials, tokenStore: new FileTokenStore(r.stateDir) });
    try {
      const w = await new TeraboxRemote(c2, { root: r.root }).write('/old.bin', await makeSpool(r.dir, 'old.bin', 10), { overwrite: false });
      assert.equal(w.entry.size, 10);
    } finally {
      await c2.close();
    }
    assert.ok(saved.accessToken);
  });
});

test("the list array under 'info' (the spec's table): folders list in full", async () => {
  await withVariant({ listArray: 'info' }, async (r) => {
    for (const n of ['a', 'b', 'c']) await r.remote.mkdir(`/${n}`);
    await r.remote.write('/f.txt', await makeSpool(r.dir, 'f.txt', 3), { overwrite: false });
    assert.deepEqual((await r.remote.list('/')).map((e) => e.name), ['a', 'b', 'c', 'f.txt']);
  });
});

test('list pages shorter than asked before the end: nothing lost, the paging learned once', async () => {
  await withVariant({ listPageShort: true }, async (r) => {
    for (let i = 0; i < 25; i++) await r.client.createDir(`${r.root}/big/d${String(i).padStart(2, '0')}`);
    const all = await r.client.listAll(`${r.root}/big`, { num: 10 });
    assert.equal(all.length, 25, 'pages of 9 when 10 were asked: every entry still listed');
    assert.equal(r.client.listPaging, 'short');
    assert.equal(new Set(all.map((e) => e.server_filename)).size, 25);
  });
});

test('a service that fills its pages: one probe the first time, then one list call per small folder', async () => {
  await withVariant({}, async (r) => {
    for (let i = 0; i < 25; i++) await r.client.createDir(`${r.root}/big/d${String(i).padStart(2, '0')}`);
    for (let i = 0; i < 3; i++) await r.client.createDir(`${r.root}/small/s${i}`);
    const l0 = r.count('/openapi/api/list');
    assert.equal((await r.client.listAll(`${r.root}/big`, { num: 10 })).length, 25);
    assert.equal(r.count('/openapi/api/list') - l0, 4, 'pages 10, 10, 5, then the probe (empty)');
    assert.equal(r.client.listPaging, 'fills');
    assert.equal(r.logs.filter((l) => /this service fills its pages/.test(l)).length, 1);
    const l1 = r.count('/openapi/api/list');
    assert.equal((await r.client.listAll(`${r.root}/small`, { num: 10 })).length, 3);
    assert.equal((await r.client.listAll(`${r.root}/big`, { num: 10 })).length, 25);
    assert.equal(r.count('/openapi/api/list') - l1, 1 + 3, 'no probe any more');
  });
});

test('upload sessions expired mid-upload, refused with errno 2: a fresh session, the file lands intact', async () => {
  let emuRef: EmulatorHandle | undefined;
  let expired = false;
  class Expiring extends TeraboxClient {
    override async superfile2(path: string, uploadid: string, partseq: number, file: FileRange, opts?: CallOptions): Promise<Superfile2Response> {
      const res = await super.superfile2(path, uploadid, partseq, file, opts);
      if (!expired && partseq === 0) {
        expired = true;
        emuRef!.expireUploadSessions(); // the service forgets every open session after shard 0
      }
      return res;
    }
  }
  await withVariant(
    { sessionGoneErrno: 2 },
    async (r) => {
      emuRef = r.emu;
      const remote = new TeraboxRemote(r.client, { root: r.root, uploadConcurrency: 1 });
      const f = await makeSpool(r.dir, 'exp.bin', 13 * MiB);
      const pre0 = r.count('/openapi/api/precreate');
      const w = await remote.write('/exp.bin', f, { overwrite: false });
      assert.ok(expired);
      assert.equal(w.entry.size, f.size);
      assert.equal(r.count('/openapi/api/precreate') - pre0, 2, 'one fresh session');
      assert.deepEqual(await readAll(await remote.openRead('/exp.bin')), f.data);
      assert.ok(r.logs.some((l) => /forgot upload session 1 \(superfile2 errno 2\)/.test(l)));
    },
    Expiring,
  );
});

for (const variant of [{ md5Form: 'examples' }, { md5Form: 'obfuscated' }, { md5Rule: 'content' }, { md5Rule: 'content', md5Form: 'obfuscated' }] as Partial<ServiceVariant>[]) {
  test(`md5 variant ${JSON.stringify(variant)}: PUT, rapid PUT, list and stat agree on one hash`, async () => {
    await withVariant(variant, async (r) => {
      const f = await makeSpool(r.dir, 'm.bin', 9 * MiB);
      const w = await r.remote.write('/m.bin', f, { overwrite: false });
      const want = variant.md5Rule === 'content' ? f.contentMd5 : serviceMd5(f.blockMd5s);
      assert.equal(w.entry.hash, want);
      assert.equal(r.remote.fileMd5Rule, variant.md5Rule === 'content' ? 'content' : 'blocklist');
      const rapid = await r.remote.write('/m2.bin', f, { overwrite: false });
      assert.equal(rapid.rapid, true);
      assert.equal(rapid.entry.hash, want);
      assert.deepEqual((await r.remote.list('/')).map((e) => e.hash), [want, want]);
      assert.equal((await r.remote.stat('/m.bin')).hash, want);
      const found = await r.client.search('m', { dir: r.root });
      assert.deepEqual(found.list.map((e) => e.md5), [want, want]);
      assert.equal(r.logs.filter((l) => /"level":"warn"/.test(l) && /md5/.test(l)).length, 0, 'no md5 warning');
    });
  });
}

test('token errnos (-6, 111, 200002, 200003) on any endpoint: one refresh, the call repeated', async () => {
  await withVariant({}, async (r) => {
    const proxy = await startAnswerProxy(r.emu);
    const client = new TeraboxClient({ authUrl: proxy.url, ...r.emu.credentials, tokenStore: new FileTokenStore(join(r.dir, 'px')), callsPerSecond: 1000, retryBaseMs: 5, retryMaxMs: 50 });
    try {
      await client.exchangeCode(r.emu.issueAuthorizationCode());
      const remote = new TeraboxRemote(client, { root: r.root });
      const ops: [string, () => Promise<unknown>][] = [
        ['/openapi/api/quota', () => client.quota()],
        ['/openapi/api/list', () => remote.list('/')],
        ['/openapi/api/filemetas', () => remote.stat('/')],
        ['/openapi/api/precreate', () => remote.write('/t-pre.bin', f1(), { overwrite: true })],
        ['/rest/2.0/pcs/superfile2', () => remote.write('/t-sf2.bin', f1(), { overwrite: true })],
        ['/openapi/api/create', () => remote.write('/t-cr.bin', f1(), { overwrite: true })],
        ['/openapi/api/filemanager', () => remote.remove('/t-cr.bin')],
        ['/oauth/tokeninfo', async () => {
          // a process with the saved pair but no domains yet asks tokeninfo first
          const file = tokenFilePath(join(r.dir, 'px'));
          const saved = JSON.parse(await readFile(file, 'utf8'));
          delete saved.domains;
          await writeFile(file, JSON.stringify(saved));
          const fresh = new TeraboxClient({ authUrl: proxy.url, ...r.emu.credentials, tokenStore: new FileTokenStore(join(r.dir, 'px')) });
          try {
            await fresh.uinfo();
          } finally {
            await fresh.close();
          }
          await client.logout().then(() => client.exchangeCode(r.emu.issueAuthorizationCode())); // the fresh one refreshed: start over
        }],
      ];
      let k = 0;
      const spools: Awaited<ReturnType<typeof makeSpool>>[] = [];
      for (let i = 0; i < 12; i++) spools.push(await makeSpool(r.dir, `t${i}.bin`, 100 + i));
      const f1 = () => spools[k++ % spools.length]!;
      for (const errno of [-6, 111, 200002, 200003]) {
        for (const [path, op] of ops) {
          let struck = false;
          proxy.hooks = {
            intercept(call) {
              if (struck || call.path !== path) return undefined;
              struck = true;
              return { json: path.startsWith('/oauth/') ? { errno, request_id: 1 } : path.includes('superfile2') ? { error_code: errno, errno, request_id: 1 } : { errno, request_id: 1 } };
            },
          };
          const rf0 = proxy.count('/oauth/refreshtoken');
          await op();
          assert.ok(struck, `${path} struck`);
          assert.ok(proxy.count('/oauth/refreshtoken') - rf0 >= 1, `errno ${errno} on ${path}: refreshed`);
        }
      }
      assert.equal(r.emu.counters.refreshTokenReuse, 0);
    } finally {
      proxy.hooks = {};
      await client.close();
      await proxy.close();
    }
  });
});
