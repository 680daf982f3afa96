/**
 * X509-SVID verification rules on certificates generated for each rule, for every signing
 * algorithm the fixture builds, with the clock pinned through the `now` option.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, webcrypto } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { ZonegateError } from '../../src/errors.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { parseCertificates } from '../../src/cert/parse.js';
import { verifyX509Svid, type VerifyOptions } from '../../src/svid/x509.js';
import { KU, selfSignedSvid, MemoryCA, type KeyType } from '../../src/demo/pki.js';
import { nameConstraintsExtension, tamperContents, tamperSignature, unknownCriticalExtension, unknownExtension } from '../helpers/x509.js';
import { SVID_LIMITS } from '../helpers/limits.js';

const NOW = Date.parse('2031-05-01T12:00:00Z');
const DAY = 86_400_000;
const A = 'zone-a.test';
const B = 'zone-b.test';
const tdA = TrustDomain.parse(A);
const tdB = TrustDomain.parse(B);

/** The SPIFFE ID on success, else the exact code. */
function outcome(chain: string | readonly X509Certificate[], bundles: BundleSet, opts: Partial<VerifyOptions> = {}): string {
  try {
    return verifyX509Svid(typeof chain === 'string' ? parseCertificates(chain) : chain, bundles, { ...SVID_LIMITS, now: NOW, ...opts }).id.value;
  } catch (err) {
    if (err instanceof ZonegateError) return err.code;
    throw err;
  }
}
const setOf = (...bundles: Bundle[]) => {
  const set = new BundleSet();
  for (const b of bundles) set.set(b);
  return set;
};

