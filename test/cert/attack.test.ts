/**
 * Certificate keys no key generator makes, certified by a real CA (src/demo/pki.ts, its `spki`
 * option), each with its exact verdict: the curve and EdDSA type certinfo.ts reads from the
 * subjectPublicKeyInfo must be what node:crypto says of the same key (a fresh certificate object,
 * whose key nothing has described yet), for the encodings OpenSSL decodes (compressed and hybrid
 * points, explicit parameters, a BIT STRING with unused bits) and the ones it refuses (a point of
 * another curve, trailing bytes, an OID with one more arc, an RSA key under the EC OID). The point
 * at infinity, which OpenSSL decodes and node:crypto aborts the process on (asymmetricKeyDetails,
 * a JWK export) or crashes on (an IEEE P1363 signature check), is refused on every curve before
 * anything reads it.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Bundle, usableAuthorities } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { certInfo } from '../../src/cert/certinfo.js';
import { keyFacts, keyWeakness } from '../../src/cert/strength.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { keyFits, type Algorithm } from '../../src/identity/jws.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { verifyX509Svid } from '../../src/svid/x509.js';
import { SVID_LIMITS } from '../helpers/limits.js';
import { ecSpki, rawSpki } from '../helpers/x509.js';

const A = 'zone-a.test';
const ID = `spiffe://${A}/ns/web/sa/frontend`;
const hex = (s: string) => Buffer.from(s, 'hex');
const CURVE = {
  'P-256': hex('06082a8648ce3d030107'),
  'P-384': hex('06052b81040022'),
  'P-521': hex('06052b81040023'),
  secp256k1: hex('06052b8104000a'),
  brainpoolP256r1: hex('06092b2403030208010107'),
};
const ED25519 = hex('06032b6570');
const ED448 = hex('06032b6571');
const INFINITY = Buffer.from([0]);
const AT_INFINITY = 'EC key that is no point of its curve (the point at infinity)';
const explicit = (curve: string) => execFileSync('openssl', ['ecparam', '-name', curve, '-param_enc', 'explicit', '-outform', 'DER']);
/** The key bytes of a subjectPublicKeyInfo (after the unused-bits byte). */
const keyBytes = (k: KeyObject) => {
  const der = k.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - (k.asymmetricKeyType === 'ec' ? { prime256v1: 65, secp384r1: 97, secp521r1: 133, secp256k1: 65 }[k.asymmetricKeyDetails!.namedCurve!]! : k.asymmetricKeyType === 'ed25519' ? 32 : 57));
};
const ec = (c: string) => keyBytes(generateKeyPairSync('ec', { namedCurve: c }).publicKey);

let ca: MemoryCA;
let set: BundleSet;
beforeAll(async () => {
  ca = await MemoryCA.create(A);
  set = new BundleSet();
  set.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [ca.cert] }));
});
const certified = async (spki: Uint8Array, isCa = false) => (await ca.issue(ID, { spki, isCa })).cert;
/** A copy nothing has read: node:crypto describes its key. */
const fresh = (c: X509Certificate) => new X509Certificate(c.raw);
const FITS: Algorithm[] = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'];
const fitting = (k: KeyObject) => FITS.filter((a) => keyFits(a, k));
const chainVerdict = (c: X509Certificate) => {
  try {
    return `ok ${verifyX509Svid([c], set, { ...SVID_LIMITS, now: Date.now() }).id.value}`;
  } catch (err) {
    return `${(err as { code?: string }).code} ${(err as Error).message}`;
  }
};

