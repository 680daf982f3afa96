/**
 * SHA-256 of a string for the request-path cache keys. node:crypto's one-shot `hash()` (Node
 * 20.12+) skips the Hash object and costs about half of createHash().update().digest() for the
 * 1–2 KB certificates and tokens hashed on every Check; older runtimes get the latter.
 */
import * as crypto from 'node:crypto';

type Encoding = 'base64' | 'base64url' | 'hex';
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: Encoding) => string }).hash;

export const sha256 = oneShot
  ? (data: string, enc: Encoding): string => oneShot('sha256', data, enc)
  : (data: string, enc: Encoding): string => crypto.createHash('sha256').update(data).digest(enc);
