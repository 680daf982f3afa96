/**
 * Key strength: which keys zonegate accepts, with keys generated for real (node:crypto), and the
 * verifier paths that refuse the others — including a weak root a bundle source handed over
 * without going through a bundle parser.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { Bundle, parseBundle, parseSpiffeBundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { keyFacts, keyWeakness } from '../../src/cert/strength.js';
import { certInfo } from '../../src/cert/certinfo.js';
import { ALGORITHMS, JWT_SVID_ALGORITHMS, keyFits } from '../../src/identity/jws.js';
import { verifyX509Svid } from '../../src/svid/x509.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { BUNDLE_LIMITS, SVID_LIMITS } from '../helpers/limits.js';

const TD = TrustDomain.parse('zone-a.test');
let weakRoot: MemoryCA;

beforeAll(async () => {
  weakRoot = await MemoryCA.create('zone-a.test', { keyType: 'RSA-1024' });
});

const code = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
};

describe('keyWeakness', () => {
  it.each([
    ['RSA 1024', () => generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey, /RSA key of 1024 bits \(minimum 2048\)/],
    ['RSA 2047', () => generateKeyPairSync('rsa', { modulusLength: 2047 }).publicKey, /RSA key of 2047 bits/],
    ['RSA-PSS 1024', () => generateKeyPairSync('rsa-pss', { modulusLength: 1024 }).publicKey, /RSA-PSS key of 1024 bits/],
    ['EC secp256k1', () => generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey, /curve secp256k1/],
    ['EC brainpoolP256r1', () => generateKeyPairSync('ec', { namedCurve: 'brainpoolP256r1' }).publicKey, /curve brainpoolP256r1/],
    ['EC P-224', () => generateKeyPairSync('ec', { namedCurve: 'secp224r1' }).publicKey, /curve secp224r1/],
    ['DSA', () => generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }).publicKey, /dsa key/],
  ])('refuses %s', (_n, make, why) => {
    expect(keyWeakness(make())).toMatch(why);
  });

  it.each([
    ['RSA 2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey],
    ['RSA-PSS 2048', () => generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey],
    ['P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey],
    ['P-384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey],
    ['P-521', () => generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey],
    ['Ed25519', () => generateKeyPairSync('ed25519').publicKey],
    ['Ed448', () => generateKeyPairSync('ed448').publicKey],
  ])('accepts %s', (_n, make) => {
    expect(keyWeakness(make())).toBeUndefined();
  });
});

describe('weak roots', () => {
  it('a bundle parser leaves a 1024-bit RSA root out, with a note naming the reason (PEM, DER and SPIFFE JSON)', () => {
    const pem = parseBundle(weakRoot.certPem, TD, BUNDLE_LIMITS);
    const der = parseBundle(weakRoot.cert.raw, TD, BUNDLE_LIMITS);
    const json = parseSpiffeBundle(JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'RSA', x5c: [weakRoot.cert.raw.toString('base64')] }] }), TD, BUNDLE_LIMITS);
    for (const b of [pem, der, json]) {
      expect(b.x509Authorities).toHaveLength(0);
      expect(b.ignored.join()).toMatch(/X\.509 authority ignored: its RSA key of 1024 bits .* is too weak \(ERR_KEY_TOO_WEAK\)/);
    }
  });

  it('a weak root that reaches the verifier anyway is never a trust anchor: ERR_KEY_TOO_WEAK', async () => {
    const set = new BundleSet();
    set.set(new Bundle(TD, { x509Authorities: [weakRoot.cert] }));
    const leaf = await weakRoot.issue('spiffe://zone-a.test/web', { keyType: 'P-256' });
    expect(code(() => verifyX509Svid([leaf.cert], set, SVID_LIMITS))).toBe('ERR_KEY_TOO_WEAK');
  });

  it('a configured intermediate with a weak key is not used to build a path', async () => {
    const root = await MemoryCA.create('zone-a.test');
    const im = await root.intermediate({ keyType: 'RSA-1024' });
    const set = new BundleSet();
    set.set(new Bundle(TD, { x509Authorities: [root.cert] }));
    set.setIntermediates(TD, [im.cert]);
    const leaf = await im.issue('spiffe://zone-a.test/web', { keyType: 'P-256' });
    expect(code(() => verifyX509Svid([leaf.cert], set, SVID_LIMITS))).toBe('ERR_KEY_TOO_WEAK');
  });
});

describe("a certificate's key facts from its own DER", () => {
  // the facts keyWeakness and keyFits read, once from the subjectPublicKeyInfo (certInfo) and once
  // from node:crypto's asymmetricKeyDetails on another object of the same certificate
  const ALGS = [...ALGORITHMS, ...JWT_SVID_ALGORITHMS];
  it.each(['P-256', 'P-384', 'Ed25519', 'RSA', 'RSA-PSS', 'RSA-1024', 'secp256k1'] as const)('%s: the same facts, the same weakness, the same algorithms', async (keyType) => {
    const ca = await MemoryCA.create('zone-a.test');
    const leaf = await ca.issue('spiffe://zone-a.test/web', { keyType });
    const fromDer = new X509Certificate(leaf.der);
    const info = certInfo(fromDer);
    const native = new X509Certificate(leaf.der).publicKey;
    const d = native.asymmetricKeyDetails ?? {};
    const { type, namedCurve, modulusLength, publicExponent } = keyFacts(fromDer.publicKey);
    expect({ type, namedCurve, modulusLength, publicExponent }).toEqual({ type: native.asymmetricKeyType, namedCurve: d.namedCurve, modulusLength: d.modulusLength, publicExponent: d.publicExponent });
    expect(info.weakKey).toBe(keyWeakness(native));
    expect(ALGS.map((a) => keyFits(a, fromDer.publicKey))).toEqual(ALGS.map((a) => keyFits(a, native)));
  });

  it("a P-256 leaf is checked and matched to ES256 without node:crypto's key details (≈ 35 µs on Node 20)", async () => {
    const ca = await MemoryCA.create('zone-a.test');
    const leaf = new X509Certificate((await ca.issue('spiffe://zone-a.test/web', { keyType: 'P-256' })).der);
    const details = vi.spyOn(Object.getPrototypeOf(Object.getPrototypeOf(leaf.publicKey)) as object, 'asymmetricKeyDetails' as never, 'get');
    try {
      expect(certInfo(leaf).weakKey).toBeUndefined();
      expect([keyFits('ES256', leaf.publicKey), keyFits('ES384', leaf.publicKey), keyFits('RS256', leaf.publicKey)]).toEqual([true, false, false]);
      expect(details).not.toHaveBeenCalled();
      void new X509Certificate(leaf.raw).publicKey.asymmetricKeyDetails; // the spy does see a read
      expect(details).toHaveBeenCalled();
    } finally {
      details.mockRestore();
    }
  });
});