describe('the point at infinity: refused on every curve, before node:crypto reads it', () => {
  it.each([
    ['P-256', () => CURVE['P-256']],
    ['P-384', () => CURVE['P-384']],
    ['P-521', () => CURVE['P-521']],
    ['secp256k1', () => CURVE.secp256k1],
    ['brainpoolP256r1', () => CURVE.brainpoolP256r1],
    ['explicit P-256 parameters', () => explicit('prime256v1')],
    ['explicit secp256k1 parameters', () => explicit('secp256k1')],
  ])('%s: ERR_KEY_TOO_WEAK, no key fits any algorithm, no JWK export', async (_n, params) => {
    const leaf = await certified(ecSpki(params(), INFINITY));
    expect(leaf.publicKey.asymmetricKeyType).toBe('ec'); // OpenSSL decoded it
    expect(certInfo(leaf).weakKey).toBe(AT_INFINITY);
    expect(keyWeakness(fresh(leaf).publicKey)).toBe(AT_INFINITY);
    expect(keyFacts(leaf.publicKey)).toEqual({ type: 'ec', unusable: true });
    expect(fitting(leaf.publicKey)).toEqual([]);
    expect(chainVerdict(leaf)).toBe(`ERR_KEY_TOO_WEAK x509svid: leaf certificate has a ${AT_INFINITY}`);
    // as a bundle authority (parsed from a PEM file or a federated bundle): left out, no abort
    const authority = await certified(ecSpki(params(), INFINITY), true);
    expect(usableAuthorities([authority], () => 'a.pem').ignored).toEqual([`a.pem: X.509 authority ignored: its ${AT_INFINITY} is too weak (ERR_KEY_TOO_WEAK)`]);
  });
});

describe('EdDSA keys of small order: refused, on a certificate and as a bare key', () => {
  // Ed25519: libsodium's blocklist (orders 1, 2, 4, 8, and non-canonical spellings); Ed448: orders 1, 2, 4
  const p448 = 2n ** 448n - 2n ** 224n - 1n;
  const le = (n: bigint, len: number) => Buffer.from(n.toString(16).padStart(len * 2, '0'), 'hex').reverse();
  const ED25519_SMALL = [
    '00'.repeat(32),
    `01${'00'.repeat(31)}`,
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2cc9ccc64ec7fd7792ac037a',
    `ec${'ff'.repeat(30)}7f`, // p - 1
    `01${'00'.repeat(30)}80`, // the identity with the sign bit set
  ];
  const ED448_SMALL = [`${'00'.repeat(57)}`, `01${'00'.repeat(56)}`, `${le(p448 - 1n, 56).toString('hex')}00`, `${'00'.repeat(56)}80`];
  const SMALL = (t: string) => `${t} key that is a point of small order (one signature verifies for every message)`;
  const cases = [...ED25519_SMALL.map((h) => ['Ed25519', ED25519, h] as const), ...ED448_SMALL.map((h) => ['Ed448', ED448, h] as const)];

  it.each(cases)('%s %s…: ERR_KEY_TOO_WEAK', async (type, oid, h) => {
    let leaf: X509Certificate;
    try {
      leaf = await certified(rawSpki(oid, hex(h)));
    } catch {
      return expect(h).toMatch(/^(ee|ed)/); // OpenSSL refuses to decode it: nothing to refuse here
    }
    expect(keyWeakness(fresh(leaf).publicKey)).toBe(SMALL(type));
    expect(certInfo(leaf).weakKey).toBe(SMALL(type));
    expect(chainVerdict(leaf)).toBe(`ERR_KEY_TOO_WEAK x509svid: leaf certificate has a ${SMALL(type)}`);
  });

  it('keys from a key generator are not of small order', () => {
    for (let i = 0; i < 20; i++) {
      expect(keyWeakness(generateKeyPairSync('ed25519').publicKey)).toBeUndefined();
      expect(keyWeakness(generateKeyPairSync('ed448').publicKey)).toBeUndefined();
    }
  });
});

