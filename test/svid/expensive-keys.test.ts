/**
 * Keys and chains that cost time to verify: RSA exponents and moduli bounded as Go bounds them,
 * a cap on the signature checks one path search may do (same-name issuers), caches keyed by the
 * DER rather than its spelling, and certificate signatures checked on the thread pool with the
 * same answers as the synchronous check. Certificates come from the test CA; a huge exponent no
 * key generator makes is a SubjectPublicKeyInfo built by hand and certified by the CA.
 */
import 'reflect-metadata'; // @peculiar/x509 2.x needs a Reflect metadata polyfill
import * as x509 from '@peculiar/x509';
import { createPublicKey, generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseBundle, parseSpiffeBundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { CommonIdentityVerifier, type TokenRules } from '../../src/identity/verify.js';
import { signCompact } from '../../src/identity/jws.js';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { ciOptions, ciRules, EGRESS_TTL_SECONDS } from '../helpers/identity.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { loadX509Svid } from '../../src/svid/local.js';
import { certificateSignatureAsync, signatureCheckable } from '../../src/cert/signature.js';
import { keyWeakness } from '../../src/cert/strength.js';
import { X509SvidVerifier } from '../../src/svid/verifier.js';
import { prepareSignatures, verifyX509Svid } from '../../src/svid/x509.js';
import { KU, MemoryCA, type Issued } from '../../src/demo/pki.js';
import { rsaSpki, tamperSignature } from '../helpers/x509.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { BUNDLE_LIMITS, SVID_LIMITS, VERIFIER_LIMITS } from '../helpers/limits.js';

const A = 'zone-a.test';
const B = 'zone-b.test';
const WEB = `spiffe://${A}/web`;
/** ≈ 3070 bits: one RSA-3072 signature check with it costs milliseconds (OpenSSL bounds e only above 3072-bit moduli). */
const HUGE_E = 2n ** 3070n + 1n;
let modulus3072: Buffer;
let ca: MemoryCA;
let caB: MemoryCA;
let set: BundleSet;
let web: Issued;
/** Four intermediates with one subject name and a huge-exponent RSA key, and an RSA-signed leaf under the name. */
let hugeIms: MemoryCA[];
let hugeLeaf: Issued;
/** Four intermediates with one subject name and ordinary keys; only the last issued the leaf. */
let sameName: MemoryCA[];
let sameNameLeaf: Issued;
/** A leaf signed with RSASSA-PSS, SHA-256 with MGF1-SHA-512, under four same-name RSA intermediates. */
let mgfLeaf: X509Certificate;
let mgfIms: MemoryCA[];

const code = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
};
const spkiKey = (spki: Uint8Array) => createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
const pemOf = (...certs: { certPem: string }[]) => certs.map((c) => c.certPem.trim()).join('\n') + '\n';

beforeAll(async () => {
  modulus3072 = Buffer.from(generateKeyPairSync('rsa', { modulusLength: 3072 }).publicKey.export({ format: 'jwk' }).n!, 'base64url');
  ca = await MemoryCA.create(A, { sharedLeafKeys: true });
  caB = await MemoryCA.create(B, { sharedLeafKeys: true });
  set = new BundleSet();
  set.set(ca.bundle());
  set.set(caB.bundle());
  web = await ca.issue(WEB);
  // RSA-signing CAs, so OpenSSL sees each as a likely issuer of the (RSA-signed) leaf
  hugeIms = await Promise.all([1, 2, 3, 4].map(() => ca.intermediate({ keyType: 'RSA', subject: 'CN=same name', spki: rsaSpki(modulus3072, HUGE_E) })));
  hugeLeaf = await hugeIms[0]!.issue(WEB);
  sameName = await Promise.all([1, 2, 3, 4].map(() => ca.intermediate({ subject: 'CN=same name' })));
  sameNameLeaf = await sameName[3]!.issue(WEB);
  mgfIms = await Promise.all([1, 2, 3, 4].map(() => ca.intermediate({ keyType: 'RSA', subject: 'CN=pss same name' })));
  mgfLeaf = await pssMgf1Sha512Leaf('CN=pss same name');
}, 60_000);

