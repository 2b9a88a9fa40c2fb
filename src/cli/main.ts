/**
 * The terabox-dav command line (yargs). Commands only parse, load the configuration and call the
 * composition root (stack.ts) or the client; every failure ends as one clear line on stderr:
 *   exit 2  configuration or usage problem (`config server.port: must be an integer 0-65535`)
 *   exit 1  anything else (not logged in, service refused, ...)
 * Stack traces are never printed (run with log.level=debug to see causes in the logs).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import yargs, { type Argv } from 'yargs';
import { startEmulator, EMULATOR_CREDENTIALS, VARIANT_PRESETS, DEFAULT_VARIANT, isVariantPresetName, type ServiceVariant } from '../emulator/index.js';
import { isTbdavError, TbdavError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { hashPassword } from '../shared/password.js';
import { redact } from '../shared/redact.js';
import { tokenFilePath } from '../terabox/auth/token-store.js';
import { isTeraboxApiError } from '../terabox/errors.js';
import { CONFIG_KEYS, hasCredentials, loadConfig, redactConfig, suggest, type Config } from './config.js';
import { pngFromDataUrl, pngToTerminalQr } from './qr-terminal.js';
import { clientFor, loggerFor, startStack, tokenDir, vfsDirs } from './stack.js';
import { ShareStore } from '../terabox/share-store.js';
import { addShare } from '../terabox/shares.js';
import { normalizePath } from '../vfs/paths.js';
import { askServer, offlineUploads, type ControlAnswer, type ControlRequest, type UploadRow } from '../vfs/uploads-control.js';
import { FAILURE_MEANING, writebackDirs } from '../vfs/writeback.js';
import { formatBytes } from '../shared/format.js';

export interface CliIo {
  env: Record<string, string | undefined>;
  cwd: string;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Resolves with the signal name when the process is asked to stop (default: SIGINT/SIGTERM). */
  waitForStop: () => Promise<string>;
  /** Record the exit code (default: process.exitCode). */
  setExitCode: (code: number) => void;
}

class UsageError extends Error {
  override readonly name = 'UsageError';
}

