/**
 * webdav-server FileSystem subclass over our FileSystem (src/vfs/types.ts). Only the library's own
 * methods use it (LOCK, UNLOCK, PROPPATCH and whatever else is not implemented in src/dav/methods):
 * each hook is a few lines calling the vfs, errors mapped once through toLibError.
 */
import { Readable } from 'node:stream';
import { v2 as webdav } from 'webdav-server';
import type { CallOptions } from '../remote/types.js';
import type { FileSystem as Vfs } from '../vfs/types.js';
import { toLibError } from './errors.js';
import type { LockTable } from './lock-gate.js';

type Path = InstanceType<typeof webdav.Path>;
type Cb<T> = (error?: Error | null, value?: T) => void;

/** Promise -> webdav-server callback, errors mapped to the library's singletons. */
function toCallback<T>(p: Promise<T>, cb: Cb<T>): void {
  p.then(
    (v) => cb(null, v),
    (e: unknown) => cb(toLibError(e)),
  );
}

function fsPath(path: Path): string {
  const s = path.toString();
  const trimmed = s.length > 1 && s.endsWith('/') ? s.slice(0, -1) : s;
  return (trimmed || '/').normalize('NFC');
}

/** The CallOptions (request id) of the request a library hook runs for. */
function callOptions(ctx: unknown): CallOptions {
  const req = (ctx as { context?: { request?: { tbdavRequestId?: string } } }).context?.request;
  return req?.tbdavRequestId ? { requestId: req.tbdavRequestId } : {};
}

/** Serialise xml-js element objects (as xml-js-builder yields them) to raw XML. */
export function libXmlToString(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(libXmlToString).join('');
  const o = value as { type?: string; text?: unknown; cdata?: unknown; name?: string; elements?: unknown[]; attributes?: Record<string, unknown> };
  const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'));
  if (o.type === 'text') return esc(String(o.text ?? ''));
  if (o.type === 'cdata') return esc(String(o.cdata ?? ''));
  if (o.type === 'element' && o.name) {
    const { ns, local: tag } = splitLibName(o.name);
    const xmlns = ` xmlns="${esc(ns)}"`;
    const attrs = Object.entries(o.attributes ?? {})
      .filter(([k]) => k !== 'xmlns' && !k.startsWith('xmlns:'))
      .map(([k, v]) => ` ${k}="${esc(String(v))}"`)
      .join('');
    return `<${tag}${xmlns}${attrs}>${libXmlToString(o.elements ?? [])}</${tag}>`;
  }
  return '';
}

/**
 * Split a library name. xml-js-builder resolves `<Z:foo xmlns:Z="urn:x:">` to the bare concatenation
 * `urn:x:foo`, so the namespace ends at the last ':', '/' or '#' (exact for the usual namespaces:
 * `DAV:`, `urn:schemas-microsoft-com:`, `http://.../`; ambiguous only for namespaces ending in a
 * name character — dav-compliance's own PROPPATCH replaces this path).
 */
function splitLibName(name: string): { ns: string; local: string } {
  const i = Math.max(name.lastIndexOf(':'), name.lastIndexOf('/'), name.lastIndexOf('#'));
  return i === -1 ? { ns: '', local: name } : { ns: name.slice(0, i + 1), local: name.slice(i + 1) };
}

/** Library name -> `{namespace}local` (DeadProps key). */
export function libNameToKey(name: string): string {
  const { ns, local } = splitLibName(name);
  return `{${ns}}${local}`;
}

function keyToLibName(key: string): string {
  const close = key.lastIndexOf('}');
  return `${key.slice(1, close)}${key.slice(close + 1)}`;
}

class VfsPropertyManager implements webdav.IPropertyManager {
  constructor(
    private readonly fs: Vfs,
    private readonly path: string,
  ) {}

  setProperty(name: string, value: webdav.ResourcePropertyValue, _attributes: webdav.PropertyAttributes, callback: webdav.SimpleCallback): void {
    toCallback(this.fs.patchProps(this.path, { [libNameToKey(name)]: libXmlToString(value) }), (e) => callback(e ?? undefined));
  }

