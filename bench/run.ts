/**
 * `npm run bench [-- --quick] [-- --only name,name]`: the performance suite of issue 4. Every figure
 * is measured beside its reference in the same run (the machine is shared and noisy: ratios, best
 * or median of a few repetitions), written to bench/results/<name>.json, and summarised in README.md
 * between the bench markers. See bench/README.md for the method and the findings.
 *
 * The stack under test runs in a child process (bench/stack-child.ts) whose RSS is sampled from
 * /proc; the load generator and the references run here with the same HTTP client (undici).
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { CONFIG_KEYS } from '../src/cli/config.js';
import { createPrng } from '../src/emulator/util.js';

const MiB = 1024 * 1024;
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const ONLY = (() => {
  const i = args.indexOf('--only');
  return i >= 0 ? new Set(args[i + 1]!.split(',')) : undefined;
})();

/** --only get-only: the GET comparison alone, the file uploaded straight through the remote (no PUT measured). */
const GET_ONLY = ONLY?.has('get-only') ?? false;
/** --reps N: repetitions of each GET measurement (bridge, direct, minimal proxy), best taken; default 3. */
const GET_REPS = (() => {
  const i = args.indexOf('--reps');
  return i >= 0 ? Math.max(1, Number(args[i + 1])) : 3;
})();

const PROFILE = (() => {
  const i = args.indexOf('--profile');
  return i >= 0 ? args[i + 1] : undefined;
})();

const SIZES = QUICK
  ? { big: 128 * MiB, conc: 32 * MiB, folder: 10_000, loadSec: 3, throttled: 16 * MiB, reps: 2 }
  : { big: 1024 * MiB, conc: 256 * MiB, folder: 10_000, loadSec: 10, throttled: 64 * MiB, reps: 3 };

const agent = new Agent({ connections: 128, keepAliveTimeout: 10_000, bodyTimeout: 600_000, headersTimeout: 600_000 });

// ------------------------------------------------------------------ child stack

class StackChild {
  private seq = 0;
  private waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private constructor(readonly proc: ChildProcess) {
    proc.on('message', (raw) => {
      const m = raw as { id: number; ok: boolean; value?: unknown; error?: string };
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.value);
      else w.reject(new Error(m.error));
    });
    proc.on('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`stack child exited ${code}`));
      this.waiting.clear();
    });
  }
  pid = 0;
  static fork(extraExecArgv: string[] = []): StackChild {
    const proc = fork(join(HERE, 'stack-child.ts'), [], { execArgv: ['--import', 'tsx', ...extraExecArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new StackChild(proc);
  }
  call(cmd: string, a: object = {}): Promise<unknown> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.proc.send({ id, cmd, ...a });
    });
  }
  async close(): Promise<void> {
    try {
      await this.call('close');
    } finally {
      this.proc.disconnect();
      await new Promise((r) => (this.proc.exitCode !== null ? r(null) : this.proc.once('exit', r)));
    }
  }
}

