/**
 * `npm run test:variants`: the suites issue 9 asks to pass under every emulator service variant,
 * run once per preset of src/emulator/variants.ts with env TBDAV_EMULATOR_VARIANT set (the test
 * helpers hand it to every emulator they start; see test/helpers/emulator-variant.ts):
 *   contract        the Remote contract suite on TeraboxRemote (test/terabox/contract.test.ts)
 *   rclone          rclone copy + check --download + copy back (test/variants/rclone-check.ts)
 *   writeback-kill  write-back uploads SIGKILLed mid-upload and resumed (test/reliability/writeback-kill.test.ts)
 * One suite at a time (the machine has 2 cores: run it through /work/tools/heavy). Prints a table
 * preset x suite -> pass/fail and exits 1 when any cell failed. Logs of every run are kept in a
 * temp dir (printed at the end).
 *
 *   npm run test:variants                                   every preset, every suite
 *   npm run test:variants -- --preset spec-examples,obfuscated --suite contract
 */
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VARIANT_PRESETS } from '../../src/emulator/variants.js';

const SUITES: Record<string, string> = {
  contract: 'test/terabox/contract.test.ts',
  rclone: 'test/variants/rclone-check.ts',
  'writeback-kill': 'test/reliability/writeback-kill.test.ts',
};
const SUITE_TIMEOUT_MS = 15 * 60_000;

function listArg(name: string, all: string[]): string[] {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return all;
  const picked = (process.argv[i + 1] ?? '').split(',').filter(Boolean);
  const unknown = picked.filter((p) => !all.includes(p));
  if (unknown.length || picked.length === 0) {
    console.error(`--${name}: unknown ${unknown.join(', ') || '(none given)'}; one or more of ${all.join(', ')}`);
    process.exit(2);
  }
  return picked;
}

interface Cell {
  ok: boolean;
  pass: number;
  fail: number;
  seconds: number;
  log: string;
}

function runSuite(preset: string, file: string, logFile: string): Promise<Cell> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], {
      env: { ...process.env, TBDAV_EMULATOR_VARIANT: preset },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => {
      out += `\n# test:variants: killed after ${SUITE_TIMEOUT_MS / 1000} s\n`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }, SUITE_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      const num = (k: string): number => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(out)?.[1] ?? 0);
      // a skipped test (rclone missing) or a suite that ran nothing is a failure here: the matrix says pass only for what ran
      const cell: Cell = { ok: code === 0 && num('skipped') === 0 && num('pass') > 0, pass: num('pass'), fail: num('fail'), seconds: Math.round((Date.now() - t0) / 1000), log: logFile };
      writeFile(logFile, out).then(
        () => resolve(cell),
        () => resolve(cell),
      );
    });
  });
}

async function main(): Promise<void> {
  const presets = listArg('preset', Object.keys(VARIANT_PRESETS));
  const suites = listArg('suite', Object.keys(SUITES));
  const logDir = await mkdtemp(join(tmpdir(), 'tbdav-variants-'));
  const results = new Map<string, Cell>();
  for (const preset of presets) {
    for (const suite of suites) {
      process.stdout.write(`${preset} x ${suite} ... `);
      const cell = await runSuite(preset, SUITES[suite]!, join(logDir, `${preset}.${suite}.log`));
      results.set(`${preset}|${suite}`, cell);
      console.log(`${cell.ok ? 'pass' : 'FAIL'} (${cell.pass} passed, ${cell.fail} failed, ${cell.seconds} s)`);
    }
  }
  const w = Math.max(...presets.map((p) => p.length), 'preset'.length);
  const cols = suites.map((s) => Math.max(s.length, 'FAIL 99/99'.length));
  console.log('\n' + ['preset'.padEnd(w), ...suites.map((s, i) => s.padEnd(cols[i]!))].join(' | '));
  console.log(['-'.repeat(w), ...cols.map((c) => '-'.repeat(c))].join('-|-'));
  for (const p of presets) {
    const row = suites.map((s, i) => {
      const c = results.get(`${p}|${s}`)!;
      return (c.ok ? 'pass' : `FAIL ${c.fail}/${c.pass + c.fail}`).padEnd(cols[i]!);
    });
    console.log([p.padEnd(w), ...row].join(' | '));
  }
  const failed = [...results.entries()].filter(([, c]) => !c.ok);
  console.log(`\nlogs: ${logDir}`);
  for (const [k, c] of failed) console.log(`  FAIL ${k.replace('|', ' x ')}: ${c.log}`);
  process.exitCode = failed.length ? 1 : 0;
}

await main();
