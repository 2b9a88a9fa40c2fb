/**
 * The one redaction step. Everything that may reach a log line or an error message passes through
 * here: access/refresh tokens, client secret, private secret, cookies, dlink signatures, Basic auth,
 * the signatures of the bridge's HLS URLs.
 *
 * Two mechanisms:
 *  - pattern rules for the shapes secrets take inside URLs, headers and JSON;
 *  - a registry of literal secret values (registerSecret), so that a token that appears in an
 *    unexpected place is still caught.
 */
const SECRET_PARAMS = [
  'access_token',
  'access_tokens',
  'refresh_token',
  'client_secret',
  'private_secret',
  'sign',
  'csign',
  'code',
  'device_code',
  'sekey',
  'spd',
  'randsk',
  'pwd',
  'password',
  'uploadid',
];

const literals = new Set<string>();

/** Remember a secret value so that it is masked wherever it appears. Ignores short values. */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value === 'string' && value.length >= 6) literals.add(value);
}

/** For tests: forget registered secrets. */
export function clearRegisteredSecrets(): void {
  literals.clear();
}

const PARAM_RE = new RegExp(
  `([?&;\\s"'](?:${SECRET_PARAMS.join('|')})=)([^&\\s"'#;,]+)`,
  'gi',
);
const JSON_RE = new RegExp(
  `("(?:${SECRET_PARAMS.join('|')}|BOXCLND|cookie|set-cookie|authorization)"\\s*:\\s*")((?:[^"\\\\]|\\\\.)*)(")`,
  'gi',
);
const HEADER_RE = /\b(authorization|cookie|set-cookie|proxy-authorization)(\s*[:=]\s*)([^\r\n]+)/gi;
const COOKIE_RE = /\b(BOXCLND|ndus|BDUSS|STOKEN)=([^;\s&"']+)/gi;
/** The signature of the bridge's HLS URLs (`/.terabox-dav/hls/<sig>/...`): a capability, like a dlink sign. */
const HLS_RE = /(\/\.terabox-dav\/hls\/)([A-Za-z0-9_-]+)/g;

export function redact(text: string): string {
  let out = text;
  for (const secret of literals) {
    if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
  }
  out = out.replace(PARAM_RE, '$1[REDACTED]');
  out = out.replace(JSON_RE, '$1[REDACTED]$3');
  out = out.replace(HEADER_RE, '$1$2[REDACTED]');
  out = out.replace(COOKIE_RE, '$1=[REDACTED]');
  out = out.replace(HLS_RE, '$1[REDACTED]');
  return out;
}

/** Redact a URL for logging: keeps origin and path, masks secret query parameters. */
export function redactUrl(url: string | URL): string {
  return redact(typeof url === 'string' ? url : url.toString());
}

/** Whether an object key names a secret (its string value is masked whole). */
export function isSecretKey(key: string): boolean {
  return /token|secret|password|cookie|authorization|^sign$|sekey|randsk/i.test(key);
}

/** Deep-redact any value into a log-safe value (strings redacted, objects walked). */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redact(value);
  if (value === null || typeof value !== 'object' || depth > 6) return value;
  if (value instanceof Error) {
    return { name: value.name, message: redact(value.message), code: (value as { code?: unknown }).code };
  }
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (isSecretKey(k) && typeof v === 'string') {
      out[k] = '[REDACTED]';
    } else {
      out[k] = redactValue(v, depth + 1);
    }
  }
  return out;
}