  getProperty(name: string, callback: webdav.Return2Callback<webdav.ResourcePropertyValue, webdav.PropertyAttributes>): void {
    this.fs.getProps(this.path).then(
      (props) => {
        const v = props[libNameToKey(name)];
        if (v === undefined) callback(webdav.Errors.PropertyNotFound);
        else callback(undefined, v, {});
      },
      (e: unknown) => callback(toLibError(e)),
    );
  }

  removeProperty(name: string, callback: webdav.SimpleCallback): void {
    toCallback(this.fs.patchProps(this.path, { [libNameToKey(name)]: null }), (e) => callback(e ?? undefined));
  }

  getProperties(callback: webdav.ReturnCallback<webdav.PropertyBag>): void {
    this.fs.getProps(this.path).then(
      (props) => {
        const bag: webdav.PropertyBag = {};
        for (const [k, v] of Object.entries(props)) bag[keyToLibName(k)] = { value: v, attributes: {} };
        callback(undefined, bag);
      },
      (e: unknown) => callback(toLibError(e)),
    );
  }
}

const SERIALIZER_UID = 'terabox-dav-vfs';

export class DavFileSystem extends webdav.FileSystem {
  constructor(
    private readonly vfs: Vfs,
    private readonly locks: LockTable,
  ) {
    super({
      uid: () => SERIALIZER_UID,
      serialize: (_fs: unknown, cb: (e?: Error, v?: unknown) => void) => cb(undefined, {}),
      unserialize: (_data: unknown, cb: (e?: Error, v?: unknown) => void) => cb(new Error('DavFileSystem is not serialisable')),
    } as unknown as webdav.FileSystemSerializer);
  }

  protected override _fastExistCheck(ctx: webdav.RequestContext, path: Path, callback: (exists: boolean) => void): void {
    this.vfs.stat(fsPath(path), callOptions({ context: ctx })).then(
      () => callback(true),
      () => callback(false),
    );
  }

  protected override _type(path: Path, ctx: webdav.TypeInfo, callback: webdav.ReturnCallback<webdav.ResourceType>): void {
    toCallback(
      this.vfs.stat(fsPath(path), callOptions(ctx)).then((e) => (e.isDir ? webdav.ResourceType.Directory : webdav.ResourceType.File)),
      callback as Cb<webdav.ResourceType>,
    );
  }

  protected override _create(path: Path, ctx: webdav.CreateInfo, callback: webdav.SimpleCallback): void {
    const p = fsPath(path);
    const op = ctx.type.isDirectory
      ? this.vfs.mkdir(p, callOptions(ctx)).then(() => undefined)
      : this.vfs.put(p, Readable.from([]), { ...callOptions(ctx), overwrite: false, expectedSize: 0 }).then(() => undefined);
    toCallback(op, (e) => callback(e ?? undefined));
  }

  protected override _size(path: Path, ctx: webdav.SizeInfo, callback: webdav.ReturnCallback<number>): void {
    toCallback(this.vfs.stat(fsPath(path), callOptions(ctx)).then((e) => e.size), callback as Cb<number>);
  }

  protected override _lastModifiedDate(path: Path, ctx: webdav.LastModifiedDateInfo, callback: webdav.ReturnCallback<number>): void {
    toCallback(this.vfs.stat(fsPath(path), callOptions(ctx)).then((e) => e.mtime), callback as Cb<number>);
  }

  protected override _creationDate(path: Path, ctx: webdav.CreationDateInfo, callback: webdav.ReturnCallback<number>): void {
    toCallback(this.vfs.stat(fsPath(path), callOptions(ctx)).then((e) => e.ctime), callback as Cb<number>);
  }

  protected override _readDir(path: Path, ctx: webdav.ReadDirInfo, callback: webdav.ReturnCallback<string[] | Path[]>): void {
    toCallback(this.vfs.list(fsPath(path), callOptions(ctx)).then((es) => es.map((e) => e.name)), callback as Cb<string[]>);
  }

  protected override _lockManager(path: Path, _ctx: webdav.LockManagerInfo, callback: webdav.ReturnCallback<webdav.ILockManager>): void {
    callback(undefined, this.locks.managerFor(fsPath(path)));
  }

  protected override _propertyManager(path: Path, _ctx: webdav.PropertyManagerInfo, callback: webdav.ReturnCallback<webdav.IPropertyManager>): void {
    callback(undefined, new VfsPropertyManager(this.vfs, fsPath(path)));
  }
}
