import type { Readable } from 'node:stream';
import { TbdavError } from '../../src/shared/errors.js';
import { MemoryRemote } from '../../src/remote/memory.js';
import type { ByteRange, CallOptions, Entry, MkdirResult, Remote, SpooledFile, WriteOptions, WriteResult } from '../../src/remote/types.js';

/**
 * A MemoryRemote whose writes wait at a gate while it is closed (`close()`/`open()`) and, like a
 * real upload, give up with TBDAV_ABORTED when their signal fires meanwhile. Every other call goes
 * straight to `inner`. Tests extend it to record or script calls; it has no move/copy/quota, so a
 * caller takes its fallbacks unless a subclass adds them.
 */
export class GatedMemoryRemote implements Remote {
  readonly name: string = 'gated-memory';
  readonly inner = new MemoryRemote();
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => undefined;

  constructor(opts: { closed?: boolean } = {}) {
    if (opts.closed) this.close();
  }
  close(): void {
    this.gate = new Promise((r) => (this.openGate = r));
  }
  open(): void {
    this.openGate();
  }

  /** Wait until the gate is open; rejects with TBDAV_ABORTED when `signal` fires first. */
  protected passGate(what: string, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new TbdavError('TBDAV_ABORTED', `${what}: aborted`));
      const onAbort = (): void => reject(new TbdavError('TBDAV_ABORTED', `${what}: aborted`));
      signal?.addEventListener('abort', onAbort, { once: true });
      void this.gate.then(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  list(p: string, o?: CallOptions): Promise<Entry[]> {
    return this.inner.list(p, o);
  }
  stat(p: string, o?: CallOptions): Promise<Entry> {
    return this.inner.stat(p, o);
  }
  openRead(p: string, r?: ByteRange, o?: CallOptions & { entry?: Entry }): Promise<Readable> {
    return this.inner.openRead(p, r, o);
  }
  async write(p: string, f: SpooledFile, o: WriteOptions): Promise<WriteResult> {
    await this.passGate(`write ${p}`, o.signal);
    return this.inner.write(p, f, o);
  }
  mkdir(p: string, o?: CallOptions): Promise<MkdirResult> {
    return this.inner.mkdir(p, o);
  }
  remove(p: string, o?: CallOptions): Promise<void> {
    return this.inner.remove(p, o);
  }
}
