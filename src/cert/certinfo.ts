/**
 * The X.509 facts X509-SVID verification needs and node:crypto does not give: basicConstraints
 * (CA flag, path length), keyUsage bits, the URI SANs, the validity window and which extensions
 * are critical. Read from the DER once per certificate object with a small DER reader (≈ 30 µs;
 * @peculiar/x509 needs ≈ 2 ms for the same facts, docs/spiffe.md) and cached by the object.
 */
import type { X509Certificate } from 'node:crypto';
import { RSA_PSS, SHA1, SIGNATURE_ALGORITHMS } from './algorithms.js';
import { children, DerError, int, oid, readTlv, type Tlv } from './der.js';
import { keyWeakness, noteKeyFacts } from './strength.js';

export interface KeyUsage {
  readonly digitalSignature: boolean;
  readonly keyCertSign: boolean;
  readonly cRLSign: boolean;
}

export interface CertInfo {
  readonly isCa: boolean;
  /** undefined when absent (no limit). */
  readonly pathLen: number | undefined;
  /** undefined when the certificate has no keyUsage extension. */
  readonly keyUsage: KeyUsage | undefined;
  readonly uris: readonly string[];
  /** An empty subject makes a critical subjectAltName mandatory (RFC 5280 §4.2.1.6). */
  readonly subjectEmpty: boolean;
  readonly sanCritical: boolean;
  /** OIDs of extensions zonegate cannot honour: unknown critical ones, and name constraints. */
  readonly unsupportedCritical: readonly string[];
  /** ms since the epoch */
  readonly notBefore: number;
  readonly notAfter: number;
  /** The name of the algorithm the issuer signed this certificate with, when zonegate accepts it; undefined otherwise. */
  readonly signature: string | undefined;
  /** The signature algorithm as found (OID, and the hash OID for RSASSA-PSS), for messages. */
  readonly signatureOid: string;
  /** Why the certificate's public key is refused (too small, curve not allowed); undefined when it is accepted. */
  readonly weakKey: string | undefined;
}

/** The signatureAlgorithm of a certificate as a key of SIGNATURE_ALGORITHMS (the hash is part of it for PSS). */
function signatureKey(der: Buffer, alg: Tlv): string {
  const parts = children(der, alg);
  const id = oid(der, want(parts[0], 0x06, 'signatureAlgorithm'));
  if (id !== RSA_PSS) return id;
  // RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT sha1, ... }
  const params = parts[1]?.tag === 0x30 ? children(der, parts[1]) : [];
  const hash = params.find((p) => p.tag === 0xa0);
  const hashId = hash ? oid(der, want(children(der, want(children(der, hash)[0], 0x30, 'PSS hashAlgorithm'))[0], 0x06, 'PSS hash')) : SHA1;
  return `${RSA_PSS}/${hashId}`;
}

const BASIC_CONSTRAINTS = '2.5.29.19';
const KEY_USAGE = '2.5.29.15';
const SUBJECT_ALT_NAME = '2.5.29.17';
const NAME_CONSTRAINTS = '2.5.29.30';
/** Extensions zonegate understands: a critical one of any other kind fails verification. */
const SUPPORTED = new Set([BASIC_CONSTRAINTS, KEY_USAGE, SUBJECT_ALT_NAME, '2.5.29.37' /* EKU */, '2.5.29.14' /* SKI */, '2.5.29.35' /* AKI */]);

const cache = new WeakMap<X509Certificate, CertInfo>();

function want(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new DerError(`der: ${what} is malformed`);
  return t;
}

