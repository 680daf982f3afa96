/**
 * The public X.509 vectors (x509-cases.tsv): every static certificate case, plus the positive
 * chain vectors with a pinned clock. "Structurally accepted" means verification passed every rule
 * up to path building: against a bundle whose only root is unrelated, the result is
 * ERR_SVID_UNTRUSTED (the clock is pinned inside the leaf's own window).
 */
import { readFileSync } from 'node:fs';
import type { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Bundle, parseBundle } from '../../src/bundle/bundle.js';
import { BundleSet, type X509BundleSource } from '../../src/bundle/set.js';
import { ZonegateError } from '../../src/errors.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { certInfo } from '../../src/cert/certinfo.js';
import { loadX509Svid } from '../../src/svid/local.js';
import { parseCertificates } from '../../src/cert/parse.js';
import { X509SvidVerifier } from '../../src/svid/verifier.js';
import { verifyX509Svid } from '../../src/svid/x509.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { BUNDLE_LIMITS, SVID_LIMITS, VERIFIER_LIMITS } from '../helpers/limits.js';

const V = new URL('../../../shared/conformance/spiffe/', import.meta.url);
const file = (p: string) => readFileSync(new URL(p, V));

let unrelated: X509Certificate;
beforeAll(async () => {
  unrelated = (await MemoryCA.create('unrelated.test')).cert;
});

function structural(path: string): string {
  const anyTrustDomain: X509BundleSource = { x509Authorities: () => [unrelated] };
  try {
    const chain = parseCertificates(file(path));
    let now = Date.now();
    try {
      now = certInfo(chain[0]!).notBefore + 1000;
    } catch {
      // unreadable leaf: verification reports it
    }
    verifyX509Svid(chain, anyTrustDomain, { ...SVID_LIMITS, now });
    return 'verified?!';
  } catch (err) {
    if (!(err instanceof ZonegateError)) throw err;
    return err.code === 'ERR_SVID_UNTRUSTED' ? 'accept' : `${err.code}: ${err.message}`;
  }
}

function withKey(certs: string, key: string): string {
  try {
    return `accept ${loadX509Svid(file(certs), file(key)).id.value}`;
  } catch (err) {
    if (!(err instanceof ZonegateError)) throw err;
    return err.message;
  }
}

const go = 'go-spiffe/x509svid/';
const rustWrong = ['wrong-intermediate-no-ca', 'wrong-intermediate-no-key-cert-sign', 'wrong-leaf-ca-true', 'wrong-leaf-cert-sign', 'wrong-leaf-crl-sign', 'wrong-leaf-empty-id', 'wrong-leaf-no-digital-signature'];

