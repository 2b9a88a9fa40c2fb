/**
 * litmus (the WebDAV compliance suite, Debian package `litmus`) against the whole bridge:
 * emulator -> TeraboxRemote -> Vfs -> bridge, on port 0, with Basic authentication whose
 * credentials hold ':' in the password and encode to base64 with '+' and '/' (stock
 * webdav-server refused those). All five suites must run (104 tests, Apache mod_dav's count)
 * with 0 failures, and the bridge must still answer afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStackOptions } from '../helpers/stack.js';
import { LITMUS, runLitmusSuites } from './_litmus.js';

const EXPECTED_TOTAL = 104;

async function runLitmus(configPatch?: TestStackOptions['configPatch']): Promise<void> {
  const user = { username: 'litmus', password: 'a?>b:c~~>?' };
  assert.match(Buffer.from(`${user.username}:${user.password}`).toString('base64'), /\+.*\/|\/.*\+/);
  const stack = await startTestStack({ users: [user], configPatch });
  try {
    const { out, code, sums, total } = await runLitmusSuites(`${stack.url}/`, user, { timeoutMs: 100_000 });
    const warnings = out.split('\n').filter((l) => l.includes('WARNING:')).map((l) => l.replace(/\r/g, '').trim());
    // Warnings are not failures (Apache gets some too); show them so that they are seen.
    if (warnings.length) console.log(`litmus warnings:\n${warnings.join('\n')}`);
    assert.equal(total, EXPECTED_TOTAL, `tests run per suite: ${JSON.stringify(sums)}`);
    assert.equal(code, 0, `litmus exit code ${code}:\n${out.slice(-2000)}`);

    // The process survived and still serves.
    const probe = await fetch(`${stack.url}/`, { method: 'PROPFIND', headers: { ...stack.authHeaders(), depth: '0' } });
    assert.equal(probe.status, 207);
    await probe.arrayBuffer();
  } finally {
    await stack.close();
  }
}

const SKIP = LITMUS ? false : 'litmus is not installed (apt-get install litmus)';

test('litmus: basic, copymove, props, locks, http all pass (104 tests) over the emulator stack', { skip: SKIP, timeout: 120_000 }, async () => {
  await runLitmus();
});

test('litmus: the same 104/104 with write-back uploads (answered once the body is journalled on local disk)', { skip: SKIP, timeout: 120_000 }, async () => {
  await runLitmus({ upload: { mode: 'writeback' } });
});
