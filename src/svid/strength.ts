/**
 * The public keys zonegate accepts on certificates (peer SVIDs, their intermediates and bundle
 * roots, token x5c chains, https_spiffe bundle endpoints) and for token signatures (JWT
 * authorities, OIDC JWKS): RSA (PKCS#1 v1.5 or PSS) of at least 2048 bits, EC on P-256, P-384 or
 * P-521, Ed25519 and Ed448. Anything else is refused with ERR_KEY_TOO_WEAK: a 1024-bit RSA key
 * is within reach of a well-funded attacker, and an unusual curve is one no SPIFFE implementation
 * is expected to use (NIST SP 800-131A, CA/Browser Forum baseline requirements).
 */
import type { KeyObject } from 'node:crypto';

export const MIN_RSA_BITS = 2048;
/** OpenSSL names of the allowed curves: P-256, P-384, P-521. */
export const EC_CURVES: ReadonlySet<string> = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/** Why `key` is not accepted ("RSA key of 1024 bits (minimum 2048)"); undefined when it is. */
export function keyWeakness(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails;
  switch (type) {
    case 'rsa':
    case 'rsa-pss': {
      const bits = details?.modulusLength ?? 0;
      return bits >= MIN_RSA_BITS ? undefined : `${type === 'rsa' ? 'RSA' : 'RSA-PSS'} key of ${bits} bits (minimum ${MIN_RSA_BITS})`;
    }
    case 'ec':
      return EC_CURVES.has(details?.namedCurve ?? '') ? undefined : `EC key on curve ${details?.namedCurve ?? 'unknown'} (allowed: P-256, P-384, P-521)`;
    case 'ed25519':
    case 'ed448':
      return undefined;
    default:
      return `${type ?? 'unknown'} key (allowed: RSA of ${MIN_RSA_BITS} bits or more, EC P-256/P-384/P-521, Ed25519, Ed448)`;
  }
}
