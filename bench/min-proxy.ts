/**
 * A minimal streaming proxy (the ceiling a Node proxy reaches on this machine): GET /?u=<url>
 * fetches <url> with undici (one redirect followed, Range passed on) and pipes the body to the
 * client. bench/run.ts forks it beside the bridge so that the GET benchmark can tell the cost of
 * any extra hop through a Node process from the cost of our own layers. Prints its port over IPC.
 */
import { createServer } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';

const agent = new Agent({ connections: 16 });
const server = createServer((req, res) => {
  void (async () => {
    const target = new URL(req.url ?? '/', 'http://x').searchParams.get('u') ?? '';
    const headers: Record<string, string> = {};
    if (req.headers.range) headers.range = req.headers.range;
    let up = await request(target, { headers, dispatcher: agent });
    if (up.statusCode >= 300 && up.statusCode < 400) {
      await up.body.dump();
      up = await request(new URL(String(up.headers.location), target).toString(), { headers, dispatcher: agent });
    }
    res.statusCode = up.statusCode;
    for (const h of ['content-length', 'content-range', 'content-type']) if (up.headers[h]) res.setHeader(h, String(up.headers[h]));
    await pipeline(up.body, res);
  })().catch((err: unknown) => {
    console.error('min-proxy:', err instanceof Error ? err.message : err);
    res.destroy();
  });
});
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as { port: number }).port }));
process.on('disconnect', () => server.close(() => process.exit(0)));