/** [certificate file, expected: 'accept' or a code plus the go-spiffe message fragment] */
const STRUCTURAL: [string, string][] = [
  [`${go}good-leaf-only.pem`, 'accept'],
  [`${go}good-leaf-and-intermediate.pem`, 'accept'],
  [`${go}good-key-and-cert.pem`, 'accept'],
  [`${go}good-cert-and-key.pem`, 'accept'],
  [`${go}key-pkcs8-rsa.pem`, 'ERR_SVID_MALFORMED: x509: no certificates found'],
  [`${go}not-pem`, 'ERR_SVID_MALFORMED: x509: no PEM blocks found'],
  [`${go}corrupt-cert.pem`, 'ERR_SVID_MALFORMED: x509: malformed certificate'],
  [`${go}wrong-leaf-empty-id.pem`, 'ERR_SVID_NO_SPIFFE_ID: x509svid: certificate contains no URI SAN'],
  [`${go}wrong-leaf-ca-true.pem`, 'ERR_SVID_LEAF_CONSTRAINTS: x509svid: leaf certificate must not have CA flag set to true'],
  [`${go}wrong-leaf-no-digital-signature.pem`, "ERR_SVID_LEAF_CONSTRAINTS: x509svid: leaf certificate must have 'digitalSignature' set as key usage"],
  [`${go}wrong-leaf-cert-sign.pem`, "ERR_SVID_LEAF_CONSTRAINTS: x509svid: leaf certificate must not have 'keyCertSign' set as key usage"],
  [`${go}wrong-leaf-crl-sign.pem`, "ERR_SVID_LEAF_CONSTRAINTS: x509svid: leaf certificate must not have 'cRLSign' set as key usage"],
  [`${go}wrong-intermediate-no-ca.pem`, 'ERR_SVID_SIGNER_CONSTRAINTS: x509svid: signing certificate must have CA flag set to true'],
  [`${go}wrong-intermediate-no-key-cert-sign.pem`, "ERR_SVID_SIGNER_CONSTRAINTS: x509svid: signing certificate must have 'keyCertSign' set as key usage"],
  ['rust-spiffe/svid-x509/1-svid-chain.der', 'accept'],
  ['rust-spiffe/svid-x509/svid-with-dns.der', 'accept'],
  // strict spec: empty subject requires a critical SAN (rust-spiffe accepts)
  ['rust-spiffe/svid-x509/empty-subject-name.der', 'ERR_SVID_LEAF_CONSTRAINTS: x509svid: a leaf with an empty subject must mark its subjectAltName critical'],
  ['rust-spiffe/svid-x509/corrupted', 'ERR_SVID_MALFORMED: x509: no PEM blocks found'],
  ['derived/svid-with-dns_trailing-garbage.der', 'ERR_SVID_MALFORMED: x509: malformed certificate'],
  ['derived/svid-with-dns_corrupt-basicConstraints.der', 'ERR_SVID_MALFORMED'],
  ['derived/svid-with-dns_corrupt-keyUsage.der', 'ERR_SVID_MALFORMED'],
  ...rustWrong.map((n): [string, string] => [`rust-spiffe/svid-x509/${n}.der`, `same-as:${go}${n}.pem`]),
  ['rust-spiffe/svid-x509/expired-svid-chain.der', 'accept'],
  ['rust-spiffe/spiffe-rustls-fixtures/spiffe_leaf.der', 'accept'],
  ['rust-spiffe/spiffe-rustls-fixtures/spiffe_leaf_uri_only.der', 'accept'],
  ['rust-spiffe/spiffe-rustls-fixtures/no_spiffe_leaf.der', 'ERR_SVID_NO_SPIFFE_ID: x509svid: certificate contains no URI SAN'],
  ['rust-spiffe/spiffe-rustls-fixtures/ca.der', 'ERR_SVID_NO_SPIFFE_ID'],
  ['rust-spiffe/spiffe-rustls-fixtures/ca_with_spiffe_signing.der', 'ERR_SVID_LEAF_CONSTRAINTS: x509svid: leaf certificate must not have CA flag set to true'],
  ['rust-spiffe/spiffe-rustls-fixtures/spiffe_leaf_no_key_usage.der', "ERR_SVID_LEAF_CONSTRAINTS: x509svid: leaf certificate must have 'digitalSignature' set as key usage"],
  ['rust-spiffe/spiffe-rustls-fixtures/spiffe_leaf_no_digital_signature.der', "ERR_SVID_LEAF_CONSTRAINTS: x509svid: leaf certificate must have 'digitalSignature' set as key usage"],
  ['grpc-go/spiffe/spiffe_multi_uri_san_cert.pem', 'ERR_SVID_NO_SPIFFE_ID: x509svid: certificate contains more than one URI SAN'],
  ['grpc-go/multiple_uri_cert.pem', 'ERR_SVID_NO_SPIFFE_ID: x509svid: certificate contains more than one URI SAN'],
  // gRPC accepts; strict X509-SVID rejects: the leaf has no keyUsage
  ['grpc-go/spiffe_end2end/leaf_and_intermediate_chain.pem', "ERR_SVID_LEAF_CONSTRAINTS: x509svid: leaf certificate must have 'digitalSignature' set as key usage"],
];

describe('x509-cases.tsv: structural rules', () => {
  it('covers every certificate file the table names', () => {
    const tsv = file('x509-cases.tsv').toString('utf8').trim().split('\n').slice(1);
    const named = tsv.map((l) => l.split('\t')[0]!).filter((f) => !f.startsWith('(') && !f.includes('*'));
    const covered = new Set(STRUCTURAL.map(([f]) => f));
    expect(named.filter((f) => !covered.has(f))).toEqual([]);
  });

  it.each(STRUCTURAL)('%s', (path, want) => {
    const got = structural(path);
    if (want.startsWith('same-as:')) expect(got).toBe(structural(want.slice(8)));
    else if (want === 'accept') expect(got).toBe('accept');
    else expect(got.startsWith(want)).toBe(true);
  });
});