/**
 * An SVID signed with RSASSA-PSS whose parameters name SHA-256 as the hash and SHA-512 as the
 * MGF1 hash: made with SHA-256 for both, then the second SHA-256 OID of each AlgorithmIdentifier
 * (inner and outer) rewritten (same length). Its signature no longer verifies; OpenSSL still
 * computes it in full.
 */
async function pssMgf1Sha512Leaf(issuer: string): Promise<X509Certificate> {
  const keys = (await webcrypto.subtle.generateKey({ name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const made = await x509.X509CertificateGenerator.create({
    subject: 'CN=pss leaf',
    issuer,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: { name: 'RSA-PSS', saltLength: 32 } as never,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 86_400_000),
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(KU.digitalSignature, true), new x509.SubjectAlternativeNameExtension([{ type: 'url', value: WEB }])],
  });
  const sha256 = Buffer.from('0609608648016503040201', 'hex');
  const sha512 = Buffer.from('0609608648016503040203', 'hex');
  const der = Buffer.from(made.rawData);
  let n = 0;
  for (let at = der.indexOf(sha256); at !== -1; at = der.indexOf(sha256, at + 1)) if (++n % 2 === 0) sha512.copy(der, at);
  expect(n).toBe(4);
  return new X509Certificate(der);
}

describe('RSA keys are bounded as Go bounds them', () => {
  it.each([
    ['e = 1', 1n, /public exponent is 1 \(minimum 3\)/],
    ['e = 2', 2n, /public exponent is 2 \(minimum 3\)/],
    ['an even e (65536)', 65536n, /public exponent is even/],
    ['e = 2^31 + 1', 2n ** 31n + 1n, /public exponent has 32 bits \(maximum 2\^31 - 1\)/],
    ['e = 2^64 + 1', 2n ** 64n + 1n, /public exponent has 65 bits/],
    ['a 3071-bit e', HUGE_E, /public exponent has 3071 bits/],
  ])('refuses %s (ERR_KEY_TOO_WEAK wherever a key enters)', (_n, e, why) => {
    expect(keyWeakness(spkiKey(rsaSpki(modulus3072, e)))).toMatch(why);
    // the same key as a JWK (JWT authorities, OIDC JWKS)
    let hex = e.toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    const jwk = createPublicKey({ key: { kty: 'RSA', n: modulus3072.toString('base64url'), e: Buffer.from(hex, 'hex').toString('base64url') }, format: 'jwk' });
    expect(keyWeakness(jwk)).toMatch(why);
  });

  it.each([
    ['e = 3', 3n],
    ['e = 65537', 65537n],
    ['e = 2^31 - 1', 2n ** 31n - 1n],
  ])('accepts %s', (_n, e) => {
    expect(keyWeakness(spkiKey(rsaSpki(modulus3072, e)))).toBeUndefined();
  });

  it('refuses a modulus over 8192 bits (Go crypto/tls bound)', () => {
    const n = Buffer.alloc(1040, 0xff); // 8320 bits, odd
    expect(keyWeakness(spkiKey(rsaSpki(n, 65537n)))).toMatch(/RSA key of 8320 bits \(maximum 8192\)/);
  });

  it('a huge-exponent intermediate in a presented chain is refused before any signature is checked', () => {
    const verify = vi.spyOn(X509Certificate.prototype, 'verify');
    expect(code(() => verifyX509Svid([hugeLeaf.cert, ...hugeIms.map((i) => i.cert)], set, SVID_LIMITS))).toBe('ERR_KEY_TOO_WEAK');
    expect(verify).not.toHaveBeenCalled();
  });

  it('a huge-exponent certificate in a bundle is left out, with a note (ERR_KEY_TOO_WEAK)', () => {
    const b = parseBundle(hugeIms[0]!.certPem + ca.certPem, TrustDomain.parse(A), BUNDLE_LIMITS);
    expect(b.x509Authorities).toHaveLength(1);
    expect(b.ignored.join()).toMatch(/public exponent has 3071 bits.*ERR_KEY_TOO_WEAK/);
  });

  it('a huge-exponent JWT authority in a SPIFFE bundle refuses every token, with a note (ERR_KEY_TOO_WEAK)', () => {
    let hex = HUGE_E.toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    const jwk = { use: 'jwt-svid', kid: 'huge', kty: 'RSA', n: modulus3072.toString('base64url'), e: Buffer.from(hex, 'hex').toString('base64url') };
    const b = parseSpiffeBundle(JSON.stringify({ keys: [jwk] }), TrustDomain.parse(A), BUNDLE_LIMITS);
    expect(b.ignored.join()).toMatch(/kid "huge"\): JWT authority refuses every token: its RSA key whose public exponent has 3071 bits .*ERR_KEY_TOO_WEAK/);
  });

  it('a huge-exponent configured intermediate is never used to build a path', () => {
    const s = new BundleSet();
    s.set(ca.bundle());
    s.setIntermediates(TrustDomain.parse(A), hugeIms.map((i) => i.cert));
    expect(code(() => verifyX509Svid([hugeLeaf.cert], s, SVID_LIMITS))).toBe('ERR_KEY_TOO_WEAK');
  });

  it('a huge-exponent leaf is refused (it would verify the token signature too)', async () => {
    const leaf = await ca.issue(WEB, { spki: rsaSpki(modulus3072, HUGE_E) });
    expect(code(() => verifyX509Svid([leaf.cert], set, SVID_LIMITS))).toBe('ERR_KEY_TOO_WEAK');
  });
});

