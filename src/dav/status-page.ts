/**
 * The status page `/.terabox-dav/` (issue 11): server-rendered HTML, no build step, no JavaScript
 * needed (a meta refresh keeps it current; the buttons are plain forms). Pure rendering: the data
 * comes from the ServiceMonitor and BridgeMetrics; routes live in ./ops-routes.ts.
 */
import { createHash } from 'node:crypto';
import type { RecentError } from './metrics.js';
import type { ShareState, StatusSnapshot, UploadView } from './service.js';
import { formatBytes } from '../shared/format.js';

export const STATUS_PREFIX = '/.terabox-dav';

export interface StatusPageInput {
  share: ShareState;
  /** Missing while logging in or when the monitor could not build one. */
  snapshot?: StatusSnapshot;
  snapshotProblem?: string;
  callsLastMinute: number;
  recentErrors: RecentError[];
  /** The WebDAV URL as the client reaches it (behind a proxy: the public one). */
  shareUrl: string;
  user?: string;
  /** May press the upload buttons (not a read-only user). */
  canAct: boolean;
  csrfToken: string;
  /** A one-line notice after an action (retried, removed, refused). */
  notice?: string;
  now: number;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d`;
}

function time(t: number): string {
  return new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

const STYLE = `
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:14px 24px;display:flex;justify-content:space-between;align-items:baseline}
header h1{font-size:19px;margin:0}header .state{font-size:14px}
main{max-width:980px;margin:0 auto;padding:18px 24px 40px}
section{background:#fff;border:1px solid #dfe3ea;border-radius:8px;padding:14px 18px;margin:0 0 16px}
h2{font-size:16px;margin:0 0 10px}
.bar{height:14px;background:#e6e9ef;border-radius:7px;overflow:hidden;margin:6px 0}
.bar>div{height:100%;background:#3b7ddd}.bar.full>div{background:#d9534f}
table{border-collapse:collapse;width:100%;font-size:14px}td,th{text-align:left;padding:4px 8px 4px 0;vertical-align:top}
th{color:#5b6475;font-weight:600}code{background:#eef1f5;padding:1px 4px;border-radius:3px}
.ok{color:#23863a}.bad{color:#c0392b}.muted{color:#6b7385}.notice{background:#fff7d6;border-color:#e9d77a}
.qr img{width:240px;height:240px;image-rendering:pixelated;border:8px solid #fff;box-shadow:0 0 0 1px #dfe3ea}
.code{font:600 26px/1.2 ui-monospace,Menlo,monospace;letter-spacing:2px}
progress{width:160px}form{display:inline}button{font:inherit;padding:2px 10px;margin-right:4px}
`;

function page(title: string, stateHtml: string, body: string, refreshSec: number): string {
  return (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
    `<meta name="viewport" content="width=device-width,initial-scale=1"><meta http-equiv="refresh" content="${refreshSec}">` +
    `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>` +
    `<header><h1>terabox-dav</h1><span class="state">${stateHtml}</span></header><main>${body}</main></body></html>\n`
  );
}

function loginSection(share: Extract<ShareState, { state: 'login' }>, now: number): string {
  let html = '<section><h2>Log in to TeraBox</h2>';
  html +=
    '<p>terabox-dav has no saved TeraBox login, so the share answers <code>503</code> for now. ' +
    'Scan this QR code with the <b>TeraBox app</b> and approve. ' +
    'The share comes up by itself once you have approved: no restart needed.</p>';
  if (share.code) {
    const left = Math.max(0, Math.round((share.code.expiresAt - now) / 1000));
    // The version names this code's image, so that a new code is fetched anew.
    const v = createHash('sha256').update(share.code.qrPng).digest('hex').slice(0, 12);
    html += `<div class="qr"><img id="login-qr" alt="QR code to scan with the TeraBox app" src="${STATUS_PREFIX}/login-qr.png?v=${v}"></div>`;
    if (share.code.userCode) {
      html += `<p>Or enter the code <span class="code" id="user-code">${escapeHtml(share.code.userCode)}</span>`;
      html += share.code.verificationUrl
        ? ` at <a href="${escapeHtml(share.code.verificationUrl)}" rel="noreferrer">${escapeHtml(share.code.verificationUrl)}</a></p>`
        : '</p>';
    } else {
      html += '<p class="muted">(TeraBox offers no code to type in for now: scan the QR code with the app.)</p>';
    }
    html += `<p class="muted">This code works for ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')} more; a new one replaces it then. This page refreshes itself.</p>`;
  } else {
    html += '<p class="muted">Asking TeraBox for a login code…</p>';
  }
  if (share.problem) html += `<p class="bad">${escapeHtml(share.problem)}</p>`;
  return html + '</section>';
}

function uploadRows(list: UploadView[], kind: 'inFlight' | 'queued' | 'failed', input: StatusPageInput): string {
  return list
    .map((u) => {
      const pct = u.size > 0 ? Math.min(100, Math.floor((u.done / u.size) * 100)) : 0;
      let cells = `<td>${escapeHtml(u.path)}</td><td>${formatBytes(u.size)}</td>`;
      if (kind === 'inFlight') cells += `<td><progress max="${Math.max(1, u.size)}" value="${u.done}">${pct}%</progress> ${pct}%</td>`;
      if (kind === 'queued') cells += `<td class="muted">waiting ${ago(input.now - u.since)}${u.note ? ` · ${escapeHtml(u.note)}` : ''}</td>`;
      if (kind === 'failed') {
        cells += `<td class="bad">${escapeHtml(u.error ?? 'failed')}</td>`;
        cells += input.canAct
          ? `<td>${actionForm('retry', u.id, 'Retry', input.csrfToken)}${actionForm('remove', u.id, 'Remove', input.csrfToken)}</td>`
          : '<td class="muted">(read-only user)</td>';
      }
      return `<tr>${cells}</tr>`;
    })
    .join('');
}

function actionForm(action: 'retry' | 'remove', id: string, label: string, csrf: string): string {
  return (
    `<form method="post" action="${STATUS_PREFIX}/uploads/${action}">` +
    `<input type="hidden" name="id" value="${escapeHtml(id)}"><input type="hidden" name="csrf" value="${escapeHtml(csrf)}">` +
    `<button type="submit">${label}</button></form>`
  );
}

function driveSection(s: StatusSnapshot, shareUrl: string): string {
  let html = `<section><h2>Drive folder</h2><p>Served: <code>${escapeHtml(s.driveFolder)}</code> at <a href="${escapeHtml(shareUrl)}">${escapeHtml(shareUrl)}</a></p>`;
  if (s.emulator) {
    html +=
      '<p>This is the <b>embedded emulator</b>: a fake TeraBox drive on this computer\'s disk, because no TeraBox ' +
      'credentials are configured. Set <code>terabox.clientId</code>, <code>terabox.clientSecret</code> and ' +
      '<code>terabox.privateSecret</code> to serve your real drive.</p>';
  } else {
    const app = s.appFolder ?? '/From: Other Applications/<app name>';
    html +=
      `<p><b>Why this folder?</b> The TeraBox Open Platform confines an application to its own folder, <code>${escapeHtml(app)}/</code>. ` +
      'terabox-dav can only see and change what is inside it: the files you already have elsewhere in your drive do not show here.</p>' +
      `<p><b>To see existing files here</b>, move or copy them into <code>${escapeHtml(app)}/</code> with the TeraBox app or website ` +
      '(they appear on the share within a few minutes, or at once after a refresh of the folder in your client). ' +
      'Or share a folder from the TeraBox app and add the link with <code>terabox-dav share add LINK</code>: it shows read-only ' +
      'here, and copying from it into the drive is done by TeraBox itself, without a download.</p>';
  }
  return html + '</section>';
}

/** The whole page. */
export function renderStatusPage(input: StatusPageInput): string {
  const { share, snapshot: s } = input;
  const stateHtml =
    share.state === 'ready'
      ? '<span class="ok">● serving</span>'
      : share.state === 'login'
        ? '<span class="bad">● not logged in</span>'
        : share.state === 'starting'
          ? '<span class="muted">● starting</span>'
          : '<span class="bad">● stopped</span>';
  let body = input.notice ? `<section class="notice">${escapeHtml(input.notice)}</section>` : '';
  if (share.state === 'login') body += loginSection(share, input.now);
  if (share.state === 'failed') body += `<section><h2>The share is not serving</h2><p class="bad">${escapeHtml(share.reason)}</p></section>`;
  if (share.state === 'starting') body += '<section><h2>Starting</h2><p class="muted">Opening the drive… this page refreshes itself.</p></section>';

  if (s) {
    // Account and quota
    let acc = '<section><h2>Account</h2>';
    if (s.account) {
      acc += `<p><b>${escapeHtml(s.account.name)}</b> (${escapeHtml(s.account.type)})</p>`;
      if (s.account.quota && s.account.quota.total > 0) {
        const pct = (s.account.quota.used / s.account.quota.total) * 100;
        acc +=
          // A sliver stays visible for a drive that is barely used (1 MiB of 1 TiB is 0.0001 %).
          `<div class="bar${pct >= 95 ? ' full' : ''}" role="meter" aria-valuenow="${pct.toFixed(4)}" aria-valuemin="0" aria-valuemax="100" id="quota"><div style="width:${s.account.quota.used > 0 ? Math.min(100, Math.max(0.5, pct)).toFixed(2) : '0'}%"></div></div>` +
          `<p>${formatBytes(s.account.quota.used)} used of ${formatBytes(s.account.quota.total)} (${pct.toFixed(1)} %), ${formatBytes(Math.max(0, s.account.quota.total - s.account.quota.used))} free</p>`;
      }
    } else {
      acc += `<p class="muted">${escapeHtml(s.accountProblem ?? 'not available')}</p>`;
    }
    body += acc + '</section>';
    body += driveSection(s, input.shareUrl);

    // Uploads (nothing to say while the share is not serving)
    let up = '<section><h2>Uploads</h2>';
    if (share.state !== 'ready') {
      up = '';
    } else if (s.uploadMode === 'writethrough') {
      up += '<p class="muted">Write-through mode: a PUT is answered once TeraBox has the file, so nothing waits here. ' +
        '(<code>upload.mode: "writeback"</code> answers once the body is safe on local disk and uploads in the background.)</p>';
    } else if (s.uploads) {
      const u = s.uploads;
      up += `<p>Spool: ${formatBytes(u.spoolBytes)} of ${formatBytes(u.spoolMaxBytes)} waiting on local disk.</p>`;
      if (u.inFlight.length) up += `<h3>Uploading (${u.inFlight.length})</h3><table id="uploads-in-flight"><tr><th>File</th><th>Size</th><th>Progress</th></tr>${uploadRows(u.inFlight, 'inFlight', input)}</table>`;
      if (u.queued.length) up += `<h3>Queued (${u.queued.length})</h3><table id="uploads-queued"><tr><th>File</th><th>Size</th><th>Since</th></tr>${uploadRows(u.queued, 'queued', input)}</table>`;
      if (u.failed.length) up += `<h3>Failed (${u.failed.length})</h3><table id="uploads-failed"><tr><th>File</th><th>Size</th><th>Reason</th><th></th></tr>${uploadRows(u.failed, 'failed', input)}</table>`;
      if (!u.inFlight.length && !u.queued.length && !u.failed.length) up += '<p class="muted">Nothing waiting: every upload has reached TeraBox.</p>';
    }
    if (up) body += up + '</section>';

    // Share links and copies out of them
    if (s.shares && share.state === 'ready' && (s.shares.list.length || s.shares.transfers.length)) {
      let sh = `<section><h2>Share links</h2>`;
      if (s.shares.list.length) {
        sh +=
          `<p>Read-only under <code>${escapeHtml(s.shares.folder)}/</code> (add and remove with <code>terabox-dav share add|remove</code>):</p>` +
          '<table id="shares"><tr><th>Folder</th><th>Link</th><th>Added</th></tr>' +
          s.shares.list.map((x) => `<tr><td>${escapeHtml(x.name)}</td><td>${escapeHtml(x.link)}</td><td>${ago(input.now - x.addedAt)} ago</td></tr>`).join('') +
          '</table>';
      }
      if (s.shares.transfers.length) {
        sh +=
          '<h3>Copies from shares into the drive</h3><table id="transfers"><tr><th>From</th><th>To</th><th>State</th><th>Since</th></tr>' +
          s.shares.transfers
            .map(
              (t) =>
                `<tr><td>${escapeHtml(t.from)}</td><td>${escapeHtml(t.to)}</td>` +
                `<td class="${t.state === 'failed' ? 'bad' : t.state === 'done' ? 'ok' : ''}">${t.state}${t.error ? `: ${escapeHtml(t.error)}` : ''}</td>` +
                `<td>${ago(input.now - t.startedAt)} ago</td></tr>`,
            )
            .join('') +
          '</table>';
      }
      body += sh + '</section>';
    }

    // Service and cache
    let svc = `<section><h2>TeraBox service</h2><p>API calls in the last minute: <b id="calls-per-minute">${input.callsLastMinute}</b>`;
    if (s.pacer) svc += `; pacing ${s.pacer.intervalMs > 0 ? `one call every ${s.pacer.intervalMs} ms` : 'not limited'}, ${s.pacer.backoffs} slowdown(s) since start`;
    svc += '</p>';
    if (input.recentErrors.length) {
      svc +=
        '<table id="recent-errors"><tr><th>When</th><th>Call</th><th>errno / HTTP</th><th>Meaning</th></tr>' +
        input.recentErrors
          .slice(0, 15)
          .map(
            (e) =>
              `<tr><td>${ago(input.now - e.at)} ago</td><td>${escapeHtml(e.endpoint)}</td>` +
              `<td>${e.errno !== undefined ? `errno ${e.errno}` : ''}${e.httpStatus !== undefined && e.httpStatus !== 200 ? ` HTTP ${e.httpStatus}` : ''}</td>` +
              `<td>${escapeHtml(e.meaning)}</td></tr>`,
          )
          .join('') +
        '</table>';
    } else svc += '<p class="muted">No failed calls recently.</p>';
    body += svc + '</section>';

    if (s.cache && share.state === 'ready') {
      const total = s.cache.hits + s.cache.misses;
      const ratio = total > 0 ? `${((s.cache.hits / total) * 100).toFixed(1)} %` : '–';
      body +=
        `<section><h2>Cache</h2><p>Metadata lookups answered from the cache: <b id="cache-hit-ratio">${ratio}</b> (${s.cache.hits} of ${total})` +
        (s.cache.bytes !== undefined ? `; ${formatBytes(s.cache.bytes)} on local disk` : '') +
        '</p></section>';
    }
    body += `<p class="muted">terabox-dav ${escapeHtml(s.version)} · up ${ago(input.now - s.startedAt)}${input.user ? ` · signed in as ${escapeHtml(input.user)}` : ''}</p>`;
  } else if (input.snapshotProblem) {
    body += `<section><p class="bad">${escapeHtml(input.snapshotProblem)}</p></section>`;
  }
  const refresh = share.state === 'ready' ? 15 : 5;
  return page('terabox-dav status', stateHtml, body, refresh);
}
