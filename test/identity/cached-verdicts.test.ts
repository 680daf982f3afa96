/**
 * The common identity verifier's caches never change a verdict: over generated sequences of
 * requests, clock ticks and bundle changes (fast-check), one long-lived verifier serving as
 * zonegate does (prepare, then verify; its token, chain, header and certificate caches warm) gives
 * every request the verdict and reason of a verifier that has seen nothing before (verify alone,
 * on the same bundles at the same clock). The corpus has expired and not-yet-valid tokens and
 * x5c leaves, a leaf of another trust domain and one of a CA the bundle does not hold, bad
 * signatures and wrong peers, tokens sent again after a bundle change and after time passed.
 */
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { CommonIdentityVerifier, type RequestContext } from '../../src/identity/verify.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { ciOptions, ciRules } from '../helpers/identity.js';

const A = 'zone-a.test';
const B = 'zone-b.test';
const ME = `spiffe://${A}/ns/web/sa/frontend`;
const THEM = `spiffe://${B}/ns/shop/sa/backend`;
const AUD = 'spiffe://zone-z.test';
const NOW = Date.now();
const MIN = 60_000;
const rules = ciRules({ audiences: new Set([AUD]), maxLifetimeSeconds: 3600 });
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

interface Signer {
  readonly id: string;
  readonly x5c: readonly string[];
  readonly key: KeyObject;
}
/** What each signer is, for the corpus: the reason a fresh verifier gives is the reference anyway. */
const SIGNERS = ['valid', 'expires in 10 min', 'valid from +20 min', 'under an intermediate', 'trust domain B', 'CA not in the bundle'] as const;
let signers: Signer[];
let caA: MemoryCA;
let caB: MemoryCA;
let rogueA: MemoryCA;
const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

