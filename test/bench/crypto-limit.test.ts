/**
 * The cold scenarios' limit (bench/crypto-limit.ts): its arithmetic on small inputs, the
 * measurement on real inputs, and the per-scenario crypto counts held to what zonegate's verifier
 * really does on the serving path (prepare on the thread pool, then verify): the certificates it
 * parses and the signatures it checks for one new token, and for one new x5c leaf.
 */
import * as crypto from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { COLD_CRYPTO, CRYPTO_OPS, cryptoLimit, limitMultiple, measureCrypto, measureOp, type CryptoOp } from '../../bench/crypto-limit.js';
import { AUDIENCE, createPki, mint, PEER_ID, TRUST_DOMAIN, type BenchPki } from '../../bench/fixtures.js';
import { Bundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { ciOptions, ciRules } from '../helpers/identity.js';
import { CommonIdentityVerifier } from '../../src/identity/verify.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { parseCertificates } from '../../src/cert/parse.js';

// node:crypto's verify() counted on every path (callback and synchronous), answers unchanged
vi.mock('node:crypto', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:crypto')>();
  return { ...orig, verify: vi.fn(orig.verify) };
});

describe('cryptoLimit: floor + Σ count × cost', () => {
  it('adds each op as often as the request needs it', () => {
    expect(cryptoLimit(50, { 'verify-es256': 2, 'parse-certificate': 1 }, { 'verify-es256': 10, 'parse-certificate': 5, 'verify-rs256': 99 })).toEqual({
      floorMicros: 50,
      cryptoMicros: 25,
      limitMicros: 75,
    });
    expect(cryptoLimit(60, {}, {})).toEqual({ floorMicros: 60, cryptoMicros: 0, limitMicros: 60 });
  });

  it('refuses an op it has no cost for, and a floor that is not a measurement', () => {
    expect(() => cryptoLimit(50, { 'parse-certificate': 1 }, { 'verify-es256': 10 })).toThrow(/parse-certificate/);
    expect(() => cryptoLimit(50, { 'verify-es256': 1 }, { 'verify-es256': 0 })).toThrow(/verify-es256/);
    expect(() => cryptoLimit(NaN, { 'verify-es256': 1 }, { 'verify-es256': 10 })).toThrow(/floor/);
  });

  it('CPU as a multiple of the limit', () => {
    const limit = cryptoLimit(50, { 'verify-es256': 1 }, { 'verify-es256': 25 });
    expect(limitMultiple(150, limit)).toBe(2);
    expect(limitMultiple(90, limit)).toBe(1.2);
    expect(() => limitMultiple(90, { floorMicros: 0, cryptoMicros: 0, limitMicros: 0 })).toThrow();
  });

  it('every cold scenario needs at least one measured op, and only measured ones', () => {
    for (const ops of Object.values(COLD_CRYPTO)) {
      expect(Object.keys(ops).length).toBeGreaterThan(0);
      for (const op of Object.keys(ops)) expect(CRYPTO_OPS).toContain(op);
    }
  });
});

