import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, isPasswordHash, parsePasswordHash, verifyPassword } from '../../src/shared/password.js';

test('hashPassword output verifies, a wrong password does not', async () => {
  const h = await hashPassword('s3cret pass');
  assert.ok(isPasswordHash(h));
  assert.match(h, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/);
  assert.equal(await verifyPassword('s3cret pass', h), true);
  assert.equal(await verifyPassword('s3cret pasS', h), false);
  assert.equal(await verifyPassword('', h), false);
});

test('two hashes of one password differ (random salt)', async () => {
  const a = await hashPassword('x');
  const b = await hashPassword('x');
  assert.notEqual(a, b);
  assert.equal(await verifyPassword('x', b), true);
});

test('plain-text stored passwords compare exactly', async () => {
  assert.equal(await verifyPassword('abc', 'abc'), true);
  assert.equal(await verifyPassword('abc', 'abcd'), false);
  assert.equal(await verifyPassword('', ''), true);
});

test('malformed hashes never match and never throw', async () => {
  for (const bad of ['scrypt$', 'scrypt$1$8$1$AAAA$AAAA', 'scrypt$16384$8$1$!!$AAAA', 'scrypt$16384$8$1$c2FsdA==$c2hvcnQ=']) {
    assert.equal(parsePasswordHash(bad), undefined, bad);
    assert.equal(await verifyPassword('x', bad), false, bad);
  }
});
