import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger } from '../../src/shared/logger.js';
import { api, dlinkOf, fetchDlink, getJson, oauth, sign, startEmu, upload } from './emu-helpers.js';

test('debug logs of the emulator carry no token, sign, code or cookie value', async () => {
  let captured = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      captured += chunk.toString();
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream: sink })] });
  const e = await startEmu({ logger });
  try {
    const f = await upload(e, `${e.root}/l.bin`, Buffer.from('log me'));
    const dlink = await dlinkOf(e, f.fs_id);
    const res = await fetchDlink(e, dlink);
    await res.arrayBuffer();
    const r302 = await fetch(`${dlink}&access_tokens=${e.token}`, { redirect: 'manual' });
    const loc = r302.headers.get('location')!;
    const code = e.emu.issueAuthorizationCode();
    const ts = String(Math.floor(Date.now() / 1000));
    const c = e.emu.credentials;
    const tok = await oauth(e, '/oauth/gettoken', { client_id: c.clientId, client_secret: c.clientSecret, grant_type: 'authorization_code', code, timestamp: ts, sign: sign(e.emu, ts) });
    const share = e.emu.createShare([`${e.root}/l.bin`], 'ab12');
    const v = await getJson(`http://${e.emu.apiDomain}/openapi/share/verify?surl=${share.surl}&access_tokens=${e.token}`, { method: 'POST', body: new URLSearchParams({ pwd: 'ab12' }) });
    const boxclnd = /BOXCLND=([^;]+)/.exec(v.headers.get('set-cookie') ?? '')![1]!;
    await api(e, '/openapi/api/shorturlinfo', { query: { shorturl: share.shorturl, root: '1', spd: boxclnd } });
    await api(e, '/openapi/api/quota', { token: 'an-invalid-token-value' });
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(captured.includes('/openapi/api/precreate'), 'requests are logged at debug');
    const secrets = [
      e.token,
      new URL(dlink).searchParams.get('sign')!,
      new URL(loc).searchParams.get('sign')!,
      code,
      tok.data.access_token as string,
      tok.data.refresh_token as string,
      boxclnd,
      'an-invalid-token-value',
      c.clientSecret,
      sign(e.emu, ts),
    ];
    for (const s of secrets) assert.ok(!captured.includes(s), `secret leaked into the log: ${s.slice(0, 6)}...`);
  } finally {
    await e.stop();
  }
});