describe('signature checks per path search are capped (limits.maxSignatureChecks)', () => {
  const chain = () => [sameNameLeaf.cert, ...sameName.map((i) => i.cert)];
  it('four same-name intermediates, the right one last: five checks; allowed under the default cap of 8', () => {
    expect(verifyX509Svid(chain(), set, SVID_LIMITS).id.value).toBe(WEB);
    expect(code(() => verifyX509Svid(chain(), set, { ...SVID_LIMITS, maxSignatureChecks: 5 }))).toBe('ok');
  });

  it.each([1, 2, 4])('with a cap of %i: ERR_SIGNATURE_LIMIT, whether the signatures were checked before or not', (cap) => {
    expect(code(() => verifyX509Svid(chain(), set, { ...SVID_LIMITS, maxSignatureChecks: cap }))).toBe('ERR_SIGNATURE_LIMIT');
    // deterministic: the same certificates, fresh objects (no cached signature) give the same verdict
    const fresh = chain().map((c) => new X509Certificate(c.raw));
    expect(code(() => verifyX509Svid(fresh, set, { ...SVID_LIMITS, maxSignatureChecks: cap }))).toBe('ERR_SIGNATURE_LIMIT');
  });

  it('same-name intermediates configured beside the bundle count too', () => {
    const s = new BundleSet();
    s.set(ca.bundle());
    s.setIntermediates(TrustDomain.parse(A), sameName.map((i) => i.cert));
    expect(code(() => verifyX509Svid([sameNameLeaf.cert], s, { ...SVID_LIMITS, maxSignatureChecks: 3 }))).toBe('ERR_SIGNATURE_LIMIT');
    expect(code(() => verifyX509Svid([sameNameLeaf.cert], s, SVID_LIMITS))).toBe('ok');
  });
});

