/**
 * certInfo (the small DER reader) against @peculiar/x509 as an independent oracle, on every
 * certificate in the public vectors and on generated shapes; and its refusals of corrupt extensions.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { certInfo, type CertInfo } from '../../src/cert/certinfo.js';
import { parseCertificates } from '../../src/cert/parse.js';
import { KU, MemoryCA } from '../../src/demo/pki.js';
import { nameConstraintsExtension, unknownCriticalExtension, unknownExtension } from '../helpers/x509.js';

const V = new URL('../../../shared/conformance/spiffe/', import.meta.url);
const SUPPORTED = ['2.5.29.19', '2.5.29.15', '2.5.29.17', '2.5.29.37', '2.5.29.14', '2.5.29.35'];

function walk(dir: URL): string[] {
  return readdirSync(dir).flatMap((name) => {
    const u = new URL(name, dir);
    return statSync(u).isDirectory() ? walk(new URL(`${name}/`, dir)) : [u.pathname];
  });
}

/** Every certificate node:crypto can parse in the vector tree, by file. */
const vectorCerts: [string, X509Certificate][] = walk(V)
  .filter((p) => /\.(pem|der)$/.test(p))
  .flatMap((p) => {
    try {
      return parseCertificates(readFileSync(p)).map((c, i): [string, X509Certificate] => [`${p.slice(V.pathname.length)}#${i}`, c]);
    } catch {
      return [];
    }
  })
  .filter(([name]) => !name.includes('_corrupt-'));

type Facts = Omit<CertInfo, 'signature' | 'signatureOid' | 'weakKey'>;
/** certInfo without the signature algorithm (checked on its own below). */
const facts = (cert: X509Certificate): Facts => {
  const { signature: _s, signatureOid: _o, weakKey: _w, ...rest } = certInfo(cert);
  return rest;
};

/** The same facts read by @peculiar/x509. */
function oracle(cert: X509Certificate): Facts {
  const c = new x509.X509Certificate(cert.raw);
  const bc = c.getExtension(x509.BasicConstraintsExtension);
  const ku = c.getExtension(x509.KeyUsagesExtension);
  const san = c.getExtension(x509.SubjectAlternativeNameExtension);
  return {
    isCa: bc?.ca ?? false,
    pathLen: bc?.ca ? bc.pathLength : undefined,
    keyUsage: ku
      ? {
          digitalSignature: (ku.usages & KU.digitalSignature) !== 0,
          keyCertSign: (ku.usages & KU.keyCertSign) !== 0,
          cRLSign: (ku.usages & KU.cRLSign) !== 0,
        }
      : undefined,
    uris: san?.names.items.filter((n) => n.type === 'url').map((n) => n.value) ?? [],
    subjectEmpty: c.subject === '',
    sanCritical: san?.critical ?? false,
    unsupportedCritical: c.extensions.filter((e) => (e.critical && !SUPPORTED.includes(e.type)) || e.type === '2.5.29.30').map((e) => e.type),
    notBefore: c.notBefore.getTime(),
    notAfter: c.notAfter.getTime(),
  };
}

describe('certInfo agrees with @peculiar/x509', () => {
  it('covers the vector tree', () => {
    expect(vectorCerts.length).toBeGreaterThan(40);
  });

  it.each(vectorCerts)('%s', (_name, cert) => {
    expect(facts(cert)).toEqual(oracle(cert));
    expect(certInfo(cert).notAfter).toBe(Date.parse(cert.validTo));
    expect(certInfo(cert).notBefore).toBe(Date.parse(cert.validFrom));
  });

  let generated: [string, X509Certificate][] = [];
  beforeAll(async () => {
    const ca = await MemoryCA.create('zone-a.test', { pathLength: 3, notAfter: new Date('2051-01-01T00:00:00Z') });
    const im = await ca.intermediate({ pathLength: 0, extensions: [nameConstraintsExtension('zone-a.test')] });
    const shapes: [string, Promise<{ cert: X509Certificate }>][] = [
      ['leaf', ca.issue('spiffe://zone-a.test/web', { dns: ['a.test'], extraUris: ['https://x.test/'] })],
      ['empty subject, critical SAN', ca.issue('spiffe://zone-a.test/web', { subject: '', sanCritical: true })],
      ['all key usages', ca.issue('spiffe://zone-a.test/web', { keyUsage: 0x1ff })],
      ['no extensions at all', ca.issue(undefined, { keyUsage: null, noBasicConstraints: true })],
      ['unknown critical and non-critical', ca.issue('spiffe://zone-a.test/web', { extensions: [unknownCriticalExtension(), unknownExtension('1.2.3.4', false)] })],
      ['GeneralizedTime after 2049', ca.issue('spiffe://zone-a.test/web', { notAfter: new Date('2050-06-01T00:00:00Z') })],
      ['UTCTime in the 1900s', ca.issue('spiffe://zone-a.test/web', { notBefore: new Date('1999-12-31T23:59:59Z') })],
      ['intermediate with name constraints', Promise.resolve(im)],
      ['root', Promise.resolve(ca)],
    ];
    generated = await Promise.all(shapes.map(async ([n, p]): Promise<[string, X509Certificate]> => [n, (await p).cert]));
  });

  it('on generated shapes', () => {
    for (const [name, cert] of generated) expect(facts(cert), name).toEqual(oracle(cert));
    const named = Object.fromEntries(generated);
    expect(certInfo(named['intermediate with name constraints']!).unsupportedCritical).toEqual(['2.5.29.30']);
    expect(certInfo(named['GeneralizedTime after 2049']!).notAfter).toBe(Date.parse('2050-06-01T00:00:00Z'));
    expect(certInfo(named['UTCTime in the 1900s']!).notBefore).toBe(Date.parse('1999-12-31T23:59:59Z'));
  });
});

describe('certInfo refuses what it cannot read', () => {
  it.each(['derived/svid-with-dns_corrupt-basicConstraints.der', 'derived/svid-with-dns_corrupt-keyUsage.der'])('%s (node:crypto parses it; the extension value is 0xFF bytes)', (path) => {
    const [cert] = parseCertificates(readFileSync(new URL(path, V)));
    expect(() => certInfo(cert!)).toThrow('der: high tag numbers are not supported');
  });

  it('caches per certificate object', () => {
    const [, cert] = vectorCerts[0]!;
    expect(certInfo(cert)).toBe(certInfo(cert));
  });
});
