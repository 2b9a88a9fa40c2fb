/**
 * The emulator's own wire vocabulary: the numbers it uses (errnos, app id, shard limits) and the
 * shapes of the answers it sends, with the JSON types the spec's response examples show
 * (test/fixtures/spec/*.json; test/emulator/golden.test.ts holds every answer to them). The
 * emulator imports nothing from src/terabox/: a wrong field type shared by client and emulator
 * would be invisible, so each side writes its own.
 *
 * Types differ per endpoint, as in the examples: `isdir`, `fs_id`, `size`... are numbers in list,
 * filemetas, search, create and share/list, but strings in shorturlinfo and share/download (those
 * live in shares.ts); `fs_id` of a download answer is a string; `request_id` is a number, except
 * in uinfo, active, share/verify and share/list, whose examples show a string.
 */

// ---------------------------------------------------------------- numbers

/** The app id superfile2 requires (spec 3.4.2) and dlinks carry in `fid`. */
export const APP_ID = 250528;
/** Every shard but the last must be at least this large (spec 3.4.2: "larger than 4 MB"). */
export const SHARD_MIN_BYTES = 4 * 1024 * 1024;
/** Longest block_list precreate/create accept (larger answers 31365). */
export const MAX_SHARDS = 1024;

/** errno values the emulator answers (docs/protocol-notes.md "Errnos"). */
export const ERRNO = {
  PARAM: 2,
  INVALID_CLIENT: 100001,
  INVALID_CODE: 100002,
  UNSUPPORTED_GRANT: 200001,
  INVALID_ACCESS_TOKEN: 200002,
  ACCESS_TOKEN_EXPIRED: 200003,
  INVALID_REFRESH_TOKEN: 200004,
  REFRESH_TOKEN_EXPIRED: 200005,
  CODE_RATE: 300001,
  AUTH_PENDING: 400001,
  OAUTH_INTERNAL: 500001,
  /** openapi: token missing or unknown (xpan "identity check failed"). */
  TOKEN_INVALID: -6,
  /** openapi: token expired. */
  TOKEN_EXPIRED: 111,
  INVALID_NAME: -7,
  EXISTS: -8,
  NOT_FOUND: -9,
  NO_SPACE: -10,
  BATCH_PARTIAL: 12,
  RATE_LIMIT: 31034,
  API_INTERNAL: 31045,
} as const;

// ---------------------------------------------------------------- envelopes

/** What index.ts adds to every OAuth answer (spec 1.4.2 examples). */
export interface WireOAuthEnvelope {
  errno: number;
  newno: string;
  request_id: number;
  server_time: number;
  show_msg: string;
}

/** What index.ts adds to every openapi answer (a handler may send request_id as a string instead). */
export interface WireApiEnvelope {
  errno: number;
  request_id: number | string;
}

// ---------------------------------------------------------------- OAuth (data objects)

export interface WireTokenData {
  access_token: string;
  expires_in: number;
  refresh_token: string;
}

export interface WireTokenInfoData {
  api_domain: string;
  /** In the table, not in the example: left out under the variant uploadDomain 'absent'. */
  upload_domain?: string;
  client_id: string;
  create_time: number;
  expires_in: number;
  user_id: number;
}

export interface WireDeviceCodeData {
  device_code: string;
  expires_in: number;
  interval: number;
  qrcode_url: string;
  user_code: string;
  verification_url: string;
}

// ---------------------------------------------------------------- user, quota

export interface WireUinfoAnswer {
  avatar_url: string;
  errmsg: string;
  /** A string in the example (3.2.1). */
  request_id: string;
  server_time: number;
  uk: number;
  uname: string;
  use_type: number;
  user_type: number;
  vip_type: number;
}

export interface WireActiveAnswer {
  newno: string;
  order_id: string;
  /** A string in the example (3.2.2). */
  request_id: string;
  server_time: number;
  show_msg: string;
}

export interface WireQuotaAnswer {
  total: number;
  used: number;
  /** Additions (xpan sends them): free bytes, and whether the space expires. */
  free: number;
  expire: boolean;
}

// ---------------------------------------------------------------- files

export interface WireThumbs {
  url1: string;
  url2: string;
  url3: string;
  icon: string;
}

/** An entry of list, filemetas and search: numbers as numbers (examples 3.4.5 - 3.4.7). */
export interface WireFileEntry {
  fs_id: number;
  path: string;
  server_filename: string;
  size: number;
  isdir: 0 | 1;
  category: number;
  server_ctime: number;
  server_mtime: number;
  local_ctime: number;
  local_mtime: number;
  /** Files only. */
  md5?: string;
  /** Folders in list/filemetas: 1 when empty. */
  dir_empty?: 0 | 1;
  /** list with web=1 and filemetas: images and videos only. */
  thumbs?: WireThumbs;
}

export interface WireListAnswer {
  guid_info: string;
  guid: number;
  /** The variant's listArray names the array: `list` (example) or `info` (table). */
  list?: WireFileEntry[];
  info?: WireFileEntry[];
}

/** A filemetas item: the entry with its own errno, `filename` (table 3.4.6) and `dlink` when asked. */
export interface WireFilemetasItem extends WireFileEntry {
  errno: 0;
  filename: string;
  dlink?: string;
}

/** A filemetas item that failed (path outside the app folder -7, missing -9, or a fault 31034). */
export interface WireFilemetasFailure {
  errno: number;
  path?: string;
  errmsg?: string;
}

export interface WireFilemetasAnswer {
  info: (WireFilemetasItem | WireFilemetasFailure)[];
}

export interface WireSearchAnswer {
  list: WireFileEntry[];
  has_more: 0 | 1;
}

export interface WireDownloadAnswer {
  /** fs_id as a string, as in the example (3.4.8). */
  dlink: { fs_id: string; dlink: string }[];
}

export interface WireFilemanagerItem {
  errno: number;
  path: string;
}

export interface WireFilemanagerAnswer {
  errno: number;
  info: WireFilemanagerItem[];
  /** async=2 only. */
  taskid?: number;
}

// ---------------------------------------------------------------- upload

export interface WirePrecreateAnswer {
  path: string;
  uploadid: string;
  return_type: 1;
  block_list: number[];
}

export interface WirePrecreateRapidAnswer {
  return_type: 2;
  info: {
    size: number;
    category: number;
    isdir: 0;
    request_id: number;
    path: string;
    fs_id: number;
    md5: string;
    ctime: number;
    mtime: number;
  };
  request_id: number;
}

export interface WireSuperfile2Answer {
  md5: string;
  partseq: number;
  uploadid: string;
  request_id: number;
}

/** superfile2's error shape (PCS): both error_code and errno. */
export interface WirePcsError {
  error_code: number;
  error_msg: string;
  errno: number;
  request_id: number;
}

export interface WireCreateAnswer {
  fs_id: number;
  /** Files only (3.4.3: "does not exist when a directory is submitted"). */
  md5?: string;
  server_filename: string;
  category: number;
  path: string;
  size: number;
  ctime: number;
  mtime: number;
  isdir: 0 | 1;
  from_type?: number;
  name: string;
}
