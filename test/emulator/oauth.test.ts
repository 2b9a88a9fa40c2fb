import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import jsQRModule from 'jsqr';

// jsqr is CommonJS with a `default` export: under NodeNext the default import is the module object
const jsQR = (jsQRModule as unknown as { default: (d: Uint8ClampedArray, w: number, h: number) => { data: string } | null }).default;
import { type Emu, api, getJson, oauth, sign, startEmu } from './emu-helpers.js';

function creds(e: Emu, extra: Record<string, string>): Record<string, string> {
  const ts = String(Math.floor(Date.now() / 1000));
  return { client_id: e.emu.credentials.clientId, client_secret: e.emu.credentials.clientSecret, timestamp: ts, sign: sign(e.emu, ts), ...extra };
}

test('devicecode returns a real QR code as a PNG data URL, expires_in and interval; bad client 100001; missing 2', async () => {
  const e = await startEmu({ deviceCodeInterval: 3, deviceCodeTtlSec: 120 });
  try {
    const r = await oauth(e, '/oauth/devicecode', undefined, { client_id: e.emu.credentials.clientId });
    assert.equal(r.errno, 0);
    assert.equal(r.data.expires_in, 120);
    assert.equal(r.data.interval, 3);
    assert.equal(typeof r.data.device_code, 'string');
    const m = /^data:image\/png;base64,(.+)$/.exec(r.data.qrcode_url as string);
    assert.ok(m);
    const png = Buffer.from(m[1]!, 'base64');
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(png.subarray(12, 16).toString('ascii'), 'IHDR');
    const w = png.readUInt32BE(16);
    const h = png.readUInt32BE(20);
    assert.ok(w > 20 && w === h);
    // IDAT inflates to (w+1)*h bytes of greyscale scanlines
    const idatLen = png.readUInt32BE(33);
    assert.equal(png.subarray(37, 41).toString('ascii'), 'IDAT');
    const raw = inflateSync(png.subarray(41, 41 + idatLen));
    assert.equal(raw.length, (w + 1) * h);
    // it is a real QR code: a decoder reads back a URL naming the device code
    const rgba = new Uint8ClampedArray(w * h * 4);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = raw[y * (w + 1) + 1 + x]!;
        rgba.set([v, v, v, 255], (y * w + x) * 4);
      }
    }
    const decoded = jsQR(rgba, w, h);
    assert.ok(decoded, 'the PNG decodes as a QR code');
    assert.ok(decoded.data.endsWith(`code=${r.data.device_code as string}`), decoded.data);
    assert.equal((await oauth(e, '/oauth/devicecode', undefined, { client_id: 'nope' })).errno, 100001);
    assert.equal((await oauth(e, '/oauth/devicecode')).errno, 2);
    // POST is not the method of devicecode
    const wrong = await getJson(`${e.emu.authUrl}/oauth/devicecode`, { method: 'POST', body: new URLSearchParams({ client_id: 'x' }) });
    assert.equal(wrong.status, 405);
  } finally {
    await e.stop();
  }
});

test('device code flow: 400001 until approved after N polls, then tokens; the code is single-use', async () => {
  const e = await startEmu({ autoApproveAfterPolls: 2 });
  try {
    const dc = (await oauth(e, '/oauth/devicecode', undefined, { client_id: e.emu.credentials.clientId })).data.device_code as string;
    const poll = (): Promise<Record<string, any>> => oauth(e, '/oauth/gettoken', creds(e, { grant_type: 'device_code', code: dc })); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal((await poll()).errno, 400001);
    assert.equal((await poll()).errno, 400001);
    const ok = await poll();
    assert.equal(ok.errno, 0);
    assert.equal(ok.data.expires_in, 172800);
    assert.ok(ok.data.access_token && ok.data.refresh_token);
    assert.equal((await poll()).errno, 100002);
    // tokens work on the api host
    const u = await api(e, '/openapi/uinfo', { token: ok.data.access_token as string });
    assert.equal(u.body.errno, 0);
    assert.equal(typeof u.body.uk, 'number');
  } finally {
    await e.stop();
  }
});

test('autoApproveAfterPolls 0: only approveDevice() approves; enforcePollInterval answers 300001', async () => {
  const e = await startEmu({ autoApproveAfterPolls: 0, enforcePollInterval: true, deviceCodeInterval: 60 });
  try {
    const dc = (await oauth(e, '/oauth/devicecode', undefined, { client_id: e.emu.credentials.clientId })).data.device_code as string;
    const poll = (): Promise<Record<string, any>> => oauth(e, '/oauth/gettoken', creds(e, { grant_type: 'device_code', code: dc })); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal((await poll()).errno, 400001);
    assert.equal((await poll()).errno, 300001);
    e.emu.setOptions({ autoApproveAfterPolls: 0 });
    e.emu.approveDevice(dc);
    e.emu.setOptions({});
    // still too fast: the interval is 60 s
    assert.equal((await poll()).errno, 300001);
  } finally {
    await e.stop();
  }
  const e2 = await startEmu({ autoApproveAfterPolls: 0 });
  try {
    const dc = (await oauth(e2, '/oauth/devicecode', undefined, { client_id: e2.emu.credentials.clientId })).data.device_code as string;
    const poll = (): Promise<Record<string, any>> => oauth(e2, '/oauth/gettoken', creds(e2, { grant_type: 'device_code', code: dc })); // eslint-disable-line @typescript-eslint/no-explicit-any
    for (let i = 0; i < 3; i++) assert.equal((await poll()).errno, 400001);
    e2.emu.approveDevice();
    assert.equal((await poll()).errno, 0);
  } finally {
    await e2.stop();
  }
});

