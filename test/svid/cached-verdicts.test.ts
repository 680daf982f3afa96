/**
 * X509SvidVerifier's caches (results by string and by DER, parsed certificates, the signature
 * results svid/x509.ts keeps by certificate digests) never change a verdict: over generated
 * sequences of peer certificates, clock ticks and bundle changes (fast-check), one long-lived
 * verifier serving as zonegate does (prepare, then verifyPem) gives every certificate the verdict
 * and reason of the uncached path (verifyPem at an explicit time, which neither reads nor fills
 * the cache) of a verifier that has seen nothing. The corpus has expired and not-yet-valid
 * leaves, a leaf of another trust domain, one of a CA the bundle does not hold, one under an
 * intermediate configured beside the bundle and presented too, and certificates sent again after
 * a bundle change and after time passed.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { X509SvidVerifier } from '../../src/svid/verifier.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { VERIFIER_LIMITS } from '../helpers/limits.js';

const NOW = Date.parse('2031-05-01T12:00:00Z');
const MIN = 60_000;
const A = 'zone-a.test';
const B = 'zone-b.test';
const SKEW = 30;
let caA: MemoryCA;
let caB: MemoryCA;
let rogueA: MemoryCA;
let inter: MemoryCA;
/** Peer certificates as Envoy sends them (URL-encoded PEM). */
let peers: string[];

beforeAll(async () => {
  caA = await MemoryCA.create(A, { at: NOW });
  caB = await MemoryCA.create(B, { at: NOW });
  rogueA = await MemoryCA.create(A, { at: NOW });
  inter = await caA.intermediate();
  const id = `spiffe://${A}/ns/web/sa/frontend`;
  const underInter = await inter.issue(id);
  peers = [
    (await caA.issue(id)).certPem,
    (await caA.issue(id, { notAfter: new Date(NOW + 10 * MIN) })).certPem,
    (await caA.issue(id, { notBefore: new Date(NOW + 20 * MIN), notAfter: new Date(NOW + 48 * 60 * MIN) })).certPem,
    underInter.certPem, // the leaf alone: the configured intermediate completes the path
    underInter.chainPem, // leaf and intermediate: the same intermediate presented and configured
    (await caB.issue(`spiffe://${B}/ns/shop/sa/backend`)).certPem,
    (await rogueA.issue(id)).certPem,
  ].map(encodeURIComponent);
});

type BundleA = 'ca' | 'none' | 'rogue' | 'both' | 'empty' | 'no intermediate';
type Step = { kind: 'peer'; pick: number; prepared: boolean } | { kind: 'tick'; seconds: number } | { kind: 'bundle'; a: BundleA };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('peer' as const), pick: fc.nat(20), prepared: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), seconds: fc.constantFrom(1, 29, 31, 301, 601, 1200, 3601) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bundle' as const), a: fc.constantFrom<BundleA>('ca', 'none', 'rogue', 'both', 'empty', 'no intermediate') }) },
);

function setBundleA(set: BundleSet, a: BundleA): void {
  const td = TrustDomain.parse(A);
  set.setIntermediates(td, a === 'no intermediate' ? [] : [inter.cert]);
  if (a === 'none') return set.delete(td);
  const roots = { ca: [caA.cert], 'no intermediate': [caA.cert], rogue: [rogueA.cert], both: [caA.cert, rogueA.cert], empty: [] }[a];
  set.set(new Bundle(td, { x509Authorities: roots }));
}

const verdict = (r: ReturnType<X509SvidVerifier['verifyPem']>) => (r.ok ? `ok ${r.id.value}` : r.code);

async function run(steps: readonly Step[]): Promise<string[]> {
  const set = new BundleSet();
  setBundleA(set, 'ca');
  set.set(new Bundle(TrustDomain.parse(B), { x509Authorities: [caB.cert] }));
  const clock = { now: NOW };
  // failures are remembered for 1 ms only: the negative cache is real time, this test's clock is not
  const served = new X509SvidVerifier(set, { ...VERIFIER_LIMITS, skewSeconds: SKEW, negativeTtlMs: 1, now: () => clock.now });
  const seen: string[] = [];
  for (const s of steps) {
    if (s.kind === 'tick') clock.now += s.seconds * 1000;
    if (s.kind === 'bundle') setBundleA(set, s.a);
    if (s.kind !== 'peer') continue;
    const received = peers[s.pick % peers.length]!;
    if (s.prepared) await served.prepare(received);
    const got = verdict(served.verifyPem(received));
    const fresh = new X509SvidVerifier(set, { ...VERIFIER_LIMITS, skewSeconds: SKEW });
    const want = verdict(fresh.verifyPem(received, { now: clock.now }));
    expect(got, `peer ${s.pick % peers.length} at +${(clock.now - NOW) / 1000} s`).toBe(want);
    seen.push(got.split(' ')[0]!);
  }
  return seen;
}

describe('cached peer verdicts are the verdicts of the uncached path', () => {
  it('over generated certificates, clock ticks and bundle changes', async () => {
    const codes = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 24 }), async (steps) => {
        for (const c of await run(steps)) codes.add(c);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 80) },
    );
    for (const c of ['ok', 'ERR_SVID_EXPIRED', 'ERR_SVID_NOT_YET_VALID', 'ERR_SVID_UNTRUSTED', 'ERR_TRUST_DOMAIN_UNKNOWN', 'ERR_TRUST_DOMAIN_REVOKED']) expect(codes, c).toContain(c);
  });

  it('a cached leaf is refused once its CA leaves the bundle, and once it has expired', async () => {
    const peer = (pick: number, prepared = true): Step => ({ kind: 'peer', pick, prepared });
    expect(await run([peer(0), peer(0), { kind: 'bundle', a: 'rogue' }, peer(0), { kind: 'bundle', a: 'ca' }, peer(0, false)])).toEqual(['ok', 'ok', 'ERR_SVID_UNTRUSTED', 'ok']);
    expect(await run([peer(3), peer(4), { kind: 'bundle', a: 'no intermediate' }, peer(3), peer(4)])).toEqual(['ok', 'ok', 'ERR_SVID_UNTRUSTED', 'ok']);
    expect(await run([peer(1), { kind: 'tick', seconds: 601 + SKEW }, peer(1), peer(1, false)])).toEqual(['ok', 'ERR_SVID_EXPIRED', 'ERR_SVID_EXPIRED']);
    expect(await run([peer(2), { kind: 'tick', seconds: 1200 }, peer(2)])).toEqual(['ERR_SVID_NOT_YET_VALID', 'ok']);
  });
});
