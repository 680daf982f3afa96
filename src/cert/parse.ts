/**
 * Certificates from PEM (one or many CERTIFICATE blocks) or DER (one or concatenated), with
 * go-spiffe's messages ("no PEM blocks found", "no certificates found"). Parsing costs Node 20
 * ≈ 200–300 µs per certificate, so a caller that will refuse long chains says so up front
 * (`maxCertificates`) and nothing past the limit is parsed.
 */
import { X509Certificate } from 'node:crypto';
import { ZonegateError } from '../errors.js';
import { readTlv } from './der.js';
import { pemBlocks as scanPem } from './pem.js';

export interface ParseOptions {
  /** Refuse (ERR_SVID_TOO_LARGE) input holding more certificates than this, before parsing them. */
  readonly maxCertificates?: number;
  /** Refuse (ERR_SVID_TOO_LARGE) any certificate whose DER is larger than this, before parsing it. */
  readonly maxCertificateBytes?: number;
}


const malformed = (msg: string, cause?: unknown) =>
  new ZonegateError('ERR_SVID_MALFORMED', `x509: ${msg}`, cause === undefined ? undefined : { cause });

function fromDer(der: Buffer): X509Certificate {
  try {
    const cert = new X509Certificate(der);
    // node:crypto accepts trailing bytes after the certificate; an X509-SVID must not have any.
    if (cert.raw.length !== der.length) throw new Error('trailing data after the certificate');
    // OpenSSL parses a certificate whose key it cannot decode and throws only when the key is
    // used; found by fuzzing: refuse it here, as malformed, rather than later as an internal error
    void cert.publicKey;
    return cert;
  } catch (err) {
    throw malformed(`malformed certificate: ${(err as Error).message}`, err);
  }
}

function tooMany(max: number): ZonegateError {
  return new ZonegateError('ERR_SVID_TOO_LARGE', `x509: more than ${max} certificates`);
}

/** Splits concatenated DER into one buffer per top-level SEQUENCE. */
function splitDer(buf: Buffer, max: number): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (out.length === max) throw tooMany(max);
    let end: number;
    try {
      const t = readTlv(buf, pos);
      if (buf[pos] !== 0x30) throw new Error('not a SEQUENCE');
      end = t.end;
    } catch (err) {
      throw malformed(`malformed certificate: ${(err as Error).message}`, err);
    }
    out.push(buf.subarray(pos, end));
    pos = end;
  }
  return out;
}

/** DER of every CERTIFICATE block; other blocks (keys) are skipped, as go-spiffe does. */
function pemBlocks(text: string, max: number): Buffer[] {
  const ders: Buffer[] = [];
  let blocks = 0;
  for (const m of scanPem(text)) {
    blocks++;
    if (m.label !== 'CERTIFICATE') continue;
    if (ders.length === max) throw tooMany(max);
    const b64 = m.body.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw malformed('malformed certificate: bad base64 in PEM block');
    ders.push(Buffer.from(b64, 'base64'));
  }
  if (blocks === 0) throw malformed('no PEM blocks found');
  if (ders.length === 0) throw malformed('no certificates found');
  return ders;
}

/**
 * The DER of each certificate in PEM text or DER bytes, in order, without parsing any: what
 * caches are keyed by (the same certificate in another PEM wrapping or base64 spelling is the
 * same key). Throws ERR_SVID_MALFORMED / ERR_SVID_TOO_LARGE.
 */
export function certificateDers(input: string | Uint8Array, opts: ParseOptions = {}): Buffer[] {
  const max = opts.maxCertificates ?? Infinity;
  const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const ders = buf.length > 0 && buf[0] === 0x30 ? splitDer(buf, max) : pemBlocks(buf.toString('utf8'), max);
  const maxBytes = opts.maxCertificateBytes ?? Infinity;
  for (const der of ders)
    if (der.length > maxBytes) throw new ZonegateError('ERR_SVID_TOO_LARGE', `x509: a certificate of ${der.length} bytes (limit ${maxBytes})`);
  return ders;
}

/** One certificate from its DER (no trailing bytes, a decodable key). Throws ERR_SVID_MALFORMED. */
export const certificateFromDer = fromDer;

/** Parses PEM text or DER bytes into certificates, in order. Throws ERR_SVID_MALFORMED / ERR_SVID_TOO_LARGE. */
export function parseCertificates(input: string | Uint8Array, opts: ParseOptions = {}): X509Certificate[] {
  return certificateDers(input, opts).map(fromDer);
}