/** The single TLV that fills an extension's OCTET STRING: no trailing bytes. */
function inner(der: Buffer, value: Tlv, id: string): Tlv {
  const t = readTlv(der, value.start, value.end);
  if (t.end !== value.end) throw new DerError(`der: extension ${id} has trailing data`);
  return t;
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), as RFC 5280 §4.1.2.5 profiles them. */
function time(der: Buffer, t: Tlv | undefined): number {
  if (!t || (t.tag !== 0x17 && t.tag !== 0x18)) throw new DerError('der: validity is malformed');
  const s = der.toString('latin1', t.start, t.end);
  const m = (t.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/).exec(s);
  if (!m) throw new DerError(`der: time "${s}" is not in RFC 5280 form`);
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year >= 50 ? 1900 : 2000;
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

function parse(cert: X509Certificate): CertInfo {
  const der = cert.raw;
  const top = readTlv(der, 0);
  if (top.tag !== 0x30 || top.end !== der.length) throw new DerError('der: certificate is not one SEQUENCE');
  const outer = children(der, top);
  const fields = children(der, want(outer[0], 0x30, 'tbsCertificate'));
  const signatureOid = signatureKey(der, want(outer[1], 0x30, 'signatureAlgorithm'));
  const v = fields[0]?.tag === 0xa0 ? 1 : 0;
  const validity = children(der, want(fields[3 + v], 0x30, 'validity'));
  const subject = want(fields[4 + v], 0x30, 'subject');
  const spki = want(fields[5 + v], 0x30, 'subjectPublicKeyInfo');
  const extWrapper = fields.find((f) => f.tag === 0xa3);
  let sanCritical = false;
  let isCa = false;
  let pathLen: number | undefined;
  let keyUsage: KeyUsage | undefined;
  const uris: string[] = [];
  const unsupportedCritical: string[] = [];
  const seen = new Set<string>();
  if (extWrapper) {
    const seq = want(children(der, extWrapper)[0], 0x30, 'extensions');
    for (const ext of children(der, seq)) {
      const parts = children(der, want(ext, 0x30, 'extension'));
      const id = oid(der, want(parts[0], 0x06, 'extension id'));
      if (seen.has(id)) throw new DerError(`der: extension ${id} appears twice`);
      seen.add(id);
      let critical = false;
      let valueTlv = parts[1];
      if (valueTlv?.tag === 0x01) {
        if (valueTlv.end - valueTlv.start !== 1) throw new DerError(`der: extension ${id} critical flag is malformed`);
        critical = der[valueTlv.start] !== 0;
        valueTlv = parts[2];
      }
      valueTlv = want(valueTlv, 0x04, `extension ${id} value`);
      if ((critical && !SUPPORTED.has(id)) || id === NAME_CONSTRAINTS) unsupportedCritical.push(id);
      const value = inner(der, valueTlv, id);
      if (id === BASIC_CONSTRAINTS) {
        for (const c of children(der, want(value, 0x30, 'basicConstraints'))) {
          if (c.tag === 0x01 && c.end - c.start === 1) isCa = der[c.start] !== 0;
          else if (c.tag === 0x02) pathLen = int(der, c);
          else throw new DerError('der: basicConstraints is malformed');
        }
      } else if (id === KEY_USAGE) {
        const bits = want(value, 0x03, 'keyUsage');
        if (bits.end - bits.start < 1 || der[bits.start]! > 7) throw new DerError('der: keyUsage is not a BIT STRING');
        const b0 = bits.end - bits.start > 1 ? der[bits.start + 1]! : 0;
        keyUsage = { digitalSignature: (b0 & 0x80) !== 0, keyCertSign: (b0 & 0x04) !== 0, cRLSign: (b0 & 0x02) !== 0 };
      } else if (id === SUBJECT_ALT_NAME) {
        sanCritical = critical;
        for (const gn of children(der, want(value, 0x30, 'subjectAltName')))
          if (gn.tag === 0x86) uris.push(der.toString('latin1', gn.start, gn.end));
      }
    }
  }
  return {
    isCa,
    pathLen: isCa ? pathLen : undefined,
    keyUsage,
    uris,
    subjectEmpty: subject.end === subject.start,
    sanCritical,
    unsupportedCritical,
    notBefore: time(der, validity[0]),
    notAfter: time(der, validity[1]),
    signature: SIGNATURE_ALGORITHMS.get(signatureOid)?.name,
    signatureOid,
    weakKey: keyWeakness(describedKey(cert, der, spki)),
  };
}

const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
/** Named curves by OID, as OpenSSL names them (asymmetricKeyDetails.namedCurve). */
const CURVES: ReadonlyMap<string, string> = new Map([
  ['1.2.840.10045.3.1.7', 'prime256v1'],
  ['1.3.132.0.34', 'secp384r1'],
  ['1.3.132.0.35', 'secp521r1'],
]);
const EDDSA: ReadonlyMap<string, 'ed25519' | 'ed448'> = new Map([
  ['1.3.101.112', 'ed25519'],
  ['1.3.101.113', 'ed448'],
]);

/**
 * The certificate's public key, with its curve noted from the subjectPublicKeyInfo's algorithm
 * identifier when it names one of the curves zonegate accepts or an EdDSA type (see
 * strength.ts noteKeyFacts); any other key is described by node:crypto as before.
 */
function describedKey(cert: X509Certificate, der: Buffer, spki: Tlv): X509Certificate['publicKey'] {
  const key = cert.publicKey;
  try {
    const [algorithm, bits] = children(der, spki);
    const alg = children(der, want(algorithm, 0x30, 'subjectPublicKeyInfo algorithm'));
    const id = oid(der, want(alg[0], 0x06, 'subjectPublicKeyInfo algorithm'));
    const eddsa = EDDSA.get(id);
    if (eddsa && alg.length === 1) noteKeyFacts(key, { type: eddsa });
    // a point of one byte (after the unused-bits byte) is the point at infinity, which OpenSSL
    // decodes: node:crypto describes it, and strength.ts refuses it (keyFacts: unusable)
    else if (id === EC_PUBLIC_KEY && alg.length === 2 && alg[1]!.tag === 0x06 && want(bits, 0x03, 'subjectPublicKey').end - bits!.start > 2) {
      const curve = CURVES.get(oid(der, alg[1]!));
      if (curve) noteKeyFacts(key, { type: 'ec', namedCurve: curve });
    }
  } catch {
    // not read here: node:crypto describes the key, as for any other
  }
  return key;
}

/** The facts of one certificate, read once per object. Throws DerError on a malformed certificate. */
export function certInfo(cert: X509Certificate): CertInfo {
  let info = cache.get(cert);
  if (!info) {
    info = parse(cert);
    cache.set(cert, info);
  }
  return info;
}
