/**
 * Auth host routes (/oauth/*): devicecode, gettoken, tokeninfo, refreshtoken (spec 1.4.2, 2.2.1).
 * Check order of gettoken/refreshtoken: missing parameter (2), client_id/client_secret (100001),
 * sign (100001), grant_type (200001), code (100002 / 400001 / 300001).
 */
import { type ApiRequest, type Ctx, safeEqual } from './context.js';
import type { Handler, RouteDef } from './routes-files.js';
import { EmulatorErrno } from './store.js';
import { md5Hex, qrCodePng } from './util.js';
import { ERRNO, type WireDeviceCodeData, type WireTokenInfoData } from './wire.js';

function need(r: ApiRequest, ...names: string[]): string[] {
  return names.map((n) => {
    const v = r.param(n);
    if (v === undefined || v === '') throw new EmulatorErrno(ERRNO.PARAM, `missing parameter ${n}`);
    return v;
  });
}

function checkClient(ctx: Ctx, clientId: string, clientSecret?: string): void {
  if (!safeEqual(clientId, ctx.credentials.clientId)) throw new EmulatorErrno(ERRNO.INVALID_CLIENT, 'invalid client_id');
  if (clientSecret !== undefined && !safeEqual(clientSecret, ctx.credentials.clientSecret)) {
    throw new EmulatorErrno(ERRNO.INVALID_CLIENT, 'invalid client_secret');
  }
}

/** sign = md5(`${client_id}_${timestamp}_${client_secret}_${private_secret}`); a wrong sign is 100001. */
function checkSign(ctx: Ctx, timestamp: string, sign: string): void {
  if (!/^\d{1,13}$/.test(timestamp)) throw new EmulatorErrno(ERRNO.PARAM, 'timestamp must be an integer');
  const c = ctx.credentials;
  const want = md5Hex(`${c.clientId}_${timestamp}_${c.clientSecret}_${c.privateSecret}`);
  if (!safeEqual(sign.toLowerCase(), want)) throw new EmulatorErrno(ERRNO.INVALID_CLIENT, 'invalid sign');
}

const deviceCode: Handler = (ctx, r): { data: WireDeviceCodeData } => {
  const [clientId] = need(r, 'client_id');
  checkClient(ctx, clientId!);
  const { device_code, expires_in } = ctx.auth.newDeviceCode();
  const png = qrCodePng(`http://${ctx.hosts.auth}/wap/oauth/device?code=${device_code}`);
  return {
    data: {
      device_code,
      qrcode_url: `data:image/png;base64,${png.toString('base64')}`,
      expires_in,
      interval: ctx.opts.deviceCodeInterval,
      user_code: '',
      verification_url: '',
    },
  };
};

const getToken: Handler = (ctx, r) => {
  const [clientId, clientSecret, grantType, code, timestamp, sign] = need(r, 'client_id', 'client_secret', 'grant_type', 'code', 'timestamp', 'sign');
  checkClient(ctx, clientId!, clientSecret!);
  checkSign(ctx, timestamp!, sign!);
  if (grantType === 'authorization_code') {
    const pair = ctx.auth.redeemAuthorizationCode(code!);
    if (pair === 'invalid') throw new EmulatorErrno(ERRNO.INVALID_CODE, 'invalid or expired code');
    return { data: pair };
  }
  if (grantType !== 'device_code') throw new EmulatorErrno(ERRNO.UNSUPPORTED_GRANT, 'unsupported grant_type');
  const minMs = ctx.opts.enforcePollInterval ? ctx.opts.deviceCodeInterval * 1000 : 0;
  const res = ctx.auth.pollDevice(code!, minMs);
  if (res === 'invalid') throw new EmulatorErrno(ERRNO.INVALID_CODE, 'invalid or expired device code');
  if (res === 'pending') throw new EmulatorErrno(ERRNO.AUTH_PENDING, 'authorization pending');
  if (res === 'too-fast') throw new EmulatorErrno(ERRNO.CODE_RATE, 'polling faster than interval');
  ctx.store.markDirty();
  return { data: res };
};

const tokenInfo: Handler = (ctx, r): { data: WireTokenInfoData } => {
  const [token] = need(r, 'access_token');
  const c = ctx.auth.checkAccess(token);
  if (!c.ok) {
    if (c.reason === 'expired') throw new EmulatorErrno(ERRNO.ACCESS_TOKEN_EXPIRED, 'access_token expired');
    throw new EmulatorErrno(ERRNO.INVALID_ACCESS_TOKEN, 'invalid access_token');
  }
  // uploadDomain 'absent': as the spec's example (1.4.2.2), which lacks the table's upload_domain
  return {
    data: {
      api_domain: ctx.hosts.api,
      ...(ctx.opts.variant.uploadDomain === 'present' ? { upload_domain: ctx.hosts.upload } : {}),
      client_id: ctx.credentials.clientId,
      create_time: c.token.createdAt,
      expires_in: Math.max(0, Math.floor(c.token.expiresAt - Date.now() / 1000)),
      user_id: ctx.auth.userId,
    },
  };
};

const refreshToken: Handler = (ctx, r) => {
  const [clientId, clientSecret, token, timestamp, sign] = need(r, 'client_id', 'client_secret', 'refresh_token', 'timestamp', 'sign');
  checkClient(ctx, clientId!, clientSecret!);
  checkSign(ctx, timestamp!, sign!);
  const res = ctx.auth.refreshPair(token!);
  if (res === 'reused') {
    ctx.counters.refreshTokenReuse++;
    ctx.logger.debug(`emulator: a spent refresh token was presented again (${ctx.opts.variant.refreshReuse})`);
    ctx.store.markDirty();
    throw new EmulatorErrno(ERRNO.INVALID_REFRESH_TOKEN, 'invalid refresh_token');
  }
  if (res === 'invalid') throw new EmulatorErrno(ERRNO.INVALID_REFRESH_TOKEN, 'invalid refresh_token');
  if (res === 'expired') throw new EmulatorErrno(ERRNO.REFRESH_TOKEN_EXPIRED, 'refresh_token expired');
  ctx.store.markDirty();
  return { data: res };
};

/** Parameter places: devicecode's in the query (GET, 2.2.1); the POSTs take form fields (1.4.2: curl --form). */
export const oauthRoutes: Record<string, RouteDef> = {
  '/oauth/devicecode': { method: 'GET', handler: deviceCode, params: { query: ['client_id'] } },
  '/oauth/gettoken': { method: 'POST', handler: getToken, params: { body: ['client_id', 'client_secret', 'grant_type', 'code', 'timestamp', 'sign'] } },
  '/oauth/tokeninfo': { method: 'POST', handler: tokenInfo, params: { body: ['access_token'] } },
  '/oauth/refreshtoken': { method: 'POST', handler: refreshToken, params: { body: ['client_id', 'client_secret', 'refresh_token', 'timestamp', 'sign'] } },
};