describe.each<KeyType>(['P-256', 'RSA', 'Ed25519'])('verifyX509Svid with %s authorities', (keyType) => {
  let caA: MemoryCA;
  let caB: MemoryCA;
  let set: BundleSet;
  beforeAll(async () => {
    caA = await MemoryCA.create(A, { keyType, at: NOW, sharedLeafKeys: true });
    caB = await MemoryCA.create(B, { keyType, at: NOW, sharedLeafKeys: true });
    set = setOf(caA.bundle(), caB.bundle());
  });

  it('accepts a leaf signed by its own trust domain root, and returns the path and its earliest notAfter', async () => {
    const s = await caA.issue(`spiffe://${A}/web`, { notAfter: new Date(NOW + DAY) });
    const r = verifyX509Svid(parseCertificates(s.chainPem), set, { ...SVID_LIMITS, now: NOW });
    expect(r.id.value).toBe(`spiffe://${A}/web`);
    expect(r.chain.map((c) => c.fingerprint256)).toEqual([s.cert.fingerprint256, caA.cert.fingerprint256]);
    expect(r.notAfter).toBe(Math.floor((NOW + DAY) / 1000) * 1000);
  });

  it('accepts through intermediates sent in the chain, configured beside the bundle, or passed as options', async () => {
    const i1 = await caA.intermediate();
    const i2 = await i1.intermediate();
    const s = await i2.issue(`spiffe://${A}/deep`);
    expect(outcome(s.chainPem, set)).toBe(`spiffe://${A}/deep`);
    expect(outcome(s.certPem, set)).toBe('ERR_SVID_UNTRUSTED'); // leaf only, nothing to chain through
    const intermediates = parseCertificates(s.chainPem).slice(1);
    expect(outcome(s.certPem, set, { extraIntermediates: intermediates })).toBe(`spiffe://${A}/deep`);
    const withExtra = setOf(caA.bundle());
    withExtra.setIntermediates(tdA, intermediates);
    expect(outcome(s.certPem, withExtra)).toBe(`spiffe://${A}/deep`);
  });

  it("cross-trust-domain attack: A's CA signing an ID in B is rejected though A's root is trusted", async () => {
    const forged = await caA.issue(`spiffe://${B}/payments`);
    expect(outcome(forged.chainPem, set)).toBe('ERR_SVID_UNTRUSTED');
    const iA = await caA.intermediate();
    const viaIntermediate = await iA.issue(`spiffe://${B}/payments`);
    expect(outcome(viaIntermediate.chainPem, set)).toBe('ERR_SVID_UNTRUSTED');
    // not even with A's intermediate configured beside B's bundle
    const mixed = setOf(caA.bundle(), caB.bundle());
    mixed.setIntermediates(tdB, [iA.cert]);
    expect(outcome(viaIntermediate.certPem, mixed)).toBe('ERR_SVID_UNTRUSTED');
    // nor when A's CA borrows B's root name: the names match, the signature cannot
    const impostor = await MemoryCA.create(A, { keyType, at: NOW, sharedLeafKeys: true, subject: caB.cert.subject.replace(/\n/g, ', ') });
    expect(outcome((await impostor.issue(`spiffe://${B}/payments`)).chainPem, set)).toBe('ERR_SVID_SIGNATURE');
  });

  it('expired and not-yet-valid leaves, at the pinned clock, with the skew honoured', async () => {
    const expired = await caA.issue(`spiffe://${A}/old`, { notBefore: new Date(NOW - 10 * DAY), notAfter: new Date(NOW - 60_000) });
    expect(outcome(expired.chainPem, set)).toBe('ERR_SVID_EXPIRED');
    expect(outcome(expired.chainPem, set, { skewSeconds: 120 })).toBe(`spiffe://${A}/old`);
    expect(outcome(expired.chainPem, set, { now: NOW - 120_000 })).toBe(`spiffe://${A}/old`);
    const future = await caA.issue(`spiffe://${A}/new`, { notBefore: new Date(NOW + 60_000), notAfter: new Date(NOW + DAY) });
    expect(outcome(future.chainPem, set)).toBe('ERR_SVID_NOT_YET_VALID');
    expect(outcome(future.chainPem, set, { skewSeconds: 120 })).toBe(`spiffe://${A}/new`);
    expect(outcome(future.chainPem, set, { now: NOW + 120_000 })).toBe(`spiffe://${A}/new`);
  });

  it('an expired or not-yet-valid intermediate, or an expired root, breaks the path', async () => {
    const old = await caA.intermediate({ notBefore: new Date(NOW - 10 * DAY), notAfter: new Date(NOW - 1000) });
    expect(outcome((await old.issue(`spiffe://${A}/x`)).chainPem, set)).toBe('ERR_SVID_EXPIRED');
    const early = await caA.intermediate({ notBefore: new Date(NOW + DAY), notAfter: new Date(NOW + 10 * DAY) });
    expect(outcome((await early.issue(`spiffe://${A}/x`)).chainPem, set)).toBe('ERR_SVID_NOT_YET_VALID');
    const oldRoot = await MemoryCA.create(A, { keyType, at: NOW, sharedLeafKeys: true, notBefore: new Date(NOW - 10 * DAY), notAfter: new Date(NOW - 1000) });
    expect(outcome((await oldRoot.issue(`spiffe://${A}/x`)).chainPem, setOf(oldRoot.bundle()))).toBe('ERR_SVID_EXPIRED');
  });

  it('a tampered signature, or tampered signed contents, is ERR_SVID_SIGNATURE', async () => {
    const s = await caA.issue(`spiffe://${A}/web`);
    expect(outcome([tamperSignature(s.cert)], set)).toBe('ERR_SVID_SIGNATURE');
    expect(outcome([tamperContents(s.cert, `spiffe://${A}/web`, `spiffe://${A}/wep`)], set)).toBe('ERR_SVID_SIGNATURE');
    const im = await caA.intermediate();
    const viaIm = await im.issue(`spiffe://${A}/web`);
    expect(outcome([viaIm.cert, tamperSignature(im.cert)], set)).toBe('ERR_SVID_SIGNATURE');
  });

  it('a self-signed leaf with a valid-looking ID is rejected; with the root name copied, its signature fails', async () => {
    expect(outcome((await selfSignedSvid(`spiffe://${A}/web`, { keyType, at: NOW })).chainPem, set)).toBe('ERR_SVID_UNTRUSTED');
    const lookalike = await selfSignedSvid(`spiffe://${A}/web`, { keyType, at: NOW, subject: caA.cert.subject.replace(/\n/g, ', ') });
    expect(outcome(lookalike.chainPem, set)).toBe('ERR_SVID_SIGNATURE');
  });

  it('path length constraints of intermediates and roots', async () => {
    const im0 = await caA.intermediate({ pathLength: 0 });
    expect(outcome((await im0.issue(`spiffe://${A}/ok`)).chainPem, set)).toBe(`spiffe://${A}/ok`);
    const below = await im0.intermediate();
    expect(outcome((await below.issue(`spiffe://${A}/x`)).chainPem, set)).toBe('ERR_SVID_SIGNER_CONSTRAINTS');
    const tight = await MemoryCA.create(A, { keyType, at: NOW, sharedLeafKeys: true, pathLength: 0 });
    expect(outcome((await tight.issue(`spiffe://${A}/ok`)).chainPem, setOf(tight.bundle()))).toBe(`spiffe://${A}/ok`);
    const viaIm = await (await tight.intermediate()).issue(`spiffe://${A}/x`);
    expect(outcome(viaIm.chainPem, setOf(tight.bundle()))).toBe('ERR_SVID_SIGNER_CONSTRAINTS');
    const one = await MemoryCA.create(A, { keyType, at: NOW, sharedLeafKeys: true, pathLength: 1 });
    const oneIm = await one.intermediate();
    expect(outcome((await oneIm.issue(`spiffe://${A}/ok`)).chainPem, setOf(one.bundle()))).toBe(`spiffe://${A}/ok`);
    expect(outcome((await (await oneIm.intermediate()).issue(`spiffe://${A}/x`)).chainPem, setOf(one.bundle()))).toBe('ERR_SVID_SIGNER_CONSTRAINTS');
  });

  it.each([
    ['not a CA', { isCa: false, keyUsage: KU.keyCertSign }],
    ['no basicConstraints', { noBasicConstraints: true }],
    ['no keyCertSign', { keyUsage: KU.cRLSign }],
  ])('signing certificates must be CAs with keyCertSign: %s', async (_n, o) => {
    const bad = await caA.intermediate(o);
    const s = await bad.issue(`spiffe://${A}/x`);
    expect(outcome(s.chainPem, set)).toBe('ERR_SVID_SIGNER_CONSTRAINTS');
    // the same intermediate configured beside the bundle, not presented
    const configured = setOf(caA.bundle());
    configured.setIntermediates(tdA, [bad.cert]);
    expect(outcome(s.certPem, configured)).toBe('ERR_SVID_SIGNER_CONSTRAINTS');
  });

  it('a bundle authority must be a CA', async () => {
    const notCa = await MemoryCA.create(A, { keyType, at: NOW, sharedLeafKeys: true, isCa: false, keyUsage: KU.keyCertSign | KU.digitalSignature });
    expect(outcome((await notCa.issue(`spiffe://${A}/x`)).chainPem, setOf(notCa.bundle()))).toBe('ERR_SVID_SIGNER_CONSTRAINTS');
  });

  it('unsupported critical extensions on leaf, intermediate or root; name constraints fail closed; unknown non-critical ones are fine', async () => {
    const crit = unknownCriticalExtension();
    expect(outcome((await caA.issue(`spiffe://${A}/x`, { extensions: [crit] })).chainPem, set)).toBe('ERR_SVID_CRITICAL_EXTENSION');
    const im = await caA.intermediate({ extensions: [crit] });
    expect(outcome((await im.issue(`spiffe://${A}/x`)).chainPem, set)).toBe('ERR_SVID_CRITICAL_EXTENSION');
    const root = await MemoryCA.create(A, { keyType, at: NOW, sharedLeafKeys: true, extensions: [crit] });
    expect(outcome((await root.issue(`spiffe://${A}/x`)).chainPem, setOf(root.bundle()))).toBe('ERR_SVID_CRITICAL_EXTENSION');
    const constrained = await caA.intermediate({ extensions: [nameConstraintsExtension(A)] });
    expect(outcome((await constrained.issue(`spiffe://${A}/x`)).chainPem, set)).toBe('ERR_SVID_CRITICAL_EXTENSION');
    const nonCritical = await caA.issue(`spiffe://${A}/x`, { extensions: [unknownExtension('1.3.6.1.4.1.99999.2', false)] });
    expect(outcome(nonCritical.chainPem, set)).toBe(`spiffe://${A}/x`);
  });

  it.each([
    ['CA flag set', { isCa: true }],
    ['no keyUsage', { keyUsage: null }],
    ['no digitalSignature', { keyUsage: KU.keyEncipherment }],
    ['keyCertSign', { keyUsage: KU.digitalSignature | KU.keyCertSign }],
    ['cRLSign', { keyUsage: KU.digitalSignature | KU.cRLSign }],
    ['empty subject, non-critical SAN', { subject: '' }],
  ])('leaf rule: %s → ERR_SVID_LEAF_CONSTRAINTS', async (_n, o) => {
    expect(outcome((await caA.issue(`spiffe://${A}/web`, o)).chainPem, set)).toBe('ERR_SVID_LEAF_CONSTRAINTS');
  });

  it('leaf rule: an empty subject with a critical SAN, and extra keyUsage bits a leaf may have, are fine', async () => {
    expect(outcome((await caA.issue(`spiffe://${A}/web`, { subject: '', sanCritical: true })).chainPem, set)).toBe(`spiffe://${A}/web`);
    const ku = KU.digitalSignature | KU.keyEncipherment | KU.keyAgreement;
    expect(outcome((await caA.issue(`spiffe://${A}/web`, { keyUsage: ku, dns: ['web.zone-a.test'] })).chainPem, set)).toBe(`spiffe://${A}/web`);
  });

  it.each([
    ['no URI SAN', undefined, { dns: ['web.test'] }],
    ['a non-SPIFFE URI', undefined, { extraUris: ['https://web.test/'] }],
    ['two URI SANs', `spiffe://${A}/web`, { extraUris: [`spiffe://${A}/other`] }],
    ['the trust domain ID (no path)', `spiffe://${A}`, {}],
    ['an invalid SPIFFE ID', `spiffe://${A}/a//b`, {}],
    ['an upper-case trust domain', 'spiffe://Zone-A.test/web', {}],
  ])('leaf SPIFFE ID: %s → ERR_SVID_NO_SPIFFE_ID', async (_n, id, o) => {
    expect(outcome((await caA.issue(id, o)).chainPem, set)).toBe('ERR_SVID_NO_SPIFFE_ID');
  });

  it('unknown, revoked and stale trust domains', async () => {
    const caC = await MemoryCA.create('zone-c.test', { keyType, at: NOW, sharedLeafKeys: true });
    const s = await caC.issue('spiffe://zone-c.test/x');
    expect(outcome(s.chainPem, set)).toBe('ERR_TRUST_DOMAIN_UNKNOWN');
    const local = setOf(new Bundle(TrustDomain.parse('zone-c.test')));
    expect(outcome(s.chainPem, local)).toBe('ERR_TRUST_DOMAIN_REVOKED');
    local.set(caC.bundle());
    expect(outcome(s.chainPem, local)).toBe('spiffe://zone-c.test/x');
    local.setStale(TrustDomain.parse('zone-c.test'), true);
    expect(outcome(s.chainPem, local)).toBe('ERR_TRUST_DOMAIN_STALE');
  });

  it('chain limits: empty, longer than maxChainLength (default 5)', async () => {
    expect(outcome([], set)).toBe('ERR_SVID_MALFORMED');
    let ca = caA;
    for (let i = 0; i < 5; i++) ca = await ca.intermediate();
    const s = await ca.issue(`spiffe://${A}/far`);
    expect(outcome(s.chainPem, set)).toBe('ERR_SVID_TOO_LARGE');
    expect(outcome(s.chainPem, set, { maxChainLength: 6 })).toBe(`spiffe://${A}/far`);
    // configured intermediates cannot build a path longer than the limit either
    const configured = setOf(caA.bundle());
    configured.setIntermediates(tdA, parseCertificates(s.chainPem).slice(1));
    expect(outcome(s.certPem, configured)).toBe('ERR_SVID_UNTRUSTED');
    expect(outcome(s.certPem, configured, { maxChainLength: 6 })).toBe(`spiffe://${A}/far`);
  });

  it('messages say what failed and where', async () => {
    const s = await caA.issue(`spiffe://${A}/old`, { notBefore: new Date(NOW - 10 * DAY), notAfter: new Date('2031-04-30T00:00:00Z') });
    expect(() => verifyX509Svid(parseCertificates(s.chainPem), set, { ...SVID_LIMITS, now: NOW })).toThrow('x509svid: leaf certificate expired at 2031-04-30T00:00:00.000Z');
    const c = await (await MemoryCA.create('zone-c.test', { keyType, at: NOW, sharedLeafKeys: true })).issue('spiffe://zone-c.test/x');
    expect(() => verifyX509Svid([c.cert], set, { ...SVID_LIMITS, now: NOW })).toThrow('x509svid: no bundle for trust domain "zone-c.test"');
  });
});

