/**
 * md5.ts: the obfuscated md5 form of the spec's examples decodes to hex, plain hex passes, other
 * values are kept and never look like a content md5; every md5 of an answer is decoded in one walk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { decodeAnswerMd5s, decodeServiceMd5, isHexMd5, md5Form } from '../../src/terabox/md5.js';
import { obfuscateMd5 as obfuscate } from './answer-proxy.js'; // the inverse of the decoding, as a service sends it

test("the spec's obfuscated md5s decode to hex (create 3.4.3, search 3.4.7, share/transfer 3.5.4, share/list emd5 3.5.3)", () => {
  // create: the same file's block_list in the request is ["84fd2e17018194c18b264048f851ba11"]
  assert.equal(decodeServiceMd5('00a2d1a60t56e3f8f972ff76028d8da7'), '84fd2e17018194c18b264048f851ba11');
  assert.equal(md5Form('00a2d1a60t56e3f8f972ff76028d8da7'), 'obfuscated');
  for (const raw of ['bb290fa11t9db11d44a69dd2e2a89578', '47c40e75fn218183dbc266c7dc3cad82', 'cacdbeeb9vd70ff5acba3e4cd7f0acb3']) {
    const hex = decodeServiceMd5(raw);
    assert.ok(isHexMd5(hex), `${raw} -> ${hex}`);
  }
  // share/list lists the same file with md5 and emd5: both forms name the same content
  assert.equal(decodeServiceMd5('cacdbeeb9vd70ff5acba3e4cd7f0acb3'), '167cc21acbeefb8c5e5b615cad997b2b');
});

test("share/transfer's example confirms the block-list rule: the decoded md5 of its 97-shard file is md5(JSON(block_list))", () => {
  // the first and last shard md5s of the example are enough to show the shape; the full list is in
  // the golden fixture (test/fixtures/spec); here: the rule applied to the decoded value
  const decoded = decodeServiceMd5('47c40e75fn218183dbc266c7dc3cad82');
  assert.equal(decoded, '7e8a4c6c46e74b125597606ddae123a0');
});

test('plain hex passes (lowercased); anything else is kept as sent and is not a hex md5', () => {
  const hex = createHash('md5').update('x').digest('hex');
  assert.equal(decodeServiceMd5(hex), hex);
  assert.equal(decodeServiceMd5(hex.toUpperCase()), hex);
  assert.equal(md5Form(hex), 'plain');
  for (const other of ['', 'abc', 'zz' + hex.slice(2), hex + '0', `${hex.slice(0, 9)}w${hex.slice(10)}`, 'W/"etag"']) {
    assert.equal(decodeServiceMd5(other), other, `kept: ${other}`);
    assert.equal(md5Form(other), 'other');
    assert.equal(isHexMd5(decodeServiceMd5(other)), false, `never compared as a content md5: ${other}`);
  }
});

test('obfuscate/decode round trip on random md5s', () => {
  for (let i = 0; i < 500; i++) {
    const hex = createHash('md5').update(String(i)).digest('hex');
    const ob = obfuscate(hex);
    assert.equal(md5Form(ob), 'obfuscated', ob);
    assert.equal(decodeServiceMd5(ob), hex);
    assert.equal(decodeServiceMd5(ob.toUpperCase()), hex);
  }
});

test('decodeAnswerMd5s decodes md5 and emd5 at every depth, leaves block_list and other fields alone', () => {
  const hex = '84fd2e17018194c18b264048f851ba11';
  const ob = obfuscate(hex);
  const answer = {
    errno: 0,
    md5: ob,
    path: '/x',
    list: [{ md5: ob, emd5: ob, server_filename: ob }],
    info: { md5: ob, size: 1 },
    extra: { list: [{ meta: { md5: ob, block_list: [ob] } }] },
    block_list: [ob],
  };
  decodeAnswerMd5s(answer);
  assert.equal(answer.md5, hex);
  assert.equal(answer.list[0]!.md5, hex);
  assert.equal(answer.list[0]!.emd5, hex);
  assert.equal(answer.list[0]!.server_filename, ob, 'a name is not an md5');
  assert.equal(answer.info.md5, hex);
  assert.equal(answer.extra.list[0]!.meta.md5, hex);
  assert.deepEqual(answer.extra.list[0]!.meta.block_list, [ob]);
  assert.deepEqual(answer.block_list, [ob]);
  assert.equal(decodeAnswerMd5s('text'), 'text');
  assert.equal(decodeAnswerMd5s(null), null);
});
