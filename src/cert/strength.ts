/**
 * The public keys zonegate accepts on certificates (peer SVIDs, their intermediates and bundle
 * roots, token x5c chains, https_spiffe bundle endpoints) and for token signatures (JWT
 * authorities, OIDC JWKS): RSA (PKCS#1 v1.5 or PSS) of at least 2048 bits, EC on P-256, P-384 or
 * P-521, Ed25519 and Ed448. Anything else is refused with ERR_KEY_TOO_WEAK: a 1024-bit RSA key
 * is within reach of a well-funded attacker, and an unusual curve is one no SPIFFE implementation
 * is expected to use (NIST SP 800-131A, CA/Browser Forum baseline requirements).
 *
 * An RSA key is also bounded from above, because its cost to verify grows with it: the public
 * exponent must be odd and between 3 and 2^31 − 1 (Go's crypto/rsa rules, which crypto/x509
 * applies to every certificate key), and the modulus at most 8192 bits (Go's crypto/tls bound).
 * A 3072-bit exponent makes one signature check cost milliseconds instead of ≈ 50 µs.
 */
import type { KeyObject } from 'node:crypto';
import { children, readTlv } from './der.js';

export const MIN_RSA_BITS = 2048;
/** Largest RSA modulus accepted: verification cost grows with its square. */
export const MAX_RSA_BITS = 8192;
/** Largest RSA public exponent accepted (Go: 1<<31 - 1). */
export const MAX_RSA_EXPONENT = 2n ** 31n - 1n;
/** OpenSSL names of the allowed curves: P-256, P-384, P-521. */
export const EC_CURVES: ReadonlySet<string> = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/** What keyWeakness and the algorithm checks (identity/jws.ts keyFits) read of a public key. */
export interface KeyFacts {
  readonly type: string | undefined;
  readonly namedCurve?: string | undefined;
  readonly modulusLength?: number | undefined;
  readonly publicExponent?: bigint | undefined;
  /**
   * An EC key node:crypto holds but cannot encode: the point at infinity (a subjectPublicKeyInfo
   * whose point is the single byte 0). Reading its details (asymmetricKeyDetails, a JWK export)
   * aborts the process in node:crypto (a failed native assertion), and an IEEE P1363 signature
   * check with it crashes: such a key is refused before anything else reads it.
   */
  readonly unusable?: boolean;
}

const facts = new WeakMap<KeyObject, KeyFacts>();

/**
 * The facts of `key`, read once per key object. node:crypto's asymmetricKeyDetails costs about
 * 35 µs for an EC key on Node 20 (OpenSSL 3 converts the key to a legacy one to name its curve),
 * a sixth of parsing the certificate that holds it; a certificate's EC or EdDSA key is described
 * from the certificate's own DER instead (noteKeyFacts).
 */
export function keyFacts(key: KeyObject): KeyFacts {
  let f = facts.get(key);
  if (!f) {
    const type = key.asymmetricKeyType;
    if (type === 'ec' && key.type === 'public' && !encodable(key)) f = { type, unusable: true };
    else {
      // Ed25519 and Ed448 have no details to read; the others are read once here
      const d = type === 'ed25519' || type === 'ed448' ? {} : key.asymmetricKeyDetails;
      f = { type, namedCurve: d?.namedCurve, modulusLength: d?.modulusLength, publicExponent: d?.publicExponent };
    }
    facts.set(key, f);
  }
  return f;
}

/**
 * Is this EC key a point node:crypto can describe? Its DER export fails with an error (it does not
 * abort) where asymmetricKeyDetails would abort; an export that succeeds is read too, so a point
 * of one byte (the point at infinity) is refused whichever way node:crypto treats it.
 */
function encodable(key: KeyObject): boolean {
  try {
    const der = key.export({ format: 'der', type: 'spki' });
    const point = children(der, readTlv(der, 0))[1];
    return point !== undefined && point.tag === 0x03 && point.end - point.start > 2;
  } catch {
    return false;
  }
}

/**
 * The curve (or EdDSA type) of `key` as named in the subjectPublicKeyInfo it was decoded from
 * (cert/certinfo.ts): OpenSSL names the curve from that same OID, so these are the facts
 * asymmetricKeyDetails would give. Taken only when the key's type agrees; anything else (RSA, an
 * EC key with explicit parameters) is read from the key itself.
 */