let dir: string;
let pki: BenchPki;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'zg-bench-crypto-'));
  pki = await createPki(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('measureCrypto', () => {
  const inputs = async () => ({
    tokens: Object.fromEntries((['ES256', 'EdDSA', 'RS256'] as const).map((a) => [a, { token: mint(pki.svids[a], a), key: pki.svids[a].chain[0]!.publicKey }])),
    leaves: (await Promise.all([1, 2].map(() => pki.inter.issue(PEER_ID, { keyType: 'P-256' })))).map((l) => l.der),
    issuerKey: new crypto.X509Certificate(pki.inter.certPem).publicKey,
  });

  it('gives a positive CPU time for every op, on the run\'s own tokens and certificates', async () => {
    const costs = measureCrypto(await inputs(), { rounds: 1, roundMs: 2 });
    for (const op of CRYPTO_OPS) expect(costs[op], op).toBeGreaterThan(0);
  });

  it('refuses inputs whose checks fail (a cost of a failing check is not the cost of the check)', async () => {
    const i = await inputs();
    const wrongKey = pki.svids.RS256.chain[0]!.publicKey;
    expect(() => measureCrypto({ ...i, tokens: { ...i.tokens, ES256: { token: i.tokens.ES256!.token, key: pki.svids.EdDSA.chain[0]!.publicKey } } }, { rounds: 1, roundMs: 1 })).toThrow();
    expect(() => measureCrypto({ ...i, issuerKey: wrongKey }, { rounds: 1, roundMs: 1 })).toThrow(/issuer/);
  });

  it('measureOp divides CPU by iterations: a costlier op measures costlier', () => {
    const cheap = measureOp(() => 1, { rounds: 1, roundMs: 5 });
    const dear = measureOp(() => crypto.pbkdf2Sync('x', 'y', 2000, 32, 'sha256'), { rounds: 1, roundMs: 5 });
    expect(dear).toBeGreaterThan(cheap);
  });
});

describe("COLD_CRYPTO is what zonegate's verifier does for one cold request", () => {
  let verifier: CommonIdentityVerifier;
  const verify = vi.mocked(crypto.verify);
  const x509Verify = vi.spyOn(crypto.X509Certificate.prototype, 'verify');

  beforeEach(() => {
    const root = new crypto.X509Certificate(readFileSync(join(dir, 'root.pem')));
    const set = new BundleSet();
    set.set(new Bundle(TrustDomain.parse(TRUST_DOMAIN), { x509Authorities: [root] }));
    // as the bench config has it (trust[].intermediates): the intermediate is both configured and
    // in every token's x5c, two objects of one certificate
    set.setIntermediates(TrustDomain.parse(TRUST_DOMAIN), [new crypto.X509Certificate(readFileSync(join(dir, 'intermediate.pem')))]);
    verifier = new CommonIdentityVerifier(
      set,
      ciRules({ maxLifetimeSeconds: 3600, skewSeconds: 30, audiences: new Set([AUDIENCE]), bindToPeer: true, requireCnf: false }),
      ciOptions(),
    );
  });

  /** Serves one token as zonegate does (prepare, then verify) and counts what it cost. */
  async function serve(token: string) {
    const ctx = { now: Date.now(), peerId: PEER_ID };
    const parses = verifier.certificateParses;
    verify.mockClear();
    x509Verify.mockClear();
    await verifier.prepare(token, ctx);
    const r = verifier.verify(token, ctx);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    return { parses: verifier.certificateParses - parses, signatures: verify.mock.calls.length + x509Verify.mock.calls.length };
  }
  const expected = (ops: Partial<Record<CryptoOp, number>>) => ({
    parses: ops['parse-certificate'] ?? 0,
    signatures: Object.entries(ops).reduce((n, [op, c]) => n + (op.startsWith('verify-') ? c : 0), 0),
  });

  for (const [scenario, alg] of [['cold-es256', 'ES256'], ['cold-eddsa', 'EdDSA'], ['cold-rs256', 'RS256']] as const) {
    it(`${scenario}: a new token of a known signer`, async () => {
      const first = await serve(mint(pki.svids[alg], alg));
      expect(first.parses).toBe(2); // the chain, once
      expect(await serve(mint(pki.svids[alg], alg))).toEqual(expected(COLD_CRYPTO[scenario]));
    });
  }

  it('cold-chain: a new x5c leaf under a known intermediate', async () => {
    const svid = pki.svids.ES256;
    await serve(mint(svid, 'ES256'));
    const leaf = await pki.inter.issue(PEER_ID, { keyType: 'P-256' });
    const cold = await serve(mint(svid, 'ES256', parseCertificates(leaf.chainPem)));
    expect(cold).toEqual(expected(COLD_CRYPTO['cold-chain']));
  });
});
