/**
 * Wire shapes of the TeraBox Open Platform API (../shared/spec/terabox-open-platform.txt).
 * Shapes only, no logic: shared by the client (src/terabox) and the emulator (src/emulator).
 * Numbers the service sends as strings in some answers (share APIs) are typed `number | string`.
 */

/** Every JSON answer carries errno (0 = success) and usually a request_id. */
export interface BaseResponse {
  errno: number;
  request_id?: number | string;
  newno?: string;
  show_msg?: string;
  errmsg?: string;
  server_time?: number;
}

/** Fixed values of the protocol. */
export const APP_ID = 250528;
export const SHARD_MIN_BYTES = 4 * 1024 * 1024; // every shard but the last at least 4 MiB
export const MAX_SHARDS = 1024;

/** Paths of the endpoints (spec section in the comment). */
export const ENDPOINTS = {
  deviceCode: '/oauth/devicecode', // 2.2.1 GET, auth host
  getToken: '/oauth/gettoken', // 1.4.2.1 POST form, auth host
  tokenInfo: '/oauth/tokeninfo', // 1.4.2.2 POST form, auth host
  refreshToken: '/oauth/refreshtoken', // 1.4.2.3 POST form, auth host
  uinfo: '/openapi/uinfo', // 3.2.1 GET, api_domain
  active: '/openapi/active', // 3.2.2 GET
  quota: '/openapi/api/quota', // 3.3.1 GET
  precreate: '/openapi/api/precreate', // 3.4.1 POST form
  superfile2: '/rest/2.0/pcs/superfile2', // 3.4.2 POST multipart, upload_domain
  create: '/openapi/api/create', // 3.4.3 POST form
  filemanager: '/openapi/api/filemanager', // 3.4.4 POST form
  list: '/openapi/api/list', // 3.4.5 GET
  filemetas: '/openapi/api/filemetas', // 3.4.6 GET
  search: '/openapi/api/search', // 3.4.7 GET
  download: '/openapi/api/download', // 3.4.8 GET
  streaming: '/openapi/api/streaming', // 3.4.9 GET (m3u8 text)
  shareVerify: '/openapi/share/verify', // 3.5.1 POST
  shortUrlInfo: '/openapi/api/shorturlinfo', // 3.5.2 GET
  shareList: '/openapi/share/list', // 3.5.3 GET
  shareTransfer: '/openapi/share/transfer', // 3.5.4 POST
  shareStreaming: '/openapi/share/streaming', // 3.5.5 GET (m3u8 text)
  shareMediaMeta: '/openapi/share/mediameta', // 3.5.6 GET
  shareDownload: '/openapi/share/download', // 3.5.7 GET
} as const;
export type EndpointName = keyof typeof ENDPOINTS;

// ---------------------------------------------------------------- OAuth (auth host)

export interface DeviceCodeData {
  device_code: string;
  qrcode_url: string; // data:image/png;base64,...
  expires_in: number;
  interval: number;
  user_code: string;
  verification_url: string;
}
export interface DeviceCodeResponse extends BaseResponse {
  data: DeviceCodeData;
}

export type GrantType = 'device_code' | 'authorization_code';

export interface GetTokenRequest {
  client_id: string;
  client_secret: string;
  grant_type: GrantType;
  code: string;
  timestamp: string;
  sign: string;
}
export interface RefreshTokenRequest {
  client_id: string;
  client_secret: string;
  refresh_token: string;
  timestamp: string;
  sign: string;
}
export interface TokenData {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}
export interface TokenResponse extends BaseResponse {
  data: TokenData;
}

export interface TokenInfoData {
  client_id: string;
  api_domain: string; // host[:port], used with the auth URL's scheme
  upload_domain: string; // host[:port], only for superfile2
  expires_in: number;
  create_time: number;
  user_id: number;
}
export interface TokenInfoResponse extends BaseResponse {
  data: TokenInfoData;
}

// ---------------------------------------------------------------- user and quota

export interface UinfoResponse extends BaseResponse {
  uname: string;
  avatar_url: string;
  vip_type: number;
  uk: number;
  use_type: number;
  user_type: number;
}
export interface ActiveResponse extends BaseResponse {
  order_id: string;
}
export interface QuotaResponse extends BaseResponse {
  total: number;
  used: number;
}

// ---------------------------------------------------------------- files

export type Category = 1 | 2 | 3 | 4 | 5 | 6 | 7;

export interface Thumbs {
  url1?: string;
  url2?: string;
  url3?: string;
  icon?: string;
}

/** One entry of list / search. */
export interface FileInfo {
  fs_id: number;
  path: string;
  server_filename: string;
  size: number;
  isdir: 0 | 1;
  category: number;
  md5?: string; // files only
  server_ctime: number;
  server_mtime: number;
  local_ctime: number;
  local_mtime: number;
  thumbs?: Thumbs;
  dir_empty?: 0 | 1;
}

export interface ListResponse extends BaseResponse {
  /** The entries: under `list` in the spec's example, under `info` in its table (a service may use either). */
  list?: FileInfo[];
  info?: FileInfo[];
  /** Not in list's table (search has it); honoured when present. */
  has_more?: 0 | 1 | boolean;
  guid_info?: string;
  guid?: number;
}

export interface FileMeta extends FileInfo {
  filename?: string;
  dlink?: string;
  duration?: number;
  height?: number;
  width?: number;
  extra_info?: string;
  errno?: number;
}
export interface FileMetasResponse extends BaseResponse {
  info: FileMeta[];
}

