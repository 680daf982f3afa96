/**
 * The signature algorithms zonegate accepts on certificates, in one table: the name messages use
 * (certinfo.ts) and the hash node:crypto verifies with (signature.ts). SHA-2 with ECDSA, RSA
 * PKCS#1 v1.5 and RSASSA-PSS, and EdDSA. SHA-1 and MD5 are refused (chosen-prefix collisions make
 * such signatures forgeable).
 */

export const RSA_PSS = '1.2.840.113549.1.1.10';
export const MGF1 = '1.2.840.113549.1.1.8';
/** SHA-1, RSASSA-PSS's default hash when its parameters name none. */
export const SHA1 = '1.3.14.3.2.26';

/** Hash algorithm OIDs zonegate accepts inside RSASSA-PSS parameters → node:crypto's names. */
export const DIGESTS: ReadonlyMap<string, string> = new Map([
  ['2.16.840.1.101.3.4.2.1', 'sha256'],
  ['2.16.840.1.101.3.4.2.2', 'sha384'],
  ['2.16.840.1.101.3.4.2.3', 'sha512'],
]);

export interface SignatureAlgorithm {
  /** For messages. */
  readonly name: string;
  /** The hash node:crypto's verify() takes; null for EdDSA, which hashes as part of the scheme. */
  readonly hash: string | null;
}

/** Keyed by the signatureAlgorithm OID, or `${RSA_PSS}/${hash OID}` for RSASSA-PSS. */
export const SIGNATURE_ALGORITHMS: ReadonlyMap<string, SignatureAlgorithm> = new Map([
  ['1.2.840.10045.4.3.2', { name: 'ecdsa-with-SHA256', hash: 'sha256' }],
  ['1.2.840.10045.4.3.3', { name: 'ecdsa-with-SHA384', hash: 'sha384' }],
  ['1.2.840.10045.4.3.4', { name: 'ecdsa-with-SHA512', hash: 'sha512' }],
  ['1.2.840.113549.1.1.11', { name: 'sha256WithRSAEncryption', hash: 'sha256' }],
  ['1.2.840.113549.1.1.12', { name: 'sha384WithRSAEncryption', hash: 'sha384' }],
  ['1.2.840.113549.1.1.13', { name: 'sha512WithRSAEncryption', hash: 'sha512' }],
  [`${RSA_PSS}/2.16.840.1.101.3.4.2.1`, { name: 'RSASSA-PSS with SHA-256', hash: 'sha256' }],
  [`${RSA_PSS}/2.16.840.1.101.3.4.2.2`, { name: 'RSASSA-PSS with SHA-384', hash: 'sha384' }],
  [`${RSA_PSS}/2.16.840.1.101.3.4.2.3`, { name: 'RSASSA-PSS with SHA-512', hash: 'sha512' }],
  ['1.3.101.112', { name: 'Ed25519', hash: null }],
  ['1.3.101.113', { name: 'Ed448', hash: null }],
]);