describe('signature algorithms', () => {
  /** A certificate signed by `issuer`'s key with a hash of our choosing (WebCrypto still signs SHA-1). */
  async function signedWith(issuer: MemoryCA, hash: 'SHA-1' | 'SHA-256' | 'SHA-384', o: { isCa: boolean; uri: string }): Promise<{ cert: X509Certificate }> {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const c = await x509.X509CertificateGenerator.create({
      subject: `CN=${hash} ${o.isCa ? 'intermediate' : 'leaf'}`,
      issuer: issuer.cert.subject,
      publicKey: keys.publicKey,
      signingKey: issuer.keys.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash } as never,
      notBefore: new Date(NOW - DAY),
      notAfter: new Date(NOW + DAY),
      extensions: [
        new x509.BasicConstraintsExtension(o.isCa, undefined, true),
        new x509.KeyUsagesExtension(o.isCa ? KU.keyCertSign : KU.digitalSignature, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: o.uri }]),
      ],
    });
    return { cert: new X509Certificate(Buffer.from(c.rawData)) };
  }

  it('a leaf signed with ECDSA-SHA1 by a trusted root is refused; SHA-256 and SHA-384 are accepted', async () => {
    const ca = await MemoryCA.create(A, { at: NOW, sharedLeafKeys: true });
    const set = setOf(ca.bundle());
    expect(outcome([(await signedWith(ca, 'SHA-1', { isCa: false, uri: `spiffe://${A}/sha1` })).cert], set)).toBe('ERR_SVID_SIGNATURE');
    expect(outcome([(await signedWith(ca, 'SHA-256', { isCa: false, uri: `spiffe://${A}/sha256` })).cert], set)).toBe(`spiffe://${A}/sha256`);
    expect(outcome([(await signedWith(ca, 'SHA-384', { isCa: false, uri: `spiffe://${A}/sha384` })).cert], set)).toBe(`spiffe://${A}/sha384`);
  });
});
