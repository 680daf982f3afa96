/** X509-SVID verification rules on certificates generated for each rule (pinned clock where time matters). */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { ZonegateError } from '../../src/errors.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { parseCertificates } from '../../src/svid/parse.js';
import { verifyX509Svid } from '../../src/svid/x509.js';
import { X509SvidVerifier } from '../../src/svid/verifier.js';
import { selfSignedSvid, TestCA } from '../fixtures/pki.js';

const A = 'zone-a.test';
const B = 'zone-b.test';
let caA: TestCA;
let caB: TestCA;
let set: BundleSet;
const DAY = 86_400_000;

beforeAll(async () => {
  caA = await TestCA.create(A);
  caB = await TestCA.create(B);
  set = new BundleSet();
  set.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caA.x509] }));
  set.set(new Bundle(TrustDomain.parse(B), { x509Authorities: [caB.x509] }));
});

function code(chainPem: string, bundles = set, opts = {}): string {
  try {
    return verifyX509Svid(parseCertificates(chainPem), bundles, opts).id.value;
  } catch (err) {
    if (err instanceof ZonegateError) return err.code;
    throw err;
  }
}

describe('verifyX509Svid', () => {
  it('accepts a leaf signed by its own trust domain root', async () => {
    const s = await caA.issue(`spiffe://${A}/web`);
    expect(code(s.chainPem)).toBe(`spiffe://${A}/web`);
  });

  it('accepts a leaf through intermediates sent in the chain, and with configured intermediates', async () => {
    const i1 = await caA.intermediate();
    const i2 = await i1.intermediate();
    const s = await i2.issue(`spiffe://${A}/deep`);
    expect(code(s.chainPem)).toBe(`spiffe://${A}/deep`);
    // leaf only: fails until the intermediates are configured beside the bundle
    expect(code(s.certPem)).toBe('ERR_SVID_UNTRUSTED');
    const withExtra = new BundleSet();
    withExtra.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caA.x509] }));
    withExtra.setIntermediates(TrustDomain.parse(A), parseCertificates(s.chainPem).slice(1));
    expect(code(s.certPem, withExtra)).toBe(`spiffe://${A}/deep`);
  });

  it('cross-trust-domain attack: A\'s CA signing an ID in B is rejected though A\'s root is trusted', async () => {
    const forged = await caA.issue(`spiffe://${B}/payments`);
    expect(code(forged.chainPem)).toBe('ERR_SVID_UNTRUSTED');
    // and an intermediate of A cannot help either
    const iA = await caA.intermediate();
    expect(code((await iA.issue(`spiffe://${B}/payments`)).chainPem)).toBe('ERR_SVID_UNTRUSTED');
  });

  it('no bundle for the trust domain / revoked (empty) bundle', async () => {
    const other = await (await TestCA.create('zone-c.test')).issue('spiffe://zone-c.test/x');
    expect(code(other.chainPem)).toBe('ERR_TRUST_DOMAIN_UNKNOWN');
    const revoked = new BundleSet();
    revoked.set(new Bundle(TrustDomain.parse(A)));
    expect(code((await caA.issue(`spiffe://${A}/web`)).chainPem, revoked)).toBe('ERR_TRUST_DOMAIN_REVOKED');
  });

  it('expired and not-yet-valid leaves, with the skew honoured', async () => {
    const now = Date.now();
    const expired = await caA.issue(`spiffe://${A}/old`, { notBefore: new Date(now - 10 * DAY), notAfter: new Date(now - 60_000) });
    expect(code(expired.chainPem)).toBe('ERR_SVID_EXPIRED');
    expect(code(expired.chainPem, set, { skewSeconds: 120 })).toBe(`spiffe://${A}/old`);
    const future = await caA.issue(`spiffe://${A}/new`, { notBefore: new Date(now + 60_000), notAfter: new Date(now + DAY) });
    expect(code(future.chainPem)).toBe('ERR_SVID_NOT_YET_VALID');
    expect(code(future.chainPem, set, { now: now + 120_000 })).toBe(`spiffe://${A}/new`);
  });

  it('an expired intermediate breaks the path', async () => {
    const now = Date.now();
    const im = await caA.intermediate({ notBefore: new Date(now - 10 * DAY), notAfter: new Date(now - 1000) });
    const s = await im.issue(`spiffe://${A}/x`, { notBefore: new Date(now - DAY), notAfter: new Date(now + DAY) });
    expect(code(s.chainPem)).toBe('ERR_SVID_EXPIRED');
  });

  it('a tampered signature is rejected', async () => {
    const s = await caA.issue(`spiffe://${A}/web`);
    const der = Buffer.from(s.cert.raw);
    der.writeUInt8(der.readUInt8(der.length - 5) ^ 0x01, der.length - 5); // inside the signature value
    expect(code(new X509Certificate(der).toString())).toMatch(/^ERR_SVID_(SIGNATURE|UNTRUSTED|MALFORMED)$/);
    expect(code(new X509Certificate(der).toString())).not.toMatch(/^spiffe/);
  });

  it('a self-signed leaf with a valid-looking ID is rejected', async () => {
    expect(code((await selfSignedSvid(`spiffe://${A}/web`)).chainPem)).toBe('ERR_SVID_UNTRUSTED');
  });

  it('path length constraints of intermediates and roots', async () => {
    const im0 = await caA.intermediate({ pathLength: 0 });
    const below = await im0.intermediate();
    expect(code((await below.issue(`spiffe://${A}/x`)).chainPem)).toBe('ERR_SVID_SIGNER_CONSTRAINTS');
    expect(code((await im0.issue(`spiffe://${A}/ok`)).chainPem)).toBe(`spiffe://${A}/ok`);
    const tight = await TestCA.create(A, { pathLength: 0 });
    const tightSet = new BundleSet();
    tightSet.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [tight.x509] }));
    const viaIm = await (await tight.intermediate()).issue(`spiffe://${A}/x`);
    expect(code(viaIm.chainPem, tightSet)).toBe('ERR_SVID_SIGNER_CONSTRAINTS');
  });

  it('signing certificates must be CAs with keyCertSign', async () => {
    const notCa = await caA.intermediate({ ca: false, keyUsage: x509.KeyUsageFlags.keyCertSign });
    expect(code((await notCa.issue(`spiffe://${A}/x`)).chainPem)).toBe('ERR_SVID_SIGNER_CONSTRAINTS');
    const noCertSign = await caA.intermediate({ keyUsage: x509.KeyUsageFlags.cRLSign });
    expect(code((await noCertSign.issue(`spiffe://${A}/x`)).chainPem)).toBe('ERR_SVID_SIGNER_CONSTRAINTS');
  });

  it.each([
    ['CA flag set', { ca: true }, 'ERR_SVID_LEAF_CONSTRAINTS'],
    ['no keyUsage', { keyUsage: null }, 'ERR_SVID_LEAF_CONSTRAINTS'],
    ['no digitalSignature', { keyUsage: x509.KeyUsageFlags.keyEncipherment }, 'ERR_SVID_LEAF_CONSTRAINTS'],
    ['keyCertSign', { keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign }, 'ERR_SVID_LEAF_CONSTRAINTS'],
    ['cRLSign', { keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.cRLSign }, 'ERR_SVID_LEAF_CONSTRAINTS'],
    ['two URI SANs', { uris: [`spiffe://${A}/other`] }, 'ERR_SVID_NO_SPIFFE_ID'],
    ['unknown critical extension', { extensions: [new x509.Extension('1.3.6.1.4.1.99999.1', true, new Uint8Array([0x05, 0x00]))] }, 'ERR_SVID_CRITICAL_EXTENSION'],
  ])('leaf rule: %s', async (_n, o, want) => {
    expect(code((await caA.issue(`spiffe://${A}/web`, o as never)).chainPem)).toBe(want);
  });

  it.each([
    ['no URI SAN', undefined, { dns: ['web.test'] }],
    ['a non-SPIFFE URI', undefined, { uris: ['https://web.test/'] }],
    ['the trust domain ID (no path)', `spiffe://${A}`, {}],
    ['an invalid SPIFFE ID', `spiffe://${A}/a//b`, {}],
  ])('leaf SPIFFE ID: %s → ERR_SVID_NO_SPIFFE_ID', async (_n, id, o) => {
    expect(code((await caA.issue(id, o)).chainPem)).toBe('ERR_SVID_NO_SPIFFE_ID');
  });

  it('chain length limit', async () => {
    let ca = caA;
    for (let i = 0; i < 5; i++) ca = await ca.intermediate();
    const s = await ca.issue(`spiffe://${A}/far`);
    expect(code(s.chainPem)).toBe('ERR_SVID_TOO_LARGE');
    expect(code(s.chainPem, set, { maxChainLength: 6 })).toBe(`spiffe://${A}/far`);
  });
});

