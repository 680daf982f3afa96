/**
 * Compact JWS primitives on node:crypto: strict base64url, bounded parsing, and signing and
 * verification for the algorithms zonegate allows. `none` and HS* do not exist here: there is
 * no code path that could accept them.
 */
import { sign, verify, type KeyObject } from 'node:crypto';

export const ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];
export const isAlgorithm = (a: unknown): a is Algorithm => typeof a === 'string' && (ALGORITHMS as readonly string[]).includes(a);

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Decodes base64url without padding; undefined when the text is not canonical base64url. */
export function b64urlDecode(s: string): Buffer | undefined {
  if (!B64URL.test(s) || s.length % 4 === 1) return undefined;
  const buf = Buffer.from(s, 'base64url');
  return buf.toString('base64url') === s ? buf : undefined;
}

export const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** The key a given algorithm needs, so a token cannot pick a verification mode for a key. */
export function keyFits(alg: Algorithm, key: KeyObject): boolean {
  const t = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  switch (alg) {
    case 'ES256':
      return t === 'ec' && curve === 'prime256v1';
    case 'ES384':
      return t === 'ec' && curve === 'secp384r1';
    case 'EdDSA':
      return t === 'ed25519';
    case 'RS256':
    case 'PS256':
      return (t === 'rsa' || (alg === 'PS256' && t === 'rsa-pss')) && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048;
  }
}

function params(alg: Algorithm, key: KeyObject) {
  switch (alg) {
    case 'ES256':
      return { hash: 'sha256', key: { key, dsaEncoding: 'ieee-p1363' as const } };
    case 'ES384':
      return { hash: 'sha384', key: { key, dsaEncoding: 'ieee-p1363' as const } };
    case 'EdDSA':
      return { hash: null, key: { key } };
    case 'RS256':
      return { hash: 'sha256', key: { key } };
    case 'PS256':
      return { hash: 'sha256', key: { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 } };
  }
}

/** Verifies a JWS signature over `signingInput` (caller has checked keyFits). */
export function verifySignature(alg: Algorithm, key: KeyObject, signingInput: string, signature: Buffer): boolean {
  const p = params(alg, key);
  try {
    return verify(p.hash, Buffer.from(signingInput), p.key, signature);
  } catch {
    return false;
  }
}

/** Picks the algorithm for a private key: EC P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA, RSA → RS256. */
export function algorithmFor(key: KeyObject, prefer?: Algorithm): Algorithm {
  if (prefer && keyFits(prefer, key)) return prefer;
  for (const a of ALGORITHMS) if (keyFits(a, key)) return a;
  throw new Error(`jws: no supported algorithm for a ${key.asymmetricKeyType} key`);
}

/** Signs header and claims into a compact JWS. */
export function signCompact(header: object, claims: object, alg: Algorithm, key: KeyObject): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const p = params(alg, key);
  return `${input}.${b64url(sign(p.hash, Buffer.from(input), p.key))}`;
}
