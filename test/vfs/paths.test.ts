import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isTbdavError } from '../../src/shared/errors.js';
import { baseName, isInside, isSameOrInside, joinPath, normalizePath, parentPath, rebase } from '../../src/vfs/paths.js';

test('normalizePath collapses slashes, drops trailing slash, adds the leading one', () => {
  assert.equal(normalizePath('/'), '/');
  assert.equal(normalizePath(''), '/');
  assert.equal(normalizePath('//'), '/');
  assert.equal(normalizePath('/a//b///c/'), '/a/b/c');
  assert.equal(normalizePath('a/b'), '/a/b');
  assert.equal(normalizePath('/a b/ c '), '/a b/ c ');
});

test('normalizePath turns NFD into NFC', () => {
  const nfd = '/Cafe\u0301/e\u0301te\u0301';
  const out = normalizePath(nfd);
  assert.equal(out, '/Caf\u00e9/\u00e9t\u00e9');
  assert.equal(out, out.normalize('NFC'));
});

test('normalizePath refuses . and .. with TBDAV_BAD_REQUEST', () => {
  for (const p of ['/a/../b', '/..', '/a/.', './a', '/a/./b']) {
    assert.throws(() => normalizePath(p), (e: unknown) => isTbdavError(e, 'TBDAV_BAD_REQUEST'), p);
  }
  // dots inside names are fine
  assert.equal(normalizePath('/a/..b/.c/...'), '/a/..b/.c/...');
});

test('normalizePath refuses NUL, backslash and over-long names with TBDAV_INVALID_NAME', () => {
  assert.throws(() => normalizePath('/a\0b'), (e: unknown) => isTbdavError(e, 'TBDAV_INVALID_NAME'));
  assert.throws(() => normalizePath('/a\\b'), (e: unknown) => isTbdavError(e, 'TBDAV_INVALID_NAME'));
  assert.equal(normalizePath('/' + 'x'.repeat(255)), '/' + 'x'.repeat(255));
  assert.throws(() => normalizePath('/' + 'x'.repeat(256)), (e: unknown) => isTbdavError(e, 'TBDAV_INVALID_NAME'));
  // 128 two-byte characters = 256 UTF-8 bytes
  assert.throws(() => normalizePath('/' + '\u00e9'.repeat(128)), (e: unknown) => isTbdavError(e, 'TBDAV_INVALID_NAME'));
  assert.equal(normalizePath('/' + '\u00e9'.repeat(127)).length, 128);
});

test('normalizePath refuses paths over 4096 bytes with TBDAV_BAD_REQUEST', () => {
  const seg = 'y'.repeat(200);
  const ok = Array.from({ length: 20 }, () => seg).join('/'); // 20*201 = 4020 bytes with slashes
  assert.equal(normalizePath(ok).length, 4020);
  const long = Array.from({ length: 21 }, () => seg).join('/');
  assert.throws(() => normalizePath(long), (e: unknown) => isTbdavError(e, 'TBDAV_BAD_REQUEST'));
});

test('parent, basename, join, inside, rebase', () => {
  assert.equal(parentPath('/'), '/');
  assert.equal(parentPath('/a'), '/');
  assert.equal(parentPath('/a/b/c'), '/a/b');
  assert.equal(baseName('/'), '');
  assert.equal(baseName('/a/b.txt'), 'b.txt');
  assert.equal(joinPath('/', 'a'), '/a');
  assert.equal(joinPath('/a', 'b'), '/a/b');
  assert.equal(isInside('/a/b', '/a'), true);
  assert.equal(isInside('/ab', '/a'), false);
  assert.equal(isInside('/a', '/a'), false);
  assert.equal(isInside('/a', '/'), true);
  assert.equal(isInside('/', '/'), false);
  assert.equal(isSameOrInside('/a', '/a'), true);
  assert.equal(rebase('/a/b/c', '/a', '/x'), '/x/b/c');
  assert.equal(rebase('/a', '/a', '/x/y'), '/x/y');
});
