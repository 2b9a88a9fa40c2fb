/**
 * The text log line: meta fields follow the message as JSON, and a meta whose fields are all
 * undefined (a requestId outside any request) adds nothing — users saw
 * `auth: refreshing the access token {}` from whoami.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger } from '../../src/shared/logger.js';

async function lines(format: 'text' | 'json', write: (l: ReturnType<typeof createLogger>) => void): Promise<string[]> {
  let captured = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      captured += chunk.toString();
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', format, transports: [new winston.transports.Stream({ stream: sink })] });
  write(logger);
  await new Promise((r) => setTimeout(r, 20));
  return captured.split('\n').filter(Boolean);
}

test('text lines: undefined meta fields print nothing; defined ones print as JSON', async () => {
  const out = await lines('text', (l) => {
    l.info('auth: refreshing the access token', { requestId: undefined });
    l.info('plain line');
    l.info('PUT /a.txt: 201', { requestId: 'r1', ms: 3, skipped: undefined });
  });
  assert.equal(out.length, 3, out.join('\n'));
  assert.match(out[0]!, / info: auth: refreshing the access token$/);
  assert.match(out[1]!, / info: plain line$/);
  assert.match(out[2]!, / info: PUT \/a\.txt: 201 \{"requestId":"r1","ms":3\}$/);
});