/** Samples the RSS of a process (Linux /proc) every 50 ms; peak() since the last reset. */
class RssSampler {
  private max = 0;
  private timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => void this.sample(), 50);
  }
  private async sample(): Promise<void> {
    try {
      const s = await readFile(`/proc/${this.pid}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(s);
      if (m) this.max = Math.max(this.max, Number(m[1]) * 1024);
    } catch {
      // the process ended: nothing more to sample (the timer is stopped by stop())
    }
  }
  reset(): void {
    this.max = 0;
  }
  async peak(): Promise<number> {
    await this.sample();
    return this.max;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/** CPU time [user, system] (ms) a process has used so far (Linux /proc; zeros elsewhere). */
async function cpuMs(pid: number): Promise<[number, number]> {
  try {
    const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    return [Number(f[11]) * 10, Number(f[12]) * 10]; // utime, stime in USER_HZ (100/s) ticks
  } catch {
    return [0, 0];
  }
}

/** `get` with the CPU time [user, system] each of `pids` used meanwhile (ms), from /proc. */
async function getWithCpu(url: string, pids: number[]): Promise<Transfer & { cpu: [number, number][] }> {
  const before = await Promise.all(pids.map(cpuMs));
  const t = await get(url);
  const after = await Promise.all(pids.map(cpuMs));
  return { ...t, cpu: after.map((a, i) => [a[0] - before[i]![0], a[1] - before[i]![1]] as [number, number]) };
}

// ------------------------------------------------------------------ data and HTTP helpers

/** A file of `size` bytes: a random 1 MiB block with its index (and a salt) stamped in, so every 4 MiB shard differs. */
async function makeFile(path: string, size: number): Promise<{ ms: number; blockMd5s: string[]; contentMd5: string }> {
  const t0 = performance.now();
  const block = randomBytes(MiB);
  const fh = await open(path, 'w');
  const whole = createHash('md5');
  const shards: string[] = [];
  let shard = createHash('md5');
  let inShard = 0;
  try {
    for (let off = 0, i = 0; off < size; off += MiB, i++) {
      const b = Buffer.from(block.subarray(0, Math.min(MiB, size - off)));
      if (b.length >= 8) b.writeDoubleBE(i, 0);
      await fh.write(b);
      whole.update(b);
      shard.update(b);
      inShard += b.length;
      if (inShard === 4 * MiB) {
        shards.push(shard.digest('hex'));
        shard = createHash('md5');
        inShard = 0;
      }
    }
    if (inShard > 0 || shards.length === 0) shards.push(shard.digest('hex'));
  } finally {
    await fh.close();
  }
  return { ms: performance.now() - t0, blockMd5s: shards, contentMd5: whole.digest('hex') };
}

interface Transfer {
  ms: number;
  ttfbMs: number;
  bytes: number;
  status: number;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Transfer> {
  const t0 = performance.now();
  let res = await request(url, { method: 'GET', headers, dispatcher: agent });
  // The dlink answers with a redirect to the CDN (the client follows one hop too).
  if (res.statusCode >= 300 && res.statusCode < 400) {
    await res.body.dump();
    res = await request(new URL(String(res.headers.location), url).toString(), { method: 'GET', headers, dispatcher: agent });
  }
  let ttfbMs = -1;
  let bytes = 0;
  for await (const chunk of res.body) {
    if (ttfbMs < 0) ttfbMs = performance.now() - t0;
    bytes += (chunk as Buffer).length;
  }
  return { ms: performance.now() - t0, ttfbMs, bytes, status: res.statusCode };
}

async function put(url: string, file: string, size: number): Promise<Transfer> {
  const t0 = performance.now();
  const res = await request(url, { method: 'PUT', body: createReadStream(file, { highWaterMark: MiB }), headers: { 'content-length': String(size) }, dispatcher: agent });
  await res.body.dump();
  const ms = performance.now() - t0;
  return { ms, ttfbMs: ms, bytes: size, status: res.statusCode };
}

async function dav(url: string, method: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: string; ms: number }> {
  const t0 = performance.now();
  const res = await request(url, { method: method as 'GET', headers, body, dispatcher: agent });
  const text = await res.body.text();
  return { status: res.statusCode, body: text, ms: performance.now() - t0 };
}

/** Flush dirty pages (`sync`) so that a measured write does not pay for the writeback of the previous one. */
function settle(): void {
  execFileSync('sync');
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const best = (xs: number[]): number => Math.min(...xs);
const mbps = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000);
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

function diffCalls(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (k.startsWith('/oauth/')) continue;
    const d = (b[k] ?? 0) - (a[k] ?? 0);
    if (d) out[k] = d;
  }
  return out;
}

/** download.connections by default (1 before issue 10 made ranged reads parallel). */
const DOWNLOAD_CONNECTIONS = Number(CONFIG_KEYS.find((k) => k.key === 'download.connections')?.default ?? 1);

/** Download-host paths of the emulator's counters (dlink hops and bytes: not API calls). */
const DOWNLOAD_HOST = new Set(['/file', '/hop', '/content']);

/** rclone with `args` (one try of the whole command: --retries 1, so no failure hides behind a repeat): wall time, exit code, ERROR lines. */
async function rcloneRun(args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number | null; errors: number; stderr: string }> {
  const t0 = performance.now();
  const p = spawn('rclone', [...args, '--retries', '1', '--config', String(env.RCLONE_CONFIG)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => p.once('exit', (c) => resolve(c)));
  const ms = performance.now() - t0;
  const errors = stderr.split('\n').filter((l) => /\bERROR\b/.test(l)).length;
  if (code !== 0 || errors > 0) console.error(`rclone ${args.join(' ')}: exit ${code}\n${stderr.slice(-2000)}`);
  return { ms, code, errors, stderr };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

/** rclone serve webdav on a local folder (the reference server). */
async function startRclone(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const p = spawn('rclone', ['serve', 'webdav', dir, '--addr', `127.0.0.1:${port}`, '--config', '/dev/null', '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await dav(url + '/', 'OPTIONS');
      if (r.status < 500) break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (p.exitCode !== null) throw new Error(`rclone exited: ${err}`);
  }
  return {
    url,
    stop: async () => {
      p.kill('SIGTERM');
      await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
    },
  };
}

/** `connections` clients each sending `fn` back to back for `seconds`: requests per second. */
async function load(seconds: number, connections: number, fn: () => Promise<number>): Promise<{ rps: number; errors: number; total: number }> {
  const end = performance.now() + seconds * 1000;
  let total = 0;
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) {
      try {
        const st = await fn();
        if (st === 207) total++;
        else errors++;
      } catch {
        errors++;
      }
    }
  }));
  return { rps: total / ((performance.now() - t0) / 1000), errors, total };
}

// ------------------------------------------------------------------ results

interface Result {
  name: string;
  title: string;
  figure: number;
  reference: number | null;
  unit: string;
  ratio: number | null;
  target: string;
  /** null: a figure kept for information, without a target (e.g. get-1g on 2 cores). */
  pass: boolean | null;
  details: Record<string, unknown>;
  machine?: Record<string, unknown>;
}

const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model,
  memoryBytes: totalmem(),
  node: process.version,
  date: new Date().toISOString(),
  quick: QUICK,
};
const results: Result[] = [];

async function record(r: Result): Promise<void> {
  r.machine = machine;
  results.push(r);
  await mkdir(join(HERE, 'results'), { recursive: true });
  await writeFile(join(HERE, 'results', `${r.name}.json`), JSON.stringify(r, null, 2) + '\n');
  console.log(`${r.pass === null ? 'INFO' : r.pass ? 'PASS' : 'FAIL'} ${r.name}: ${r.figure} ${r.unit}${r.reference !== null ? ` vs ${r.reference}` : ''}${r.ratio !== null ? ` (ratio ${r.ratio})` : ''} target ${r.target}`);
}

async function writeReadme(): Promise<void> {
  // Keep rows of benchmarks not run this time (e.g. --only) from their last results file.
  const { readdir } = await import('node:fs/promises');
  const all = new Map<string, Result>();
  for (const f of (await readdir(join(HERE, 'results'))).filter((x) => x.endsWith('.json')).sort()) {
    const r = JSON.parse(await readFile(join(HERE, 'results', f), 'utf8')) as Result;
    all.set(r.name, r);
  }
  const fmt = (x: number | null): string => (x === null ? '—' : String(x));
  const order = ['get-1g', 'seek', 'propfind-10k', 'put-1g', 'memory', 'load-propfind', 'throttled', 'small-up', 'small-down', 'seek-ttfb', 'throttled-conns'];
  const rank = (n: string): number => (order.indexOf(n) + 1 || 99);
  const rows = [...all.values()].sort((a, b) => rank(a.name) - rank(b.name)).map(
    (r) => `| ${r.title} | ${fmt(r.figure)} ${r.unit} | ${fmt(r.reference)} | ${fmt(r.ratio)} | ${r.target} | ${r.pass === null ? 'info' : r.pass ? 'pass' : '**fail**'} | ${String(r.machine?.date ?? '').slice(0, 16)}${r.machine?.quick ? ' (quick)' : ''} |`,
  );
  const section = [
    '<!-- bench:start -->',
    '## Benchmarks',
    '',
    'Generated by `npm run bench` (method, references and findings: [bench/README.md](bench/README.md); raw figures: `bench/results/*.json`).',
    `Last run: ${machine.cpus} CPUs, ${Math.round(machine.memoryBytes / 2 ** 30)} GiB RAM, Node ${machine.node}, on a shared and busy machine (ratios matter, not absolute times).`,
    '',
    '| Benchmark | Measured | Reference | Ratio | Target | Result | Run (UTC) |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    'Why a target is not met, with the profile evidence and suggestions: [bench/README.md](bench/README.md#findings-2026-11-28-2-cpus-shared-and-busy-machine).',
    '<!-- bench:end -->',
  ].join('\n');
  const path = join(ROOT, 'README.md');
  const readme = await readFile(path, 'utf8');
  const a = readme.indexOf('<!-- bench:start -->');
  const b = readme.indexOf('<!-- bench:end -->');
  const next = a >= 0 && b > a ? readme.slice(0, a) + section + readme.slice(b + '<!-- bench:end -->'.length) : readme.replace(/\n*$/, '\n\n') + section + '\n';
  await writeFile(path, next);
}

// ------------------------------------------------------------------ benchmarks

const want = (name: string): boolean => !ONLY || ONLY.has(name);

async function main(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'tbdav-bench-'));
  // Two processes: the emulator, and the bridge stack configured against it as against TeraBox.
  const emuProc = StackChild.fork(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', join(PROFILE, 'emulator')] : []);
  // --profile DIR: the bridge process writes a V8 CPU profile there (bench/README.md, "Profiling").
  const bridgeProc = StackChild.fork(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE] : []);
  const emu = (await emuProc.call('startEmulator')) as { authUrl: string; appRoot: string; pid: number };
  const code = (await emuProc.call('authCode')) as string;
  // A fast pacer for the bench (the default 5 calls/s models the real service's limits, not the bridge's speed).
  const br = (await bridgeProc.call('startBridge', { authUrl: emu.authUrl, appRoot: emu.appRoot, code, callsPerSecond: 1000 })) as { url: string; pid: number };
  const stack = {
    url: br.url.replace(/\/$/, ''),
    pid: br.pid,
    call: (cmd: string, a: object = {}) => (['counters', 'patch', 'authCode', 'accessToken'].includes(cmd) ? emuProc : bridgeProc).call(cmd, a),
    counters: async () => (await emuProc.call('counters')) as { requests: Record<string, number>; bytesServed: number; rateLimited: number },
    close: async () => {
      await bridgeProc.close();
      await emuProc.close();
    },
  };
  const rss = new RssSampler(stack.pid);
  const idleRss = await rss.peak();
  try {
    const big = SIZES.big;
    const bigFile = join(tmp, 'big-a.bin');
    const refFile = join(tmp, 'big-ref.bin');
    let bigUploaded = false;

    if (want('put') || want('get') || want('seek') || want('memory') || want('put-only') || GET_ONLY) {
      let putRss = 0;
      if (GET_ONLY) {
        const f = await makeFile(bigFile, big);
        await stack.call('remoteWrite', { path: '/big.bin', file: { localPath: bigFile, size: big, shardSize: 4 * MiB, blockMd5s: f.blockMd5s, contentMd5: f.contentMd5 } });
        settle();
      } else {
      // ---- 4. PUT 1 GiB vs (spool write + straight shard upload), and 5. memory during it
      settle();
      const ref = await makeFile(refFile, big); // the reference spool write (with shard md5s, as the vfs does)
      settle();
      const refUp = (await stack.call('remoteWrite', {
        path: '/ref.bin',
        file: { localPath: refFile, size: big, shardSize: 4 * MiB, blockMd5s: ref.blockMd5s, contentMd5: ref.contentMd5 },
      })) as number;
      await rm(refFile);
      await makeFile(bigFile, big); // other content: no rapid upload
      settle();
      rss.reset();
      // Split the bridge's PUT into receive+spool and upload: poll the emulator for the precreate.
      const pre0 = (await stack.counters()).requests['/openapi/api/precreate'] ?? 0;
      const tPut = performance.now();
      let spoolPhaseMs = -1;
      let polling = true;
      const poller = (async () => {
        while (polling && spoolPhaseMs < 0) {
          if (((await stack.counters()).requests['/openapi/api/precreate'] ?? 0) > pre0) spoolPhaseMs = performance.now() - tPut;
          else await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const p = await put(stack.url + '/big.bin', bigFile, big);
      polling = false;
      await poller;
      if (p.status !== 201) throw new Error(`PUT big: ${p.status}`);
      bigUploaded = true;
      putRss = await rss.peak();
      const refMs = ref.ms + refUp;
      await record({
        name: 'put-1g',
        title: `PUT ${big / MiB} MiB, wall time vs spool write + straight shard upload`,
        figure: round(p.ms / 1000),
        reference: round(refMs / 1000),
        unit: 's',
        ratio: round(p.ms / refMs),
        target: 'ratio <= 1.25',
        pass: p.ms / refMs <= 1.25,
        details: { bridgeMs: round(p.ms), bridgeReceiveAndSpoolMs: round(spoolPhaseMs), bridgeUploadMs: round(p.ms - spoolPhaseMs), spoolWriteMs: round(ref.ms), remoteUploadMs: round(refUp), bytes: big, peakRssBytes: putRss },
      });
      }

      // --only put-only: the PUT alone (for profiling it).
      if (!ONLY?.has('put-only')) {
        // ---- 1. GET vs direct dlink, same client; best of reps, interleaved
        const dlinkUrl = new URL((await stack.call('dlink', { path: '/big.bin' })) as string);
        dlinkUrl.searchParams.set('access_tokens', (await stack.call('accessToken')) as string);
        const dlink = dlinkUrl.toString();
        const bridgeMs: number[] = [];
        const directMs: number[] = [];
        // CPU ms per GiB of the processes on the path (from /proc), less noisy than the wall time
        // on a shared machine, user+system: [emulator, client (this process)] direct, [emulator, bridge, client] bridged.
        const cpuPerGiB = (cpu: [number, number][]) => cpu.map((c) => `${round((c[0] * 1024 * MiB) / big, 0)}u+${round((c[1] * 1024 * MiB) / big, 0)}s`);
        const directCpu: string[][] = [];
        const bridgeCpu: string[][] = [];
        let getRss = 0;
        for (let i = 0; i < GET_REPS; i++) {
          const d = await getWithCpu(dlink, [emu.pid, process.pid]);
          if (d.bytes !== big) throw new Error(`direct GET: ${d.status} ${d.bytes} bytes`);
          directMs.push(d.ms);
          directCpu.push(cpuPerGiB(d.cpu));
          rss.reset();
          const b = await getWithCpu(stack.url + '/big.bin', [emu.pid, stack.pid, process.pid]);
          if (b.bytes !== big) throw new Error(`bridge GET: ${b.status} ${b.bytes} bytes`);
          getRss = Math.max(getRss, await rss.peak());
          bridgeMs.push(b.ms);
          bridgeCpu.push(cpuPerGiB(b.cpu));
        }
        // A minimal Node proxy (bench/min-proxy.ts) over the same dlink: what any extra Node hop costs here.
        const mp = fork(join(HERE, 'min-proxy.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        const mpPort = await new Promise<number>((resolve) => mp.once('message', (m) => resolve((m as { port: number }).port)));
        const proxyMs: number[] = [];
        const proxyCpu: string[][] = [];
        for (let i = 0; i < GET_REPS; i++) {
          const x = await getWithCpu(`http://127.0.0.1:${mpPort}/?u=${encodeURIComponent(dlink)}`, [emu.pid, mp.pid!, process.pid]);
          if (x.bytes !== big) throw new Error(`min-proxy GET: ${x.status} ${x.bytes} bytes`);
          proxyMs.push(x.ms);
          proxyCpu.push(cpuPerGiB(x.cpu));
        }
        mp.disconnect();
        await new Promise((r) => (mp.exitCode !== null ? r(null) : mp.once('exit', r)));
        const tb = mbps(big, best(bridgeMs));
        const td = mbps(big, best(directMs));
        const tp = mbps(big, best(proxyMs));
        await record({
          name: 'get-1g',
          title: `GET ${big / MiB} MiB, throughput vs the dlink fetched directly`,
          figure: round(tb, 1),
          reference: round(td, 1),
          unit: 'MiB/s',
          ratio: round(tb / td),
          // issue 10: the 0.9 target is retired on 2-core machines (three busy processes on two cores; the
          // bridge is within a few % of a minimal Node proxy): the figure and the CPU breakdown stay as information
          target: machine.cpus <= 2 ? 'information (0.9 retired on 2 cores)' : 'ratio >= 0.9',
          pass: machine.cpus <= 2 ? null : tb / td >= 0.9,
          details: {
            bridgeMs: bridgeMs.map((x) => round(x)),
            directMs: directMs.map((x) => round(x)),
            minimalProxyMs: proxyMs.map((x) => round(x)),
            minimalProxyMiBps: round(tp, 1),
            minimalProxyRatio: round(tp / td),
            bridgeVsMinimalProxy: round(tb / tp),
            cpuMsPerGiB: {
              direct: { processes: 'emulator, client', runs: directCpu },
              bridge: { processes: 'emulator, bridge, client', runs: bridgeCpu },
              minimalProxy: { processes: 'emulator, min-proxy, client', runs: proxyCpu },
            },
            peakRssBytes: getRss,
          },
        });

        if (!GET_ONLY) {
        // ---- 2. Seek: 1 MiB Range at 0 %, 50 %, 99 %: TTFB and bytes pulled upstream
        const offsets = { '0%': 0, '50%': Math.floor(big / 2), '99%': Math.floor(big * 0.99) };
        const ttfb: Record<string, number[]> = { '0%': [], '50%': [], '99%': [] };
        const pulled: Record<string, number[]> = { '0%': [], '50%': [], '99%': [] };
        for (let rep = 0; rep < SIZES.reps; rep++) {
          for (const [k, off] of Object.entries(offsets)) {
            const before = await stack.counters();
            const r = await get(stack.url + '/big.bin', { range: `bytes=${off}-${off + MiB - 1}` });
            if (r.status !== 206 || r.bytes !== MiB) throw new Error(`seek ${k}: ${r.status} ${r.bytes}`);
            const after = await stack.counters();
            ttfb[k]!.push(r.ttfbMs);
            pulled[k]!.push(after.bytesServed - before.bytesServed);
          }
        }
        const med = Object.fromEntries(Object.entries(ttfb).map(([k, v]) => [k, median(v)]));
        const slow = Math.max(...Object.values(med));
        const fast = Math.min(...Object.values(med));
        const maxPulled = Math.max(...Object.values(pulled).flat());
        await record({
          name: 'seek',
          title: `Seek: 1 MiB Range at 0/50/99 % of ${big / MiB} MiB, TTFB slowest/fastest`,
          figure: round(slow / fast),
          reference: null,
          unit: 'x',
          ratio: round(slow / fast),
          target: 'slowest/fastest <= 2 and <= 2 MiB upstream each',
          pass: slow / fast <= 2 && maxPulled <= 2 * MiB,
          details: { ttfbMedianMs: Object.fromEntries(Object.entries(med).map(([k, v]) => [k, round(v)])), ttfbMs: ttfb, bytesPulledUpstream: pulled, maxPulled },
        });

        // ---- 5. Memory: 8 concurrent transfers (4 up, 4 down) of SIZES.conc each
        const ups: string[] = [];
        for (let i = 0; i < 4; i++) {
          const f = join(tmp, `conc-${i}.bin`);
          await makeFile(f, SIZES.conc);
          ups.push(f);
        }
        rss.reset();
        const c0 = performance.now();
        const conc = await Promise.all([
          ...ups.map((f, i) => put(`${stack.url}/conc-${i}.bin`, f, SIZES.conc)),
          ...[0, 1, 2, 3].map((i) => get(stack.url + '/big.bin', { range: `bytes=${i * SIZES.conc}-${(i + 1) * SIZES.conc - 1}` })),
        ]);
        const concMs = performance.now() - c0;
        const concRss = await rss.peak();
        for (const f of ups) await rm(f);
        const bad = conc.filter((t, i) => (i < 4 ? t.status !== 201 : t.status !== 206 || t.bytes !== SIZES.conc));
        const limit = 200 * 1e6;
        const details = { idleRss, putRss, getRss, concRss, concMs: round(concMs), badTransfers: bad.length, processMeasured: 'the bridge process alone (the emulator runs in another process)' };
        const peak = Math.max(putRss, getRss, concRss);
        await record({
          name: 'memory',
          title: `Peak RSS of the bridge process (PUT ${big / MiB} MiB, GET, 4+4 x ${SIZES.conc / MiB} MiB)`,
          figure: round(peak / 1e6, 1),
          reference: null,
          unit: 'MB',
          ratio: null,
          target: '< 200 MB',
          pass: peak < limit && bad.length === 0,
          details,
        });
        }
      }
    }
    await rm(bigFile, { force: true });

    if (want('propfind') || want('load')) {
      // ---- 3. PROPFIND Depth 1 of 10,000 entries: cold calls, warm vs rclone on a local folder
      const n = SIZES.folder;
      await stack.call('seed', { dir: '/many', n });
      const local = join(tmp, 'many');
      await mkdir(local);
      const seedBody = Buffer.from('seed file for the benchmark\n');
      for (let i = 0; i < n; i++) await writeFile(join(local, `file-${String(i).padStart(5, '0')}.txt`), seedBody);
      const local100 = join(tmp, 'hundred');
      await mkdir(local100);
      for (let i = 0; i < 100; i++) await writeFile(join(local100, `file-${String(i).padStart(5, '0')}.txt`), seedBody);
      const rclone = await startRclone(tmp);
      try {
        const before = await stack.counters();
        const cold = await dav(stack.url + '/many/', 'PROPFIND', { depth: '1' });
        const after = await stack.counters();
        const coldCalls = diffCalls(before.requests, after.requests);
        if (cold.status !== 207) throw new Error(`cold PROPFIND: ${cold.status}`);
        const warm: number[] = [];
        const ref: number[] = [];
        let same = true;
        for (let i = 0; i < 5; i++) {
          const w = await dav(stack.url + '/many/', 'PROPFIND', { depth: '1' });
          same &&= w.body === cold.body;
          warm.push(w.ms);
          const r = await dav(rclone.url + '/many/', 'PROPFIND', { depth: '1' });
          if (r.status !== 207) throw new Error(`rclone PROPFIND: ${r.status}`);
          ref.push(r.ms);
        }
        const entries = (cold.body.match(/<(?:D:|d:)?response[ >]/g) ?? []).length;
        if (want('propfind')) {
          const lists = coldCalls['/openapi/api/list'] ?? 0;
          await record({
            name: 'propfind-10k',
            title: `PROPFIND Depth 1 of ${n} entries, warm, vs rclone serve webdav (local folder)`,
            figure: round(median(warm)),
            reference: round(median(ref)),
            unit: 'ms',
            ratio: round(median(warm) / median(ref)),
            target: `ratio <= 1; cold: ${Math.ceil(n / 1000)} list calls, same body as warm`,
            pass: median(warm) <= median(ref) && lists === Math.ceil(n / 1000) && same,
            details: { warmMs: warm.map((x) => round(x)), rcloneMs: ref.map((x) => round(x)), coldMs: round(cold.ms), coldCalls, sameBodyColdWarm: same, entries, bodyBytes: cold.body.length },
          });
        }

        if (want('load')) {
          // ---- 6. Load: PROPFIND of a 100-entry folder, 64 connections
          await stack.call('seed', { dir: '/hundred', n: 100 });
          const w = await dav(stack.url + '/hundred/', 'PROPFIND', { depth: '1' });
          if (w.status !== 207) throw new Error(`PROPFIND /hundred: ${w.status}`);
          const hit = (base: string) => async () => {
            const res = await request(base + '/hundred/', { method: 'PROPFIND' as 'GET', headers: { depth: '1' }, dispatcher: agent });
            await res.body.dump();
            return res.statusCode;
          };
          const ours = await load(SIZES.loadSec, 64, hit(stack.url));
          const theirs = await load(SIZES.loadSec, 64, hit(rclone.url));
          await record({
            name: 'load-propfind',
            title: 'PROPFIND Depth 1 of 100 entries, 64 connections, requests/s vs rclone serve webdav',
            figure: round(ours.rps, 1),
            reference: round(theirs.rps, 1),
            unit: 'req/s',
            ratio: round(ours.rps / theirs.rps),
            target: 'ratio >= 0.5',
            pass: ours.rps / theirs.rps >= 0.5 && ours.errors === 0,
            details: { seconds: SIZES.loadSec, connections: 64, bridge: ours, rclone: theirs, generator: 'closed loop of 64 workers on one undici Agent in the bench process (autocannon-like)' },
          });
        }
      } finally {
        await rclone.stop();
      }
    }

    if (want('throttled')) {
      // ---- 8. Throttled: 2 MB/s per connection, 50 ms latency
      const size = SIZES.throttled;
      const rate = 2e6;
      const f = join(tmp, 'throttled.bin');
      await makeFile(f, size);
      await stack.call('patch', { patch: { throughputBytesPerSec: rate, latencyMs: 50 } });
      try {
        const shards = Math.ceil(size / (4 * MiB));
        const conns = Math.min(4, shards); // upload.concurrency default 4
        const p = await put(stack.url + '/throttled.bin', f, size);
        if (p.status !== 201) throw new Error(`throttled PUT: ${p.status}`);
        const g = await get(stack.url + '/throttled.bin');
        if (g.bytes !== size) throw new Error(`throttled GET: ${g.status} ${g.bytes}`);
        const idealPut = (size / (rate * conns)) * 1000;
        // download.connections (issue 10) fetches a long GET over several connections: the ideal counts them
        const getConns = Math.max(1, Math.min(DOWNLOAD_CONNECTIONS, Math.ceil(size / (2 * MiB))));
        const idealGet = (size / (rate * getConns)) * 1000;
        const worst = Math.max(p.ms / idealPut, g.ms / idealGet);
        await record({
          name: 'throttled',
          title: `Throttled (2 MB/s per connection, 50 ms): ${size / MiB} MiB PUT and GET vs ideal time`,
          figure: round(worst),
          reference: null,
          unit: 'x ideal (worst of PUT, GET)',
          ratio: round(worst),
          target: '<= 1.2',
          pass: worst <= 1.2,
          details: { putMs: round(p.ms), idealPutMs: round(idealPut), putConnections: conns, getMs: round(g.ms), idealGetMs: round(idealGet), getConnections: getConns },
        });
      } finally {
        await stack.call('patch', { patch: { throughputBytesPerSec: 0, latencyMs: 0 } });
        await rm(f, { force: true });
      }
    }

    if (want('small') || want('seek64') || want('conns') || want('issue10')) {
      // ---- 9-11. Issue 10, side by side against the emulator at 30 ms latency and a frequency limit of
      // 10 API calls/s (rateLimit: 31034 beyond it), each on a bridge of its own with the default
      // configuration (terabox.callsPerSecond: the default ceiling; the pacer must find the limit itself).
      const all = want('issue10');
      const n = QUICK ? 50 : 200;
      const seekSize = QUICK ? 128 * MiB : 1024 * MiB;
      const connSize = QUICK ? 16 * MiB : 64 * MiB;
      // The large files are uploaded straight through the remote before the latency and the limit apply.
      const upload = async (name: string, size: number): Promise<void> => {
        const f = join(tmp, name);
        const made = await makeFile(f, size);
        await stack.call('remoteWrite', { path: `/${name}`, file: { localPath: f, size, shardSize: 4 * MiB, blockMd5s: made.blockMd5s, contentMd5: made.contentMd5 } });
        await rm(f);
      };
      // the PUT group's file when it is there and of the size wanted (saves uploading another GiB)
      const seekName = bigUploaded && big === seekSize ? 'big.bin' : 'seek.bin';
      if ((all || want('seek64')) && seekName === 'seek.bin') await upload('seek.bin', seekSize);
      if (all || want('conns')) await upload('conns.bin', connSize);
      const bridges: StackChild[] = [];
      const extraBridge = async (flags: Record<string, unknown>): Promise<{ url: string; pid: number; ignored: string[]; child: StackChild }> => {
        const child = StackChild.fork();
        bridges.push(child);
        const c = (await emuProc.call('authCode')) as string;
        const r = (await child.call('startBridge', { authUrl: emu.authUrl, appRoot: emu.appRoot, code: c, flags })) as { url: string; pid: number; ignored: string[] };
        return { ...r, url: r.url.replace(/\/$/, ''), child };
      };
      const b = await extraBridge({});
      await stack.call('patch', { patch: { latencyMs: 30, rateLimit: { callsPerSecond: 10 } } });
      try {
        if (all || want('small')) {
          // ---- 9. 200 x 10 KiB with rclone copy --transfers 8, up then down
          const src = join(tmp, 'small-src');
          const back = join(tmp, 'small-back');
          await mkdir(src);
          const sums = new Map<string, string>();
          for (let i = 0; i < n; i++) {
            const body = randomBytes(10 * 1024);
            const name = `photo-${String(i).padStart(4, '0')}.jpg`;
            await writeFile(join(src, name), body);
            sums.set(name, createHash('md5').update(body).digest('hex'));
          }
          const env = { ...process.env, HOME: tmp, RCLONE_CONFIG: join(tmp, 'rclone.conf'), RCLONE_CONFIG_B_TYPE: 'webdav', RCLONE_CONFIG_B_URL: b.url, RCLONE_CONFIG_B_VENDOR: 'other' };
          const direction = async (name: 'small-up' | 'small-down', args: string[], check: () => Promise<number>): Promise<void> => {
            const before = await stack.counters();
            const pacer0 = (await b.child.call('pacerStats')) as { calls: number; rateLimited: number; backoffs: number };
            const r = await rcloneRun(args, env);
            const after = await stack.counters();
            const pacer1 = (await b.child.call('pacerStats')) as { calls: number; rateLimited: number; backoffs: number; intervalMs: number; targetMs?: number };
            const calls = diffCalls(before.requests, after.requests);
            const apiCalls = Object.entries(calls).filter(([k]) => !DOWNLOAD_HOST.has(k)).reduce((a, [, v]) => a + v, 0);
            const hostCalls = Object.entries(calls).filter(([k]) => DOWNLOAD_HOST.has(k)).reduce((a, [, v]) => a + v, 0);
            const refused = after.rateLimited - before.rateLimited;
            const mismatched = await check();
            const errors = r.errors + (r.code === 0 ? 0 : 1) + mismatched;
            const filesPerSec = n / (r.ms / 1000);
            const share = apiCalls > 0 ? refused / apiCalls : 0;
            const goal = name === 'small-up' ? 2.5 : 15;
            await record({
              name,
              title: `${n} x 10 KiB, rclone copy --transfers 8 ${name === 'small-up' ? 'up' : 'down'} (30 ms, limit 10 calls/s)`,
              figure: round(filesPerSec, 2),
              reference: null,
              unit: 'files/s',
              ratio: null,
              target: `>= ${goal} files/s, < 10 % of calls answered 31034, 0 errors`,
              pass: filesPerSec >= goal && share < 0.1 && errors === 0,
              details: {
                files: n,
                ms: round(r.ms),
                apiCallsPerFile: round(apiCalls / n, 2),
                downloadHostCallsPerFile: round(hostCalls / n, 2),
                answered31034: refused,
                share31034: round(share, 4),
                errors,
                rcloneExit: r.code,
                rcloneErrorLines: r.errors,
                contentMismatches: mismatched,
                calls,
                pacer: { calls: pacer1.calls - pacer0.calls, rateLimited: pacer1.rateLimited - pacer0.rateLimited, backoffs: pacer1.backoffs - pacer0.backoffs, intervalMsAtEnd: round(pacer1.intervalMs), targetMsAtEnd: pacer1.targetMs === undefined ? null : round(pacer1.targetMs) },
                bridge: 'default configuration (terabox.callsPerSecond = the default ceiling)',
              },
            });
          };
          await direction('small-up', ['copy', src, 'B:small', '--transfers', '8'], async () => 0);
          await direction('small-down', ['copy', 'B:small', back, '--transfers', '8'], async () => {
            let bad = 0;
            for (const [name, sum] of sums) {
              const got = await readFile(join(back, name)).catch(() => undefined);
              if (!got || createHash('md5').update(got).digest('hex') !== sum) bad++;
            }
            return bad;
          });
        }

        if (all || want('seek64')) {
          // ---- 10. 20 sequential 64 KiB Range GETs at random offsets (a player seeking), after one opening read
          const url = `${b.url}/${seekName}`;
          const open = await get(url, { range: 'bytes=0-65535' });
          if (open.status !== 206) throw new Error(`seek64 open: ${open.status}`);
          const random = createPrng(20261205); // the same random offsets in every run
          const ttfb: number[] = [];
          const pulled: number[] = [];
          for (let i = 0; i < 20; i++) {
            const off = Math.floor(random() * (seekSize - 64 * 1024));
            const before = await stack.counters();
            const r = await get(url, { range: `bytes=${off}-${off + 64 * 1024 - 1}` });
            const after = await stack.counters();
            if (r.status !== 206 || r.bytes !== 64 * 1024) throw new Error(`seek64 ${off}: ${r.status} ${r.bytes}`);
            ttfb.push(r.ttfbMs);
            pulled.push(after.bytesServed - before.bytesServed);
          }
          const slowest = Math.max(...ttfb);
          const med = median(ttfb);
          const maxPulled = Math.max(...pulled);
          await record({
            name: 'seek-ttfb',
            title: `Seek: 20 x 64 KiB Range GETs at random offsets of ${seekSize / MiB} MiB (30 ms, limit 10 calls/s), slowest TTFB`,
            figure: round(slowest, 1),
            reference: round(med, 1),
            unit: 'ms',
            ratio: round(slowest / med),
            target: 'slowest <= 100 ms and <= 5 x median; <= 2 MiB upstream each',
            pass: slowest <= 100 && slowest <= 5 * med && maxPulled <= 2 * MiB,
            details: { ttfbMs: ttfb.map((x) => round(x, 1)), medianMs: round(med, 1), bytesPulledUpstream: pulled, maxPulled, openingReadTtfbMs: round(open.ttfbMs, 1) },
          });
        }

        if (all || want('conns')) {
          // ---- 11. Per-connection throttle 2 MB/s: GET with download.connections 4 vs 1
          await stack.call('patch', { patch: { throughputBytesPerSec: 2e6 } });
          try {
            const one = await extraBridge({ 'download.connections': 1 });
            const four = await extraBridge({ 'download.connections': 4 });
            const measure = async (br: { url: string; pid: number }): Promise<{ ms: number; peak: number }> => {
              const sampler = new RssSampler(br.pid);
              try {
                const g = await get(br.url + '/conns.bin');
                if (g.status !== 200 || g.bytes !== connSize) throw new Error(`conns GET: ${g.status} ${g.bytes}`);
                return { ms: g.ms, peak: await sampler.peak() };
              } finally {
                sampler.stop();
              }
            };
            const r1 = await measure(one);
            const r4 = await measure(four);
            const speedup = r1.ms / r4.ms;
            const missing = four.ignored.includes('download.connections');
            await record({
              name: 'throttled-conns',
              title: `Throttled 2 MB/s per connection: GET ${connSize / MiB} MiB with download.connections 4 vs 1`,
              figure: round(speedup, 2),
              reference: null,
              unit: 'x one connection',
              ratio: round(speedup, 2),
              target: '>= 2.5 x; bridge peak RSS < 200 MB',
              pass: !missing && speedup >= 2.5 && r4.peak < 200e6,
              details: {
                oneConnectionMs: round(r1.ms),
                fourConnectionsMs: round(r4.ms),
                idealOneMs: round((connSize / 2e6) * 1000),
                peakRssBytes: { one: r1.peak, four: r4.peak },
                ...(missing ? { note: 'download.connections is not a configuration key of this version: both bridges used one connection' } : {}),
              },
            });
          } finally {
            await stack.call('patch', { patch: { throughputBytesPerSec: 0 } });
          }
        }
      } finally {
        await stack.call('patch', { patch: { latencyMs: 0, rateLimit: undefined } });
        for (const c of bridges) await c.close().catch((err: unknown) => console.error('closing a bridge:', err));
      }
    }
    void bigUploaded;
  } finally {
    rss.stop();
    await stack.close().catch((err: unknown) => console.error('closing the stack:', err));
    await agent.close();
    await rm(tmp, { recursive: true, force: true });
  }
  await writeReadme();
  const failed = results.filter((r) => r.pass === false).map((r) => r.name);
  console.log(`${results.length} benchmarks, ${results.length - failed.length} pass${failed.length ? `, fail: ${failed.join(', ')}` : ''}`);
}

if (args.includes('--readme-only')) await writeReadme();
else await main();