describe('caches are keyed by the DER, not its spelling', () => {
  /** The same certificate spelled another way: line breaks, CRLF, URL-encoding, unused base64 bits. */
  function spellings(i: Issued): string[] {
    const body = i.der.toString('base64');
    const wrap = (b: string, n: number, nl = '\n') => `-----BEGIN CERTIFICATE-----${nl}${b.match(new RegExp(`.{1,${n}}`, 'g'))!.join(nl)}${nl}-----END CERTIFICATE-----${nl}`;
    const out = [wrap(body, 64), wrap(body, 76), wrap(body, 64, '\r\n'), `  ${wrap(body, 16)}  `, encodeURIComponent(wrap(body, 64))];
    out.push([...wrap(body, 64)].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''));
    // flip an unused bit of the last base64 character (when the DER length leaves some)
    const pad = body.endsWith('==') ? 2 : body.endsWith('=') ? 1 : 0;
    if (pad > 0) {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      const at = body.length - pad - 1;
      const flipped = body.slice(0, at) + alphabet[alphabet.indexOf(body[at]!) ^ 1]! + body.slice(at + 1);
      expect(Buffer.from(flipped, 'base64').equals(i.der)).toBe(true);
      out.push(wrap(flipped, 64));
    }
    return out;
  }

  it('peer certificates: every spelling is one verification and one parse', async () => {
    // find a certificate whose base64 has unused bits, so the flipped spelling is exercised too
    let leaf = web;
    while (leaf.der.length % 3 === 0) leaf = await ca.issue(WEB);
    const v = new X509SvidVerifier(set, VERIFIER_LIMITS);
    const all = spellings(leaf);
    expect(all.length).toBeGreaterThanOrEqual(7);
    for (const s of all) expect(v.verifyPem(s)).toMatchObject({ ok: true });
    expect([v.parses, v.certificateParses, v.hits]).toEqual([1, 1, all.length - 1]);
  });

  it('token x5c: non-canonical base64 is refused; the same chain under another header spelling is not parsed again', async () => {
    let leaf = web;
    while (leaf.der.length % 3 === 0) leaf = await ca.issue(WEB);
    const svid = loadX509Svid(Buffer.from(leaf.chainPem), Buffer.from(leaf.keyPem));
    const rules: TokenRules = ciRules({ audiences: new Set([`spiffe://${B}`]) });
    const v = new CommonIdentityVerifier(set, rules, ciOptions());
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: WEB, sub: 'alice', aud: `spiffe://${B}`, iat: now, exp: now + 60 };
    const good = leaf.der.toString('base64');
    const ctx = { now: Date.now(), peerId: WEB };
    expect(v.verify(mintCommonIdentity(svid, { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'alice', aud: `spiffe://${B}` }), ctx)).toMatchObject({ ok: true });
    const parses = v.certificateParses;
    // other header spellings (member order, extra members): new tokens, the same DER chain
    for (const header of [{ typ: 'ci+jwt', alg: 'ES256', x5c: [good] }, { alg: 'ES256', typ: 'ci+jwt', x5c: [good], kid: 'x' }, { x5c: [good], alg: 'ES256', typ: 'ci+jwt', z: 1 }])
      expect(v.verify(signCompact(header, claims, 'ES256', svid.key), ctx)).toMatchObject({ ok: true });
    expect(v.certificateParses).toBe(parses);
    // one unused bit flipped: the same DER, but not its one spelling
    const at = good.length - (good.endsWith('==') ? 3 : 2);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const flipped = good.slice(0, at) + alphabet[alphabet.indexOf(good[at]!) ^ 1]! + good.slice(at + 1);
    expect(v.verify(signCompact({ alg: 'ES256', typ: 'ci+jwt', x5c: [flipped] }, claims, 'ES256', svid.key), ctx)).toMatchObject({ ok: false, code: 'ERR_TOKEN_X5C' });
    expect(v.certificateParses).toBe(parses);
  });
});

