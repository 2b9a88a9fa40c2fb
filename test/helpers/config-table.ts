/**
 * The README configuration table, generated from CONFIG_KEYS (src/cli/config.ts): one row per key
 * with its environment variable, default and doc, and the flags that set it. The README holds it
 * between `<!-- config:start -->` and `<!-- config:end -->`; test/cli/config.test.ts checks that it
 * is exactly this. Regenerate after changing CONFIG_KEYS:
 *
 *   npm run readme:config        (node --import tsx test/helpers/config-table.ts --write)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_KEYS, envName, type KeyDef } from '../../src/cli/config.js';

export const CONFIG_TABLE_START = '<!-- config:start -->';
export const CONFIG_TABLE_END = '<!-- config:end -->';

/** The default as the README shows it: JSON, a path with `~` for the home directory, or (none). */
function defaultCell(def: KeyDef): string {
  let value = def.default;
  if (typeof value === 'function') value = (value as (c: { env: Record<string, string | undefined>; home: string }) => unknown)({ env: {}, home: '~' });
  if (value === undefined) return '(none)';
  if (def.kind === 'path' && typeof value === 'string') return `\`${value}\``;
  return `\`${JSON.stringify(value)}\``;
}

export function configTable(): string {
  const rows = CONFIG_KEYS.map((def) => {
    const flags = [def.key, ...(def.aliases ?? [])].map((n) => `\`--${n}\``).join(', ');
    return `| \`${def.key}\` | \`${envName(def.key)}\` | ${defaultCell(def)} | ${def.doc} Flag: ${flags}. |`;
  });
  return ['| Key | Environment variable | Default | Meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** The README with its table replaced by the generated one (throws when the markers are missing). */
export function withConfigTable(readme: string): string {
  const start = readme.indexOf(CONFIG_TABLE_START);
  const end = readme.indexOf(CONFIG_TABLE_END);
  if (start < 0 || end < start) throw new Error(`README.md: no ${CONFIG_TABLE_START} ... ${CONFIG_TABLE_END} around the configuration table`);
  return readme.slice(0, start + CONFIG_TABLE_START.length) + '\n' + configTable() + '\n' + readme.slice(end);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = join(fileURLToPath(new URL('../..', import.meta.url)), 'README.md');
  const readme = readFileSync(file, 'utf8');
  if (process.argv.includes('--write')) {
    const next = withConfigTable(readme);
    if (next !== readme) writeFileSync(file, next);
    process.stdout.write(next === readme ? 'README.md: configuration table already current\n' : 'README.md: configuration table regenerated\n');
  } else {
    process.stdout.write(configTable() + '\n');
  }
}