describe('key facts read from the DER are node:crypto\'s, for every encoding OpenSSL decodes', () => {
  /** [case, subjectPublicKeyInfo, weakKey, algorithms the key fits] */
  const cases: [string, () => Uint8Array, string | undefined, Algorithm[]][] = [
    ['P-256, uncompressed', () => ecSpki(CURVE['P-256'], ec('P-256')), undefined, ['ES256']],
    ['P-256, compressed', () => { const p = ec('P-256'); return ecSpki(CURVE['P-256'], Buffer.concat([Buffer.from([2 | (p[64]! & 1)]), p.subarray(1, 33)])); }, undefined, ['ES256']],
    ['P-256, hybrid', () => { const p = ec('P-256'); return ecSpki(CURVE['P-256'], Buffer.concat([Buffer.from([6 | (p[64]! & 1)]), p.subarray(1)])); }, undefined, ['ES256']],
    ['P-256, explicit parameters', () => ecSpki(explicit('prime256v1'), ec('P-256')), undefined, ['ES256']],
    ['P-384', () => ecSpki(CURVE['P-384'], ec('P-384')), undefined, ['ES384']],
    ['P-521', () => ecSpki(CURVE['P-521'], ec('P-521')), undefined, []],
    ['secp256k1', () => ecSpki(CURVE.secp256k1, ec('secp256k1')), 'EC key on curve secp256k1 (allowed: P-256, P-384, P-521)', []],
    ['secp256k1, explicit parameters', () => ecSpki(explicit('secp256k1'), ec('secp256k1')), 'EC key on curve secp256k1 (allowed: P-256, P-384, P-521)', []],
    ['Ed25519', () => rawSpki(ED25519, keyBytes(generateKeyPairSync('ed25519').publicKey)), undefined, ['EdDSA']],
    ['Ed25519, 3 unused bits declared', () => rawSpki(ED25519, keyBytes(generateKeyPairSync('ed25519').publicKey), 3), undefined, ['EdDSA']],
    ['Ed448', () => rawSpki(ED448, keyBytes(generateKeyPairSync('ed448').publicKey)), undefined, []],
  ];
  it.each(cases)('%s', async (_n, spki, weak, fits) => {
    const leaf = await certified(spki());
    const nodeView = fresh(leaf).publicKey;
    expect(certInfo(leaf).weakKey).toBe(weak);
    expect(keyWeakness(nodeView)).toBe(weak);
    expect(fitting(leaf.publicKey)).toEqual(fits);
    expect(fitting(nodeView)).toEqual(fits);
    if (leaf.publicKey.asymmetricKeyType === 'ec') expect(keyFacts(leaf.publicKey).namedCurve).toBe(nodeView.asymmetricKeyDetails?.namedCurve);
    expect(chainVerdict(leaf)).toBe(weak ? `ERR_KEY_TOO_WEAK x509svid: leaf certificate has a ${weak}` : `ok ${ID}`);
  });

  it.each([
    ['the P-256 OID with a P-384 point', () => ecSpki(CURVE['P-256'], ec('P-384'))],
    ['the P-384 OID with a P-256 point', () => ecSpki(CURVE['P-384'], ec('P-256'))],
    ['the P-256 OID with a secp256k1 point', () => ecSpki(CURVE['P-256'], ec('secp256k1'))],
    ['a P-256 point and a trailing byte', () => ecSpki(CURVE['P-256'], Buffer.concat([ec('P-256'), INFINITY]))],
    ['the P-256 OID with one more arc', () => ecSpki(hex('06092a8648ce3d03010701'), ec('P-256'))],
    ['id-ecPublicKey with NULL parameters', () => ecSpki(hex('0500'), ec('P-256'))],
    ['Ed448 bytes under the Ed25519 OID', () => rawSpki(ED25519, keyBytes(generateKeyPairSync('ed448').publicKey))],
    ['Ed25519 bytes under the Ed448 OID', () => rawSpki(ED448, keyBytes(generateKeyPairSync('ed25519').publicKey))],
    ['Ed25519 with NULL parameters', () => rawSpki(Buffer.concat([ED25519, hex('0500')]), keyBytes(generateKeyPairSync('ed25519').publicKey))],
  ])('%s: a key node:crypto cannot decode, ERR_SVID_MALFORMED', async (_n, spki) => {
    const leaf = await certified(spki());
    expect(() => fresh(leaf).publicKey).toThrow(/decode error/);
    expect(() => certInfo(leaf)).toThrow(/decode error/);
    expect(chainVerdict(leaf)).toMatch(/^ERR_SVID_MALFORMED x509svid: leaf certificate cannot be parsed: .*decode error/);
  });
});
