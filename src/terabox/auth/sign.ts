/**
 * The dynamic signature of the oauth calls (spec 1.4.2.1):
 * md5(client_id + '_' + timestamp + '_' + client_secret + '_' + private_secret), hex.
 */
import { createHash } from 'node:crypto';

export function oauthSign(clientId: string, timestamp: string | number, clientSecret: string, privateSecret: string): string {
  return createHash('md5').update(`${clientId}_${timestamp}_${clientSecret}_${privateSecret}`).digest('hex');
}

/** Current Unix time in seconds, as the oauth calls want it. */
export function unixSeconds(now = Date.now()): string {
  return String(Math.floor(now / 1000));
}
