/** parseCertificates: PEM (one or many blocks) and DER (one or concatenated), go-spiffe's messages, limits. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ZonegateError } from '../../src/errors.js';
import { parseCertificates } from '../../src/cert/parse.js';

const V = new URL('../../../shared/conformance/spiffe/', import.meta.url);
const file = (p: string) => readFileSync(new URL(p, V));

function outcome(input: string | Buffer, max?: number): string {
  try {
    return parseCertificates(input, max === undefined ? {} : { maxCertificates: max })
      .map((c) => c.subject.replace(/\n/g, ','))
      .join(' | ');
  } catch (err) {
    if (err instanceof ZonegateError) return `${err.code}: ${err.message}`;
    throw err;
  }
}

const certsPem = file('go-spiffe/x509bundle/certs.pem').toString();
const der = file('rust-spiffe/bundle-x509/bundle.der');

describe('parseCertificates', () => {
  it.each([
    ['one PEM block', file('go-spiffe/x509bundle/cert.pem'), 'CN=PEMUTILTEST1'],
    ['two PEM blocks, in order', certsPem, 'CN=PEMUTILTEST1 | CN=PEMUTILTEST2'],
    ['PEM with CRLF line ends', certsPem.replace(/\n/g, '\r\n'), 'CN=PEMUTILTEST1 | CN=PEMUTILTEST2'],
    ['PEM with a key block first (skipped)', file('go-spiffe/x509svid/good-key-and-cert.pem'), 'C=US,O=SPIRE'],
    ['one DER certificate', file('rust-spiffe/bundle-x509/cert1.der'), 'CN=PEMUTILTEST1'],
    ['concatenated DER', der, 'CN=PEMUTILTEST1 | CN=PEMUTILTEST2'],
    ['DER from a Uint8Array view', new Uint8Array(der.buffer, der.byteOffset, der.byteLength), 'CN=PEMUTILTEST1 | CN=PEMUTILTEST2'],
  ])('%s', (_n, input, want) => {
    expect(outcome(input as Buffer)).toBe(want);
  });

  it.each([
    ['not PEM', 'not-pem\n', 'ERR_SVID_MALFORMED: x509: no PEM blocks found'],
    ['empty input', '', 'ERR_SVID_MALFORMED: x509: no PEM blocks found'],
    ['only a key', file('go-spiffe/x509svid/key-pkcs8-rsa.pem'), 'ERR_SVID_MALFORMED: x509: no certificates found'],
    ['base64 of "CORRUPT"', file('go-spiffe/x509svid/corrupt-cert.pem'), 'ERR_SVID_MALFORMED: x509: malformed certificate: '],
    ['bad base64 characters', '-----BEGIN CERTIFICATE-----\nMII*\n-----END CERTIFICATE-----\n', 'ERR_SVID_MALFORMED: x509: malformed certificate: bad base64 in PEM block'],
    ['DER with trailing bytes', file('derived/svid-with-dns_trailing-garbage.der'), 'ERR_SVID_MALFORMED: x509: malformed certificate: '],
    ['truncated DER', der.subarray(0, 100), 'ERR_SVID_MALFORMED: x509: malformed certificate: der: content runs past its container'],
    ['DER followed by something that is not a SEQUENCE', Buffer.concat([file('rust-spiffe/bundle-x509/cert1.der'), Buffer.from([0x04, 0x00])]), 'ERR_SVID_MALFORMED: x509: malformed certificate: not a SEQUENCE'],
  ])('rejects %s', (_n, input, want) => {
    expect(outcome(input as Buffer).startsWith(want), outcome(input as Buffer)).toBe(true);
  });

  it('stops at maxCertificates before parsing what lies beyond, for PEM and DER', () => {
    expect(outcome(certsPem, 2)).toBe('CN=PEMUTILTEST1 | CN=PEMUTILTEST2');
    expect(outcome(certsPem, 1)).toBe('ERR_SVID_TOO_LARGE: x509: more than 1 certificates');
    expect(outcome(Buffer.concat([der, Buffer.from('garbage')]), 2)).toBe('ERR_SVID_TOO_LARGE: x509: more than 2 certificates');
    // a broken block past the limit is never looked at
    expect(outcome(`${certsPem}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`, 2)).toBe('ERR_SVID_TOO_LARGE: x509: more than 2 certificates');
  });
});
