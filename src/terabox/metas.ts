/**
 * Metadata lookups by drive path, batched (issue 10, call economy): lookups that arrive within a
 * few milliseconds of each other share one /openapi/api/filemetas call (`target` takes a list), up
 * to MAX_TARGETS paths and a bounded URL length (the service refuses long request lines; the
 * emulator answers HTTP 431 beyond 16 KiB of headers).
 *
 * Each path gets: its FileMeta, null when it does not exist (item errno -9, or -7: a name the
 * service cannot hold), or an error when its item carries any other errno (its fate is unknown:
 * never taken as "absent"). An item errno without a path (it cannot be attributed) fails every
 * path of the batch that has no answer of its own. Should a service fail a whole multi-path call
 * with -9, each path is asked on its own; so is a path whose answer did not come back under its
 * own name while an unnamed answer did (the one-path call then takes the lone answer as its own).
 *
 * Concurrency: the Batcher's own (see batcher.ts); nothing else is shared.
 */
import type { CallOptions } from '../remote/types.js';
import { abortError } from '../shared/errors.js';
import { ERRNO, type FileMeta } from './api/types.js';
import { Batcher, type BatchResult } from './batcher.js';
import type { TeraboxClient } from './client.js';
import { errnoError, isTeraboxApiError } from './errors.js';

/** Paths in one filemetas call at most (the emulator takes up to 1000). */
export const MAX_TARGETS = 100;
/** Characters the encoded `target` list may take in the URL. */
export const MAX_TARGET_CHARS = 6000;

export interface MetaLookupOptions {
  /** How long a batch waits for more paths, ms (default 3). */
  windowMs?: number;
  maxTargets?: number;
}

export class MetaLookup {
  private readonly batcher: Batcher<string, FileMeta | null>;

  constructor(
    private readonly client: Pick<TeraboxClient, 'filemetas'>,
    opts: MetaLookupOptions = {},
  ) {
    this.batcher = new Batcher<string, FileMeta | null>({
      windowMs: opts.windowMs ?? 3,
      maxBatch: opts.maxTargets ?? MAX_TARGETS,
      // each path adds its JSON string, URL-encoded, and a comma
      cost: (t) => encodeURIComponent(JSON.stringify(t)).length + 3,
      maxCost: MAX_TARGET_CHARS,
      run: (targets, requestId) => this.run(targets, requestId),
    });
  }

  /** The metadata at an absolute drive path, or null when nothing is there. */
  get(target: string, opts: CallOptions = {}): Promise<FileMeta | null> {
    return this.batcher.get(target, { signal: opts.signal, requestId: opts.requestId, onAbort: () => abortError(`stat ${target}`, opts.signal) });
  }

  private async run(targets: string[], requestId: string | undefined): Promise<BatchResult<FileMeta | null>[]> {
    let metas: FileMeta[];
    try {
      metas = await this.client.filemetas(targets, { requestId });
    } catch (err) {
      if (isTeraboxApiError(err) && err.code === 'TBDAV_NOT_FOUND') {
        if (targets.length === 1) return [{ value: null }];
        return this.alone(targets, requestId);
      }
      throw err;
    }
    const found = new Map<string, FileMeta>();
    const absent = new Set<string>();
    const failed = new Map<string, number>();
    let unnamedError: number | undefined;
    let unnamedAnswers = 0;
    for (const m of metas) {
      const errno = Number(m.errno ?? 0);
      const path = typeof m.path === 'string' ? m.path.normalize('NFC') : undefined;
      if (errno === 0) {
        if (path !== undefined) found.set(path, m);
        else unnamedAnswers++;
      } else if (errno === ERRNO.FILE_NOT_FOUND || errno === ERRNO.INVALID_NAME) {
        if (path !== undefined) absent.add(path);
      } else if (path !== undefined) failed.set(path, errno);
      else unnamedError = errno;
    }
    const lone = targets.length === 1 && metas.length === 1 && Number(metas[0]!.errno ?? 0) === 0 ? metas[0] : undefined;
    const results: (BatchResult<FileMeta | null> | undefined)[] = targets.map((t) => {
      const k = t.normalize('NFC');
      const m = found.get(k) ?? lone;
      if (m) return { value: m };
      const errno = failed.get(k) ?? (absent.has(k) ? undefined : unnamedError);
      if (errno !== undefined) return { error: errnoError('filemetas', errno) };
      if (absent.has(k) || unnamedAnswers === 0 || targets.length === 1) return { value: null };
      return undefined; // no answer under its name while some answer had none: ask it alone
    });
    const unsure = targets.filter((_, i) => results[i] === undefined);
    if (unsure.length > 0) {
      const again = await this.alone(unsure, requestId);
      let j = 0;
      for (let i = 0; i < results.length; i++) if (results[i] === undefined) results[i] = again[j++];
    }
    return results as BatchResult<FileMeta | null>[];
  }

  /** Each path in a call of its own (fallbacks). */
  private alone(targets: string[], requestId: string | undefined): Promise<BatchResult<FileMeta | null>[]> {
    return Promise.all(
      targets.map(async (t): Promise<BatchResult<FileMeta | null>> => {
        try {
          return (await this.run([t], requestId))[0]!;
        } catch (err) {
          return { error: err };
        }
      }),
    );
  }
}
