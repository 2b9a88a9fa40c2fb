/**
 * What the bridge needs to know about the service behind the share, for /readyz, the status page
 * and the browser login (issue 11). Implemented by the composition root (src/cli/monitor.ts) over
 * the client, the Vfs and the write-back queue; the bridge only reads it. Everything here is plain
 * data: no TeraBox types cross into dav/.
 */

/** The device code a user approves in the TeraBox app (QR) or on the verification page. */
export interface DeviceCodeView {
  /** The service's QR code (PNG bytes of its data: URL). */
  qrPng: Buffer;
  userCode: string;
  verificationUrl: string;
  /** When this code stops working, ms since epoch (a new one is requested then). */
  expiresAt: number;
}

export type ShareState =
  /** Logged in; the share is attached and serving. */
  | { state: 'ready' }
  /** Starting (logging in with saved tokens, opening the state): the share answers 503 meanwhile. */
  | { state: 'starting' }
  /**
   * No saved login: the share answers 503, the status page shows the device code (when one has
   * been issued) and the last problem (code expired, service unreachable...).
   */
  | { state: 'login'; code?: DeviceCodeView; problem?: string }
  /** The service refused the saved login, or starting failed for good: the status page says why. */
  | { state: 'failed'; reason: string };

export interface UploadView {
  /** Opaque id for the retry/remove buttons. */
  id: string;
  /** Share path. */
  path: string;
  size: number;
  /** Bytes the service has confirmed (0 when unknown). */
  done: number;
  /** When it was queued (ms since epoch). */
  since: number;
  /** Why it failed (failed uploads only). */
  error?: string;
  /** A word on a waiting upload (e.g. "retrying in 40 s after: TeraBox busy"). */
  note?: string;
}

export interface AccountView {
  name: string;
  /** 'regular user', 'Premium', ... */
  type: string;
  quota?: { used: number; total: number };
}

export interface StatusSnapshot {
  version: string;
  /** Serving the embedded emulator (no TeraBox credentials configured). */
  emulator: boolean;
  /** Why `account` is missing (not logged in, service unreachable). */
  account?: AccountView;
  accountProblem?: string;
  /** The drive folder served (terabox.root) and the application folder the platform confines us to. */
  driveFolder: string;
  appFolder?: string;
  uploadMode: 'writethrough' | 'writeback';
  uploads?: { inFlight: UploadView[]; queued: UploadView[]; failed: UploadView[]; spoolBytes: number; spoolMaxBytes: number };
  cache?: { bytes?: number; hits: number; misses: number };
  pacer?: { intervalMs: number; backoffs: number; rateLimited: number };
  /** Share links added with `terabox-dav share add` (shown under `folder`), and COPYs out of them. */
  shares?: {
    folder: string;
    list: { name: string; link: string; addedAt: number }[];
    transfers: { id: string; from: string; to: string; state: 'running' | 'done' | 'failed'; startedAt: number; endedAt?: number; error?: string }[];
  };
  startedAt: number;
}

export interface ServiceMonitor {
  share(): ShareState;
  /** Logged in, the service answered in the last minute (asking it if need be), spool not full. */
  ready(): Promise<boolean>;
  snapshot(): Promise<StatusSnapshot>;
  /** The status page is being looked at while the login is pending (device codes are asked for only then). */
  wantLogin?(): void;
  /** Retry / remove a failed write-back upload (absent when the stack has no such operation). */
  retryUpload?(id: string): Promise<void>;
  removeUpload?(id: string): Promise<void>;
}