describe('x509-cases.tsv: certificate and key together', () => {
  it.each([
    [`${go}good-leaf-only.pem`, `${go}key-pkcs8-rsa.pem`, 'accept spiffe://example.org/workload-1'],
    [`${go}good-leaf-and-intermediate.pem`, `${go}key-pkcs8-ecdsa.pem`, 'accept spiffe://example.org/workload-1'],
    [`${go}good-key-and-cert.pem`, `${go}good-key-and-cert.pem`, 'accept'],
    [`${go}good-cert-and-key.pem`, `${go}good-cert-and-key.pem`, 'accept'],
    [`${go}key-pkcs8-rsa.pem`, `${go}key-pkcs8-rsa.pem`, 'x509: no certificates found'],
    [`${go}good-leaf-only.pem`, `${go}good-leaf-only.pem`, 'x509svid: private key validation failed: no private key found'],
    [`${go}good-leaf-only.pem`, `${go}not-pem`, 'x509svid: cannot parse PEM encoded private key: no PEM blocks found'],
    [`${go}good-leaf-only.pem`, `${go}corrupt-key.pem`, 'x509svid: cannot parse PEM encoded private key'],
    [`${go}not-pem`, `${go}key-pkcs8-rsa.pem`, 'x509: no PEM blocks found'],
    [`${go}corrupt-cert.pem`, `${go}key-pkcs8-rsa.pem`, 'x509: malformed certificate'],
    [`${go}good-leaf-and-intermediate.pem`, `${go}key-pkcs8-rsa.pem`, 'x509svid: private key validation failed: leaf certificate does not match private key'],
    ['rust-spiffe/svid-x509/1-svid-chain.der', 'rust-spiffe/svid-x509/1-key.der', 'accept spiffe://example.org/service'],
    ['rust-spiffe/spiffe-rustls-fixtures/spiffe_leaf.der', 'rust-spiffe/spiffe-rustls-fixtures/leaf.key.pkcs8', 'accept'],
    ['rust-spiffe/spiffe-rustls-fixtures/spiffe_leaf.der', 'rust-spiffe/spiffe-rustls-fixtures/mismatched.key.pkcs8', 'x509svid: private key validation failed: leaf certificate does not match private key'],
  ])('%s + %s', (certs, key, want) => {
    expect(withKey(certs, key).startsWith(want)).toBe(true);
  });
});

