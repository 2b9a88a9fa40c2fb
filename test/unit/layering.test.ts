/**
 * Keeps the layering of docs/architecture.md true: which src/ folder may import which.
 * terabox -> remote contract <- vfs <- dav; cli wires; the emulator sees only shared (never the
 * product's errors): it has its own wire types and errors, so nothing the client believes leaks into it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { walkFiles } from '../helpers/files.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const src = join(root, 'src');

/** Files a layer may not import although its rules allow their folder. */
const forbidden: Record<string, string[]> = {
  emulator: ['shared/errors.ts'],
};

/** Layer -> layers (src/ folders) it may import. Files may always import within their own layer. */
const allowed: Record<string, string[]> = {
  shared: [],
  remote: ['shared'],
  terabox: ['shared', 'remote'],
  vfs: ['shared', 'remote'],
  dav: ['shared', 'vfs', 'remote'],
  emulator: ['shared'],
  cli: ['shared', 'remote', 'terabox', 'vfs', 'dav', 'emulator'],
};

/** The .ts files below `dir`. */
const walk = async (dir: string): Promise<string[]> => (await walkFiles(dir)).filter((f) => f.endsWith('.ts'));

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

test('src/ layers import only what docs/architecture.md allows', async () => {
  const violations: string[] = [];
  const files = await walk(src);
  assert.ok(files.length > 0, 'no source files found');
  for (const file of files) {
    const rel = relative(src, file);
    const layer = rel.split('/')[0]!;
    const rules = allowed[layer];
    if (!rules) {
      violations.push(`${rel}: unknown layer '${layer}'`);
      continue;
    }
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2]!;
      if (!spec.startsWith('.')) continue; // packages and node: built-ins
      const target = relative(src, resolve(dirname(file), spec)).replace(/\.js$/, '.ts');
      const targetLayer = target.split('/')[0]!;
      if (targetLayer === layer) continue;
      const ok = rules.some((r) => (r.endsWith('.ts') ? target === r : targetLayer === r)) && !(forbidden[layer] ?? []).includes(target);
      if (!ok) violations.push(`${rel} imports ${target}`);
    }
  }
  assert.deepEqual(violations, []);
});

test('nothing in src/terabox knows about the emulator', async () => {
  const hits: string[] = [];
  for (const file of await walk(join(src, 'terabox'))) {
    const text = await readFile(file, 'utf8');
    if (/emulator/i.test(text.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, ''))) hits.push(relative(src, file));
  }
  assert.deepEqual(hits, []);
});

test("vfs/ knows nothing of TeraBox's shard rule, and the Remote contract nothing of its upload sessions", async () => {
  // The vfs asks the Remote how to cut a body (Remote.shardSizeFor); the rule, its numbers and the
  // service md5 live in src/terabox/shards.ts (with api/types.ts) only.
  const strip = (t: string): string => t.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
  const hits: string[] = [];
  const teraboxRule = /\b(SHARD_MIN_BYTES|SHARD_BYTES|MAX_SHARDS|serviceMd5|blockListMd5)\b|\b4\s*\*\s*1024\s*\*\s*1024\b|\b4194304\b|\b1024\s*\*\s*4\s*\*\s*1024\b/;
  for (const file of await walk(join(src, 'vfs'))) {
    const m = teraboxRule.exec(strip(await readFile(file, 'utf8')));
    if (m) hits.push(`${relative(src, file)}: ${m[0]}`);
  }
  const contract = strip(await readFile(join(src, 'remote', 'types.ts'), 'utf8'));
  const session = /\b(uploadId|uploadid|doneShards|UploadProgress|precreate|superfile2)\b/.exec(contract);
  if (session) hits.push(`remote/types.ts: ${session[0]}`);
  assert.deepEqual(hits, []);
});
