/**
 * First version of the experiment behind the PUT finding in bench/README.md (not part of
 * `npm run bench`; kept to rerun by hand): `node --import tsx bench/spool-experiment.ts [MiB]` forks
 * a receiver that spools PUT bodies to disk with md5s, in two ways: 'perchunk' (await one write per
 * socket chunk: the old spoolBody, replaced in 85dc1eb) and 'batched' (gather 4 MiB into one buffer,
 * keep one write in flight while reading on). What src/vfs/spool.ts does now came out of the later
 * rounds in bench/README.md: 1 MiB batches (BATCH_BYTES) written with one fh.writev, at most one
 * write in flight and two batches held. Prints the wall time of each mode, best of 3, for the same
 * file sent by undici from this process.
 */
import { fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

const MiB = 1024 * 1024;

if (process.argv[2] === '--receiver') {
  const dir = process.argv[3]!;
  let n = 0;
  const server = createServer((req, res) => {
    void (async () => {
      const mode = req.url!.slice(1);
      const fh = await open(join(dir, `r${n++}`), 'w');
      const shard = createHash('md5');
      const whole = createHash('md5');
      if (mode === 'perchunk') {
        for await (const c of req) {
          shard.update(c as Buffer);
          whole.update(c as Buffer);
          await fh.write(c as Buffer);
        }
      } else {
        let parts: Buffer[] = [];
        let have = 0;
        let inflight: Promise<unknown> = Promise.resolve();
        for await (const c of req) {
          shard.update(c as Buffer);
          whole.update(c as Buffer);
          parts.push(c as Buffer);
          have += (c as Buffer).length;
          if (have >= 4 * MiB) {
            await inflight;
            const buf = Buffer.concat(parts, have);
            parts = [];
            have = 0;
            inflight = fh.write(buf);
          }
        }
        await inflight;
        if (have) await fh.write(Buffer.concat(parts, have));
      }
      await fh.close();
      res.end(whole.digest('hex'));
    })();
  });
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port));
  process.on('disconnect', () => process.exit(0));
} else {
  const size = Number(process.argv[2] ?? 512) * MiB;
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-spx-'));
  const file = join(dir, 'src.bin');
  const fh = await open(file, 'w');
  const block = randomBytes(MiB);
  for (let off = 0; off < size; off += MiB) await fh.write(block);
  await fh.close();
  const child = fork(fileURLToPath(import.meta.url), ['--receiver', dir], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((r) => child.once('message', (m) => r(m as number)));
  const agent = new Agent({ bodyTimeout: 0, headersTimeout: 0 });
  const times: Record<string, number[]> = { perchunk: [], batched: [] };
  for (let i = 0; i < 3; i++) {
    for (const mode of ['perchunk', 'batched']) {
      const t0 = performance.now();
      const res = await request(`http://127.0.0.1:${port}/${mode}`, { method: 'PUT', body: createReadStream(file, { highWaterMark: MiB }), headers: { 'content-length': String(size) }, dispatcher: agent });
      await res.body.text();
      times[mode]!.push(performance.now() - t0);
      await rm(join(dir, `r${i * 2 + (mode === 'batched' ? 1 : 0)}`), { force: true });
    }
  }
  for (const [m, t] of Object.entries(times)) console.log(`${m}: best ${Math.round(Math.min(...t))} ms of ${t.map(Math.round).join(', ')} for ${size / MiB} MiB`);
  child.disconnect();
  await agent.close();
  await rm(dir, { recursive: true, force: true });
}