describe('positive chain vectors with a pinned clock', () => {
  const bundleOf = (td: string, path: string) => {
    const set = new BundleSet();
    set.set(parseBundle(file(path), TrustDomain.parse(td), BUNDLE_LIMITS));
    return set;
  };
  const verify = (chain: string | X509Certificate[], set: BundleSet, at: string) => {
    try {
      return verifyX509Svid(typeof chain === 'string' ? parseCertificates(file(chain)) : chain, set, { ...SVID_LIMITS, now: Date.parse(at) }).id.value;
    } catch (err) {
      return (err as ZonegateError).code;
    }
  };
  const rootA = 'derived/root-from-spiffebundle_valid_1-x5c.pem';

  it('A: go-spiffe leaf + intermediate → root from spiffebundle_valid_1 (inside and after the window)', () => {
    const set = bundleOf('example.org', rootA);
    expect(verify(`${go}good-leaf-and-intermediate.pem`, set, '2020-03-24T14:30:00Z')).toBe('spiffe://example.org/workload-1');
    expect(verify(`${go}good-leaf-and-intermediate.pem`, set, '2020-03-24T15:10:00Z')).toBe('ERR_SVID_EXPIRED');
    expect(verify(`${go}good-leaf-and-intermediate.pem`, set, '2020-03-24T14:00:00Z')).toBe('ERR_SVID_NOT_YET_VALID');
    // the same root under another trust domain name does not help
    expect(verify(`${go}good-leaf-and-intermediate.pem`, bundleOf('example.com', rootA), '2020-03-24T14:30:00Z')).toBe('ERR_TRUST_DOMAIN_UNKNOWN');
  });

  it('A, leaf only (as Envoy forwards it): needs the intermediate configured beside the bundle', () => {
    const [leaf, intermediate] = parseCertificates(file(`${go}good-leaf-and-intermediate.pem`));
    const set = bundleOf('example.org', rootA);
    expect(verify([leaf!], set, '2020-03-24T14:30:00Z')).toBe('ERR_SVID_UNTRUSTED');
    set.setIntermediates(TrustDomain.parse('example.org'), [intermediate!]);
    expect(verify([leaf!], set, '2020-03-24T14:30:00Z')).toBe('spiffe://example.org/workload-1');
    // through the request-path verifier, as Envoy sends it: URL-encoded PEM of the leaf
    const v = new X509SvidVerifier(set, { ...VERIFIER_LIMITS, now: () => Date.parse('2020-03-24T14:30:00Z') });
    expect(v.verifyPem(encodeURIComponent(leaf!.toString()))).toMatchObject({ ok: true, id: { value: 'spiffe://example.org/workload-1' }, notAfter: Date.parse('2020-03-24T15:07:40Z') });
  });

  it('B: rust-spiffe 1-svid-chain.der, the second certificate as the root', () => {
    const [, root] = parseCertificates(file('rust-spiffe/svid-x509/1-svid-chain.der'));
    const set = new BundleSet();
    set.set(new Bundle(TrustDomain.parse('example.org'), { x509Authorities: [root!] }));
    expect(verify('rust-spiffe/svid-x509/1-svid-chain.der', set, '2030-01-01T00:00:00Z')).toBe('spiffe://example.org/service');
    expect(verify('rust-spiffe/svid-x509/1-svid-chain.der', set, '2101-01-01T00:00:00Z')).toBe('ERR_SVID_EXPIRED');
  });

  it('C: spiffe_leaf_uri_only.der → ca_uri_only.der (root without keyUsage)', () => {
    const set = bundleOf('example.org', 'rust-spiffe/spiffe-rustls-fixtures/ca_uri_only.der');
    expect(verify('rust-spiffe/spiffe-rustls-fixtures/spiffe_leaf_uri_only.der', set, '2030-01-01T00:00:00Z')).toBe('spiffe://example.org/service');
  });

  it('D: spiffe_leaf.der → ca.der inside its window (until 2026-12-22), expired after; no_spiffe_leaf.der never', () => {
    const set = bundleOf('example.org', 'rust-spiffe/spiffe-rustls-fixtures/ca.der');
    expect(verify('rust-spiffe/spiffe-rustls-fixtures/spiffe_leaf.der', set, '2026-06-01T00:00:00Z')).toBe('spiffe://example.org/service');
    expect(verify('rust-spiffe/spiffe-rustls-fixtures/spiffe_leaf.der', set, '2027-01-01T00:00:00Z')).toBe('ERR_SVID_EXPIRED');
    expect(verify('rust-spiffe/spiffe-rustls-fixtures/no_spiffe_leaf.der', set, '2026-06-01T00:00:00Z')).toBe('ERR_SVID_NO_SPIFFE_ID');
    // ca.der's key does not sign the uri-only leaf
    expect(verify('rust-spiffe/spiffe-rustls-fixtures/spiffe_leaf_uri_only.der', set, '2026-06-01T00:00:00Z')).toBe('ERR_SVID_UNTRUSTED');
  });

  it('rust expired-svid-chain.der: its intermediate as the trust anchor, inside and after the leaf window', () => {
    const [, intermediate] = parseCertificates(file('rust-spiffe/svid-x509/expired-svid-chain.der'));
    const set = new BundleSet();
    set.set(new Bundle(TrustDomain.parse('example.org'), { x509Authorities: [intermediate!] }));
    expect(verify('rust-spiffe/svid-x509/expired-svid-chain.der', set, '2021-02-09T19:00:00Z')).toBe('spiffe://example.org/service');
    expect(verify('rust-spiffe/svid-x509/expired-svid-chain.der', set, '2021-02-09T19:30:00Z')).toBe('ERR_SVID_EXPIRED');
  });

  it('grpc-go spiffe_end2end: chains to its CA but the leaf lacks keyUsage (strict reject)', () => {
    const set = bundleOf('foo.bar.com', 'grpc-go/spiffe_end2end/ca.pem');
    expect(verify('grpc-go/spiffe_end2end/leaf_and_intermediate_chain.pem', set, '2030-01-01T00:00:00Z')).toBe('ERR_SVID_LEAF_CONSTRAINTS');
  });
});
