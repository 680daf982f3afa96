/**
 * Compact JWS primitives on node:crypto: strict base64url, and signing and verification for the
 * algorithms zonegate allows (parsing and the header rules are in compact.ts). `none` and HS* do
 * not exist here: there is no code path that could accept them.
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import { keyFacts } from '../cert/strength.js';

/** What common identities may use (and what zonegate mints with). */
export const ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'] as const;
/** JWT-SVID.md §2.1: RFC 7518 §3.3–3.5 only (no EdDSA). */
export const JWT_SVID_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'] as const;
export type Algorithm = (typeof ALGORITHMS)[number] | (typeof JWT_SVID_ALGORITHMS)[number];
const ALL = new Set<string>([...ALGORITHMS, ...JWT_SVID_ALGORITHMS]);
export const isAlgorithm = (a: unknown): a is Algorithm => typeof a === 'string' && ALL.has(a);

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
  const f = keyFacts(key);
  const t = f.type;
  const curve = f.namedCurve;
  switch (alg) {
    case 'ES256':
      return t === 'ec' && curve === 'prime256v1';
    case 'ES384':
      return t === 'ec' && curve === 'secp384r1';
    case 'ES512':
      return t === 'ec' && curve === 'secp521r1';
    case 'EdDSA':
      return t === 'ed25519';
    case 'RS256':
    case 'RS384':
    case 'RS512':
    case 'PS256':
    case 'PS384':
    case 'PS512':
      return (t === 'rsa' || (alg.startsWith('PS') && t === 'rsa-pss')) && (f.modulusLength ?? 0) >= 2048;
  }
}

function params(alg: Algorithm, key: KeyObject) {
  if (alg === 'EdDSA') return { hash: null, key: { key } };
  const bits = alg.slice(2) as '256' | '384' | '512';
  const hash = `sha${bits}`;
  if (alg.startsWith('ES')) return { hash, key: { key, dsaEncoding: 'ieee-p1363' as const } };
  if (alg.startsWith('PS')) return { hash, key: { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: Number(bits) / 8 } };
  return { hash, key: { key } };
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

/**
 * verifySignature on the libuv thread pool (node:crypto's callback form): the same answer, while
 * the event loop goes on with other requests. An ES256 or EdDSA check costs 140–190 µs.
 */
export function verifySignatureAsync(alg: Algorithm, key: KeyObject, signingInput: string, signature: Buffer): Promise<boolean> {
  const p = params(alg, key);
  return new Promise((resolve) => {
    try {
      verify(p.hash, Buffer.from(signingInput), p.key, signature, (err, ok) => resolve(!err && ok));
    } catch {
      resolve(false);
    }
  });
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
