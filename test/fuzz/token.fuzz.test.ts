/**
 * Property-based checks of common identity verification (fast-check, fixed seed, bounded runs):
 * a genuine token mutated anywhere — a character, a JSON field of its header or claims, a part
 * swapped, or re-signed with a key that is not the x5c leaf's or by another trust domain's CA —
 * is never accepted; every input gets a result with a reason, deterministically.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { ciOptions, ciRules } from '../helpers/identity.js';
import { CommonIdentityVerifier } from '../../src/identity/verify.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);
const A = 'zone-a.test';
const ME = `spiffe://${A}/ns/web/sa/frontend`;
const NOW = Date.now();
let me: Issued;
let stranger: Issued;
let key: KeyObject;
let strangerKey: KeyObject;
let set: BundleSet;
let genuine: string;
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const rules = ciRules({ audiences: new Set([`spiffe://zone-b.test`]) });
const header = () => ({ alg: 'ES256', typ: 'ci+jwt', x5c: [me.cert.raw.toString('base64')] });
const claims = () => ({ iss: ME, sub: 'alice', aud: 'spiffe://zone-b.test', iat: Math.floor(NOW / 1000), exp: Math.floor(NOW / 1000) + 60, act: { sub: 'spiffe://zone-c.test/x' } });
const signed = (h: object, c: object, k: KeyObject) => {
  const input = `${b64(h)}.${b64(c)}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: k, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
};

beforeAll(async () => {
  const ca = await MemoryCA.create(A);
  const other = await MemoryCA.create('zone-b.test');
  me = await ca.issue(ME);
  stranger = await other.issue(ME.replace(A, 'zone-b.test'));
  key = createPrivateKey(me.keyPem);
  strangerKey = createPrivateKey(stranger.keyPem);
  set = new BundleSet();
  set.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [ca.cert] }));
  set.set(new Bundle(TrustDomain.parse('zone-b.test'), { x509Authorities: [other.cert] }));
  genuine = signed(header(), claims(), key);
});

const field = fc.constantFrom('alg', 'typ', 'x5c', 'iss', 'sub', 'aud', 'iat', 'exp', 'nbf', 'act', 'jku', 'crit', 'cnf');
const jsonValue = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.constant(null), fc.constant('none'), fc.constant('HS256'), fc.constant(ME), fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }), fc.anything({ maxDepth: 2 }));

/** A token that must never verify. */
const forged = () =>
  fc.oneof(
    // one character of the genuine token changed
    fc.tuple(fc.nat(), fc.constantFrom(...'ABCxyz019-_.=')).map(([i, ch]) => {
      const at = i % genuine.length;
      return genuine[at] === ch ? null : genuine.slice(0, at) + ch + genuine.slice(at + 1);
    }),
    // a header or claim changed, keeping the genuine signature
    fc.tuple(fc.boolean(), field, jsonValue).map(([inHeader, f, v]) => {
      const [h, c, s] = genuine.split('.');
      const obj = JSON.parse(Buffer.from(inHeader ? h! : c!, 'base64url').toString()) as Record<string, unknown>;
      if (JSON.stringify(obj[f]) === JSON.stringify(v)) return null;
      obj[f] = v;
      return inHeader ? `${b64(obj)}.${c}.${s}` : `${h}.${b64(obj)}.${s}`;
    }),
    // re-signed: with the key of another trust domain's SVID (claiming our iss, or its own), or with our key and another x5c
    fc.tuple(fc.constantFrom('stranger-claims-me', 'stranger-as-itself', 'our-key-their-x5c'), field, jsonValue).map(([who, f, v]) => {
      const h = { ...header(), ...(who === 'our-key-their-x5c' || who === 'stranger-as-itself' ? { x5c: [stranger.cert.raw.toString('base64')] } : {}) };
      const c = { ...claims(), ...(who === 'stranger-as-itself' ? { iss: stranger.spiffeId } : {}), [f]: v };
      return signed(h, c, who === 'our-key-their-x5c' ? key : strangerKey);
    }),
    fc.string({ maxLength: 80 }),
  );

describe('common identity verification under forged tokens', () => {
  it('the genuine token verifies (so the denials below are about the mutation)', () => {
    expect(new CommonIdentityVerifier(set, rules, ciOptions()).verify(genuine, { now: NOW, peerId: ME })).toMatchObject({ ok: true });
  });

  it('no mutation or re-signing is ever accepted; every result has a reason and repeats', () => {
    const verifier = new CommonIdentityVerifier(set, rules, ciOptions());
    fc.assert(
      fc.property(forged(), (token) => {
        if (token === null) return;
        const a = verifier.verify(token, { now: NOW, peerId: ME });
        const b = new CommonIdentityVerifier(set, rules, ciOptions()).verify(token, { now: NOW, peerId: ME });
        expect(a.ok ? 'ok' : a.code).toBe(b.ok ? 'ok' : b.code);
        expect(a.ok).toBe(false);
        if (!a.ok) expect(a.code).toMatch(/^ERR_TOKEN_[A-Z0-9_]+$/);
      }),
      // each re-signed token costs a signature and a chain check: a third of the runs
      { seed: SEED, numRuns: Math.ceil(RUNS / 3) },
    );
  });
});
