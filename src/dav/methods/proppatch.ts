/**
 * PROPPATCH (RFC 4918 §9.2) over fs.getProps/fs.patchProps: instructions applied in document order,
 * all or nothing (one patchProps call). Live DAV: properties are protected (403, the rest 424).
 * Values are stored as self-contained XML (namespaces made explicit), so PROPFIND can return them
 * verbatim. Windows' Win32* properties (urn:schemas-microsoft-com:) are ordinary dead properties.
 */
import { TbdavError } from '../../shared/errors.js';
import { readSmallBody, type DavDeps, type DavRequest } from '../context.js';
import { hrefFor } from '../paths.js';
import { escapeText, escapeXml, keyOf, parseXml, serializeContent, type XmlElement } from '../xml.js';

const DAV = 'DAV:';

function propElement(el: { ns: string; local: string }): string {
  if (el.ns === DAV) return `<D:${el.local}/>`;
  return el.ns === '' ? `<${el.local} xmlns=""/>` : `<z:${el.local} xmlns:z="${escapeXml(el.ns)}"/>`;
}

export async function handleProppatch(r: DavRequest, deps: DavDeps): Promise<void> {
  const body = await readSmallBody(r);
  const entry = await deps.fs.stat(r.path, r.call);
  let root: XmlElement;
  try {
    root = parseXml(body);
  } catch (err) {
    throw err instanceof TbdavError ? err : new TbdavError('TBDAV_BAD_REQUEST', `PROPPATCH ${r.path}: malformed body`);
  }
  if (root.ns !== DAV || root.local !== 'propertyupdate') {
    throw new TbdavError('TBDAV_BAD_REQUEST', `PROPPATCH ${r.path}: root element is not DAV:propertyupdate`);
  }
  await deps.locks.checkWrite(r.req, [{ path: r.path }]);

  const patch: Record<string, string | null> = {};
  const touched: XmlElement[] = [];
  const forbidden: XmlElement[] = [];
  for (const instr of root.children) {
    if (instr.ns !== DAV || (instr.local !== 'set' && instr.local !== 'remove')) continue;
    for (const prop of instr.children.filter((c) => c.ns === DAV && c.local === 'prop')) {
      for (const p of prop.children) {
        if (p.ns === DAV) {
          forbidden.push(p);
          continue;
        }
        touched.push(p);
        patch[keyOf(p)] = instr.local === 'set' ? serializeContent(p) : null;
      }
    }
  }
  if (touched.length === 0 && forbidden.length === 0) {
    throw new TbdavError('TBDAV_BAD_REQUEST', `PROPPATCH ${r.path}: no property to set or remove`);
  }
  const propstat = (els: XmlElement[], status: string): string =>
    els.length === 0 ? '' : `<D:propstat><D:prop>${els.map(propElement).join('')}</D:prop><D:status>HTTP/1.1 ${status}</D:status></D:propstat>`;
  let stats: string;
  if (forbidden.length > 0) {
    stats = propstat(forbidden, '403 Forbidden') + propstat(touched, '424 Failed Dependency');
  } else {
    await deps.fs.patchProps(r.path, patch);
    stats = propstat(touched, '200 OK');
  }
  const xml =
    '<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:"><D:response>' +
    `<D:href>${escapeText(hrefFor(r.path, entry.isDir))}</D:href>${stats}</D:response></D:multistatus>\n`;
  r.res.statusCode = 207;
  r.res.setHeader('Content-Type', 'application/xml; charset=utf-8');
  r.res.setHeader('Content-Length', Buffer.byteLength(xml));
  r.res.end(xml);
}
