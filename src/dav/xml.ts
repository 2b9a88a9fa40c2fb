/**
 * Minimal namespace-aware XML reader for request bodies (PROPFIND) and XML escaping for answers.
 * Request bodies are small; answers are written by hand (streamed), not through a DOM.
 */
import { TbdavError } from '../shared/errors.js';

export interface XmlElement {
  /** Namespace URI ('' when none). */
  ns: string;
  local: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated text content of this element (direct text only). */
  text: string;
  /** Text and child elements in document order. */
  content: (XmlElement | string)[];
  /** Raw XML of the element's content (between its tags), as received. */
  inner: string;
  /** In-scope namespace declarations (prefix -> uri; '' is the default namespace). */
  scope: Record<string, string>;
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'));
}

/** Escape for element text content (quotes left as they are: ETags read better). */
export function escapeText(s: string): string {
  return s.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

/** Remove characters XML 1.0 cannot carry. */
export function xmlSafe(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd');
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : m;
    }
    const v = ENTITIES[e];
    if (v === undefined) throw bad(`unknown entity &${e};`);
    return v;
  });
}

function bad(what: string): TbdavError {
  return new TbdavError('TBDAV_BAD_REQUEST', `malformed XML body: ${what}`);
}

const NAME = /^[A-Za-z_\u00c0-\uffff][\w.\-\u00b7\u00c0-\uffff]*(?::[A-Za-z_\u00c0-\uffff][\w.\-\u00b7\u00c0-\uffff]*)?/;
const ATTR = /^\s+([^\s=/>]+)\s*=\s*("([^"]*)"|'([^']*)')/;

/** Parse a document; returns its root element. Throws TBDAV_BAD_REQUEST on malformed input. */
export function parseXml(text: string): XmlElement {
  let i = 0;
  const n = text.length;
  const stack: { el: XmlElement; qname: string; innerStart: number }[] = [];
  let root: XmlElement | undefined;

  const resolve = (qname: string, scope: Record<string, string>, isAttr: boolean): { ns: string; local: string } => {
    const c = qname.indexOf(':');
    if (c === -1) return { ns: isAttr ? '' : scope[''] ?? '', local: qname };
    const prefix = qname.slice(0, c);
    const ns = prefix === 'xml' ? 'http://www.w3.org/XML/1998/namespace' : scope[prefix];
    if (ns === undefined) throw bad(`undeclared prefix ${prefix}`);
    return { ns, local: qname.slice(c + 1) };
  };

  while (i < n) {
    const lt = text.indexOf('<', i);
    if (lt === -1) {
      const rest = text.slice(i);
      if (stack.length) throw bad('unclosed element');
      if (rest.trim()) throw bad('text after root');
      break;
    }
    if (lt > i) {
      const chunk = text.slice(i, lt);
      const top = stack[stack.length - 1];
      if (top) {
        const t = decodeEntities(chunk);
        top.el.text += t;
        top.el.content.push(t);
      } else if (chunk.trim()) throw bad('text outside root');
    }
    i = lt;
    if (text.startsWith('<?', i)) {
      const e = text.indexOf('?>', i);
      if (e === -1) throw bad('unterminated processing instruction');
      i = e + 2;
    } else if (text.startsWith('<!--', i)) {
      const e = text.indexOf('-->', i);
      if (e === -1) throw bad('unterminated comment');
      i = e + 3;
    } else if (text.startsWith('<![CDATA[', i)) {
      const e = text.indexOf(']]>', i);
      if (e === -1) throw bad('unterminated CDATA');
      const top = stack[stack.length - 1];
      if (!top) throw bad('CDATA outside root');
      top.el.text += text.slice(i + 9, e);
      top.el.content.push(text.slice(i + 9, e));
      i = e + 3;
    } else if (text.startsWith('<!', i)) {
      throw bad('DOCTYPE not accepted');
    } else if (text.startsWith('</', i)) {
      const m = NAME.exec(text.slice(i + 2, i + 2 + 512));
      const top = stack.pop();
      if (!m || !top || m[0] !== top.qname) throw bad('mismatched end tag');
      top.el.inner = text.slice(top.innerStart, i);
      const e = text.indexOf('>', i);
      if (e === -1 || text.slice(i + 2 + m[0].length, e).trim()) throw bad('bad end tag');
      i = e + 1;
    } else {
      const m = NAME.exec(text.slice(i + 1, i + 1 + 512));
      if (!m) throw bad('bad start tag');
      const qname = m[0];
      i += 1 + qname.length;
      const raw: [string, string][] = [];
      for (;;) {
        const am = ATTR.exec(text.slice(i, i + 8192));
        if (!am) break;
        raw.push([am[1]!, decodeEntities(am[3] ?? am[4] ?? '')]);
        i += am[0].length;
      }
      while (i < n && /\s/.test(text[i]!)) i++;
      let selfClose = false;
      if (text.startsWith('/>', i)) {
        selfClose = true;
        i += 2;
      } else if (text[i] === '>') {
        i += 1;
      } else throw bad(`bad tag <${qname}>`);
      const parent = stack[stack.length - 1];
      const scope: Record<string, string> = { ...(parent ? parent.el.scope : {}) };
      for (const [k, v] of raw) {
        if (k === 'xmlns') scope[''] = v;
        else if (k.startsWith('xmlns:')) {
          // Namespaces in XML 1.0 §3: a prefix cannot be bound to the empty name.
          if (v === '') throw bad(`empty namespace for prefix ${k.slice(6)}`);
          scope[k.slice(6)] = v;
        }
      }
      const attrs: Record<string, string> = {};
      for (const [k, v] of raw) {
        if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
        const r = resolve(k, scope, true);
        attrs[r.ns ? `{${r.ns}}${r.local}` : r.local] = v;
      }
      const { ns, local } = resolve(qname, scope, false);
      const el: XmlElement = { ns, local, attrs, children: [], text: '', content: [], inner: '', scope };
      if (parent) {
        parent.el.children.push(el);
        parent.el.content.push(el);
      }
      else if (root) throw bad('several roots');
      else root = el;
      if (!selfClose) stack.push({ el, qname, innerStart: i });
    }
    if (stack.length > 64) throw bad('too deep');
  }
  if (stack.length) throw bad('unclosed element');
  if (!root) throw bad('empty document');
  return root;
}

