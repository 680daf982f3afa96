/**
 * The X.509 facts X509-SVID verification needs and node:crypto does not give: basicConstraints
 * (CA flag, path length), keyUsage bits, the URI SANs and which extensions are critical.
 * Read from the DER once per certificate and cached by the certificate object.
 */
import type { X509Certificate } from 'node:crypto';
import { children, DerError, int, oid, readTlv } from './der.js';

export interface CertInfo {
  readonly isCa: boolean;
  /** undefined when absent (no limit). */
  readonly pathLen: number | undefined;
  /** undefined when the certificate has no keyUsage extension. */
  readonly keyUsage: { digitalSignature: boolean; keyCertSign: boolean; cRLSign: boolean } | undefined;
  readonly uris: readonly string[];
  /** An empty subject makes a critical subjectAltName mandatory (RFC 5280 §4.2.1.6). */
  readonly subjectEmpty: boolean;
  readonly sanCritical: boolean;
  /** OIDs of critical extensions zonegate does not process. */
  readonly unsupportedCritical: readonly string[];
  readonly notBefore: number;
  readonly notAfter: number;
}

const BASIC_CONSTRAINTS = '2.5.29.19';
const KEY_USAGE = '2.5.29.15';
const SUBJECT_ALT_NAME = '2.5.29.17';
/** Extensions zonegate understands: a critical one of any other kind fails verification. */
const SUPPORTED = new Set([BASIC_CONSTRAINTS, KEY_USAGE, SUBJECT_ALT_NAME, '2.5.29.37' /* EKU */, '2.5.29.14' /* SKI */, '2.5.29.35' /* AKI */]);

const cache = new WeakMap<X509Certificate, CertInfo>();

function parse(cert: X509Certificate): CertInfo {
  const der = cert.raw;
  const top = readTlv(der, 0);
  if (top.tag !== 0x30 || top.end !== der.length) throw new DerError('der: certificate is not one SEQUENCE');
  const tbs = children(der, top)[0];
  if (!tbs || tbs.tag !== 0x30) throw new DerError('der: no tbsCertificate');
  const fields = children(der, tbs);
  const extWrapper = fields.find((f) => f.tag === 0xa3);
  const subject = fields[fields[0]?.tag === 0xa0 ? 5 : 4];
  if (!subject || subject.tag !== 0x30) throw new DerError('der: no subject');
  let sanCritical = false;
  let isCa = false;
  let pathLen: number | undefined;
  let keyUsage: CertInfo['keyUsage'];
  const uris: string[] = [];
  const unsupportedCritical: string[] = [];
  const seen = new Set<string>();
  if (extWrapper) {
    const seq = children(der, extWrapper)[0];
    if (!seq || seq.tag !== 0x30) throw new DerError('der: extensions are not a SEQUENCE');
    for (const ext of children(der, seq)) {
      const parts = children(der, ext);
      const id = oid(der, parts[0]!);
      if (seen.has(id)) throw new DerError(`der: extension ${id} appears twice`);
      seen.add(id);
      let critical = false;
      let valueTlv = parts[1];
      if (valueTlv?.tag === 0x01) {
        critical = der[valueTlv.start] !== 0;
        valueTlv = parts[2];
      }
      if (!valueTlv || valueTlv.tag !== 0x04) throw new DerError(`der: extension ${id} has no value`);
      if (critical && !SUPPORTED.has(id)) unsupportedCritical.push(id);
      const inner = readTlv(der, valueTlv.start, valueTlv.end);
      if (id === BASIC_CONSTRAINTS) {
        for (const c of children(der, inner)) {
          if (c.tag === 0x01) isCa = der[c.start] !== 0;
          else if (c.tag === 0x02) pathLen = int(der, c);
        }
      } else if (id === KEY_USAGE) {
        if (inner.tag !== 0x03 || inner.end - inner.start < 1) throw new DerError('der: keyUsage is not a BIT STRING');
        const b0 = inner.end - inner.start > 1 ? der[inner.start + 1]! : 0;
        keyUsage = { digitalSignature: (b0 & 0x80) !== 0, keyCertSign: (b0 & 0x04) !== 0, cRLSign: (b0 & 0x02) !== 0 };
      } else if (id === SUBJECT_ALT_NAME) {
        sanCritical = critical;
        for (const gn of children(der, inner)) if (gn.tag === 0x86) uris.push(Buffer.from(der.subarray(gn.start, gn.end)).toString('latin1'));
      }
    }
  }
  return {
    isCa,
    pathLen,
    keyUsage,
    uris,
    subjectEmpty: subject.end === subject.start,
    sanCritical,
    unsupportedCritical,
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
  };
}

/** The facts of one certificate, read once. Throws DerError on a malformed certificate. */
export function certInfo(cert: X509Certificate): CertInfo {
  let info = cache.get(cert);
  if (!info) {
    info = parse(cert);
    cache.set(cert, info);
  }
  return info;
}
