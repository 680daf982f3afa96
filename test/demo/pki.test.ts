/**
 * The in-memory CA the demo and the tests make certificates with: what it issues chains to what
 * it says, with the key types, extensions and validity windows asked for, and nothing else.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryCA, selfSignedSvid, type KeyType } from '../../src/demo/pki.js';

const TD = 'zone-a.test';
const ID = `spiffe://${TD}/ns/shop/sa/web`;
const DAY = 86_400_000;
/** Whether the certificate carries the extension id-ce-N (2.5.29.N): node prints only some of them. */
const hasExt = (c: X509Certificate, n: number) => c.raw.includes(Buffer.from([0x06, 0x03, 0x55, 0x1d, n]));
const pems = (text: string) => text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p));

describe('MemoryCA', () => {
  it.each<[KeyType, string]>([
    ['P-256', 'ec'],
    ['P-384', 'ec'],
    ['Ed25519', 'ed25519'],
    ['RSA', 'rsa'],
    ['RSA-PSS', 'rsa'], // WebCrypto writes an RSA-PSS key as rsaEncryption; the CA signs with RSASSA-PSS
    ['RSA-1024', 'rsa'],
  ])('a %s root signs an intermediate that signs a leaf: each verifies against its issuer', async (keyType, asymmetric) => {
    const root = await MemoryCA.create(TD, { keyType });
    const im = await root.intermediate();
    const leaf = await im.issue(ID);
    expect(root.cert.publicKey.asymmetricKeyType).toBe(asymmetric);
    expect(leaf.cert.publicKey.asymmetricKeyType).toBe(asymmetric); // leaves take their CA's key type
    expect(root.cert.verify(root.cert.publicKey)).toBe(true);
    expect(im.cert.checkIssued(root.cert) && im.cert.verify(root.cert.publicKey)).toBe(true);
    expect(leaf.cert.checkIssued(im.cert) && leaf.cert.verify(im.cert.publicKey)).toBe(true);
    expect(leaf.cert.verify(root.cert.publicKey)).toBe(false);
    if (keyType === 'RSA-1024') expect(leaf.cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(1024);
    // the key in keyPem is the certificate's
    expect(createPrivateKey(leaf.keyPem).asymmetricKeyType).toBe(asymmetric);
  });

  it('an X509-SVID: the ID as its only URI SAN, a leaf with digitalSignature, its chain without the root', async () => {
    const root = await MemoryCA.create(TD);
    const im = await root.intermediate();
    const s = await im.issue(ID);
    expect(s.spiffeId).toBe(ID);
    expect(s.cert.subjectAltName).toBe(`URI:${ID}`);
    expect(s.cert.ca).toBe(false);
    expect(s.cert.keyUsage).toBeUndefined(); // node reports only extendedKeyUsage there
    expect(pems(s.chainPem).map((c) => c.fingerprint256)).toEqual([s.cert.fingerprint256, im.cert.fingerprint256]);
    expect(s.der.equals(s.cert.raw)).toBe(true);
    expect(root.bundle().x509Authorities.map((c) => c.fingerprint256)).toEqual([root.cert.fingerprint256]);
    expect(im.bundle().x509Authorities.map((c) => c.fingerprint256)).toEqual([root.cert.fingerprint256]);
    expect(im.root).toBe(root);
  });

  it('the shapes the options ask for: no ID, extra URIs, DNS and IP names, a leaf that is a CA, no basicConstraints', async () => {
    const ca = await MemoryCA.create(TD, { uri: null });
    expect(ca.cert.subjectAltName).toBeUndefined();
    expect((await ca.issue(undefined, { dns: ['web.test'] })).cert.subjectAltName).toBe('DNS:web.test');
    expect((await ca.issue(ID, { extraUris: ['spiffe://zone-a.test/two'] })).cert.subjectAltName).toBe(`URI:${ID}, URI:spiffe://zone-a.test/two`);
    expect((await ca.server()).cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect((await ca.issue(ID, { isCa: true })).cert.ca).toBe(true);
    const leaf = (await ca.issue(ID)).cert;
    expect([hasExt(leaf, 19), hasExt(leaf, 15)]).toEqual([true, true]); // basicConstraints, keyUsage
    const bare = (await ca.issue(ID, { noBasicConstraints: true, keyUsage: null })).cert;
    expect([hasExt(bare, 19), hasExt(bare, 15)]).toEqual([false, false]);
    expect((await ca.issue(ID, { subject: 'O=x, CN=named' })).cert.subject).toBe('O=x\nCN=named');
  });

  it('extended key usages by name; key identifiers that link a leaf to its CA', async () => {
    const ca = await MemoryCA.create(TD, { keyIdentifiers: true });
    const s = await ca.issue(ID, { extKeyUsage: ['serverAuth', 'clientAuth'] });
    expect(s.cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    // the root's subjectKeyIdentifier (OID, OCTET STRING { OCTET STRING of 20 bytes }) is in the leaf's authorityKeyIdentifier
    const at = ca.cert.raw.indexOf(Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0e, 0x04, 0x16, 0x04, 0x14]));
    expect(at).toBeGreaterThan(0);
    const keyId = ca.cert.raw.subarray(at + 9, at + 29);
    expect(hasExt(s.cert, 35)).toBe(true);
    expect(s.cert.raw.includes(keyId)).toBe(true);
    const plain = await (await MemoryCA.create(TD)).issue(ID);
    expect(plain.cert.keyUsage).toBeUndefined();
    expect([hasExt(plain.cert, 14), hasExt(plain.cert, 35)]).toEqual([false, false]);
  });

  it('validity: around the time of issue by default, around `at` when given, or as asked', async () => {
    const before = Date.now();
    const s = await (await MemoryCA.create(TD)).issue(ID);
    expect(Date.parse(s.cert.validFrom)).toBeLessThanOrEqual(before - DAY + 1000);
    expect(Date.parse(s.cert.validTo)).toBeGreaterThanOrEqual(before + 30 * DAY - 1000);
    const at = Date.parse('2031-05-01T12:00:00Z');
    const pinned = await MemoryCA.create(TD, { at });
    expect(Date.parse(pinned.cert.validFrom)).toBe(at - 10 * DAY);
    expect(Date.parse((await (await pinned.intermediate()).issue(ID)).cert.validTo)).toBe(at + 30 * DAY);
    const asked = await pinned.issue(ID, { notBefore: new Date(at), notAfter: new Date(at + 60_000) });
    expect([Date.parse(asked.cert.validFrom), Date.parse(asked.cert.validTo)]).toEqual([at, at + 60_000]);
  });

  it('fresh leaf keys unless the CA shares them; CA keys are never shared', async () => {
    const spki = (c: X509Certificate) => c.publicKey.export({ type: 'spki', format: 'der' }).toString('hex');
    const own = await MemoryCA.create(TD);
    expect(spki((await own.issue(ID)).cert)).not.toBe(spki((await own.issue(ID)).cert));
    const a = await MemoryCA.create(TD, { sharedLeafKeys: true });
    const b = await MemoryCA.create('zone-b.test', { sharedLeafKeys: true });
    expect(spki((await a.issue(ID)).cert)).toBe(spki((await (await b.intermediate()).issue('spiffe://zone-b.test/x')).cert));
    expect(spki(a.cert)).not.toBe(spki(b.cert));
  });

  it('a secp256k1 leaf (a key zonegate refuses) comes with its key as PEM only; no CA signs with one', async () => {
    const ca = await MemoryCA.create(TD);
    const s = await ca.issue(ID, { keyType: 'secp256k1' });
    expect(s.cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp256k1');
    expect(createPrivateKey(s.keyPem).asymmetricKeyDetails?.namedCurve).toBe('secp256k1');
    await expect(MemoryCA.create(TD, { keyType: 'secp256k1' })).rejects.toThrow(/secp256k1 key cannot sign/);
  });

  it('selfSignedSvid: a leaf issued by itself', async () => {
    const s = await selfSignedSvid(ID);
    expect(s.cert.issuer).toBe(s.cert.subject);
    expect(s.cert.verify(s.cert.publicKey)).toBe(true);
    expect(s.cert.ca).toBe(false);
    expect(s.cert.subjectAltName).toBe(`URI:${ID}`);
  });
});