/** `{ns}local` key of an element (the DeadProps key format). */
export function keyOf(el: { ns: string; local: string }): string {
  return `{${el.ns}}${el.local}`;
}

/** Split a `{ns}local` key. */
export function splitKey(key: string): { ns: string; local: string } {
  const close = key.lastIndexOf('}');
  if (!key.startsWith('{') || close === -1) return { ns: '', local: key };
  return { ns: key.slice(1, close), local: key.slice(close + 1) };
}

const XML_NS = 'http://www.w3.org/XML/1998/namespace';

/**
 * Serialise an element's content so that it stands alone: every element carries its namespace
 * (xmlns="..."), prefixed attributes get their own declarations. Used to store dead property values.
 */
export function serializeContent(el: XmlElement): string {
  let out = '';
  for (const node of el.content) {
    if (typeof node === 'string') {
      out += escapeText(node);
      continue;
    }
    let attrs = node.ns ? ` xmlns="${escapeXml(node.ns)}"` : ' xmlns=""';
    let n = 0;
    for (const [key, value] of Object.entries(node.attrs)) {
      const { ns, local } = splitKey(key);
      if (!key.startsWith('{')) attrs += ` ${local}="${escapeXml(value)}"`;
      else if (ns === XML_NS) attrs += ` xml:${local}="${escapeXml(value)}"`;
      else {
        const prefix = `a${n++}`;
        attrs += ` xmlns:${prefix}="${escapeXml(ns)}" ${prefix}:${local}="${escapeXml(value)}"`;
      }
    }
    const inner = serializeContent(node);
    out += inner === '' ? `<${node.local}${attrs}/>` : `<${node.local}${attrs}>${inner}</${node.local}>`;
  }
  return out;
}