test('an expired device code is 100002', async () => {
  const e = await startEmu({ deviceCodeTtlSec: 1 });
  try {
    const dc = (await oauth(e, '/oauth/devicecode', undefined, { client_id: e.emu.credentials.clientId })).data.device_code as string;
    e.emu.approveDevice(dc);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await oauth(e, '/oauth/gettoken', creds(e, { grant_type: 'device_code', code: dc }))).errno, 100002);
  } finally {
    await e.stop();
  }
});

test('authorization_code: single use; bad sign, client, grant and missing params', async () => {
  const e = await startEmu();
  try {
    const code = e.emu.issueAuthorizationCode();
    const ok = await oauth(e, '/oauth/gettoken', creds(e, { grant_type: 'authorization_code', code }));
    assert.equal(ok.errno, 0);
    assert.equal((await oauth(e, '/oauth/gettoken', creds(e, { grant_type: 'authorization_code', code }))).errno, 100002);
    const code2 = e.emu.issueAuthorizationCode();
    assert.equal((await oauth(e, '/oauth/gettoken', creds(e, { grant_type: 'authorization_code', code: code2, sign: '0'.repeat(32) }))).errno, 100001);
    assert.equal((await oauth(e, '/oauth/gettoken', creds(e, { grant_type: 'authorization_code', code: code2, client_secret: 'wrong' }))).errno, 100001);
    assert.equal((await oauth(e, '/oauth/gettoken', creds(e, { grant_type: 'password', code: code2 }))).errno, 200001);
    const missing = creds(e, { grant_type: 'authorization_code', code: code2 });
    delete missing.timestamp;
    assert.equal((await oauth(e, '/oauth/gettoken', missing)).errno, 2);
    // the failed attempts did not use the code up
    assert.equal((await oauth(e, '/oauth/gettoken', creds(e, { grant_type: 'authorization_code', code: code2 }))).errno, 0);
    // multipart form bodies (curl --form, as in the spec) are accepted
    const fd = new FormData();
    for (const [k, v] of Object.entries(creds(e, { grant_type: 'authorization_code', code: e.emu.issueAuthorizationCode() }))) fd.append(k, v);
    const mp = await getJson(`${e.emu.authUrl}/oauth/gettoken`, { method: 'POST', body: fd });
    assert.equal(mp.body.errno, 0);
  } finally {
    await e.stop();
  }
});

test('tokeninfo: domains of the api and upload hosts; 200002 invalid; 200003 expired', async () => {
  const e = await startEmu();
  try {
    const info = await oauth(e, '/oauth/tokeninfo', { access_token: e.token });
    assert.equal(info.errno, 0);
    assert.equal(info.data.api_domain, e.emu.apiDomain);
    assert.equal(info.data.upload_domain, e.emu.uploadDomain);
    assert.notEqual(info.data.api_domain, info.data.upload_domain);
    assert.equal(info.data.client_id, e.emu.credentials.clientId);
    assert.ok(info.data.expires_in > 0);
    assert.equal((await oauth(e, '/oauth/tokeninfo', { access_token: 'garbage' })).errno, 200002);
    assert.equal((await oauth(e, '/oauth/tokeninfo', {})).errno, 2);
    e.emu.expireAccessTokens();
    assert.equal((await oauth(e, '/oauth/tokeninfo', { access_token: e.token })).errno, 200003);
  } finally {
    await e.stop();
  }
});

test('refreshtoken: single use (200004), grace period of the old access token, expiry kept (200005)', async () => {
  const e = await startEmu({ refreshGraceSec: 1, refreshTokenTtlSec: 3 });
  try {
    const t0 = Date.now();
    const pair = e.emu.issueTokens();
    await new Promise((r) => setTimeout(r, 1500));
    const r1 = await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: pair.refresh_token }));
    assert.equal(r1.errno, 0);
    assert.notEqual(r1.data.access_token, pair.access_token);
    assert.equal((await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: pair.refresh_token }))).errno, 200004);
    assert.equal((await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: 'never-issued' }))).errno, 200004);
    assert.equal((await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: pair.refresh_token, sign: 'x' }))).errno, 100001);
    // old token still works within the grace period, then is expired
    assert.equal((await api(e, '/openapi/uinfo', { token: pair.access_token })).body.errno, 0);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await api(e, '/openapi/uinfo', { token: pair.access_token })).body.errno, 111);
    assert.equal((await oauth(e, '/oauth/tokeninfo', { access_token: pair.access_token })).errno, 200003);
    assert.equal((await api(e, '/openapi/uinfo', { token: r1.data.access_token as string })).body.errno, 0);
    // the new refresh token kept the first one's expiry (t0 + 3 s), not t0 + 1.5 + 3 s
    const wait = t0 + 3400 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    assert.equal((await oauth(e, '/oauth/refreshtoken', creds(e, { refresh_token: r1.data.refresh_token as string }))).errno, 200005);
  } finally {
    await e.stop();
  }
});
