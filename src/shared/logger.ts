/**
 * Logger factory. Every log record goes through one winston format that redacts secrets
 * (see redact.ts); subjects come first in the message ("PUT /a.txt: ...").
 */
import winston from 'winston';
import type Transport from 'winston-transport';
import { isSecretKey, redact, redactValue } from './redact.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'http' | 'verbose' | 'debug' | 'silly';

export interface Logger {
  error(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
  child(meta: Record<string, unknown>): Logger;
}

const redactFormat = winston.format((info) => {
  const out = info as Record<string | symbol, unknown>;
  for (const key of Object.keys(out)) {
    if (key === 'level') continue;
    const value = out[key];
    if (key === 'message') out[key] = redact(String(value));
    else if (isSecretKey(key) && typeof value === 'string') out[key] = '[REDACTED]';
    else out[key] = redactValue(value);
  }
  return info;
});

export interface LoggerOptions {
  level?: LogLevel;
  /** 'text' for humans (default), 'json' for log collectors. */
  format?: 'text' | 'json';
  /** Extra transports (tests capture logs with a stream transport). */
  transports?: Transport[];
  /** Log to stderr (default true unless transports are given). */
  console?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const transports: Transport[] = [...(options.transports ?? [])];
  if (options.console ?? transports.length === 0) {
    transports.push(new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] }));
  }
  const fmt =
    options.format === 'json'
      ? winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          redactFormat(),
          winston.format.timestamp(),
          winston.format.printf((info) => {
            const { level, message, timestamp, ...rest } = info as Record<string, unknown>;
            // Fields left undefined (e.g. a requestId outside any request) print nothing, not ' {}'.
            const extra = Object.values(rest).some((v) => v !== undefined) ? ' ' + JSON.stringify(rest) : '';
            return `${String(timestamp)} ${String(level)}: ${String(message)}${extra}`;
          }),
        );
  return winston.createLogger({ level: options.level ?? 'info', format: fmt, transports }) as unknown as Logger;
}

/** A logger that drops everything (default for library constructors when none is given). */
export function silentLogger(): Logger {
  return createLogger({ transports: [new winston.transports.Console({ silent: true })] });
}
