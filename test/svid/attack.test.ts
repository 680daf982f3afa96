/**
 * The certificate signature results svid/x509.ts keeps by the two certificates' digests, under
 * inputs they were not designed for, each with its exact verdict: an impostor CA with the real
 * CA's name and another key, a known-good pair beside a leaf whose signature or contents were
 * altered, a false result kept for one issuer and the right issuer after it, the same pairs in
 * flight twice (one of them failing), a pair verified inside a chain refused for another reason
 * (expired, another trust domain), and a pair verified true once its CA has left the bundle. The
 * verdict never depends on the order: the prepared path (prepareSignatures, as serve runs it)
 * and the plain one agree on every step.
 */
import type { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { prepareSignatures, verifyX509Svid } from '../../src/svid/x509.js';
import { SVID_LIMITS } from '../helpers/limits.js';
import { tamperContents, tamperSignature } from '../helpers/x509.js';

const A = 'zone-a.test';
const B = 'zone-b.test';
const ID = `spiffe://${A}/ns/web/sa/frontend`;
const NOW = Date.now();
const DAY = 86_400_000;
const SAME_NAME = 'CN=zone-a.test root (one name, two keys)';
let real: MemoryCA;
let impostor: MemoryCA;
let caB: MemoryCA;
let leaf: X509Certificate;

beforeAll(async () => {
  real = await MemoryCA.create(A, { subject: SAME_NAME, at: NOW });
  impostor = await MemoryCA.create(A, { subject: SAME_NAME, at: NOW });
  caB = await MemoryCA.create(B, { at: NOW });
  leaf = (await real.issue(ID)).cert;
});

function bundles(a: readonly X509Certificate[] | 'none', b: readonly X509Certificate[] = [caB.cert]): BundleSet {
  const set = new BundleSet();
  if (a !== 'none') set.set(new Bundle(TrustDomain.parse(A), { x509Authorities: a }));
  set.set(new Bundle(TrustDomain.parse(B), { x509Authorities: b }));
  return set;
}

/** The verdict of verifyX509Svid, first after prepareSignatures, then alone: both must agree. */
async function verdict(chain: readonly X509Certificate[], set: BundleSet, now = NOW): Promise<string> {
  const opts = { ...SVID_LIMITS, now };
  const one = () => {
    try {
      return `ok ${verifyX509Svid(chain, set, opts).id.value}`;
    } catch (err) {
      return (err as { code: string }).code;
    }
  };
  await prepareSignatures(chain, set, opts);
  const prepared = one();
  expect(one(), 'the plain path after the prepared one').toBe(prepared);
  return prepared;
}

describe('signature results by certificate digests: a result belongs to its two certificates', () => {
  it('an impostor CA with the real CA\'s name and another key never inherits the real CA\'s result', async () => {
    expect(impostor.cert.subject).toBe(real.cert.subject);
    expect(await verdict([leaf], bundles([real.cert]))).toBe(`ok ${ID}`);
    expect(await verdict([leaf], bundles([impostor.cert]))).toBe('ERR_SVID_SIGNATURE');
    // the false result for the impostor is kept; the real CA beside it still vouches
    expect(await verdict([leaf], bundles([impostor.cert, real.cert]))).toBe(`ok ${ID}`);
    expect(await verdict([leaf], bundles([impostor.cert]))).toBe('ERR_SVID_SIGNATURE');
    // a leaf the impostor signed, with the same name above it: only under the impostor
    const forged = (await impostor.issue(ID)).cert;
    expect(await verdict([forged], bundles([real.cert]))).toBe('ERR_SVID_SIGNATURE');
    expect(await verdict([forged], bundles([real.cert, impostor.cert]))).toBe(`ok ${ID}`);
  });

  it('the known-good leaf altered (signature bit, SPIFFE ID) is another pair: ERR_SVID_SIGNATURE', async () => {
    expect(await verdict([leaf], bundles([real.cert]))).toBe(`ok ${ID}`);
    expect(await verdict([tamperSignature(leaf)], bundles([real.cert]))).toBe('ERR_SVID_SIGNATURE');
    expect(await verdict([tamperContents(leaf, 'frontend', 'backends')], bundles([real.cert]))).toBe('ERR_SVID_SIGNATURE');
    expect(await verdict([leaf], bundles([real.cert]))).toBe(`ok ${ID}`);
  });

  it('the same pairs in flight twice at once, one of the chains failing: each verdict its own', async () => {
    const fresh = (await real.issue(ID)).cert;
    const bad = tamperSignature((await real.issue(ID)).cert);
    const set = bundles([impostor.cert, real.cert]);
    const opts = { ...SVID_LIMITS, now: NOW };
    await Promise.all([fresh, bad, fresh, bad, fresh].map((c) => prepareSignatures([c], set, opts)));
    const one = (c: X509Certificate) => {
      try {
        return `ok ${verifyX509Svid([c], set, opts).id.value}`;
      } catch (err) {
        return (err as { code: string }).code;
      }
    };
    expect([fresh, bad, fresh].map(one)).toEqual([`ok ${ID}`, 'ERR_SVID_SIGNATURE', `ok ${ID}`]);
  });

  it('a pair verified inside a chain refused for its time is no path once the time is right, and the other way round', async () => {
    const inter = await real.intermediate({ notBefore: new Date(NOW - DAY), notAfter: new Date(NOW + DAY) });
    const under = (await inter.issue(ID, { notBefore: new Date(NOW - DAY), notAfter: new Date(NOW + 3 * DAY) })).cert;
    const set = bundles([real.cert]);
    expect(await verdict([under, inter.cert], set, NOW + 2 * DAY)).toBe('ERR_SVID_EXPIRED');
    expect(await verdict([under, inter.cert], set, NOW)).toBe(`ok ${ID}`);
    expect(await verdict([under, inter.cert], set, NOW + 2 * DAY)).toBe('ERR_SVID_EXPIRED');
    // without the intermediate the same pairs make no path
    expect(await verdict([under], set, NOW)).toBe('ERR_SVID_UNTRUSTED');
  });

  it('a pair verified true, then its CA leaves the bundle, is replaced, or moves to another trust domain', async () => {
    expect(await verdict([leaf], bundles([real.cert]))).toBe(`ok ${ID}`);
    expect(await verdict([leaf], bundles([]))).toBe('ERR_TRUST_DOMAIN_REVOKED');
    expect(await verdict([leaf], bundles('none'))).toBe('ERR_TRUST_DOMAIN_UNKNOWN');
    expect(await verdict([leaf], bundles([caB.cert]))).toBe('ERR_SVID_UNTRUSTED');
    // the real CA trusted for B only: a leaf of A is never checked against it
    expect(await verdict([leaf], bundles([caB.cert], [real.cert]))).toBe('ERR_SVID_UNTRUSTED');
    // and a leaf of B the real CA signed is B's only while B trusts it
    const ofB = (await real.issue(`spiffe://${B}/x`)).cert;
    expect(await verdict([ofB], bundles([real.cert], [real.cert]))).toBe(`ok spiffe://${B}/x`);
    expect(await verdict([ofB], bundles([real.cert]))).toBe('ERR_SVID_UNTRUSTED');
  });
});