export interface SearchResponse extends BaseResponse {
  list: FileInfo[];
  has_more: 0 | 1;
}

export interface DownloadResponse extends BaseResponse {
  dlink: { fs_id: string; dlink: string }[];
}

/** precreate: return_type 1 = upload the listed shards; 2 = the content exists (rapid upload). */
export interface PrecreateResponse extends BaseResponse {
  path?: string;
  uploadid?: string;
  return_type: 1 | 2;
  block_list?: number[];
  info?: {
    size: number;
    category: number;
    isdir: 0 | 1;
    request_id?: number;
    path: string;
    fs_id: number;
    md5: string;
    ctime: number;
    mtime: number;
  };
}

export interface Superfile2Response {
  md5: string;
  partseq: number | string;
  request_id?: number | string;
  uploadid: string;
  errno?: number;
  error_code?: number;
  error_msg?: string;
}

/** rtype: 0 fail on conflict; 1 rename on conflict; 2 rename if conflict and block_list differs; 3 overwrite. */
export type RType = 0 | 1 | 2 | 3;

export interface CreateResponse extends BaseResponse {
  fs_id: number;
  md5?: string;
  server_filename: string;
  category: number;
  path: string;
  size: number;
  ctime: number;
  mtime: number;
  isdir: 0 | 1;
  from_type?: number;
  name?: string;
}

export type FileManagerOpera = 'copy' | 'move' | 'rename' | 'delete';
export interface FileManagerItemCopyMove {
  path: string;
  dest: string;
  newname: string;
  ondup?: 'fail' | 'newcopy' | 'overwrite' | 'skip';
}
export interface FileManagerItemRename {
  path: string;
  newname: string;
}
export interface FileManagerResponse extends BaseResponse {
  info: { errno: number; path: string }[];
  taskid?: number;
}

// ---------------------------------------------------------------- shares

export interface ShareVerifyResponse extends BaseResponse {
  randsk: string;
}

/** Share APIs return numbers as strings in places. */
export interface ShareFileInfo {
  category: number | string;
  fs_id: number | string;
  isdir: number | string;
  local_ctime: number | string;
  local_mtime: number | string;
  md5?: string;
  path: string;
  server_ctime: number | string;
  server_filename: string;
  server_mtime: number | string;
  size: number | string;
  thumbs?: Thumbs;
  dlink?: string;
}
export interface ShortUrlInfoResponse extends BaseResponse {
  shareid: number;
  uk: number;
  uk_str?: string;
  share_username?: string;
  head_url?: string;
  vip_type?: number;
  page?: number;
  root?: number;
  fcount?: number;
  list: ShareFileInfo[];
}
export interface ShareListResponse extends BaseResponse {
  share_id: number;
  uk: number;
  list: ShareFileInfo[];
}
export interface ShareDownloadResponse extends BaseResponse {
  shareid: number;
  uk: number;
  sign?: string;
  timestamp?: number;
  list: ShareFileInfo[];
}
export interface ShareTransferResponse extends BaseResponse {
  data?: { task_id: string | number; tkbind_errno?: number };
  task_id?: number;
  info?: { errno: number; fsid: string; path: string }[];
  extra?: { list: { from: string; from_fs_id: number; to: string; to_fs_id: number }[] };
}
export interface ShareMediaMetaResponse extends BaseResponse {
  duration: number;
  height: number;
  width: number;
  rotate?: number;
}

/** Stream types of streaming / share/streaming. */
export type StreamType = 'M3U8_AUTO_480' | 'M3U8_AUTO_720' | 'M3U8_AUTO_1080' | 'M3U8_MP3_128';

// ---------------------------------------------------------------- error numbers

/**
 * errno values named by the spec and the Baidu-family values the service is known to return.
 * The meaning (category) of each lives in src/terabox/errors.ts; the emulator uses the numbers.
 */
export const ERRNO = {
  OK: 0,
  PARAM_MISSING: 2, // required parameter missing (oauth), also generic "param error" in xpan
  INVALID_CLIENT: 100001,
  INVALID_CODE: 100002,
  UNSUPPORTED_GRANT: 200001,
  INVALID_ACCESS_TOKEN: 200002,
  ACCESS_TOKEN_EXPIRED: 200003,
  INVALID_REFRESH_TOKEN: 200004,
  REFRESH_TOKEN_EXPIRED: 200005,
  CODE_RATE: 300001,
  AUTH_PENDING: 400001,
  INTERNAL: 500001,
  // xpan family
  ACCESS_DENIED: -6, // identity check failed (bad/expired token on openapi)
  INVALID_NAME: -7,
  FILE_EXISTS: -8,
  FILE_NOT_FOUND: -9,
  QUOTA_EXCEEDED: -10,
  SHARE_PWD_WRONG: -12,
  PARAM_ERROR: 31023,
  TOKEN_INVALID_111: 111, // access token invalid
  SHARE_LINK_ERROR: 105,
  FILE_TOO_LARGE_58: 58,
  RATE_LIMIT: 31034,
  RATE_LIMIT_42000: 42000,
  QUOTA_31112: 31112,
  SHARD_SIZE: 31299,
  SHARD_MISSING: 31363,
  SHARD_SIZE_31364: 31364,
  FILE_TOO_LARGE: 31365,
  UPLOADID_INVALID: 31190,
} as const;
