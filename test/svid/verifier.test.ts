/** X509SvidVerifier: results cached by the string as received and the trust domain's generation. */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { X509SvidVerifier } from '../../src/svid/verifier.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { VERIFIER_LIMITS } from '../helpers/limits.js';

const NOW = Date.parse('2031-05-01T12:00:00Z');
const DAY = 86_400_000;
const A = 'zone-a.test';
const B = 'zone-b.test';
let caA: MemoryCA;
let caB: MemoryCA;

beforeAll(async () => {
  caA = await MemoryCA.create(A, { at: NOW });
  caB = await MemoryCA.create(B, { at: NOW });
});

const setOf = (...bundles: Bundle[]) => {
  const set = new BundleSet();
  for (const b of bundles) set.set(b);
  return set;
};
/** A verifier on a clock the test moves. */
function verifier(set: BundleSet, o: Partial<ConstructorParameters<typeof X509SvidVerifier>[1]> = {}) {
  const clock = { now: NOW };
  return { v: new X509SvidVerifier(set, { ...VERIFIER_LIMITS, now: () => clock.now, ...o }), clock };
}

describe('X509SvidVerifier', () => {
  it('verifies URL-encoded PEM (as Envoy sends it) and plain PEM, and reports id, trust domain, notAfter and thumbprint', async () => {
    const s = await caA.issue(`spiffe://${A}/web`, { notAfter: new Date(NOW + DAY) });
    const { v } = verifier(setOf(caA.bundle()));
    for (const received of [encodeURIComponent(s.certPem), s.certPem]) {
      const r = v.verifyPem(received);
      expect(r).toMatchObject({ ok: true, id: { value: `spiffe://${A}/web` }, trustDomain: { name: A }, notAfter: Math.floor((NOW + DAY) / 1000) * 1000 });
      expect(r.ok && r.thumbprint).toBe(createHash('sha256').update(s.der).digest('base64url'));
    }
  });

  it('never verifies the same string twice: the second answer is the cached object', async () => {
    const s = await caA.issue(`spiffe://${A}/web`);
    const { v } = verifier(setOf(caA.bundle()));
    const received = encodeURIComponent(s.chainPem);
    const first = v.verifyPem(received);
    expect(first).toMatchObject({ ok: true });
    for (let i = 0; i < 50; i++) expect(v.verifyPem(received)).toBe(first);
    expect([v.parses, v.hits]).toEqual([1, 50]);
    // the same certificate spelled differently is found again by its DER: not verified twice
    expect(v.verifyPem(s.chainPem)).toBe(first);
    expect(v.parses).toBe(1);
  });

  it('a bundle change re-verifies only the results of that trust domain', async () => {
    const sa = await caA.issue(`spiffe://${A}/web`);
    const sb = await caB.issue(`spiffe://${B}/api`);
    const set = setOf(caA.bundle(), caB.bundle());
    const { v } = verifier(set);
    v.verifyPem(sa.certPem);
    v.verifyPem(sb.certPem);
    expect(v.parses).toBe(2);
    set.set(caB.bundle()); // B rotated (same content, new generation)
    v.verifyPem(sa.certPem);
    v.verifyPem(sb.certPem);
    expect(v.parses).toBe(3);
    // A's root replaced: the cached allow does not survive
    set.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caB.cert] }));
    expect(v.verifyPem(sa.certPem)).toMatchObject({ ok: false, code: 'ERR_SVID_UNTRUSTED' });
    set.set(new Bundle(TrustDomain.parse(A)));
    expect(v.verifyPem(sa.certPem)).toMatchObject({ ok: false, code: 'ERR_TRUST_DOMAIN_REVOKED' });
    set.set(caA.bundle());
    set.setStale(TrustDomain.parse(A), true);
    expect(v.verifyPem(sa.certPem)).toMatchObject({ ok: false, code: 'ERR_TRUST_DOMAIN_STALE' });
    set.delete(TrustDomain.parse(A));
    expect(v.verifyPem(sa.certPem)).toMatchObject({ ok: false, code: 'ERR_TRUST_DOMAIN_UNKNOWN' });
  });

  it('a flood of one bad certificate costs one verification; a negative for an unknown trust domain clears when it arrives', async () => {
    const caC = await MemoryCA.create('zone-c.test', { at: NOW });
    const s = await caC.issue('spiffe://zone-c.test/x');
    const set = new BundleSet();
    const { v } = verifier(set);
    for (let i = 0; i < 100; i++) expect(v.verifyPem(s.certPem)).toMatchObject({ ok: false, code: 'ERR_TRUST_DOMAIN_UNKNOWN' });
    expect(v.parses).toBe(1);
    set.set(caC.bundle());
    expect(v.verifyPem(s.certPem)).toMatchObject({ ok: true });
    expect(v.parses).toBe(2);
  });

  it('negative results are remembered for negativeTtlMs only', async () => {
    const garbage = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    const { v, clock } = verifier(new BundleSet(), { negativeTtlMs: 5_000 });
    expect(v.verifyPem(garbage)).toMatchObject({ ok: false, code: 'ERR_SVID_MALFORMED' });
    clock.now += 4_000;
    v.verifyPem(garbage);
    expect(v.parses).toBe(1);
    clock.now += 2_000;
    v.verifyPem(garbage);
    expect(v.parses).toBe(2);
  });

  it('a cached allow expires with the leaf (plus skew)', async () => {
    const s = await caA.issue(`spiffe://${A}/short`, { notAfter: new Date(NOW + 60_000) });
    const { v, clock } = verifier(setOf(caA.bundle()), { skewSeconds: 30 });
    expect(v.verifyPem(s.certPem)).toMatchObject({ ok: true });
    clock.now += 80_000;
    expect(v.verifyPem(s.certPem)).toMatchObject({ ok: true });
    expect(v.parses).toBe(1);
    clock.now += 20_000;
    expect(v.verifyPem(s.certPem)).toMatchObject({ ok: false, code: 'ERR_SVID_EXPIRED' });
    // a per-call clock is honoured, and bypasses the cache both ways
    expect(v.verifyPem(s.certPem, { now: NOW })).toMatchObject({ ok: true });
    expect(v.verifyPem(s.certPem)).toMatchObject({ ok: false, code: 'ERR_SVID_EXPIRED' });
    expect([v.parses, v.hits]).toEqual([3, 2]);
  });

  it('is bounded: the least recently used entry goes first', async () => {
    const certs = await Promise.all([1, 2, 3].map((i) => caA.issue(`spiffe://${A}/w${i}`)));
    const { v } = verifier(setOf(caA.bundle()), { cacheSize: 2 });
    for (const c of certs) v.verifyPem(c.certPem);
    v.verifyPem(certs[2]!.certPem);
    v.verifyPem(certs[1]!.certPem);
    expect(v.parses).toBe(3);
    v.verifyPem(certs[0]!.certPem);
    expect(v.parses).toBe(4);
  });

  it('limits: size before hashing, certificate count before parsing them all, broken URL encoding', async () => {
    const { v } = verifier(setOf(caA.bundle()), { maxBytes: 1000 });
    expect(v.verifyPem('a'.repeat(1001))).toMatchObject({ ok: false, code: 'ERR_SVID_TOO_LARGE' });
    expect(v.parses).toBe(0);
    const s = await caA.issue(`spiffe://${A}/web`);
    const { v: v2 } = verifier(setOf(caA.bundle()), { maxChainLength: 2 });
    expect(v2.verifyPem(s.certPem.repeat(3))).toMatchObject({ ok: false, code: 'ERR_SVID_TOO_LARGE', message: 'x509: more than 2 certificates' });
    expect(v2.verifyPem('%E0%A4%A')).toMatchObject({ ok: false, code: 'ERR_PEER_CERT_MALFORMED' });
  });

  it('a source without generations cannot say a result is still current: nothing that depends on it is reused', async () => {
    const s = await caA.issue(`spiffe://${A}/web`);
    const roots = [caA.cert];
    const v = new X509SvidVerifier({ x509Authorities: (td) => (td.name === A ? roots : undefined) }, { ...VERIFIER_LIMITS, now: () => NOW });
    expect(v.verifyPem(s.certPem)).toMatchObject({ ok: true });
    roots.pop(); // the source changed and could not tell
    expect(v.verifyPem(s.certPem)).toMatchObject({ ok: false, code: 'ERR_TRUST_DOMAIN_REVOKED' });
    expect(v.verifyPem('not a certificate')).toMatchObject({ ok: false, code: 'ERR_SVID_MALFORMED' });
    v.verifyPem('not a certificate'); // no trust domain involved: cached
    expect(v.parses).toBe(3);
  });

  it('clear() drops every cached result', async () => {
    const s = await caA.issue(`spiffe://${A}/web`);
    const { v } = verifier(setOf(caA.bundle()));
    v.verifyPem(s.certPem);
    v.clear();
    v.verifyPem(s.certPem);
    expect(v.parses).toBe(2);
  });
});
