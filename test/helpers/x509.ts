/**
 * Certificate shapes no CA makes on purpose, for the tests that must refuse them: extensions
 * the CA (src/demo/pki.ts) adds through its `extensions` option, certificates altered after
 * signing, and an RSA key no key generator makes (through the CA's `spki` option).
 */
import 'reflect-metadata'; // @peculiar/x509 2.x needs a Reflect metadata polyfill
import * as x509 from '@peculiar/x509';
import { X509Certificate } from 'node:crypto';

/** An extension no verifier understands (value NULL), critical unless said otherwise. */
export function unknownExtension(oid = '1.3.6.1.4.1.99999.1', critical = true): x509.Extension {
  return new x509.Extension(oid, critical, new Uint8Array([0x05, 0x00]));
}

/** An extension no verifier understands, marked critical. */
export const unknownCriticalExtension = (oid?: string): x509.Extension => unknownExtension(oid, true);

/** A critical nameConstraints extension permitting URIs in `host` (RFC 5280 §4.2.1.10). */
export function nameConstraintsExtension(host: string): x509.Extension {
  const tlv = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag, body.length]), body]);
  const value = tlv(0x30, tlv(0xa0, tlv(0x30, tlv(0x86, Buffer.from(host, 'ascii')))));
  return new x509.Extension('2.5.29.30', true, value);
}

/** The certificate with one bit of its signature flipped: still well-formed, no longer valid. */
export function tamperSignature(cert: X509Certificate): X509Certificate {
  const der = Buffer.from(cert.raw);
  der[der.length - 1] = der[der.length - 1]! ^ 0x01; // the last byte of the signature BIT STRING
  return new X509Certificate(der);
}

/** The certificate with `from` replaced by `to` (same length) in its signed contents, e.g. its SPIFFE ID. */
export function tamperContents(cert: X509Certificate, from: string, to: string): X509Certificate {
  if (from.length !== to.length) throw new Error('tamperContents: same length only');
  const der = Buffer.from(cert.raw);
  const at = der.indexOf(Buffer.from(from, 'latin1'));
  if (at < 0) throw new Error(`tamperContents: "${from}" not found`);
  der.write(to, at, 'latin1');
  return new X509Certificate(der);
}

/** A DER length. */
function derLength(n: number): Buffer {
  if (n < 128) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
/** A SubjectPublicKeyInfo: the AlgorithmIdentifier's contents (DER) and the key as the BIT STRING holds it. */
const spkiOf = (algorithm: Buffer, key: Buffer, unusedBits = 0) => new Uint8Array(tlv(0x30, Buffer.concat([tlv(0x30, algorithm), tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), key]))])));

/** An RSA SubjectPublicKeyInfo (DER) for any modulus and exponent, built by hand (no key generator makes a 3000-bit exponent). */
export function rsaSpki(modulus: Buffer, exponent: bigint): Uint8Array {
  const int = (b: Buffer) => tlv(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
  let hex = exponent.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const rsaPublicKey = tlv(0x30, Buffer.concat([int(modulus), int(Buffer.from(hex, 'hex'))]));
  return spkiOf(Buffer.from('06092a864886f70d0101010500', 'hex'), rsaPublicKey); // rsaEncryption, NULL
}

/**
 * An EC SubjectPublicKeyInfo (id-ecPublicKey) built by hand: `params` is the DER of the curve's
 * OID or of explicit ECParameters, `point` the encoded point as sent (the single byte 0 is the
 * point at infinity, which OpenSSL decodes).
 */
export function ecSpki(params: Buffer, point: Buffer): Uint8Array {
  return spkiOf(Buffer.concat([Buffer.from('06072a8648ce3d0201', 'hex'), params]), point);
}

/** A SubjectPublicKeyInfo with any algorithm OID (DER of the OID, no parameters) and key bytes. */
export function rawSpki(algorithmOid: Buffer, key: Buffer, unusedBits = 0): Uint8Array {
  return spkiOf(algorithmOid, key, unusedBits);
}
