/** The CLI as a child process: bad configuration -> one clear line naming the key, exit 2, no stack. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { verifyPassword } from '../../src/shared/password.js';
import { withTempDir } from '../helpers/temp-dir.js';

const withTmp = (fn: (dir: string) => Promise<void>): Promise<void> => withTempDir('tbdav-cli-', fn);

function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  return lines[0]!;
}

test('bad values in file, environment and flags: one line naming the key, exit 2', () =>
  withTmp(async (dir) => {
    const env = cleanEnv(dir);
    const file = join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ server: { port: 'eighty' } }));
    let r = await runCli(['serve', '--config', file], { env });
    assert.equal(r.code, 2);
    assert.equal(oneLine(r.stderr), `terabox-dav: config server.port: must be an integer 0-65535 (in ${file})`);
    assert.equal(r.stdout, '');

    r = await runCli(['serve'], { env: { ...env, TERABOX_DAV_SERVER_PORT: '99999' } });
    assert.equal(r.code, 2);
    assert.equal(oneLine(r.stderr), 'terabox-dav: config server.port: must be an integer 0-65535 (from TERABOX_DAV_SERVER_PORT)');

    r = await runCli(['whoami', '--log-level', 'chatty'], { env });
    assert.equal(r.code, 2);
    assert.match(oneLine(r.stderr), /^terabox-dav: config log\.level: must be one of error, warn, info/);
  }));

test('unknown keys are refused (typo protection), missing files and bad JSON named', () =>
  withTmp(async (dir) => {
    const env = cleanEnv(dir);
    const file = join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ server: { prot: 8081 } }));
    let r = await runCli(['serve', '--config', file], { env });
    assert.equal(r.code, 2);
    assert.equal(oneLine(r.stderr), 'terabox-dav: config server.prot: unknown key (did you mean server.port?)');

    r = await runCli(['serve', '--server.prot', '1'], { env });
    assert.equal(r.code, 2);
    assert.equal(oneLine(r.stderr), 'terabox-dav: unknown option --server.prot (did you mean --server.port?)');

    r = await runCli(['serve', '--config', join(dir, 'nope.json')], { env });
    assert.equal(r.code, 2);
    assert.match(oneLine(r.stderr), /nope\.json: config file not found$/);

    await writeFile(file, '{"server": {');
    r = await runCli(['serve', '--config', file], { env });
    assert.equal(r.code, 2);
    assert.match(oneLine(r.stderr), /config\.json: not valid JSON/);

    r = await runCli(['frobnicate'], { env });
    assert.equal(r.code, 2);
    oneLine(r.stderr);
  }));

test('config prints the effective configuration with secrets redacted', () =>
  withTmp(async (dir) => {
    const env = cleanEnv(dir, {
      TERABOX_DAV_TERABOX_CLIENT_ID: 'visible-client-id',
      TERABOX_DAV_TERABOX_CLIENT_SECRET: 'hidden-client-secret',
      TERABOX_DAV_TERABOX_PRIVATE_SECRET: 'hidden-private-secret',
      TERABOX_DAV_SERVER_USERS: 'bob:hidden-password',
    });
    const r = await runCli(['config', '--port', '9999'], { env });
    assert.equal(r.code, 0, r.stderr);
    const shown = JSON.parse(r.stdout) as { server: { port: number; users: { username: string }[] }; terabox: { clientId: string } };
    assert.equal(shown.server.port, 9999, 'flag applied');
    assert.equal(shown.terabox.clientId, 'visible-client-id');
    assert.equal(shown.server.users[0]!.username, 'bob');
    assert.doesNotMatch(r.stdout + r.stderr, /hidden/);
  }));

test('hash-password reads stdin and prints a hash that verifies', () =>
  withTmp(async (dir) => {
    const r = await runCli(['hash-password'], { env: cleanEnv(dir), stdin: 'correct horse\n' });
    assert.equal(r.code, 0, r.stderr);
    const hash = r.stdout.trim();
    assert.match(hash, /^scrypt\$/);
    assert.equal(await verifyPassword('correct horse', hash), true);
    assert.equal(await verifyPassword('correct horse\n', hash), false);
  }));

test('unknown options and stray words: one line saying which, with a guess for a near config key; yargs messages on one line; exit 2', () =>
  withTmp(async (dir) => {
    const env = cleanEnv(dir);
    let r = await runCli(['serve', '--sever.port=3'], { env });
    assert.equal(r.code, 2);
    assert.equal(oneLine(r.stderr), 'terabox-dav: unknown option --sever.port (did you mean --server.port?)');
    r = await runCli(['serve', '--bogus', 'x', 'extra'], { env });
    assert.equal(r.code, 2);
    assert.equal(oneLine(r.stderr), 'terabox-dav: unknown option --bogus; unexpected argument extra (--help lists them)');
    r = await runCli(['config', 'stray'], { env });
    assert.equal(r.code, 2);
    assert.equal(oneLine(r.stderr), 'terabox-dav: unexpected argument stray (--help lists them)');
    // A yargs message of several lines (a positional outside its choices) comes out as one.
    r = await runCli(['uploads', 'bogus'], { env });
    assert.equal(r.code, 2);
    assert.match(oneLine(r.stderr), /^terabox-dav: Invalid values: Argument: action, Given: "bogus", Choices: /);
  }));