const der64 = (pem: string) => pem.split(/(?=-----BEGIN)/).map((p) => Buffer.from(p.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64').toString('base64'));
const signer = (id: string, i: Issued): Signer => ({ id, x5c: der64(i.chainPem), key: createPrivateKey(i.keyPem) });

beforeAll(async () => {
  caA = await MemoryCA.create(A, { at: NOW });
  caB = await MemoryCA.create(B, { at: NOW });
  rogueA = await MemoryCA.create(A, { at: NOW });
  const inter = await caA.intermediate();
  signers = [
    signer(ME, await caA.issue(ME)),
    signer(ME, await caA.issue(ME, { notAfter: new Date(NOW + 10 * MIN) })),
    signer(ME, await caA.issue(ME, { notBefore: new Date(NOW + 20 * MIN), notAfter: new Date(NOW + 48 * 60 * MIN) })),
    signer(ME, await inter.issue(ME)),
    signer(THEM, await caB.issue(THEM)),
    signer(ME, await rogueA.issue(ME)),
  ];
});

/** Claims relative to the clock at minting: the time cases a token can be in. */
const TIMES = {
  valid: (t: number) => ({ iat: t, exp: t + 300 }),
  'valid 50 min': (t: number) => ({ iat: t, exp: t + 3000 }),
  'expires soon': (t: number) => ({ iat: t, exp: t + 45 }),
  expired: (t: number) => ({ iat: t - 600, exp: t - 300 }),
  'nbf ahead': (t: number) => ({ iat: t, nbf: t + 600, exp: t + 1200 }),
  'iat ahead': (t: number) => ({ iat: t + 600, exp: t + 1200 }),
  'too long': (t: number) => ({ iat: t, exp: t + 7200 }),
} as const;

type Step =
  | { kind: 'token'; signer: number; time: keyof typeof TIMES; badSignature: boolean; otherPeer: boolean; wrongAud: boolean; prepared: boolean }
  | { kind: 'again'; pick: number; prepared: boolean }
  | { kind: 'tick'; seconds: number }
  | { kind: 'bundle'; a: 'ca' | 'none' | 'rogue' | 'both' | 'empty' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('token' as const), signer: fc.nat(SIGNERS.length - 1), time: fc.constantFrom(...(Object.keys(TIMES) as (keyof typeof TIMES)[])), badSignature: fc.boolean(), otherPeer: fc.boolean(), wrongAud: fc.boolean(), prepared: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('again' as const), pick: fc.nat(), prepared: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), seconds: fc.constantFrom(1, 29, 31, 61, 299, 301, 601, 1200, 3601) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bundle' as const), a: fc.constantFrom('ca' as const, 'none' as const, 'rogue' as const, 'both' as const, 'empty' as const) }) },
);

function setBundleA(set: BundleSet, a: 'ca' | 'none' | 'rogue' | 'both' | 'empty'): void {
  const td = TrustDomain.parse(A);
  if (a === 'none') return set.delete(td);
  const roots = { ca: [caA.cert], rogue: [rogueA.cert], both: [caA.cert, rogueA.cert], empty: [] }[a];
  set.set(new Bundle(td, { x509Authorities: roots }));
}

function mint(s: Signer, o: { time: keyof typeof TIMES; badSignature: boolean; wrongAud: boolean; jti: string }, now: number): string {
  const input = `${b64({ alg: 'ES256', typ: 'ci+jwt', x5c: s.x5c })}.${b64({ iss: s.id, sub: 'alice', aud: o.wrongAud ? 'spiffe://elsewhere.test' : AUD, jti: o.jti, ...TIMES[o.time](Math.floor(now / 1000)) })}`;
  const sig = sign('sha256', Buffer.from(input), { key: o.badSignature ? otherKey : s.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

const verdict = (r: ReturnType<CommonIdentityVerifier['verify']>) => (r.ok ? 'ok' : r.code);

/** Runs one sequence; returns every verdict, failing at the first request where the two verifiers disagree. */
async function run(steps: readonly Step[]): Promise<string[]> {
  const set = new BundleSet();
  setBundleA(set, 'ca');
  set.set(new Bundle(TrustDomain.parse(B), { x509Authorities: [caB.cert] }));
  const served = new CommonIdentityVerifier(set, rules, ciOptions());
  const sent: { token: string; peer: string }[] = [];
  const seen: string[] = [];
  /** The served verifier's last verdict per token. */
  const last = new Map<string, string>();
  let now = NOW;
  let n = 0;
  for (const s of steps) {
    if (s.kind === 'tick') now += s.seconds * 1000;
    if (s.kind === 'bundle') setBundleA(set, s.a);
    if (s.kind !== 'token' && s.kind !== 'again') continue;
    if (s.kind === 'again' && sent.length === 0) continue;
    let req: { token: string; peer: string };
    if (s.kind === 'again') req = sent[s.pick % sent.length]!;
    else {
      const who = signers[s.signer]!;
      req = { token: mint(who, { ...s, jti: `j${n++}` }, now), peer: s.otherPeer ? `spiffe://${A}/ns/other/sa/x` : who.id };
      sent.push(req);
    }
    const ctx = (): RequestContext => ({ now, peerId: req.peer, memo: {} });
    const c = ctx();
    if (s.prepared) await served.prepare(req.token, c);
    const got = verdict(served.verify(req.token, c));
    const want = verdict(new CommonIdentityVerifier(set, rules, ciOptions()).verify(req.token, ctx()));
    // One exception, by design: a failure is remembered for negativeTtlMs (10 s of real time) so
    // a flood of one bad token costs one verification; meanwhile the token keeps that reason even
    // where the clock has since given it another one (expired). Both are denies.
    const remembered = got !== 'ok' && want !== 'ok' && last.get(req.token) === got;
    if (!remembered) expect(got, `${s.kind} at +${(now - NOW) / 1000} s`).toBe(want);
    last.set(req.token, got);
    seen.push(got);
  }
  return seen;
}

describe('cached verdicts are the verdicts of a verifier that has seen nothing', () => {
  it('over generated requests, clock ticks and bundle changes', async () => {
    const codes = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 24 }), async (steps) => {
        for (const c of await run(steps)) codes.add(c);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 80) },
    );
    // the corpus reached the refusals it is about, not only one verdict
    for (const c of ['ok', 'ERR_TOKEN_CHAIN', 'ERR_TOKEN_EXPIRED', 'ERR_TOKEN_NOT_YET_VALID', 'ERR_TOKEN_SIGNATURE', 'ERR_TOKEN_PEER_MISMATCH', 'ERR_TOKEN_AUDIENCE', 'ERR_TOKEN_LIFETIME'])
      expect(codes, c).toContain(c);
  });

  it('a cached token is refused once its CA leaves the bundle, and accepted again when it is back', async () => {
    const seen = await run([
      { kind: 'token', signer: 0, time: 'valid', badSignature: false, otherPeer: false, wrongAud: false, prepared: true },
      { kind: 'again', pick: 0, prepared: false },
      { kind: 'bundle', a: 'rogue' },
      { kind: 'again', pick: 0, prepared: true },
      { kind: 'bundle', a: 'none' },
      { kind: 'again', pick: 0, prepared: false },
      { kind: 'bundle', a: 'ca' },
      { kind: 'again', pick: 0, prepared: true },
    ]);
    expect(seen).toEqual(['ok', 'ok', 'ERR_TOKEN_CHAIN', 'ERR_TOKEN_CHAIN', 'ok']);
  });

  it('a cached token or chain does not outlive the token\'s exp or the leaf\'s notAfter', async () => {
    const seen = await run([
      { kind: 'token', signer: 0, time: 'expires soon', badSignature: false, otherPeer: false, wrongAud: false, prepared: true },
      { kind: 'token', signer: 1, time: 'valid 50 min', badSignature: false, otherPeer: false, wrongAud: false, prepared: true },
      { kind: 'tick', seconds: 61 + rules.skewSeconds },
      { kind: 'again', pick: 0, prepared: true }, // past exp + skew
      { kind: 'again', pick: 1, prepared: false }, // still valid
      { kind: 'tick', seconds: 600 }, // the short leaf expired (+10 min); its token has not
      { kind: 'again', pick: 1, prepared: false }, // cached token
      { kind: 'token', signer: 1, time: 'valid', badSignature: false, otherPeer: false, wrongAud: false, prepared: true }, // new token, cached chain
    ]);
    expect(seen).toEqual(['ok', 'ok', 'ERR_TOKEN_EXPIRED', 'ok', 'ERR_TOKEN_CHAIN', 'ERR_TOKEN_CHAIN']);
  });

  it('a leaf not yet valid is refused, then accepted once its notBefore has passed', async () => {
    const seen = await run([
      { kind: 'token', signer: 2, time: 'valid', badSignature: false, otherPeer: false, wrongAud: false, prepared: true },
      { kind: 'tick', seconds: 1200 + rules.skewSeconds + 1 },
      { kind: 'token', signer: 2, time: 'valid', badSignature: false, otherPeer: false, wrongAud: false, prepared: true },
    ]);
    expect(seen).toEqual(['ERR_TOKEN_CHAIN', 'ok']);
  });
});
