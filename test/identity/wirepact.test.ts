/**
 * The WirePact profile: zonegate reads tokens as WirePact's translators write them (RS256, x5c =
 * [translator cert, CA], x5t = base64 SHA-256 of the translator cert, aud WirePact) with full
 * verification, and emits them at egress so a WirePact translator downstream accepts them.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, createPrivateKey, generateKeyPairSync, sign, webcrypto, X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyWirePact } from '../../src/identity/wirepact.js';
import { parseCertificates } from '../../src/cert/parse.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { KU, MemoryCA, type Issued } from '../../src/demo/pki.js';
import { wpRules } from '../helpers/identity.js';

let pki: MemoryCA;
let translator: Issued;
let ingressZg: Started;
let egressZg: Started;
let peer: string;
let dir: string;
const now = () => Math.floor(Date.now() / 1000);

/** A token built by hand the way WirePact's Go translator builds it. */
function wirepactToken(o: { claims?: object; x5c?: string[]; x5t?: string; key?: ReturnType<typeof createPrivateKey>; alg?: string } = {}): string {
  const header = {
    alg: o.alg ?? 'RS256',
    typ: 'JWT',
    x5c: o.x5c ?? [translator.cert.raw.toString('base64'), pki.cert.raw.toString('base64')],
    x5t: o.x5t ?? createHash('sha256').update(translator.cert.raw).digest('base64'),
  };
  const claims = { sub: 'user-123', iss: 'wirepact-translator', aud: ['WirePact'], iat: now(), exp: now() + 60, ...o.claims };
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), o.key ?? createPrivateKey(translator.keyPem)).toString('base64url')}`;
}

/** A token signed with `t`'s key, with x5c [t, WirePact CA] and x5t naming t. */
const signedBy = (t: Issued) => wirepactToken({ x5c: [t.cert.raw.toString('base64'), pki.cert.raw.toString('base64')], x5t: createHash('sha256').update(t.cert.raw).digest('base64'), key: createPrivateKey(t.keyPem) });

beforeAll(async () => {
  pki = await MemoryCA.create('wirepact.invalid', { subject: 'O=WirePact PKI, CN=WirePact PKI CA' });
  translator = await pki.issue(undefined, { keyType: 'RSA', subject: 'O=WirePact PKI, CN=translator' });
  const zone = await MemoryCA.create('zone-b.test');
  dir = mkdtempSync(join(tmpdir(), 'zg-wirepact-'));
  writeFileSync(join(dir, 'wirepact-ca.pem'), pki.certPem);
  writeFileSync(join(dir, 'translator.pem'), translator.certPem + pki.certPem);
  writeFileSync(join(dir, 'translator.key'), translator.keyPem);
  writeFileSync(join(dir, 'zone.pem'), zone.certPem);
  const svid = await zone.issue('spiffe://zone-b.test/app');
  writeFileSync(join(dir, 'svid.pem'), svid.chainPem);
  writeFileSync(join(dir, 'svid.key'), svid.keyPem);
  peer = encodeURIComponent(svid.certPem);
  const base = { identity: { cert: 'svid.pem', key: 'svid.key' }, trust: [{ trustDomain: 'zone-b.test', bundle: 'zone.pem' }] };
  ingressZg = await startWith(
    { ...base, commonIdentity: { wirepact: { ca: 'wirepact-ca.pem', issuers: ['wirepact-translator'] } }, rules: [{ name: 'users', action: 'allow', from: { actors: [{ prefix: 'user-' }] } }] },
    dir,
  );
  egressZg = await startWith(
    {
      ...base,
      commonIdentity: { egress: { defaultAudience: 'spiffe://zone-c.test' }, wirepact: { ca: 'wirepact-ca.pem', emit: { cert: 'translator.pem', key: 'translator.key', issuer: 'wirepact-translator' } } },
      rules: [{ name: 'out', action: 'allow', to: { context: { direction: 'egress' } } }],
    },
    dir,
  );
});
afterAll(async () => {
  await ingressZg?.close();
  await egressZg?.close();
});

async function ingress(token: string) {
  const r = await ingressZg.check(checkRequest({ certificate: peer, headers: { 'x-wirepact-identity': token } }));
  if (!r.ok) throw r.error;
  const st = r.response.status as { code: number; message?: string };
  if (st.code !== 0) return st.message;
  const ok = r.response.ok_response as { headers: { header: { key: string; value: string } }[]; headers_to_remove: string[] };
  expect(ok.headers_to_remove).toContain('x-wirepact-identity');
  return ok.headers.find((h) => h.header.key === 'x-zonegate-actor')?.header.value;
}

describe('WirePact profile', () => {
  it('accepts a token as a WirePact translator writes it; the user becomes the actor', async () => {
    expect(await ingress(wirepactToken())).toBe('user-123');
  });

  it.each([
    ['a signature by a key other than the x5c certificate', () => {
      const k = generateKeyPairSync('rsa', { modulusLength: 2048 });
      return wirepactToken({ key: k.privateKey });
    }, 'ERR_TOKEN_SIGNATURE'],
    ['x5c that does not lead to the WirePact CA', async () => {
      const other = await MemoryCA.create('other.invalid', { subject: 'O=WirePact PKI, CN=WirePact PKI CA' });
      const t = await other.issue(undefined, { keyType: 'RSA', subject: 'O=WirePact PKI, CN=translator' });
      return wirepactToken({ x5c: [t.cert.raw.toString('base64'), other.cert.raw.toString('base64')], x5t: createHash('sha256').update(t.cert.raw).digest('base64'), key: createPrivateKey(t.keyPem) });
    }, 'ERR_TOKEN_CHAIN'],
    ['a translator certificate with a 1024-bit RSA key, issued by the WirePact CA', async () => {
      const weak = await pki.issue(undefined, { keyType: 'RSA-1024', subject: 'O=WirePact PKI, CN=weak translator' });
      return wirepactToken({ x5c: [weak.cert.raw.toString('base64'), pki.cert.raw.toString('base64')], x5t: createHash('sha256').update(weak.cert.raw).digest('base64'), key: createPrivateKey(weak.keyPem) });
    }, 'ERR_KEY_TOO_WEAK'],
    ['a translator certificate that is a CA (basicConstraints CA:true), issued by the WirePact CA', async () => signedBy(await pki.issue(undefined, { keyType: 'RSA', isCa: true, keyUsage: KU.digitalSignature | KU.keyCertSign, subject: 'O=WirePact PKI, CN=CA translator' })), 'ERR_TOKEN_CHAIN'],
    ['a translator certificate whose key usage lacks digitalSignature, issued by the WirePact CA', async () => signedBy(await pki.issue(undefined, { keyType: 'RSA', keyUsage: KU.keyEncipherment, subject: 'O=WirePact PKI, CN=encipher-only translator' })), 'ERR_TOKEN_CHAIN'],
    ['a translator certificate without a key usage extension, issued by the WirePact CA', async () => signedBy(await pki.issue(undefined, { keyType: 'RSA', keyUsage: null, subject: 'O=WirePact PKI, CN=no-ku translator' })), 'ERR_TOKEN_CHAIN'],
    ['an x5t that names another certificate', () => wirepactToken({ x5t: 'AAAA' }), 'ERR_TOKEN_X5C'],
    ['another audience', () => wirepactToken({ claims: { aud: ['Other'] } }), 'ERR_TOKEN_AUDIENCE'],
    ['an unknown issuer', () => wirepactToken({ claims: { iss: 'someone-else' } }), 'ERR_TOKEN_ISSUER_MISMATCH'],
    ['expired', () => wirepactToken({ claims: { iat: now() - 600, exp: now() - 300 } }), 'ERR_TOKEN_EXPIRED'],
    ['alg none', () => wirepactToken({ alg: 'none' }), 'ERR_TOKEN_ALG'],
    ['no iat and an exp ten years away', () => wirepactToken({ claims: { iat: undefined, exp: now() + 10 * 365 * 86_400 } }), 'ERR_TOKEN_LIFETIME'],
    ['an iat and an exp ten years away', () => wirepactToken({ claims: { exp: now() + 10 * 365 * 86_400 } }), 'ERR_TOKEN_LIFETIME'],
    ['a sub with CR LF', () => wirepactToken({ claims: { sub: 'user-1\r\nx-zonegate-actor: admin' } }), 'ERR_TOKEN_CLAIMS'],
    ['a sub with a TAB', () => wirepactToken({ claims: { sub: 'user-1\tadmin' } }), 'ERR_TOKEN_CLAIMS'],
  ])('refuses %s', async (_n, make, reason) => {
    expect(await ingress(await make())).toBe(reason);
  });

  it('the signing certificate keeps to the X509-SVID leaf rules: the reason names the rule', async () => {
    const ca = await pki.issue(undefined, { keyType: 'RSA', isCa: true, keyUsage: KU.digitalSignature | KU.keyCertSign, subject: 'O=WirePact PKI, CN=CA translator' });
    expect(verifyWirePact(signedBy(ca), wpRules([pki.cert]), Date.now())).toMatchObject({ ok: false, code: 'ERR_TOKEN_CHAIN', message: expect.stringContaining('ERR_SVID_LEAF_CONSTRAINTS: x509svid: leaf certificate must not have CA flag') });
    const noSig = await pki.issue(undefined, { keyType: 'RSA', keyUsage: KU.keyEncipherment, subject: 'O=WirePact PKI, CN=encipher-only translator' });
    expect(verifyWirePact(signedBy(noSig), wpRules([pki.cert]), Date.now())).toMatchObject({ ok: false, code: 'ERR_TOKEN_CHAIN', message: expect.stringContaining("'digitalSignature'") });
  });

  it('a translator certificate for emit that WirePact verification would refuse (a CA) does not load', async () => {
    const ca = await pki.issue(undefined, { keyType: 'RSA', isCa: true, keyUsage: KU.digitalSignature | KU.keyCertSign, subject: 'O=WirePact PKI, CN=CA translator' });
    writeFileSync(join(dir, 'ca-translator.pem'), ca.certPem + pki.certPem);
    writeFileSync(join(dir, 'ca-translator.key'), ca.keyPem);
    const config = {
      identity: { cert: 'svid.pem', key: 'svid.key' },
      trust: [{ trustDomain: 'zone-b.test', bundle: 'zone.pem' }],
      commonIdentity: { egress: { defaultAudience: 'spiffe://zone-c.test' }, wirepact: { ca: 'wirepact-ca.pem', emit: { cert: 'ca-translator.pem', key: 'ca-translator.key', issuer: 'wirepact-translator' } } },
      rules: [{ name: 'out', action: 'allow', to: { context: { direction: 'egress' } } }],
    };
    await expect(startWith(config, dir).then((s) => s.close())).rejects.toThrow(/commonIdentity\.wirepact\.emit\.cert: x509svid: leaf certificate must not have CA flag/);
  });

  it('emits a WirePact token at egress that the WirePact verification accepts', async () => {
    const r = await egressZg.check(checkRequest({ context: { direction: 'egress' } }));
    if (!r.ok) throw r.error;
    const headers = Object.fromEntries((r.response.ok_response as { headers: { header: { key: string; value: string } }[] }).headers.map((h) => [h.header.key, h.header.value]));
    const token = headers['x-wirepact-identity']!;
    expect(headers['x-common-identity']).toBeDefined();
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString());
    expect(header).toMatchObject({ alg: 'RS256', typ: 'JWT', x5t: createHash('sha256').update(translator.cert.raw).digest('base64') });
    expect(header.x5c).toHaveLength(2);
    const v = verifyWirePact(token, wpRules(parseCertificates(pki.certPem), ['wirepact-translator']), Date.now());
    expect(v).toEqual({ ok: true, sub: 'spiffe://zone-b.test/app', iss: 'wirepact-translator' });
  });
});

describe('WirePact x5c: bounded work', () => {
  /**
   * Certificates that all share one name and one key: each "issues" every other one. With
   * `keyCertSign` the CAs may sign certificates, so the path search has to try them.
   */
  async function sameNameSameKey(n: number, keyCertSign: boolean): Promise<string[]> {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
    const kp = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const mk = (ca: boolean, i: number) =>
      x509.X509CertificateGenerator.create({
        serialNumber: (i + 1).toString(16).padStart(2, '0'),
        subject: 'CN=loop',
        issuer: 'CN=loop',
        publicKey: kp.publicKey,
        signingKey: kp.privateKey,
        notBefore: new Date(Date.now() - 86_400_000),
        notAfter: new Date(Date.now() + 86_400_000),
        signingAlgorithm: alg,
        // the leaf is a signing certificate the leaf rules accept (digitalSignature), so the path search is what is tested
        extensions: [
          new x509.BasicConstraintsExtension(ca, undefined, true),
          ...(ca && keyCertSign ? [new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)] : []),
          ...(ca ? [] : [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)]),
        ],
      });
    const certs = [await mk(false, 999), ...(await Promise.all(Array.from({ length: n - 1 }, (_, i) => mk(true, i))))];
    return certs.map((c) => Buffer.from(c.rawData).toString('base64'));
  }
  const rules = () => wpRules([pki.cert]);
  const unsigned = (x5c: string[]) =>
    `${Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'a', aud: ['WirePact'], exp: now() + 60 })).toString('base64url')}.AAAA`;

  it('a chain of certificates that all issue each other costs at most limits.maxSignatureChecks signature checks: ERR_SIGNATURE_LIMIT', async () => {
    const spy = vi.spyOn(X509Certificate.prototype, 'verify');
    try {
      const r = verifyWirePact(unsigned(await sameNameSameKey(5, true)), rules(), Date.now());
      expect(r).toMatchObject({ ok: false, code: 'ERR_SIGNATURE_LIMIT' });
      expect(spy.mock.calls.length).toBeGreaterThan(0);
      expect(spy.mock.calls.length).toBeLessThanOrEqual(rules().maxSignatureChecks);
    } finally {
      spy.mockRestore();
    }
  });

  it('presented CA certificates that may not sign certificates are refused before any signature check: ERR_TOKEN_CHAIN', async () => {
    const spy = vi.spyOn(X509Certificate.prototype, 'verify');
    try {
      const r = verifyWirePact(unsigned(await sameNameSameKey(5, false)), rules(), Date.now());
      expect(r).toMatchObject({ ok: false, code: 'ERR_TOKEN_CHAIN', message: expect.stringContaining('keyCertSign') });
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  it('more x5c entries than the chain length limit, or two certificates in one entry, are refused before any signature check', async () => {
    const spy = vi.spyOn(X509Certificate.prototype, 'verify');
    try {
      const many = await sameNameSameKey(12, true);
      expect(verifyWirePact(unsigned(many), rules(), Date.now())).toMatchObject({ ok: false, code: 'ERR_TOKEN_X5C_TOO_LARGE' });
      const joined = Buffer.concat([translator.cert.raw, pki.cert.raw]).toString('base64');
      expect(verifyWirePact(unsigned([joined]), rules(), Date.now())).toMatchObject({ ok: false, code: 'ERR_TOKEN_X5C' });
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});