export function noteKeyFacts(key: KeyObject, f: { readonly type: 'ec'; readonly namedCurve: string } | { readonly type: 'ed25519' | 'ed448' }): void {
  if (!facts.has(key) && key.asymmetricKeyType === f.type) facts.set(key, f);
}

/** Why `key` is not accepted ("RSA key of 1024 bits (minimum 2048)"); undefined when it is. */
export function keyWeakness(key: KeyObject): string | undefined {
  const details = keyFacts(key);
  const type = details.type;
  switch (type) {
    case 'rsa':
    case 'rsa-pss': {
      const name = type === 'rsa' ? 'RSA' : 'RSA-PSS';
      const bits = details.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) return `${name} key of ${bits} bits (minimum ${MIN_RSA_BITS})`;
      if (bits > MAX_RSA_BITS) return `${name} key of ${bits} bits (maximum ${MAX_RSA_BITS})`;
      return exponentProblem(name, details.publicExponent);
    }
    case 'ec':
      if (details.unusable) return 'EC key that is no point of its curve (the point at infinity)';
      return EC_CURVES.has(details.namedCurve ?? '') ? undefined : `EC key on curve ${details.namedCurve ?? 'unknown'} (allowed: P-256, P-384, P-521)`;
    case 'ed25519':
    case 'ed448':
      return smallOrder(key, type) ? `${type === 'ed25519' ? 'Ed25519' : 'Ed448'} key that is a point of small order (one signature verifies for every message)` : undefined;
    default:
      return `${type ?? 'unknown'} key (allowed: RSA of ${MIN_RSA_BITS} bits or more, EC P-256/P-384/P-521, Ed25519, Ed448)`;
  }
}

/** Go's crypto/rsa checkPublicKey: 3 ≤ e ≤ 2^31 − 1 and odd (an even e has no inverse mod λ(n)). */
function exponentProblem(name: string, e: bigint | undefined): string | undefined {
  if (e === undefined) return `${name} key without a readable public exponent`;
  const bits = e.toString(2).length;
  if (e > MAX_RSA_EXPONENT) return `${name} key whose public exponent has ${bits} bits (maximum 2^31 - 1)`;
  if (e < 3n) return `${name} key whose public exponent is ${e} (minimum 3)`;
  if ((e & 1n) === 0n) return `${name} key whose public exponent is even`;
  return undefined;
}

/**
 * The encodings of the points of small order on Ed25519 (libsodium's blocklist, the order 1, 2, 4
 * and 8 points and the non-canonical spellings of three of them) and on Ed448 (orders 1, 2 and 4).
 * A public key among them accepts a signature that verifies for every message (RFC 8032 verifiers
 * such as OpenSSL's do not refuse it), so whoever sees one such signature can sign as that key.
 * The sign bit of x (the last byte's top bit) is left out of the comparison, as libsodium does.
 */
const SMALL_ORDER: Record<'ed25519' | 'ed448', readonly Buffer[]> = {
  ed25519: [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2cc9ccc64ec7fd7792ac037a',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  ].map((h) => Buffer.from(h, 'hex')),
  ed448: [
    `${'00'.repeat(56)}00`,
    `01${'00'.repeat(55)}00`,
    `${'fe'}${'ff'.repeat(27)}${'fe'}${'ff'.repeat(27)}00`,
  ].map((h) => Buffer.from(h, 'hex')),
};

/** Is this EdDSA public key one of SMALL_ORDER's points? (Read from its own encoding, once per key check.) */
function smallOrder(key: KeyObject, type: 'ed25519' | 'ed448'): boolean {
  let raw: Buffer;
  try {
    const der = key.export({ format: 'der', type: 'spki' });
    raw = der.subarray(der.length - (type === 'ed25519' ? 32 : 57));
  } catch {
    return true; // a key node:crypto cannot even encode is not one to trust
  }
  const last = raw.length - 1;
  return SMALL_ORDER[type].some((p) => p.length === raw.length && (raw[last]! & 0x7f) === p[last] && raw.subarray(0, last).equals(p.subarray(0, last)));
}
