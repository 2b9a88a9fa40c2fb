/**
 * Password hashes for the WebDAV users of the bridge (server.users in the configuration).
 *
 * Stored form: `scrypt$<N>$<r>$<p>$<salt base64>$<key base64>`; anything else is a plain-text password
 * (allowed for quick setups, compared in constant time). `terabox-dav hash-password` prints a hash.
 */
import { randomBytes, scrypt, timingSafeEqual, createHash } from 'node:crypto';

const PREFIX = 'scrypt$';
const DEFAULTS = { N: 16384, r: 8, p: 1, keyLen: 32, saltLen: 16 };

function scryptAsync(plain: string, salt: Buffer, keyLen: number, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: 128 * N * r * 2 leaves room for the parameters we accept.
    scrypt(plain, salt, keyLen, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

/** Hash a password into the `scrypt$...` form. */
export async function hashPassword(plain: string): Promise<string> {
  const salt = randomBytes(DEFAULTS.saltLen);
  const key = await scryptAsync(plain, salt, DEFAULTS.keyLen, DEFAULTS.N, DEFAULTS.r, DEFAULTS.p);
  return `${PREFIX}${DEFAULTS.N}$${DEFAULTS.r}$${DEFAULTS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Whether a stored password is an scrypt hash (as opposed to plain text). */
export function isPasswordHash(stored: string): boolean {
  return stored.startsWith(PREFIX);
}

/** Parse an scrypt hash; undefined when it is malformed. */
export function parsePasswordHash(stored: string): { N: number; r: number; p: number; salt: Buffer; key: Buffer } | undefined {
  if (!isPasswordHash(stored)) return undefined;
  const parts = stored.slice(PREFIX.length).split('$');
  if (parts.length !== 5) return undefined;
  const [n, r, p, salt, key] = parts as [string, string, string, string, string];
  const N = Number(n);
  const R = Number(r);
  const P = Number(p);
  const valid =
    Number.isInteger(N) && N > 1 && (N & (N - 1)) === 0 && N <= 2 ** 20 &&
    Number.isInteger(R) && R >= 1 && R <= 32 &&
    Number.isInteger(P) && P >= 1 && P <= 16 &&
    /^[A-Za-z0-9+/]+=*$/.test(salt) && /^[A-Za-z0-9+/]+=*$/.test(key);
  if (!valid) return undefined;
  const keyBuf = Buffer.from(key, 'base64');
  if (keyBuf.length < 16 || keyBuf.length > 128) return undefined;
  return { N, r: R, p: P, salt: Buffer.from(salt, 'base64'), key: keyBuf };
}

/**
 * Check a password against its stored form (scrypt hash or plain text). Never throws for a
 * malformed hash: it simply does not match.
 */
export async function verifyPassword(plain: string, stored: string): Promise<boolean> {
  if (!isPasswordHash(stored)) {
    // Constant time over equal-length digests, whatever the lengths of the inputs.
    const a = createHash('sha256').update(plain).digest();
    const b = createHash('sha256').update(stored).digest();
    return timingSafeEqual(a, b);
  }
  const parsed = parsePasswordHash(stored);
  if (!parsed) return false;
  const key = await scryptAsync(plain, parsed.salt, parsed.key.length, parsed.N, parsed.r, parsed.p);
  return timingSafeEqual(key, parsed.key);
}
