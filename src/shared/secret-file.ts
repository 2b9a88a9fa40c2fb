/**
 * A process secret that must outlive a restart (the key that signs the virtual HLS playlists' URLs:
 * a playlist a media player or its library holds keeps working after the server restarts, and the
 * virtual file keeps its content and ETag). 32 random bytes in a file of mode 0600, made once.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';

export const SECRET_BYTES = 32;

/** The secret in `file`, made (and kept) on first use; a file of another length is replaced. */
export async function loadOrCreateSecret(file: string): Promise<Buffer> {
  try {
    const b = await readFile(file);
    if (b.length === SECRET_BYTES) return b;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(SECRET_BYTES);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, secret, { mode: 0o600 });
  return secret;
}
