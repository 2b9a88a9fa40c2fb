/**
 * `terabox-dav emulator --variant NAME`: a tester acts out a service variant (VARIANT_PRESETS) from
 * the CLI. The preset reaches the emulator (checked on the wire: tokeninfo without upload_domain and
 * list's array under `info` for spec-examples; the same drive restarted without --variant answers
 * as the default), and an unknown preset is a usage error listing every preset. `--token-ttl`
 * sets the access token's life; a refresh token presented twice is reported when it stops; the
 * banner's authorization code serves `login --code` once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMULATOR_CREDENTIALS, VARIANT_PRESETS } from '../../src/emulator/index.js';
import { cleanEnv, repoRoot, runCli, startCli } from '../helpers/cli.js';

interface Printed {
  authUrl: string;
  apiDomain: string;
  root: string;
  out: string;
}

function printed(out: string): Printed {
  const cfgLine = out.split('\n').find((l) => l.startsWith('{"terabox"'));
  assert.ok(cfgLine, out);
  const cfg = JSON.parse(cfgLine) as { terabox: { authUrl: string; root: string } };
  const api = out.match(/api_domain:\s+(\S+)/);
  assert.ok(api, out);
  return { authUrl: cfg.terabox.authUrl, apiDomain: `http://${api[1]}`, root: cfg.terabox.root, out };
}

/** tokeninfo's data and the name of list's array, asked with the saved access token. */
async function wire(p: Printed, accessToken: string): Promise<{ tokenInfo: Record<string, unknown>; listArray: string[] }> {
  const form = new FormData();
  form.set('access_token', accessToken);
  const ti = (await (await fetch(`${p.authUrl}/oauth/tokeninfo`, { method: 'POST', body: form })).json()) as { errno?: number; data?: Record<string, unknown> };
  assert.ok(ti.data, JSON.stringify(ti));
  const q = new URLSearchParams({ dir: p.root, page: '1', num: '10', access_tokens: accessToken });
  const list = (await (await fetch(`${p.apiDomain}/openapi/api/list?${q}`)).json()) as Record<string, unknown>;
  assert.equal(list.errno, 0, JSON.stringify(list));
  return { tokenInfo: ti.data, listArray: ['list', 'info'].filter((k) => Array.isArray(list[k])) };
}

/** POST /oauth/refreshtoken with the emulator's credentials (signed as spec 1.4.2 says). */
async function refresh(p: Printed, token: string): Promise<void> {
  const c = EMULATOR_CREDENTIALS;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const form = new FormData();
  form.set('client_id', c.clientId);
  form.set('client_secret', c.clientSecret);
  form.set('refresh_token', token);
  form.set('timestamp', timestamp);
  form.set('sign', createHash('md5').update(`${c.clientId}_${timestamp}_${c.clientSecret}_${c.privateSecret}`).digest('hex'));
  await (await fetch(`${p.authUrl}/oauth/refreshtoken`, { method: 'POST', body: form })).arrayBuffer();
}

test('emulator --variant spec-examples: the preset is on the wire; without --variant the same drive answers as the default', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-cli-emu-variant-'));
  const env = cleanEnv(dir);
  const drive = join(dir, 'drive');
  const file = join(dir, 'config.json');
  try {
    const emu = startCli(['emulator', '--data-dir', drive, '--variant', 'spec-examples', '--token-ttl', '3600'], { env });
    let accessToken = '';
    let refreshToken = '';
    try {
      await emu.waitFor(/Press Ctrl-C to stop\.\n/);
      const p = printed(emu.stdout());
      assert.match(p.out, /variant:\s+spec-examples \(md5Form examples, uploadDomain absent, listArray info\)\n/);
      const cfg = JSON.parse(p.out.split('\n').find((l) => l.startsWith('{"terabox"'))!) as Record<string, unknown>;
      await writeFile(file, JSON.stringify({ ...cfg, stateDir: join(dir, 'state'), cacheDir: join(dir, 'cache') }));
      // The banner hands out an authorization code: login --code works with it once.
      const code = p.out.match(/login code:\s+terabox-dav login --code=(\S+) \(single use, 5 min\)\n/);
      assert.ok(code, p.out);
      let r = await runCli(['login', '--config', file, `--code=${code[1]!}`], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.endsWith(`Now run: terabox-dav serve --config ${file}\n`), r.stdout);
      r = await runCli(['login', '--config', file, `--code=${code[1]!}`], { env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^terabox-dav: gettoken: invalid or expired code \(errno 100002\)\n$/);
      const saved = JSON.parse(await readFile(join(dir, 'state', 'tokens.json'), 'utf8')) as { accessToken: string; refreshToken: string; expiresAt: number };
      accessToken = saved.accessToken;
      refreshToken = saved.refreshToken;
      // --token-ttl 3600: the access token lives an hour, not the default two days.
      assert.match(p.out, /token ttl:\s+3600 s/);
      const life = (saved.expiresAt - Date.now()) / 1000;
      assert.ok(life > 3000 && life <= 3600, `access token life ${life} s`);
      const w = await wire(p, accessToken);
      assert.equal('upload_domain' in w.tokenInfo, false, 'spec-examples: tokeninfo names no upload_domain');
      assert.ok(w.tokenInfo.api_domain);
      assert.deepEqual(w.listArray, ['info'], 'spec-examples: list answers its array under info');
      // The client copes with it: whoami through the CLI.
      const who = await runCli(['whoami', '--config', file], { env });
      assert.equal(who.code, 0, who.stderr);
    } finally {
      assert.equal((await emu.stop('SIGINT')).code, 0);
    }

    // The same drive (and its saved session) without --variant: the default answers.
    const plain = startCli(['emulator', '--data-dir', drive], { env });
    try {
      await plain.waitFor(/Press Ctrl-C to stop\.\n/);
      const p = printed(plain.stdout());
      assert.doesNotMatch(p.out, /variant:/);
      const w = await wire(p, accessToken);
      assert.equal(typeof w.tokenInfo.upload_domain, 'string', 'default: tokeninfo names upload_domain');
      assert.deepEqual(w.listArray, ['list']);
      // A refresh token presented twice (what a client must never do) is counted and said at stop.
      for (let i = 0; i < 2; i++) await refresh(p, refreshToken);
    } finally {
      const end = await plain.stop('SIGINT');
      assert.equal(end.code, 0, end.stderr);
      assert.match(end.stdout, /\nRefresh tokens presented again after they were spent: 1 \(/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('emulator --variant with an unknown or missing preset (one line listing the presets), --token-ttl 0: exit 2, nothing started', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-cli-emu-variant-bad-'));
  try {
    const env = cleanEnv(dir);
    const names = Object.keys(VARIANT_PRESETS);
    assert.ok(names.includes('spec-examples') && names.includes('revoke-family'));
    let r = await runCli(['emulator', '--data-dir', join(dir, 'drive'), '--variant', 'spec-exmaples'], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `terabox-dav: emulator --variant spec-exmaples: unknown preset; one of ${names.join(', ')}\n`);
    r = await runCli(['emulator', '--data-dir', join(dir, 'drive'), '--token-ttl', '0'], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, 'terabox-dav: emulator --token-ttl 0: must be a whole number of seconds, at least 1\n');
    r = await runCli(['emulator', '--data-dir', join(dir, 'drive'), '--variant'], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `terabox-dav: emulator --variant: give one preset, one of ${names.join(', ')}\n`);
    // The README names every preset a tester can give.
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
    for (const name of names) assert.ok(readme.includes(`\`${name}\``), `README does not name the preset ${name}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
