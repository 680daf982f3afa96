/** Certificates from PEM (one or many CERTIFICATE blocks) or DER (one or concatenated). */
import { X509Certificate } from 'node:crypto';
import { ZonegateError } from '../errors.js';
import { readTlv } from './der.js';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

const malformed = (msg: string, cause?: unknown) =>
  new ZonegateError('ERR_SVID_MALFORMED', `x509: ${msg}`, cause === undefined ? undefined : { cause });

function fromDer(der: Buffer): X509Certificate {
  try {
    const cert = new X509Certificate(der);
    // node:crypto accepts trailing bytes after the certificate; an X509-SVID must not have any.
    if (cert.raw.length !== der.length) throw new Error('trailing data after the certificate');
    return cert;
  } catch (err) {
    throw malformed(`malformed certificate: ${(err as Error).message}`, err);
  }
}

/** Parses PEM text or DER bytes into certificates, in order. Throws ERR_SVID_MALFORMED. */
export function parseCertificates(input: string | Uint8Array): X509Certificate[] {
  const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input);
  if (buf.length > 0 && buf[0] === 0x30) {
    // DER: one certificate or several concatenated
    const out: X509Certificate[] = [];
    let pos = 0;
    while (pos < buf.length) {
      let end: number;
      try {
        end = readTlv(buf, pos).end;
      } catch (err) {
        throw malformed(`malformed certificate: ${(err as Error).message}`, err);
      }
      out.push(fromDer(buf.subarray(pos, end)));
      pos = end;
    }
    return out;
  }
  const text = buf.toString('utf8');
  const certs: X509Certificate[] = [];
  let blocks = 0;
  for (const m of text.matchAll(PEM_BLOCK)) {
    blocks++;
    if (m[1] !== 'CERTIFICATE') continue;
    const b64 = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw malformed('malformed certificate: bad base64 in PEM block');
    certs.push(fromDer(Buffer.from(b64, 'base64')));
  }
  if (blocks === 0) throw malformed('no PEM blocks found');
  if (certs.length === 0) throw malformed('no certificates found');
  return certs;
}
