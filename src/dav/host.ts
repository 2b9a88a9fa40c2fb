/**
 * webdav-server (the design card's WebDAV layer) as the request front of the bridge: every request
 * is handed to `v2.WebDAVServer.executeRequest`, which builds its request context, runs the
 * `beforeRequest` hooks and dispatches to the method registered with `server.method(NAME, ...)`.
 * The registered methods are ours (./methods); none of the library's own commands remains (POST
 * and friends go to the unknown-method handler: 405).
 *
 * What the library is NOT allowed to do, and how it is kept from it:
 *  - decode the URL: its context creation runs `decodeURIComponent` on the raw target and throws
 *    (synchronously, out of the http 'request' listener) on a bad escape, and answers a bare 403 to
 *    '..' above the root. It therefore sees a view of the request whose `url` is our decoded,
 *    re-encoded path ('/' when ours refused the target; the 400 is answered by our hook);
 *  - authenticate: its default HTTPDigestAuthentication would add a Digest challenge to every
 *    answer. It gets a pass-through authenticator; Basic auth and throttling run in our hook;
 *  - read bodies: every method is registered `chunked`, so the library never buffers a body
 *    (its unchunked path allocates Content-Length bytes in memory);
 *  - answer: the CORS, Server and Allow headers it sets on every answer are taken off again, and
 *    its console.error listener on the response is replaced by our logger.
 *
 * Shared state: `states` (per request, keyed by the response) — event loop only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { v2 } from 'webdav-server';
import type { Logger } from '../shared/logger.js';
import { redact } from '../shared/redact.js';

/** Headers webdav-server's context creation sets on every answer that are not ours to send. */
const LIBRARY_HEADERS = [
  'Access-Control-Allow-Origin',
  'Access-Control-Allow-Credentials',
  'Access-Control-Expose-Headers',
  'Server',
  'Allow',
] as const;

export interface HostedRequest {
  /** URL handed to the library: our decoded path, re-encoded ('/' when the target was refused). */
  readonly libraryUrl: string;
  /** Auth, throttling, target check; false when it answered the request itself. */
  admit(): Promise<boolean>;
  /** Run our handler for the method (undefined: unknown method, 405). Never rejects. */
  run(method: string | undefined): Promise<void>;
  /** Answer a request the library could not take (its context creation threw). */
  refuse(err: unknown): void;
  /** Headers we set before the library ran and that it overwrote (DAV). */
  readonly headers: Record<string, string>;
}

export interface DavHost {
  /** The library server (tests and hooks). */
  readonly dav: v2.WebDAVServer;
  execute(req: IncomingMessage, res: ServerResponse, hosted: HostedRequest): void;
}

/** Lets every request through to our hook: the library never sees credentials. */
class PassThroughAuthentication implements v2.HTTPAuthentication {
  private readonly user: v2.IUser = { uid: 'bridge', username: 'bridge', isAdministrator: true, isDefaultUser: false };
  askForAuthentication(): { [name: string]: string } {
    return {};
  }
  getUser(_ctx: v2.HTTPRequestContext, callback: (error: Error, user?: v2.IUser) => void): void {
    callback(null as unknown as Error, this.user);
  }
}

/**
 * The library's root file system. Context creation asks it for the type of every requested path
 * (through a privilege check, to compute an Allow header we take off again); it holds nothing and
 * answers at once.
 */
class EmptyRoot extends v2.VirtualFileSystem {
  override type(_ctx: v2.RequestContext, _path: v2.Path | string, callback: v2.ReturnCallback<v2.ResourceType>): void {
    callback(v2.Errors.ResourceNotFound);
  }
}

export function createDavHost(methods: readonly string[], logger: Logger): DavHost {
  const dav = new v2.WebDAVServer({
    rootFileSystem: new EmptyRoot(),
    httpAuthentication: new PassThroughAuthentication(),
    requireAuthentification: false,
    // Never started (we own the http.Server); fixed so the library does not read its package.json.
    version: '2',
    serverName: 'terabox-dav',
  });
  // Drop the library's own commands (GET, PUT, POST... on its in-memory file system). A map without
  // a prototype: no method name can reach Object.prototype members.
  dav.methods = Object.create(null) as typeof dav.methods;

  const states = new WeakMap<ServerResponse, HostedRequest>();
  const stateOf = (ctx: v2.HTTPRequestContext): HostedRequest => {
    const s = states.get(ctx.response);
    if (!s) throw new Error('webdav-server: request not prepared by the bridge');
    return s;
  };

  dav.beforeRequest((ctx, next) => {
    const res = ctx.response;
    for (const h of LIBRARY_HEADERS) res.removeHeader(h);
    const s = stateOf(ctx);
    for (const [k, v] of Object.entries(s.headers)) res.setHeader(k, v);
    // The library logs response errors raw to the console; ours go to the logger, redacted.
    res.removeAllListeners('error');
    res.on('error', (err) => logger.debug(`http: response error: ${redact(String(err?.message ?? err))}`));
    s.admit().then(
      (ok) => (ok ? next() : ctx.exit()),
      () => ctx.exit(), // admit() answers its own failures; nothing left to do
    );
  });

  const manager = (method: string | undefined): v2.HTTPMethod => ({
    chunked(ctx, _body, done) {
      // Our handlers read ctx.request's real stream themselves (the library got a view without it).
      void stateOf(ctx).run(method).finally(() => {
        if (ctx.response.destroyed) dav.invokeAfterRequest(ctx, () => undefined);
        else done();
      });
    },
    isValidFor: () => true,
  });
  for (const name of methods) dav.method(name, manager(name));
  dav.onUnknownMethod(manager(undefined));

  return {
    dav,
    execute(req, res, hosted) {
      states.set(res, hosted);
      // The library reads url, method and headers; the body stays with our handlers.
      const view = { url: hosted.libraryUrl, method: req.method, headers: req.headers } as IncomingMessage;
      try {
        dav.executeRequest(view, res);
      } catch (err) {
        hosted.refuse(err);
      }
    },
  };
}
