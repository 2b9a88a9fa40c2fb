/**
 * TransferLog: server-side copies (a share into the drive) that outlived their WebDAV request
 * (answered 202), and the last ones that ended, for the status page.
 *
 * Concurrency: `entries` is mutated synchronously only (start, finish); readers get copies.
 */

export interface TransferStatus {
  id: string;
  /** Tree paths as the WebDAV client named them. */
  from: string;
  to: string;
  state: 'running' | 'done' | 'failed';
  /** ms since epoch. */
  startedAt: number;
  endedAt?: number;
  /** Why it failed (no secrets: a TbdavError message). */
  error?: string;
}

export interface TransferTicket {
  readonly id: string;
  /** Mark the transfer complete (no error) or failed. */
  finish(error?: unknown): void;
}

/** Finished entries kept for the status page. */
export const TRANSFER_LOG_KEEP = 100;

export class TransferLog {
  private readonly entries: TransferStatus[] = [];
  private seq = 0;

  constructor(private readonly now: () => number = Date.now) {}

  start(from: string, to: string): TransferTicket {
    const status: TransferStatus = { id: `t${++this.seq}`, from, to, state: 'running', startedAt: this.now() };
    this.entries.push(status);
    return {
      id: status.id,
      finish: (error?: unknown) => {
        if (status.state !== 'running') return;
        status.state = error === undefined ? 'done' : 'failed';
        status.endedAt = this.now();
        if (error !== undefined) status.error = error instanceof Error ? error.message : String(error);
        this.prune();
      },
    };
  }

  private prune(): void {
    let finished = this.entries.filter((e) => e.state !== 'running').length;
    for (let i = 0; i < this.entries.length && finished > TRANSFER_LOG_KEEP; ) {
      if (this.entries[i]!.state !== 'running') {
        this.entries.splice(i, 1);
        finished--;
      } else i++;
    }
  }

  /** Running transfers and the last finished ones, oldest first. */
  list(): TransferStatus[] {
    return this.entries.map((e) => ({ ...e }));
  }

  get(id: string): TransferStatus | undefined {
    const e = this.entries.find((x) => x.id === id);
    return e ? { ...e } : undefined;
  }
}