describe('certificate signatures on the thread pool', () => {
  afterEach(() => vi.restoreAllMocks());

  it.each(['P-256', 'RSA', 'Ed25519'] as const)('%s: the same answers as X509Certificate.verify, genuine and tampered', async (keyType) => {
    const root = await MemoryCA.create(A, { keyType, sharedLeafKeys: true });
    const im = await root.intermediate();
    const leaf = await im.issue(WEB);
    const pairs: [X509Certificate, X509Certificate][] = [
      [leaf.cert, im.cert],
      [im.cert, root.cert],
      [tamperSignature(leaf.cert), im.cert],
      [leaf.cert, root.cert], // wrong issuer
      [leaf.cert, caB.cert], // another algorithm's key, for RSA and Ed25519
    ];
    for (const [child, issuer] of pairs) expect(await certificateSignatureAsync(child, issuer)).toBe(child.verify(issuer.publicKey));
  });

  it.each([
    ['SHA-256', 32],
    ['SHA-384', 48],
    ['SHA-256', 20],
  ] as const)('RSASSA-PSS with %s, salt %i: the same answer as X509Certificate.verify', async (hash, saltLength) => {
    // the CA signs RSA-PSS with SHA-256 and a 32-byte salt only; these parameters are made here
    const keys = (await webcrypto.subtle.generateKey({ name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const made = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=pss', keys, signingAlgorithm: { name: 'RSA-PSS', saltLength } as never, notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) });
    const cert = new X509Certificate(Buffer.from(made.rawData));
    for (const c of [cert, tamperSignature(cert)]) {
      const pending = certificateSignatureAsync(c, cert);
      expect(pending).toBeInstanceOf(Promise);
      expect(await pending).toBe(c.verify(cert.publicKey));
    }
  });

  it('RSASSA-PSS with an MGF1 hash other than its hash is refused before any signature check: none is left for the event loop', async () => {
    // it has no exact form on the thread pool; checked synchronously instead, every candidate
    // issuer (up to limits.maxSignatureChecks, each up to ≈ 1 ms with an 8192-bit key) cost event-loop time
    const chain = [mgfLeaf, ...mgfIms.map((i) => i.cert)];
    expect(signatureCheckable(mgfLeaf)).toBe(false);
    expect(certificateSignatureAsync(mgfLeaf, mgfIms[0]!.cert)).toBeUndefined();
    expect(prepareSignatures(chain, set, SVID_LIMITS)).toBeUndefined();
    const verify = vi.spyOn(X509Certificate.prototype, 'verify');
    expect(code(() => verifyX509Svid(chain, set, SVID_LIMITS))).toBe('ERR_SVID_SIGNATURE');
    expect(() => verifyX509Svid(chain, set, SVID_LIMITS)).toThrow(/RSASSA-PSS with SHA-256 parameters zonegate does not accept/);
    expect(verify).not.toHaveBeenCalled();
  });

  it('prepare() leaves nothing for the depth-first search: four same-name intermediates that issue each other in a cycle', async () => {
    // the first round goes breadth-first (the leaf's candidates, then the first intermediate's);
    // the search goes depth-first through valid signatures and asked for three more on the event loop
    const gen = () => webcrypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;
    const keys = await Promise.all([0, 1, 2, 3, 4].map(gen));
    const make = (i: number, by: number, ca: boolean) =>
      x509.X509CertificateGenerator.create({
        subject: ca ? 'CN=cycle' : 'CN=cycle leaf',
        issuer: 'CN=cycle',
        publicKey: keys[i]!.publicKey,
        signingKey: keys[by]!.privateKey,
        signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' },
        notBefore: new Date(Date.now() - 86_400_000),
        notAfter: new Date(Date.now() + 86_400_000),
        extensions: ca
          ? [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(KU.keyCertSign, true)]
          : [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(KU.digitalSignature, true), new x509.SubjectAlternativeNameExtension([{ type: 'url', value: WEB }])],
      });
    const made = [await make(4, 0, false), ...(await Promise.all([0, 1, 2, 3].map((i) => make(i, (i + 1) % 4, true))))];
    const chain = made.map((c) => new X509Certificate(Buffer.from(c.rawData)));
    await prepareSignatures(chain, set, SVID_LIMITS);
    const verify = vi.spyOn(X509Certificate.prototype, 'verify');
    expect(code(() => verifyX509Svid(chain, set, SVID_LIMITS))).toBe('ERR_SIGNATURE_LIMIT');
    expect(verify).not.toHaveBeenCalled();
  });

  it('a token refused by its claims as sent (another peer, expired) gets no preparation: no certificate parsed', async () => {
    const leaf = await ca.issue(WEB);
    const svid = loadX509Svid(Buffer.from(leaf.chainPem), Buffer.from(leaf.keyPem));
    const rules: TokenRules = ciRules({ audiences: new Set([`spiffe://${B}`]) });
    const v = new CommonIdentityVerifier(set, rules, ciOptions());
    const t = mintCommonIdentity(svid, { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'alice', aud: `spiffe://${B}` });
    expect(v.prepare(t, { now: Date.now(), peerId: `spiffe://${A}/someone-else` })).toBeUndefined();
    expect(v.prepare(t, { now: Date.now() + 3_600_000, peerId: WEB })).toBeUndefined();
    expect(v.certificateParses).toBe(0);
    await v.prepare(t, { now: Date.now(), peerId: WEB });
    expect(v.certificateParses).toBe(1);
    expect(v.verify(t, { now: Date.now(), peerId: WEB })).toMatchObject({ ok: true });
  });

  it('prepare() checks a new chain off the event loop: the verifyPem() that follows checks no signature itself', async () => {
    const im = await ca.intermediate();
    const leaf = await im.issue(WEB);
    const v = new X509SvidVerifier(set, VERIFIER_LIMITS);
    const received = encodeURIComponent(leaf.chainPem);
    const pending = v.prepare(received);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    const verify = vi.spyOn(X509Certificate.prototype, 'verify');
    expect(v.verifyPem(received)).toMatchObject({ ok: true });
    expect(verify).not.toHaveBeenCalled();
    // nothing left to prepare for a chain already verified, under any spelling
    expect(v.prepare(received)).toBeUndefined();
    expect(v.prepare(leaf.chainPem)).toBeUndefined();
  });
});

describe('through the real gRPC server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zg-keys-'));
  let s: Started;
  beforeAll(async () => {
    writeFileSync(join(dir, 'a.pem'), ca.certPem);
    s = await startWith(
      {
        trust: [{ trustDomain: A, bundle: 'a.pem' }],
        limits: { maxSignatureChecks: 4 },
        rules: [{ name: 'a', action: 'allow', from: { trustDomains: [A] } }],
      },
      dir,
    );
  });
  afterAll(async () => s?.close());
  const reason = async (pem: string) => {
    const r = await s.check(checkRequest({ certificate: encodeURIComponent(pem) }));
    if (!r.ok) throw r.error;
    const st = r.response.status as { code: number; message?: string };
    return st.code === 0 ? 'allow' : st.message;
  };

  it('a PSS leaf with a mismatched MGF1 hash and four same-name intermediates: ERR_SVID_SIGNATURE, no signature checked on the event loop', async () => {
    const verify = vi.spyOn(X509Certificate.prototype, 'verify');
    const pem = [mgfLeaf, ...mgfIms.map((i) => i.cert)].map((c) => c.toString().trim()).join('\n') + '\n';
    expect(await reason(pem)).toBe('ERR_SVID_SIGNATURE');
    expect(verify).not.toHaveBeenCalled();
    verify.mockRestore();
  });

  it('a leaf and four same-name huge-exponent intermediates: ERR_KEY_TOO_WEAK', async () => {
    expect(await reason(pemOf(hugeLeaf, ...hugeIms))).toBe('ERR_KEY_TOO_WEAK');
  });

  it('four same-name intermediates past limits.maxSignatureChecks: ERR_SIGNATURE_LIMIT; a plain chain is allowed', async () => {
    expect(await reason(pemOf(sameNameLeaf, ...sameName))).toBe('ERR_SIGNATURE_LIMIT');
    expect(await reason(web.chainPem)).toBe('allow');
  });
});
