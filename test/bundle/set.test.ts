/** BundleSet: one bundle per trust domain, never merged; generations that move only where things changed. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Bundle, parseBundle } from '../../src/bundle/bundle.js';
import { BundleSet, type JwtBundleSource, type X509BundleSource } from '../../src/bundle/set.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { parseCertificates } from '../../src/cert/parse.js';
import { BUNDLE_LIMITS } from '../helpers/limits.js';

const V = new URL('../../../shared/conformance/spiffe/', import.meta.url);
const file = (p: string) => readFileSync(new URL(p, V));
const A = TrustDomain.parse('zone-a.test');
const B = TrustDomain.parse('zone-b.test');
const spiffeBundle = (td: TrustDomain) => parseBundle(file('go-spiffe/spiffebundle/spiffebundle_valid_2.json'), td, BUNDLE_LIMITS);
// two RSA 2048 certificates (go-spiffe's x509bundle/certs.pem has 768-bit keys, left out as too weak)
const pemBundle = (td: TrustDomain) => parseBundle(file('grpc-go/spiffe_end2end/leaf_and_intermediate_chain.pem'), td, BUNDLE_LIMITS);

describe('BundleSet', () => {
  it('holds one bundle per trust domain and answers only for that trust domain', () => {
    const set = new BundleSet();
    expect(set.x509Authorities(A)).toBeUndefined();
    expect(set.jwtAuthorities(A)).toBeUndefined();
    set.set(spiffeBundle(A));
    set.set(pemBundle(B));
    expect(set.trustDomains().sort()).toEqual(['zone-a.test', 'zone-b.test']);
    expect(set.x509Authorities(A)).toHaveLength(1);
    expect(set.jwtAuthorities(A)?.size).toBe(6);
    expect(set.x509Authorities(B)).toHaveLength(2);
    expect(set.jwtAuthorities(B)?.size).toBe(0);
    expect(set.get(B)?.trustDomain.name).toBe('zone-b.test');
    expect(set.x509Authorities(TrustDomain.parse('zone-c.test'))).toBeUndefined();
  });

  it('never merges: replacing one trust domain leaves the other as it was, even with the same roots', () => {
    const set = new BundleSet();
    set.set(pemBundle(A));
    set.set(pemBundle(B));
    const before = set.x509Authorities(B);
    set.set(new Bundle(A)); // A revoked
    expect(set.x509Authorities(A)).toEqual([]);
    expect(set.x509Authorities(B)).toBe(before);
    set.delete(A);
    expect(set.x509Authorities(A)).toBeUndefined();
    expect(set.trustDomains()).toEqual(['zone-b.test']);
  });

  it('bumps the generation of the trust domain that changed, and the global one, on every change', () => {
    const set = new BundleSet();
    expect([set.generation(A), set.generation(B), set.setGeneration]).toEqual([0, 0, 0]);
    set.set(pemBundle(A));
    const a1 = set.generation(A);
    set.set(pemBundle(B));
    expect(set.generation(A)).toBe(a1);
    const steps: [string, () => void, TrustDomain][] = [
      ['set', () => set.set(spiffeBundle(A)), A],
      ['setIntermediates', () => set.setIntermediates(A, parseCertificates(file('go-spiffe/x509bundle/cert.pem'))), A],
      ['setStale(true)', () => set.setStale(A, true), A],
      ['setStale(false)', () => set.setStale(A, false), A],
      ['delete', () => set.delete(B), B],
    ];
    for (const [what, step, td] of steps) {
      const other = td === A ? B : A;
      const [g, o, global] = [set.generation(td), set.generation(other), set.setGeneration];
      step();
      expect(set.generation(td), what).toBeGreaterThan(g);
      expect(set.generation(other), what).toBe(o);
      expect(set.setGeneration, what).toBeGreaterThan(global);
    }
  });

  it('does not bump on a no-op: deleting an unknown trust domain, repeating setStale', () => {
    const set = new BundleSet();
    set.set(pemBundle(A));
    const g = set.setGeneration;
    set.delete(B);
    set.setStale(A, false);
    expect(set.setGeneration).toBe(g);
  });

  it('a stale trust domain answers no authorities (fail closed) but its bundle is still held', () => {
    const set = new BundleSet();
    set.set(spiffeBundle(A));
    set.setStale(A, true);
    expect(set.isStale(A)).toBe(true);
    expect(set.x509Authorities(A)).toBeUndefined();
    expect(set.jwtAuthorities(A)).toBeUndefined();
    expect(set.get(A)?.x509Authorities).toHaveLength(1);
    set.setStale(A, false);
    expect(set.x509Authorities(A)).toHaveLength(1);
  });

  it('keeps intermediates beside a bundle, per trust domain', () => {
    const set = new BundleSet();
    const certs = parseCertificates(file('go-spiffe/x509bundle/certs.pem'));
    set.setIntermediates(A, certs);
    expect(set.intermediates(A)).toEqual(certs);
    expect(set.intermediates(B)).toEqual([]);
    expect(Object.isFrozen(set.intermediates(A))).toBe(true);
  });

  it('is usable through the one-method source interfaces', () => {
    const set = new BundleSet();
    set.set(spiffeBundle(A));
    const x509: X509BundleSource = set;
    const jwt: JwtBundleSource = set;
    expect(x509.x509Authorities(A)?.[0]?.subject).toBe('C=US\nO=SPIFFE');
    expect([...(jwt.jwtAuthorities(A)?.keys() ?? [])]).toHaveLength(6);
  });
});
