/**
 * The status page in a real browser (issue 11): Debian chromium driven by playwright-core, headless,
 * JavaScript OFF (the page must work without it), Basic credentials as a browser sends them.
 *  - logged out: `serve` with TeraBox credentials and no saved login; the page shows the service's QR
 *    code (the image really decodes in the browser) and the share answers 503;
 *  - logged in: the quota bar and an upload in progress (write-back mode, a slow service).
 * Screenshots: test/artifacts/status-logged-{out,in}.png are committed; they are rewritten when
 * TBDAV_UPDATE_ARTIFACTS=1 (CI sets it). Otherwise they go to the test's temp dir: every run differs
 * (port, uptime, the QR code), and a rewrite on each `npm test` would leave every engineer's worktree
 * dirty.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { loadConfig } from '../../src/cli/config.js';
import { startStack } from '../../src/cli/stack.js';
import { startEmulator } from '../../src/emulator/index.js';
import { silentLogger } from '../../src/shared/logger.js';
import { withEnvVariant } from '../helpers/emulator-variant.js';
import { startTestStack } from '../helpers/stack.js';

const CHROMIUM = '/usr/bin/chromium';
const COMMITTED_ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const UPDATE_ARTIFACTS = process.env.TBDAV_UPDATE_ARTIFACTS === '1';
/** Where this run's screenshots go; checked to be PNGs either way. */
async function screenshotDir(tmp: string): Promise<string> {
  const dir = UPDATE_ARTIFACTS ? COMMITTED_ARTIFACTS : join(tmp, 'artifacts');
  await mkdir(dir, { recursive: true });
  return dir;
}
async function assertPng(file: string): Promise<void> {
  const head = (await readFile(file)).subarray(0, 8);
  assert.deepEqual([...head], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file} is a PNG`);
}
const SKIP = existsSync(CHROMIUM) ? false : 'Debian chromium is not installed (/usr/bin/chromium)';
const USER = { username: 'owner', password: 'browser pw' };

/** A fresh headless chromium profile, JavaScript off, with the share's Basic credentials. */
async function browser(dir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    javaScriptEnabled: false,
    httpCredentials: { username: USER.username, password: USER.password },
    viewport: { width: 1000, height: 1100 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

test('chromium: the logged-out status page shows the service\'s QR code', { skip: SKIP, timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-chromium-out-'));
  const emu = await startEmulator(withEnvVariant({ dataDir: join(dir, 'emulator'), deviceCodeInterval: 1, autoApproveAfterPolls: 1_000_000 }));
  const config = loadConfig({
    env: {},
    home: dir,
    cwd: dir,
    flags: { 'server.port': 0, stateDir: join(dir, 'state'), cacheDir: join(dir, 'cache'), 'terabox.authUrl': emu.authUrl, 'terabox.root': emu.appRoot, ...prefixed(emu.credentials) },
  });
  config.server.users = [USER];
  const stack = await startStack(config, { logger: silentLogger() });
  let ctx: BrowserContext | undefined;
  try {
    assert.equal(stack.monitor.share().state, 'login');
    const share = await fetch(`${stack.url}/`, { method: 'PROPFIND', headers: { authorization: basicOf(), depth: '0' } });
    assert.equal(share.status, 503);
    ctx = await browser(dir);
    const page = await ctx.newPage();
    // The first look asks the service for a code; the page refreshes itself (meta refresh) until it shows.
    let shown = false;
    for (let i = 0; i < 40 && !shown; i++) {
      const res = await page.goto(`${stack.url}/.terabox-dav/`);
      assert.equal(res?.status(), 200);
      shown = (await page.locator('#login-qr').count()) > 0;
      if (!shown) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(shown, 'the QR code appears');
    assert.match(await page.locator('header').innerText(), /not logged in/);
    assert.match(await page.locator('main').innerText(), /Scan this QR code with the TeraBox app/);
    const qr = page.locator('#login-qr');
    await qr.waitFor({ state: 'visible' });
    const size = await qr.evaluate((el) => {
      const img = el as unknown as { naturalWidth: number; naturalHeight: number; complete: boolean };
      return { w: img.naturalWidth, h: img.naturalHeight, done: img.complete };
    });
    assert.ok(size.done && size.w > 20 && size.h > 20, `the service's PNG decodes in the browser: ${JSON.stringify(size)}`);
    const shot = join(await screenshotDir(dir), 'status-logged-out.png');
    await page.screenshot({ path: shot, fullPage: true });
    await assertPng(shot);
  } finally {
    await ctx?.close();
    await stack.close();
    await emu.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('chromium: the logged-in status page shows the quota and an upload in progress', { skip: SKIP, timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-chromium-in-'));
  const s = await startTestStack({ users: [USER], configPatch: { upload: { mode: 'writeback' } } });
  let ctx: BrowserContext | undefined;
  try {
    // Some data, so that the quota bar is not empty; then a large upload held back by a slow service.
    for (let i = 0; i < 3; i++) {
      assert.equal((await fetch(`${s.url}/photo-${i}.jpg`, { method: 'PUT', headers: { authorization: basicOf() }, body: randomBytes(512 * 1024) })).status, 201);
    }
    await waitFor(async () => s.writeback!.pendingUnder('/').length === 0);
    s.emulator.setOptions({ throughputBytesPerSec: 256 * 1024 });
    assert.equal((await fetch(`${s.url}/holiday video.mp4`, { method: 'PUT', headers: { authorization: basicOf() }, body: randomBytes(8 * 1024 * 1024) })).status, 201);
    await waitFor(async () => s.writeback!.pendingUnder('/').some((p) => p.state !== 'queued'));

    ctx = await browser(dir);
    const page = await ctx.newPage();
    const res = await page.goto(`${s.url}/.terabox-dav/`);
    assert.equal(res?.status(), 200);
    assert.match(await page.locator('header').innerText(), /serving/);
    const main = await page.locator('main').innerText();
    assert.match(main, /emulator@terabox-dav\.invalid/);
    assert.match(main, /used of .* free/);
    const quota = page.locator('#quota');
    await quota.waitFor({ state: 'visible' });
    assert.ok(Number(await quota.getAttribute('aria-valuenow')) > 0, 'the quota meter says something is used');
    const used = await page.locator('#quota > div').boundingBox();
    assert.ok(used && used.width > 0, 'and its bar shows it');
    const uploading = page.locator('#uploads-in-flight');
    await uploading.waitFor({ state: 'visible' });
    assert.match(await uploading.innerText(), /holiday video\.mp4/);
    assert.equal(await uploading.locator('progress').count(), 1, 'with a progress bar');
    assert.match(main, /Spool: .* waiting on local disk/);
    const shot = join(await screenshotDir(dir), 'status-logged-in.png');
    await page.screenshot({ path: shot, fullPage: true });
    await assertPng(shot);
  } finally {
    await ctx?.close();
    s.emulator.setOptions({ throughputBytesPerSec: 0 });
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
});

function basicOf(): string {
  return 'Basic ' + Buffer.from(`${USER.username}:${USER.password}`).toString('base64');
}

function prefixed(c: { clientId: string; clientSecret: string; privateSecret: string }): Record<string, string> {
  return { 'terabox.clientId': c.clientId, 'terabox.clientSecret': c.clientSecret, 'terabox.privateSecret': c.privateSecret };
}

async function waitFor(cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('condition never held');
}