function defaultWaitForStop(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      // A second signal while stopping: give up at once.
      const force = (): void => {
        process.stderr.write('terabox-dav: stopping immediately\n');
        process.exit(1);
      };
      process.once('SIGINT', force);
      process.once('SIGTERM', force);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

const VIP_TYPES: Record<number, string> = { 0: 'regular user', 1: 'Premium', 2: 'super Premium' };

function mountHelp(url: string, withUsers: boolean): string {
  const u = new URL(url);
  const auth = withUsers ? ' (log in with a user of server.users)' : '';
  return [
    `Mount it${auth}:`,
    `  macOS Finder:     Go > Connect to Server (Cmd-K), enter ${url}`,
    `  Windows Explorer: This PC > Map network drive > Folder: ${url}`,
    `                    Basic authentication over plain HTTP needs HKLM\\SYSTEM\\CurrentControlSet\\Services\\WebClient\\Parameters`,
    `                    BasicAuthLevel=2 (then restart the WebClient service), or serve HTTPS (server.tls.cert/key).`,
    `  Linux davfs2:     sudo mount -t davfs ${url} /mnt`,
    `  rclone:           rclone config create tb webdav url=${url} vendor=other && rclone ls tb:`,
    `  media players:    add a WebDAV source ${u.protocol}//${u.host}${u.pathname} in VLC, Kodi or Infuse`,
  ].join('\n');
}

/** An argument as a POSIX shell needs it to come back unchanged (for commands we suggest). */
function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Flags of config keys as given (yargs stores each key under its dotted name). */
function flagsFrom(argv: Record<string, unknown>): Record<string, unknown> {
  const flags: Record<string, unknown> = {};
  for (const def of CONFIG_KEYS) {
    const v = argv[def.key];
    if (v !== undefined) flags[def.key] = Array.isArray(v) ? v[v.length - 1] : v;
  }
  return flags;
}

/** Which spelling of each config flag the user typed (`--port` or `--server.port`), for messages. */
function flagNamesFrom(argv: string[]): Record<string, string> {
  const names: Record<string, string> = {};
  for (const def of CONFIG_KEYS) {
    for (const name of [def.key, ...(def.aliases ?? [])]) {
      if (argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`))) names[def.key] = name;
    }
  }
  return names;
}

/**
 * Where `emulator` listens: --host/--port (aliases of server.host/server.port) count only when given
 * on the command line; server.* from the environment or the config file belong to the WebDAV server.
 * Its four listeners take port..port+3; port 0 (or none) lets the system choose free ports.
 */
function emulatorListen(args: Record<string, unknown>, cfg: Config): { host?: string; ports?: { auth: number; api: number; upload: number; download: number } } {
  const at: { host?: string; ports?: { auth: number; api: number; upload: number; download: number } } = {};
  if (args['server.host'] !== undefined) at.host = cfg.server.host;
  if (args['server.port'] !== undefined && cfg.server.port !== 0) {
    const p = cfg.server.port;
    if (p > 65535 - 3) throw new UsageError(`emulator --port ${p}: the four listeners take port..port+3, so at most ${65535 - 3}`);
    at.ports = { auth: p, api: p + 1, upload: p + 2, download: p + 3 };
  }
  return at;
}

/**
 * `emulator --variant NAME`: one of the emulator's named service variants (VARIANT_PRESETS), so a
 * tester can act out from the CLI what the spec leaves open (docs/protocol-notes.md "Service variants").
 * Returns the preset and how it differs from the default (for the banner), or undefined when not given.
 */
function emulatorVariant(value: unknown): { name: string; variant: ServiceVariant; differs: string } | undefined {
  if (value === undefined) return undefined;
  const names = Object.keys(VARIANT_PRESETS).join(', ');
  if (typeof value !== 'string' || value === '') throw new UsageError(`emulator --variant: give one preset, one of ${names}`);
  if (!isVariantPresetName(value)) throw new UsageError(`emulator --variant ${value}: unknown preset; one of ${names}`);
  const variant: ServiceVariant = { ...VARIANT_PRESETS[value] };
  const differs = (Object.keys(DEFAULT_VARIANT) as (keyof ServiceVariant)[])
    .filter((k) => variant[k] !== DEFAULT_VARIANT[k])
    .map((k) => `${k} ${String(variant[k])}`)
    .join(', ');
  return { name: value, variant, differs };
}

/** `emulator --token-ttl SECONDS`: a whole number of seconds, at least 1 (undefined when not given). */
function emulatorTokenTtl(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`emulator --token-ttl ${Array.isArray(value) ? value.join(' ') : String(value)}: must be a whole number of seconds, at least 1`);
  return n;
}

/** One line of `uploads list`. */
function uploadLine(u: UploadRow, now: number): string {
  let why = '';
  if (u.failed) {
    why = `refused: ${u.failed.code} (${FAILURE_MEANING[u.failed.code] ?? 'refused'}) since ${new Date(u.failed.at).toISOString().replace(/\.\d+Z$/, 'Z')}`;
  } else if (u.lastError) {
    const next = u.nextAttemptAt !== undefined ? `, next attempt in ${Math.max(0, Math.round((u.nextAttemptAt - now) / 1000))} s` : '';
    why = `last error ${u.lastError}${next}`;
  }
  return `${u.state.padEnd(9)} ${String(u.attempts).padStart(8)}  ${formatBytes(u.size).padStart(10)}  ${u.path}${why ? `  (${why})` : ''}`;
}

async function readPassword(io: CliIo): Promise<string> {
  const stdin = io.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
    const text = Buffer.concat(chunks).toString('utf8');
    return text.split(/\r?\n/)[0] ?? '';
  }
  // One interface for both questions: closing one would drop input already buffered for the next.
  const rl = createInterface({ input: stdin, output: io.stderr, terminal: true });
  // Hide typing: echo nothing after the prompt.
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => undefined;
  const ask = (prompt: string): Promise<string> =>
    new Promise((resolve) => {
      io.stderr.write(prompt);
      rl.question('', (answer) => {
        io.stderr.write('\n');
        resolve(answer);
      });
    });
  let a: string;
  let b: string;
  try {
    a = await ask('Password: ');
    b = await ask('Again: ');
  } finally {
    rl.close();
  }
  if (a !== b) throw new UsageError('hash-password: the two passwords differ');
  return a;
}

/** The one-line message for an error (no stack, secrets redacted). */
function messageOf(err: unknown, argv: string[] = []): string {
  if (err instanceof UsageError && /^Did you mean/.test(err.message)) return `unknown command ${argv[0] ?? ''}: ${err.message}`;
  const unknown = err instanceof UsageError ? /^Unknown arguments?: (.+)$/.exec(err.message) : null;
  if (unknown) {
    // yargs names `--bogus` "bogus": say which were options (as typed) and which stray words.
    const names = unknown[1]!.split(', ');
    const asTyped = names.map((n) => (argv.some((a) => a === `--${n}` || a.startsWith(`--${n}=`)) ? `--${n}` : n));
    const options = asTyped.filter((n) => n.startsWith('--'));
    const words = asTyped.filter((n) => !n.startsWith('--'));
    const guess = options.length === 1 ? suggest(options[0]!.slice(2)).replace(/did you mean (\S+)\?/, 'did you mean --$1?') : '';
    return [
      ...(options.length ? [`unknown option${options.length > 1 ? 's' : ''} ${options.join(', ')}${guess}`] : []),
      ...(words.length ? [`unexpected argument${words.length > 1 ? 's' : ''} ${words.join(', ')}`] : []),
    ].join('; ') + (guess ? '' : ' (--help lists them)');
  }
  if (isTeraboxApiError(err)) return redact(err.message);
  if (err instanceof Error) return redact(err.message);
  return redact(String(err));
}

function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return 2;
  if (isTbdavError(err, 'TBDAV_CONFIG')) return 2;
  return 1;
}

export async function main(argv: string[], ioOverrides: Partial<CliIo> = {}): Promise<void> {
  const io: CliIo = {
    env: process.env,
    cwd: process.cwd(),
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    waitForStop: defaultWaitForStop,
    setExitCode: (code) => {
      process.exitCode = code;
    },
    ...ioOverrides,
  };
  const out = (line = ''): void => {
    io.stdout.write(line + '\n');
  };

  const config = (args: Record<string, unknown>): Config =>
    loadConfig({
      flags: flagsFrom(args),
      flagNames: flagNamesFrom(argv),
      env: io.env,
      cwd: io.cwd,
      configFile: typeof args.config === 'string' ? args.config : undefined,
    });

  const needCredentials = (cfg: Config, command: string): void => {
    if (!hasCredentials(cfg)) {
      throw new TbdavError(
        'TBDAV_CONFIG',
        `config terabox.clientId: ${command} needs TeraBox credentials (terabox.clientId, terabox.clientSecret, terabox.privateSecret); without them, serve uses the embedded emulator and needs no login`,
      );
    }
  };

  /** `serve` once the configuration is loaded: start, print how to mount, wait for a signal, stop. */
  const serve = async (cfg: Config, logger: Logger, stopSignal: Promise<string>): Promise<void> => {
    const stack = await startStack(cfg, { logger });
    if (stack.emulator) {
      out(`Serving the EMBEDDED EMULATOR (no TeraBox credentials configured), data in ${join(cfg.stateDir, 'emulator')}`);
      out('  To serve your TeraBox drive, set terabox.clientId/clientSecret/privateSecret and run terabox-dav login.');
    } else {
      out(`Serving TeraBox folder ${cfg.terabox.root}`);
    }
    out(`WebDAV URL: ${stack.url}`);
    out(`Status page: ${stack.url}/.terabox-dav/`);
    const state = stack.monitor.share();
    if (state.state === 'login') {
      // Issue 11: no saved login (or a refused one) no longer stops serve: the share answers 503
      // until someone logs in through the status page.
      out(`NOT LOGGED IN to TeraBox${state.problem ? ` (${state.problem})` : ''}.`);
      out(`  Open ${stack.url}/.terabox-dav/ in a browser and scan the QR code with the TeraBox app (or run terabox-dav login).`);
      out('  The share answers 503 until then and comes up by itself once you have approved.');
      void stack.serving.then(() => {
        if (stack.monitor.share().state === 'ready') out('Logged in: the share is serving.');
      });
    }
    out(mountHelp(stack.url, cfg.server.users.length > 0));
    out('Press Ctrl-C to stop.');
    const sig = await stopSignal;
    logger.info(`serve: ${sig} received, stopping`);
    await stack.close();
    out('Stopped.');
  };

  let parser: Argv = yargs(argv)
    .scriptName('terabox-dav')
    .parserConfiguration({ 'dot-notation': false, 'camel-case-expansion': false })
    .usage('$0 <command> [options]\n\nA WebDAV server whose storage is a TeraBox cloud drive.')
    .option('config', { type: 'string', describe: 'JSON configuration file (or $TERABOX_DAV_CONFIG)', global: true })
    .strict()
    .exitProcess(false)
    .help()
    .version()
    .wrap(Math.min(120, (io.stdout as { columns?: number }).columns ?? 100))
    .fail((msg, err) => {
      // yargs' own messages may span lines ("Invalid values:\n  Argument: ..."): one line, as ours.
      throw err ?? new UsageError(msg.replace(/\s*\n\s*/g, ' ').trim());
    });
  for (const def of CONFIG_KEYS) {
    parser = parser.option(def.key, {
      type: 'string',
      describe: `${def.doc}${def.secret ? ' (secret: prefer the config file or environment)' : ''}`,
      global: true,
      group: 'Configuration (flags > TERABOX_DAV_* environment > config file > defaults):',
      ...(def.aliases ? { alias: def.aliases } : {}),
    });
  }

  parser = parser
    .command(
      'serve',
      'Serve the drive over WebDAV (the embedded emulator when no TeraBox credentials are configured)',
      () => undefined,
      async (args) => {
        const cfg = config(args);
        const logger = loggerFor(cfg);
        // Listen for SIGINT/SIGTERM from the start: a signal during startup stops right after it.
        const stopSignal = io.waitForStop();
        // Process policy (issue 13.5): an exception no one caught (a library callback throwing out of
        // an event) is logged and the server keeps serving the other requests, rather than dropping
        // every mount at once. The log line says so; the request it came from has failed.
        const safetyNet = (err: unknown): void => {
          logger.error(`process: uncaught exception, kept serving: ${redact(String((err as Error)?.message ?? err))}`, {
            stack: redact(String((err as Error)?.stack ?? '')),
          });
        };
        process.on('uncaughtException', safetyNet);
        try {
          await serve(cfg, logger, stopSignal);
        } finally {
          process.off('uncaughtException', safetyNet);
        }
      },
    )
    .command(
      'login',
      'Log in to TeraBox: device code with a QR code to scan in the TeraBox app, or --code CODE',
      (y) => y.option('code', { type: 'string', describe: 'Exchange this authorization code (authorization-code mode) instead' }),
      async (args) => {
        const cfg = config(args);
        needCredentials(cfg, 'login');
        const logger = loggerFor(cfg);
        const client = clientFor(cfg, logger);
        const abort = new AbortController();
        let stopped = false;
        void io.waitForStop().then(() => {
          stopped = true;
          abort.abort(new Error('interrupted'));
        });
        const qrFile = join(cfg.stateDir, 'login-qr.png');
        let countdown: NodeJS.Timeout | undefined;
        let qrSaved: Promise<void> | undefined;
        try {
          await mkdir(cfg.stateDir, { recursive: true, mode: 0o700 });
          if (typeof args.code === 'string') {
            if (args.code === '') throw new UsageError('login: --code needs a value');
            await client.exchangeCode(args.code, { signal: abort.signal });
          } else {
            const tty = Boolean(io.stdout.isTTY);
            let lastLine = Infinity;
            let deadline = 0;
            const drawCountdown = (): void => {
              const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
              io.stdout.write(`\rWaiting for approval... ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')} left `);
            };
            await client.loginWithDeviceCode({
              signal: abort.signal,
              onCode: (code) => {
                const png = pngFromDataUrl(code.qrcode_url);
                qrSaved = writeFile(qrFile, png, { mode: 0o600 }).catch((err: unknown) => logger.warn(`login: cannot save ${qrFile}`, { error: messageOf(err) }));
                out('Scan this QR code with the TeraBox app to authorize terabox-dav:');
                try {
                  out(pngToTerminalQr(png).join('\n'));
                } catch (err) {
                  logger.debug('login: QR code not shown in the terminal', { error: messageOf(err) });
                  out('(the QR image could not be drawn here; open the saved PNG below)');
                }
                out(`QR image saved to ${qrFile}`);
                if (code.user_code && code.verification_url) out(`Or enter code ${code.user_code} at ${code.verification_url}`);
              },
              onTick: (left) => {
                if (tty) {
                  // A terminal gets a countdown redrawn every second between the polls.
                  deadline = Date.now() + left * 1000;
                  drawCountdown();
                  countdown ??= setInterval(drawCountdown, 1000);
                } else if (lastLine - left >= 30 || lastLine === Infinity) {
                  lastLine = left;
                  out(`Waiting for approval... ${left} s left`);
                }
              },
            });
            if (countdown) clearInterval(countdown);
            countdown = undefined;
            if (tty) io.stdout.write('\n');
          }
          const who = await client.uinfo();
          out(`Logged in as ${who.uname} (${VIP_TYPES[who.vip_type] ?? `vip type ${who.vip_type}`}).`);
          // serve must find these tokens: repeat the options that chose the file and the state dir.
          const same = [
            ...(typeof args.config === 'string' ? [`--config ${quoteArg(args.config)}`] : []),
            ...(args.stateDir !== undefined ? [`--state-dir ${quoteArg(cfg.stateDir)}`] : []),
          ];
          out(`Tokens saved in ${tokenFilePath(cfg.stateDir)}. Now run: terabox-dav serve${same.length ? ' ' + same.join(' ') : ''}`);
        } catch (err) {
          if (stopped) throw new TbdavError('TBDAV_ABORTED', 'login: interrupted, not logged in');
          throw err;
        } finally {
          if (countdown) clearInterval(countdown);
          await qrSaved; // never rejects (logged above); the file must exist before it is removed
          await rm(qrFile, { force: true });
          await client.close();
        }
        // waitForStop may still hold the process open through its listeners; end explicitly.
        abort.abort(new Error('done'));
      },
    )
    .command(
      'logout',
      'Forget the saved TeraBox tokens (deletes the token file)',
      () => undefined,
      async (args) => {
        const cfg = config(args);
        needCredentials(cfg, 'logout');
        const client = clientFor(cfg, loggerFor(cfg));
        try {
          const had = await client.auth.tokens();
          await client.logout();
          out(had ? `Logged out: removed ${tokenFilePath(cfg.stateDir)}` : 'Was not logged in.');
        } finally {
          await client.close();
        }
      },
    )
    .command(
      'whoami',
      'Show the logged-in TeraBox user and the space of the drive',
      () => undefined,
      async (args) => {
        const cfg = config(args);
        needCredentials(cfg, 'whoami');
        const client = clientFor(cfg, loggerFor(cfg));
        try {
          if (!(await client.auth.tokens())) throw new TbdavError('TBDAV_NOT_LOGGED_IN', 'not logged in: run terabox-dav login');
          const [who, q] = await Promise.all([client.uinfo(), client.quota()]);
          out(`User:  ${who.uname}`);
          out(`Type:  ${VIP_TYPES[who.vip_type] ?? `vip type ${who.vip_type}`}`);
          const pct = q.total > 0 ? ` (${((q.used / q.total) * 100).toFixed(1)}%)` : '';
          out(`Space: ${formatBytes(q.used)} used of ${formatBytes(q.total)}${pct}`);
        } finally {
          await client.close();
        }
      },
    )
    .command('share', 'TeraBox shares shown read-only under shares.folder: share add <link>, share list, share remove <name>', (y) =>
      y
        .command(
          'add <link>',
          'Add a share link (verified with TeraBox; a running serve picks it up within seconds)',
          (yy) =>
            yy
              .positional('link', { type: 'string', describe: 'The share link, e.g. https://www.terabox.com/s/1AbCd (a ?pwd=CODE in it counts)' })
              .option('pwd', { type: 'string', describe: 'Extraction code (4 digits or lowercase letters)' })
              .option('name', { type: 'string', describe: 'Folder name under shares.folder (default: the shared item\'s name)' }),
          async (args) => {
            const cfg = config(args);
            needCredentials(cfg, 'share add');
            const logger = loggerFor(cfg);
            const client = clientFor(cfg, logger);
            try {
              if (!(await client.auth.tokens())) throw new TbdavError('TBDAV_NOT_LOGGED_IN', 'not logged in: run terabox-dav login');
              const rec = await addShare(client, new ShareStore(tokenDir(cfg)), {
                link: String(args.link),
                ...(typeof args.pwd === 'string' ? { pwd: args.pwd } : {}),
                ...(typeof args.name === 'string' ? { name: args.name } : {}),
              }, logger);
              out(`Added share "${rec.name}": ${cfg.shares.folder}/${rec.name} (read-only; COPY from it saves into your drive without a download).`);
            } finally {
              await client.close();
            }
          },
        )
        .command('list', 'List the shares added', () => undefined, async (args) => {
          const cfg = config(args);
          const shares = await new ShareStore(tokenDir(cfg)).load();
          if (shares.length === 0) {
            out('No shares. Add one with: terabox-dav share add <link> [--pwd CODE]');
            return;
          }
          for (const s of shares) {
            out(`${s.name}\t${s.link}\t${s.pwd ? 'with code' : 'no code'}\tadded ${new Date(s.addedAt).toISOString().slice(0, 10)}\t${cfg.shares.folder}/${s.name}`);
          }
        })
        .command(
          'remove <name>',
          'Remove a share (its folder disappears; nothing is deleted on TeraBox)',
          (yy) => yy.positional('name', { type: 'string', describe: 'The share\'s name (see share list)' }),
          async (args) => {
            const cfg = config(args);
            const name = String(args.name);
            if (!(await new ShareStore(tokenDir(cfg)).remove(name))) throw new TbdavError('TBDAV_NOT_FOUND', `share remove: no share named ${JSON.stringify(name)} (see terabox-dav share list)`);
            out(`Removed share "${name}".`);
          },
        )
        .demandCommand(1, 'Give a share command: add, list or remove'),
    )
    .command(
      'emulator',
      'Run the TeraBox API emulator alone (for trying clients and tests), until Ctrl-C',
      (y) =>
        y
          .option('data-dir', { type: 'string', describe: 'Where the emulated drive lives (default <stateDir>/emulator)' })
          .option('variant', {
            type: 'string',
            describe: `Act out a service variant where the spec is silent (docs/protocol-notes.md): ${Object.keys(VARIANT_PRESETS).join(', ')}`,
          })
          .option('token-ttl', {
            type: 'string',
            describe: 'Lifetime of access tokens in seconds (default 2 days): short ones make login/serve/whoami refresh while you watch',
          })
          .epilogue(
            '--host and --port, given on the command line, place the emulator: its four listeners (auth, api, upload, download) take port, port+1, port+2 and port+3. Default: 127.0.0.1 and free ports chosen at start. server.host/server.port from the environment or a config file are the WebDAV server\'s and do not apply here.',
          ),
      async (args) => {
        const cfg = config(args);
        const dataDir = typeof args['data-dir'] === 'string' ? resolve(io.cwd, args['data-dir']) : join(cfg.stateDir, 'emulator');
        const listenAt = emulatorListen(args, cfg);
        const preset = emulatorVariant(args.variant);
        const tokenTtl = emulatorTokenTtl(args['token-ttl']);
        const stopSignal = io.waitForStop();
        await mkdir(dataDir, { recursive: true, mode: 0o700 });
        const emu = await startEmulator({
          dataDir,
          ...listenAt,
          ...(preset ? { variant: preset.variant } : {}),
          ...(tokenTtl !== undefined ? { accessTokenTtlSec: tokenTtl } : {}),
          logger: loggerFor(cfg),
        });
        out(`TeraBox emulator running, data in ${dataDir}`);
        if (preset) out(`  variant:       ${preset.name}${preset.differs ? ` (${preset.differs})` : ' (as the default)'}`);
        if (tokenTtl !== undefined) out(`  token ttl:     ${tokenTtl} s (access tokens)`);
        out(`  authUrl:       ${emu.authUrl}`);
        out(`  api_domain:    ${emu.apiDomain}`);
        out(`  upload_domain: ${emu.uploadDomain}`);
        out(`  download:      ${emu.downloadDomain}`);
        out(`  app root:      ${emu.appRoot}`);
        out(`  clientId:      ${emu.credentials.clientId}`);
        out(`  clientSecret:  ${emu.credentials.clientSecret}`);
        out(`  privateSecret: ${emu.credentials.privateSecret}`);
        // The authorization-code mode needs a code the user got from the authorize page; the
        // emulator has none, so it hands one out here (single use, 5 minutes).
        // `--code=`: a code may start with '-', which `--code -x` would take for flags.
        out(`  login code:    terabox-dav login --code=${emu.issueAuthorizationCode()} (single use, 5 min)`);
        out('Config for it (then terabox-dav login and serve):');
        out(
          JSON.stringify({
            terabox: {
              authUrl: emu.authUrl,
              clientId: emu.credentials.clientId,
              clientSecret: emu.credentials.clientSecret,
              privateSecret: emu.credentials.privateSecret,
              root: emu.appRoot,
            },
          }),
        );
        out('Press Ctrl-C to stop.');
        await stopSignal;
        const reused = emu.counters.refreshTokenReuse;
        await emu.close();
        // The one thing a client must never do, whatever the variant: say it when it happened.
        if (reused > 0) out(`Refresh tokens presented again after they were spent: ${reused} (a service revoking the login family logs the client out for this)`);
        out('Stopped.');
      },
    )
    .command(
      'uploads [action] [path]',
      'Write-back uploads: list them, retry one the service refused, or give one up (asks a running serve; otherwise works on the state folder)',
      (y) =>
        y
          .positional('action', { choices: ['list', 'retry', 'remove'] as const, default: 'list', describe: 'list | retry PATH | remove PATH' })
          .positional('path', { type: 'string', describe: 'Share path of the file, e.g. /photos/a.jpg' })
          .epilogue(
            'An upload the service refuses for good (drive full, name refused, file too large) stops; the file stays readable at its path from the local copy and is listed in the log at every start. `retry` starts it again (e.g. after freeing space); `remove` gives it up and deletes the local copy (what the drive has at that path stays).',
          ),
      async (args) => {
        const cfg = config(args);
        const action = String(args.action ?? 'list') as 'list' | 'retry' | 'remove';
        let req: ControlRequest;
        if (action === 'list') req = { op: 'list' };
        else if (typeof args.path !== 'string' || args.path === '') throw new UsageError(`uploads ${action}: give the PATH of the file (as in the share, e.g. /a.bin)`);
        else req = { op: action, path: normalizePath(args.path) };
        const { stateDir, cacheDir } = vfsDirs(cfg);
        const dirs = writebackDirs(stateDir, cacheDir);
        const live = await askServer(dirs.journalDir, req);
        const answer: ControlAnswer = live ?? (await offlineUploads(dirs, req));
        if (!answer.ok) throw new TbdavError(answer.code as 'TBDAV_NOT_FOUND', `uploads ${action}: ${answer.message}`);
        if (req.op === 'list') {
          const rows = answer.uploads ?? [];
          if (rows.length === 0) return out(`No write-back uploads pending${live ? '' : ' (serve is not running)'}.`);
          out(`${'STATE'.padEnd(9)} ${'ATTEMPTS'.padStart(8)}  ${'SIZE'.padStart(10)}  PATH`);
          const now = Date.now();
          for (const u of rows) out(uploadLine(u, now));
          if (!live) out('(serve is not running: uploads continue at its next start)');
        } else if (req.op === 'retry') {
          out(live ? `Retrying the upload of ${req.path} now.` : `The upload of ${req.path} starts again at the next start of serve.`);
        } else {
          out(`Gave up the upload of ${req.path}; its local copy is deleted.`);
        }
      },
    )
    .command(
      'config',
      'Print the effective configuration (secrets redacted)',
      () => undefined,
      (args) => {
        out(JSON.stringify(redactConfig(config(args)), null, 2));
      },
    )
    .command(
      'hash-password [password]',
      'Print an scrypt hash of a password for server.users (reads stdin or prompts when no argument)',
      (y) => y.positional('password', { type: 'string', describe: 'The password (better: leave out and type it or pipe it)' }),
      async (args) => {
        const pw = typeof args.password === 'string' ? args.password : await readPassword(io);
        if (!pw) throw new UsageError('hash-password: empty password');
        out(await hashPassword(pw));
      },
    )
    .demandCommand(1, 'Give a command: serve, login, logout, whoami, share, uploads, emulator, config or hash-password (--help for details)')
    .recommendCommands();

  try {
    await parser.parseAsync();
    io.setExitCode(0);
  } catch (err) {
    io.stderr.write(`terabox-dav: ${messageOf(err, argv)}\n`);
    io.setExitCode(exitCodeOf(err));
  }
}

/** Credentials of the embedded emulator (re-exported for docs and tests). */
export { EMULATOR_CREDENTIALS };
