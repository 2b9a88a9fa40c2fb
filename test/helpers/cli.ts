/**
 * Run the terabox-dav CLI from source as a child process (`node --import tsx src/cli/run.ts`),
 * with a clean environment (no TERABOX_DAV_* leaking in from the caller) and bounded time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EmulatorHandle } from '../../src/emulator/index.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const entry = join(repoRoot, 'src/cli/run.ts');

/**
 * A config.json for CLI children against the emulator `emu`, in the folder `base` (made):
 * `base/config.json`, state in `base/state` (made), cache in `base/cache`; the bridge on 127.0.0.1 at
 * a free port, log level warn, terabox.root = the app folder + `root` (e.g. '/cli-test').
 */
export async function writeCliConfig(base: string, emu: Pick<EmulatorHandle, 'authUrl' | 'credentials' | 'appRoot'>, root = ''): Promise<{ file: string; stateDir: string }> {
  const file = join(base, 'config.json');
  const stateDir = join(base, 'state');
  await mkdir(stateDir, { recursive: true });
  await writeFile(
    file,
    JSON.stringify({
      server: { host: '127.0.0.1', port: 0 },
      terabox: { authUrl: emu.authUrl, ...emu.credentials, root: emu.appRoot + root },
      stateDir,
      cacheDir: join(base, 'cache'),
      log: { level: 'warn' },
    }),
  );
  return { file, stateDir };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** process.env without TERABOX_DAV_* and XDG dirs, plus HOME and the given variables. */
export function cleanEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('TERABOX_DAV_') || k.startsWith('XDG_') || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return { ...env, HOME: home, ...extra };
}

export interface RunningCli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `re` on stdout; rejects when the process ends first or after timeoutMs. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves when the process has ended. */
  exited: Promise<CliResult>;
  /** Send a signal and wait for the end (SIGKILL after timeoutMs). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<CliResult>;
}

export function startCli(args: string[], opts: { env: Record<string, string>; cwd?: string; stdin?: string }): RunningCli {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: opts.cwd ?? repoRoot,
    env: opts.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
  else child.stdin!.end();
  const exited = new Promise<CliResult>((res) => {
    child.on('close', (code, signal) => res({ code, signal, stdout: out, stderr: err }));
  });
  let ended = false;
  void exited.then(() => (ended = true));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((res, rej) => {
        const check = (): boolean => {
          const m = out.match(re);
          if (m) {
            cleanup();
            res(m);
            return true;
          }
          return false;
        };
        const onData = (): void => void check();
        const timer = setTimeout(() => {
          cleanup();
          rej(new Error(`timeout waiting for ${re} on stdout; stdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        const onClose = (): void => {
          if (check()) return;
          cleanup();
          rej(new Error(`process ended before ${re} appeared; stdout:\n${out}\nstderr:\n${err}`));
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          child.off('close', onClose);
        };
        child.stdout!.on('data', onData);
        child.on('close', onClose);
        if (ended) onClose();
        else check();
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 20_000) {
      if (!ended) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Run a command to its end (killed after timeoutMs). */
export async function runCli(args: string[], opts: { env: Record<string, string>; cwd?: string; stdin?: string; timeoutMs?: number }): Promise<CliResult> {
  const r = startCli(args, opts);
  const timer = setTimeout(() => r.child.kill('SIGKILL'), opts.timeoutMs ?? 45_000);
  try {
    return await r.exited;
  } finally {
    clearTimeout(timer);
  }
}
