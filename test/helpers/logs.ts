/**
 * A logger that keeps every formatted line in memory (debug included), after the redaction step,
 * for tests that look at what was logged. Lines also go to stderr when TBDAV_TEST_LOG is set.
 */
import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger, type Logger } from '../../src/shared/logger.js';

export interface CapturedLogger {
  logger: Logger;
  /** Every formatted line so far, without its newline. */
  lines: string[];
  /** The same array as `lines`. */
  logs: string[];
  text(): string;
  /** The lines parsed as JSON records (json format only). */
  records(): Record<string, unknown>[];
}

/** A logger (debug level unless `level` says otherwise) writing formatted lines (`text` or `json`) to memory. */
export function captureLogger(format: 'text' | 'json' = 'text', level: 'error' | 'warn' | 'info' | 'debug' = 'debug'): CapturedLogger {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      lines.push(String(chunk).replace(/\n$/, ''));
      cb();
    },
  });
  const transports: winston.transport[] = [new winston.transports.Stream({ stream: sink })];
  if (process.env.TBDAV_TEST_LOG) transports.push(new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] }));
  const logger = createLogger({ level, format, transports });
  return { logger, lines, logs: lines, text: () => lines.join('\n'), records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
