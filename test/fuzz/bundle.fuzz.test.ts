/**
 * Property-based checks of the bundle codecs (fast-check, fixed seed, bounded runs): random and
 * mutated SPIFFE bundle documents, PEM and DER bundles and bundle maps. Every input yields a
 * Bundle or a ZonegateError with a bundle reason (never another exception), the same input gives
 * the same result, and trust never appears from nowhere: an SVID verifies against the parsed
 * bundle only when its genuine root is among the parsed authorities.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseBundle, parseJwtBundle, serializeSpiffeBundle, type Bundle } from '../../src/bundle/bundle.js';
import { parseBundleMap } from '../../src/bundle/map.js';
import { BundleSet } from '../../src/bundle/set.js';
import { ZonegateError } from '../../src/errors.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { X509SvidVerifier } from '../../src/svid/verifier.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { BUNDLE_LIMITS, VERIFIER_LIMITS } from '../helpers/limits.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);
const A = 'zone-a.test';
const TD = TrustDomain.parse(A);
let root: MemoryCA;
let other: MemoryCA;
let svid: Issued;
let rootB64: string;
let otherB64: string;
let jwk: Record<string, unknown>;
let rootSpki: Buffer;

beforeAll(async () => {
  root = await MemoryCA.create(A);
  other = await MemoryCA.create(A); // same trust domain name, different key: must never stand in
  svid = await root.issue(`spiffe://${A}/w`);
  rootB64 = root.cert.raw.toString('base64');
  otherB64 = other.cert.raw.toString('base64');
  jwk = root.cert.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  rootSpki = root.cert.publicKey.export({ type: 'spki', format: 'der' });
});

type Outcome = { ok: true; bundle: Bundle } | { ok: false; code: string };
const BUNDLE_CODES = ['ERR_BUNDLE_INVALID', 'ERR_BUNDLE_TOO_LARGE'];

function attempt(f: () => Bundle): Outcome {
  try {
    return { ok: true, bundle: f() };
  } catch (err) {
    // anything but a typed bundle error is a bug: rethrow so the property fails
    if (err instanceof ZonegateError) return { ok: false, code: err.code };
    throw err;
  }
}
const summary = (o: Outcome) => (o.ok ? serializeSpiffeBundle(o.bundle) : o.code);

const mutate = (s: string) =>
  fc.tuple(fc.nat(), fc.string({ minLength: 0, maxLength: 3 }), fc.nat({ max: 3 })).map(([i, ins, del]) => {
    const at = s.length ? i % s.length : 0;
    return s.slice(0, at) + ins + s.slice(at + del);
  });

/** One element of `keys`: plausible, broken in one field, or junk. */
const element = () =>
  fc.record(
    {
      kty: fc.oneof(fc.constantFrom('EC', 'RSA', 'OKP', 'oct', ''), fc.integer()),
      use: fc.constantFrom('x509-svid', 'jwt-svid', 'sig', 'enc', undefined),
      x5c: fc.oneof(
        fc.constant([rootB64]),
        fc.constant([otherB64]),
        fc.constant([rootB64, otherB64]),
        mutate(rootB64).map((c) => [c]),
        fc.array(fc.string({ maxLength: 8 }), { maxLength: 2 }),
        fc.anything({ maxDepth: 1 }),
      ),
      kid: fc.oneof(fc.string({ maxLength: 6 }), fc.integer()),
      crv: fc.constantFrom('P-256', 'P-384', 'X', jwk.crv),
      x: fc.oneof(fc.constant(jwk.x), fc.string({ maxLength: 10 })),
      y: fc.oneof(fc.constant(jwk.y), fc.string({ maxLength: 10 })),
      d: fc.string({ maxLength: 4 }),
    },
    { requiredKeys: [] },
  );
const document = () =>
  fc.record(
    {
      keys: fc.oneof(fc.array(element(), { maxLength: 4 }), fc.anything({ maxDepth: 1 })),
      spiffe_sequence: fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.string({ maxLength: 3 })),
      spiffe_refresh_hint: fc.oneof(fc.nat(), fc.integer(), fc.string({ maxLength: 3 })),
    },
    { requiredKeys: [] },
  );
const input = () =>
  fc.oneof(
    { arbitrary: document().map((d) => JSON.stringify(d)), weight: 5 },
    document().chain((d) => mutate(JSON.stringify(d))),
    fc.constantFrom(`-----BEGIN CERTIFICATE-----\n${rootB64}\n-----END CERTIFICATE-----\n`).chain(mutate),
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.concat([Buffer.from([0x30]), b]).toString('latin1')),
    fc.string({ maxLength: 64 }),
  );

describe('bundle documents under random input', () => {
  it('parse to a bundle or a bundle error, deterministically; trust only from the genuine root', () => {
    let trusted = 0;
    fc.assert(
      fc.property(input(), (text) => {
        const a = attempt(() => parseBundle(text, TD, BUNDLE_LIMITS));
        const b = attempt(() => parseBundle(text, TD, BUNDLE_LIMITS));
        expect(summary(b)).toBe(summary(a));
        if (!a.ok) return void expect(BUNDLE_CODES).toContain(a.code);
        // no private key material survives, and only certificates that were in the input
        for (const k of a.bundle.jwtAuthorities.values()) expect(k.jwk).not.toHaveProperty('d');
        const set = new BundleSet();
        set.set(a.bundle);
        const r = new X509SvidVerifier(set, VERIFIER_LIMITS).verifyPem(svid.certPem);
        // the genuine root is trusted; anything else only if it carries the root's own key (an
        // anchor is its key: a re-encoded root with the same key is the same authority)
        if (a.bundle.x509Authorities.some((c) => c.raw.toString('base64') === rootB64)) expect(r.ok).toBe(true);
        if (r.ok) {
          expect(a.bundle.x509Authorities.some((c) => c.publicKey.export({ type: 'spki', format: 'der' }).equals(rootSpki))).toBe(true);
          trusted++;
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(trusted).toBeGreaterThan(RUNS / 300); // not vacuous: genuine roots do get through
  });

  it('JWK Sets and bundle maps: a result or a bundle error, never another exception', () => {
    fc.assert(
      fc.property(input(), fc.string({ maxLength: 12 }), (text, name) => {
        const r = attempt(() => parseJwtBundle(text, TD, BUNDLE_LIMITS));
        if (!r.ok) expect(BUNDLE_CODES).toContain(r.code);
        for (const doc of [text, JSON.stringify({ trust_domains: { [name]: text } }), `{"trust_domains":{"${A}":${text}}}`]) {
          try {
            parseBundleMap(doc, BUNDLE_LIMITS);
          } catch (err) {
            expect(err).toBeInstanceOf(ZonegateError);
            expect(BUNDLE_CODES).toContain((err as ZonegateError).code);
          }
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
