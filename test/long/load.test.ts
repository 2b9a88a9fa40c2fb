/**
 * Load (npm run test:long): 64 concurrent WebDAV clients mixing PROPFIND, GET, PUT, MOVE and DELETE
 * for 60 s against the full stack over the emulator (loopback, port 0). Each client owns a folder
 * and keeps a model of it; all clients also read a shared folder.
 *
 * Holds when: no answer is a 5xx, every answer is the one the model predicts, the final tree on
 * the drive (read through TeraboxRemote, bypassing the vfs cache) equals the union of the models
 * byte for byte, and RSS does not grow over the last half of the run.
 *
 * Knobs: TBDAV_LOAD_SECONDS (60), TBDAV_LOAD_CLIENTS (64).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startTestStack } from '../helpers/stack.js';
import { prng } from '../reliability/helpers.js';

const SECONDS = Number(process.env.TBDAV_LOAD_SECONDS ?? 60);
const CLIENTS = Number(process.env.TBDAV_LOAD_CLIENTS ?? 64);
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

function hrefs(xml: string): string[] {
  return [...xml.matchAll(/<(?:[\w-]+:)?href>([^<]*)<\/(?:[\w-]+:)?href>/gi)].map((m) => decodeURIComponent(new URL(m[1]!, 'http://x').pathname));
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function runLoad(t: { diagnostic(msg: string): void }, mode: 'writethrough' | 'writeback', SECONDS: number): Promise<void> {
  const s = await startTestStack({ emulator: { latencyMs: 2 }, configPatch: { upload: { mode } } });
  const problems: string[] = [];
  const statusCount = new Map<number, number>();
  let ops = 0;
  try {
    // Shared read-only files.
    await fetch(s.url + '/shared', { method: 'MKCOL' }).then((r) => r.arrayBuffer());
    const shared = new Map<string, Buffer>();
    for (let i = 0; i < 8; i++) {
      const data = randomBytes(i === 0 ? 5 * 1024 * 1024 : 20_000 * (i + 1));
      shared.set(`/shared/s${i}.bin`, data);
      const r = await fetch(s.url + `/shared/s${i}.bin`, { method: 'PUT', body: data });
      await r.arrayBuffer();
      assert.ok(r.status === 201 || r.status === 204);
    }
    // Models keep md5 and size, not the bytes: holding every uploaded body in this process made RSS
    // (which includes the test's own heap) grow with the number of live files, not with the bridge.
    type Held = { md5: string; size: number };
    const models: Map<string, Held>[] = [];
    for (let c = 0; c < CLIENTS; c++) {
      const r = await fetch(s.url + `/c${c}`, { method: 'MKCOL' });
      await r.arrayBuffer();
      assert.equal(r.status, 201);
      models.push(new Map());
    }

    const rss: [number, number][] = [];
    const t0 = Date.now();
    const sampler = setInterval(() => rss.push([(Date.now() - t0) / 1000, process.memoryUsage().rss]), 1000);
    const end = t0 + SECONDS * 1000;
    const note = (status: number): void => {
      statusCount.set(status, (statusCount.get(status) ?? 0) + 1);
      ops++;
    };
    const expect = (what: string, status: number, ok: number[]): boolean => {
      note(status);
      if (!ok.includes(status)) {
        problems.push(`${what}: ${status}`);
        return false;
      }
      return true;
    };

    const client = async (c: number): Promise<void> => {
      const r = prng(1000 + c);
      const model = models[c]!;
      const dir = `/c${c}`;
      let seq = 0;
      while (Date.now() < end) {
        const names = [...model.keys()];
        const x = r();
        const pickOwn = (): string => names[Math.floor(r() * names.length)]!;
        if (x < 0.25 || names.length === 0) {
          const p = `${dir}/f${seq++}.bin`;
          const data = randomBytes(r() < 0.1 ? 0 : Math.floor(r() * 256 * 1024));
          const res = await fetch(s.url + p, { method: 'PUT', body: data });
          await res.arrayBuffer();
          if (expect(`PUT ${p}`, res.status, [201, 204])) model.set(p, { md5: md5(data), size: data.length });
        } else if (x < 0.45) {
          const res = await fetch(s.url + dir, { method: 'PROPFIND', headers: { depth: '1' } });
          const xml = await res.text();
          if (expect(`PROPFIND ${dir}`, res.status, [207])) {
            const got = hrefs(xml).filter((h) => h.replace(/\/$/, '') !== dir).sort();
            const want = [...model.keys()].sort();
            if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`PROPFIND ${dir}: listed ${got.length} (${got.slice(0, 3).join(',')}), model ${want.length}`);
          }
        } else if (x < 0.6) {
          const p = pickOwn();
          const res = await fetch(s.url + p);
          const got = Buffer.from(await res.arrayBuffer());
          if (expect(`GET ${p}`, res.status, [200]) && md5(got) !== model.get(p)!.md5) problems.push(`GET ${p}: content differs`);
        } else if (x < 0.75) {
          const [p, data] = [...shared][Math.floor(r() * shared.size)]!;
          const ranged = r() < 0.5 && data.length > 1000;
          const a = ranged ? Math.floor(r() * (data.length - 1000)) : 0;
          const res = await fetch(s.url + p, ranged ? { headers: { range: `bytes=${a}-${a + 999}` } } : {});
          const got = Buffer.from(await res.arrayBuffer());
          if (expect(`GET ${p}`, res.status, [ranged ? 206 : 200]) && md5(got) !== md5(ranged ? data.subarray(a, a + 1000) : data)) problems.push(`GET ${p}${ranged ? ` ${a}` : ''}: content differs`);
        } else if (x < 0.87) {
          const from = pickOwn();
          const to = `${dir}/m${seq++}.bin`;
          const res = await fetch(s.url + from, { method: 'MOVE', headers: { destination: s.url + to, overwrite: 'F' } });
          await res.arrayBuffer();
          if (expect(`MOVE ${from} ${to}`, res.status, [201])) {
            model.set(to, model.get(from)!);
            model.delete(from);
          }
        } else {
          const p = pickOwn();
          const res = await fetch(s.url + p, { method: 'DELETE' });
          await res.arrayBuffer();
          if (expect(`DELETE ${p}`, res.status, [204])) model.delete(p);
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    clearInterval(sampler);

    t.diagnostic(`${ops} ops, statuses ${JSON.stringify(Object.fromEntries(statusCount))}, RSS MiB ${rss.map(([, v]) => Math.round(v / 1048576)).join(' ')}`);
    const fivexx = [...statusCount].filter(([st]) => st >= 500);
    const summary = `${ops} ops, statuses ${JSON.stringify(Object.fromEntries(statusCount))}`;
    assert.deepEqual(fivexx, [], `5xx answers (${summary})`);
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} unexpected answers (${summary})`);
    assert.ok(ops > CLIENTS * 10, `enough operations ran (${summary})`);

    // Write-back: let the queue finish before looking at the drive.
    const until = Date.now() + 120_000;
    while ((s.writeback?.usage().pending ?? 0) > 0) {
      if (Date.now() > until) throw new Error(`write-back queue did not drain: ${JSON.stringify(s.writeback?.usage())}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Final tree, straight from the drive (TeraboxRemote, not the vfs cache).
    const top = (await s.remote.list('/')).map((e) => e.name).sort();
    assert.deepEqual(top, [...Array.from({ length: CLIENTS }, (_, c) => `c${c}`), 'shared'].sort());
    for (let c = 0; c < CLIENTS; c++) {
      const entries = await s.remote.list(`/c${c}`);
      const model = models[c]!;
      assert.deepEqual(entries.map((e) => e.path).sort(), [...model.keys()].sort(), `/c${c} on the drive equals the model`);
      for (const e of entries) assert.equal(e.size, model.get(e.path)!.size, `${e.path} size`);
    }
    // Content of a sample of files, read from the drive.
    for (let c = 0; c < CLIENTS; c += 8) {
      for (const [p, held] of [...models[c]!].slice(0, 3)) {
        const st = await s.remote.openRead(p);
        const parts: Buffer[] = [];
        for await (const ch of st) parts.push(ch as Buffer);
        assert.equal(md5(Buffer.concat(parts)), held.md5, `${p} content on the drive`);
      }
    }

    // RSS flat over the last half: the fitted growth across it stays small.
    const half = rss.filter(([t]) => t >= SECONDS / 2);
    assert.ok(half.length >= 5, 'enough RSS samples');
    const growth = slope(half) * (SECONDS / 2);
    const base = half[0]![1];
    const mib = (n: number): string => `${Math.round(n / 1048576)} MiB`;
    assert.ok(growth < Math.max(64 * 1048576, base * 0.2), `RSS grew by ${mib(growth)} over the last half (from ${mib(base)}; samples ${half.map(([, v]) => mib(v)).join(' ')})`);
  } finally {
    await s.close();
  }
}

test(`load: ${CLIENTS} clients x ${SECONDS} s of PROPFIND/GET/PUT/MOVE/DELETE: no 5xx, final tree as expected, RSS flat`, { timeout: (SECONDS + 240) * 1000 }, async (t) => {
  await runLoad(t, 'writethrough', SECONDS);
});

test(`load in write-back mode: ${CLIENTS} clients x ${Math.ceil(SECONDS / 2)} s, same promises, drive equal after the queue drains`, { timeout: (SECONDS + 300) * 1000 }, async (t) => {
  await runLoad(t, 'writeback', Math.ceil(SECONDS / 2));
});
