/**
 * SHA-256 of a string for the request-path cache keys. node:crypto's one-shot `hash()` (Node
 * 20.12+) skips the Hash object and costs about half of createHash().update().digest() for the
 * 1–2 KB certificates and tokens hashed on every Check; older runtimes get the latter.
 */
import * as crypto from 'node:crypto';

type Encoding = 'base64' | 'base64url' | 'hex';
const oneShot = (crypto as { hash?: (alg: string, data: string | Buffer, enc: Encoding) => string }).hash;

/** SHA-256 of a string (its UTF-8) or of bytes (a certificate's DER: its x5t#S256 in base64url, RFC 8705). */
export const sha256 = oneShot
  ? (data: string | Buffer, enc: Encoding): string => oneShot('sha256', data, enc)
  : (data: string | Buffer, enc: Encoding): string => crypto.createHash('sha256').update(data).digest(enc);

/**
 * The SHA-256 of the last few strings hashed, found again by comparing the strings themselves.
 * A hot check carries the certificate and token of the previous one (a sidecar's peers are few):
 * comparing 2 KB with `===` costs a twentieth of hashing it, and strings that differ mostly
 * differ in their first bytes (a certificate's serial number) or their length. Exact equality
 * is at least as strong a key as the hash it stands for. Hashes computed here are the same as
 * sha256(s, enc): only the work is saved.
 */
export class RecentHashes {
  private readonly strings: (string | undefined)[];
  private readonly hashes: string[];
  private next = 0;

  constructor(
    private readonly size: number,
    private readonly enc: Encoding,
  ) {
    this.strings = new Array<string | undefined>(size).fill(undefined);
    this.hashes = new Array<string>(size).fill('');
  }

  hash(s: string): string {
    const n = s.length;
    for (let i = 0; i < this.size; i++) {
      const c = this.strings[i];
      // length and last character first: tokens of one signer share a long header
      if (c !== undefined && c.length === n && c.charCodeAt(n - 1) === s.charCodeAt(n - 1) && c === s) return this.hashes[i]!;
    }
    const h = sha256(s, this.enc);
    this.strings[this.next] = s;
    this.hashes[this.next] = h;
    this.next = (this.next + 1) % this.size;
    return h;
  }
}
