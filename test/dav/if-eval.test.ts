import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateIf, parseIf, submittedTokens, type IfResource } from '../../src/dav/if-eval.js';
import { TbdavError } from '../../src/shared/errors.js';

const res = (etag: string | undefined, tokens: string[] = []): IfResource => ({ etag, lockTokens: new Set(tokens) });

test('parseIf: untagged, tagged, Not, etags, several lists', () => {
  assert.deepEqual(parseIf('(<urn:uuid:a>)'), [{ tag: undefined, conditions: [{ not: false, kind: 'token', value: 'urn:uuid:a' }] }]);
  const l = parseIf('<http://h/x> (<urn:a> ["e1"]) (Not <DAV:no-lock>)');
  assert.equal(l.length, 2);
  assert.equal(l[0]!.tag, 'http://h/x');
  assert.equal(l[1]!.tag, 'http://h/x');
  assert.deepEqual(l[0]!.conditions[1], { not: false, kind: 'etag', value: '"e1"' });
  assert.deepEqual(l[1]!.conditions[0], { not: true, kind: 'token', value: 'DAV:no-lock' });
  assert.deepEqual([...submittedTokens(l)].sort(), ['DAV:no-lock', 'urn:a']);
  assert.equal(parseIf('(Not<DAV:no-lock>)')[0]!.conditions[0]!.not, true);
});

test('parseIf: malformed headers are TBDAV_BAD_REQUEST', () => {
  for (const bad of ['', 'garbage', '(', '()', '(<a>', '<http://x/>', '([x)', '(foo)', '(<a>) <http://x/> (<b>)']) {
    assert.throws(() => parseIf(bad), (e: unknown) => e instanceof TbdavError && e.code === 'TBDAV_BAD_REQUEST', bad);
  }
});

test('evaluateIf: any list true; all conditions in a list; Not; etags; foreign hosts never match', async () => {
  const r = async (p: string) => (p === '/a' ? res('"e1"', ['urn:a']) : res(undefined));
  const ev = (h: string) => evaluateIf(parseIf(h), '/a', 'host:80', r);
  assert.equal(await ev('(<urn:a>)'), true);
  assert.equal(await ev('(<urn:b>)'), false);
  assert.equal(await ev('(<urn:b>) (Not <DAV:no-lock>)'), true);
  assert.equal(await ev('(<urn:a> ["e1"])'), true);
  assert.equal(await ev('(<urn:a> ["bogus"])'), false);
  assert.equal(await ev('(Not ["e1"])'), false);
  assert.equal(await ev('([W/"e1"])'), true);
  assert.equal(await ev('<http://host/a> (<urn:a>)'), true);
  assert.equal(await ev('<http://other/a> (<urn:a>)'), false);
  assert.equal(await ev('</b> (<urn:a>)'), false);
  assert.equal(await ev('</a> (<urn:a>)'), true);
});
