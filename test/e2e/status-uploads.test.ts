/**
 * The status page's uploads over the whole stack (issue 11 with the write-back of issue 9): a
 * write-back upload TeraBox refuses for good (a name it does not accept) is listed as failed with
 * its reason and Retry/Remove buttons; the buttons (POST with the page's CSRF token) act through the
 * write-back queue's own retry/remove; /metrics counts it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack } from '../helpers/stack.js';
import { parsePrometheusText, sampleSum } from '../helpers/prometheus.js';

const USER = { username: 'w', password: 'write back' };

test('a refused write-back upload: listed as failed with its reason; Retry and Remove work from the page', { timeout: 90_000 }, async () => {
  const s = await startTestStack({ users: [USER], configPatch: { upload: { mode: 'writeback' } } });
  const auth = s.authHeaders();
  const page = async (): Promise<string> => {
    const r = await fetch(`${s.url}/.terabox-dav/`, { headers: auth });
    assert.equal(r.status, 200);
    return r.text();
  };
  const until = async (re: RegExp): Promise<string> => {
    for (let i = 0; i < 200; i++) {
      const html = await page();
      if (re.test(html)) return html;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the status page never matched ${re}`);
  };
  const post = (action: string, path: string, csrf: string) =>
    fetch(`${s.url}/.terabox-dav/uploads/${action}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded', origin: s.url },
      body: new URLSearchParams({ id: path, csrf }).toString(),
    });
  try {
    // '?' is a character TeraBox refuses in names (errno -7): the PUT is journalled, the upload fails for good.
    const put = await fetch(`${s.url}/what%3F.txt`, { method: 'PUT', headers: auth, body: 'kept locally' });
    assert.equal(put.status, 201);
    let html = await until(/Failed \(1\)/);
    assert.match(html, /<table id="uploads-failed">.*\/what\?\.txt.*the service refuses the name \(TBDAV_INVALID_NAME\)/s);
    assert.match(html, /action="\/\.terabox-dav\/uploads\/retry"/);
    assert.match(html, /action="\/\.terabox-dav\/uploads\/remove"/);
    const metrics = parsePrometheusText(await (await fetch(`${s.url}/metrics`, { headers: auth })).text());
    assert.equal(sampleSum(metrics, 'tbdav_writeback_failed_uploads'), 1);
    // Still readable at its path while it waits for the user.
    assert.equal(await (await fetch(`${s.url}/what%3F.txt`, { headers: auth })).text(), 'kept locally');

    const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
    const retried = await post('retry', '/what?.txt', csrf);
    assert.equal(retried.status, 303);
    assert.match(retried.headers.get('location') ?? '', /\/\.terabox-dav\/\?notice=retried$/);
    html = await until(/Failed \(1\)/); // refused again: the name is still not accepted
    const removed = await post('remove', '/what?.txt', csrf);
    assert.equal(removed.status, 303);
    assert.match(removed.headers.get('location') ?? '', /notice=removed$/);
    html = await page();
    assert.doesNotMatch(html, /uploads-failed/);
    assert.equal((await fetch(`${s.url}/what%3F.txt`, { headers: auth })).status, 404, 'removed: the file is gone');
    const gone = await post('remove', '/what?.txt', csrf);
    assert.match(gone.headers.get('location') ?? '', /notice=unknown$/, 'a second remove says it is no longer there');
  } finally {
    await s.close();
  }
});