describe('X509SvidVerifier cache', () => {
  it('verifies a string once, re-verifies after a bundle change of its trust domain only', async () => {
    const s = await caA.issue(`spiffe://${A}/web`);
    const sb = await caB.issue(`spiffe://${B}/api`);
    const local = new BundleSet();
    local.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caA.x509] }));
    local.set(new Bundle(TrustDomain.parse(B), { x509Authorities: [caB.x509] }));
    const v = new X509SvidVerifier(local);
    const enc = encodeURIComponent(s.certPem);
    expect(v.verifyPem(enc)).toMatchObject({ ok: true });
    expect(v.verifyPem(enc)).toMatchObject({ ok: true });
    expect(v.verifyPem(sb.certPem)).toMatchObject({ ok: true });
    expect(v.parses).toBe(2);
    // rotate B: only B's entry is re-verified
    local.set(new Bundle(TrustDomain.parse(B), { x509Authorities: [caB.x509] }));
    v.verifyPem(enc);
    v.verifyPem(sb.certPem);
    expect(v.parses).toBe(3);
    // remove A's root: the cached allow does not survive
    local.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caB.x509] }));
    expect(v.verifyPem(enc)).toMatchObject({ ok: false, code: 'ERR_SVID_UNTRUSTED' });
  });

  it('a flood of one bad certificate costs one parse; a negative for an unknown trust domain clears when it arrives', async () => {
    const caC = await TestCA.create('zone-c.test');
    const s = await caC.issue('spiffe://zone-c.test/x');
    const local = new BundleSet();
    const v = new X509SvidVerifier(local);
    for (let i = 0; i < 100; i++) expect(v.verifyPem(s.certPem)).toMatchObject({ ok: false, code: 'ERR_TRUST_DOMAIN_UNKNOWN' });
    expect(v.parses).toBe(1);
    local.set(new Bundle(TrustDomain.parse('zone-c.test'), { x509Authorities: [caC.x509] }));
    expect(v.verifyPem(s.certPem)).toMatchObject({ ok: true });
  });

  it('a cached allow expires with the leaf', async () => {
    let now = Date.now();
    const s = await caA.issue(`spiffe://${A}/short`, { notAfter: new Date(now + 60_000) });
    const v = new X509SvidVerifier(set, { now: () => now });
    expect(v.verifyPem(s.certPem)).toMatchObject({ ok: true });
    now += 120_000;
    expect(v.verifyPem(s.certPem)).toMatchObject({ ok: false, code: 'ERR_SVID_EXPIRED' });
  });

  it('rejects oversized input before hashing or parsing', () => {
    const v = new X509SvidVerifier(set, { maxBytes: 1000 });
    expect(v.verifyPem('a'.repeat(1001))).toMatchObject({ ok: false, code: 'ERR_SVID_TOO_LARGE' });
    expect(v.parses).toBe(0);
  });
});
