/**
 * Through the real gRPC server: a Check whose peer certificate fails verification is denied with
 * the specific reason; trust material (bundles, intermediates) comes from config files.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { selfSignedSvid, MemoryCA } from '../../src/demo/pki.js';

const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'zg-peer-'));
let s: Started;
let a: MemoryCA;
let b: MemoryCA;
let viaIntermediate: string;
let weakIm: MemoryCA;
let weakRoot: MemoryCA;
let strongRoot: MemoryCA;

beforeAll(async () => {
  a = await MemoryCA.create('zone-a.test');
  b = await MemoryCA.create('zone-b.test');
  const revoked = await MemoryCA.create('revoked.test');
  const im = await a.intermediate();
  viaIntermediate = (await im.issue('spiffe://zone-a.test/via-im')).certPem;
  writeFileSync(join(dir, 'a.pem'), a.certPem);
  writeFileSync(join(dir, 'a-intermediates.pem'), im.certPem);
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'EC', crv: 'P-256', x5c: [b.cert.raw.toString('base64')] }], spiffe_sequence: 1 }));
  writeFileSync(join(dir, 'revoked.json'), JSON.stringify({ keys: [] }));
  void revoked;
  // keys zonegate refuses, generated for real: a 1024-bit RSA intermediate, and a
  // bundle file holding a 1024-bit RSA root beside a good one (the weak root is ignored, logged)
  weakIm = await a.intermediate({ keyType: 'RSA-1024' });
  weakRoot = await MemoryCA.create('weak.test', { keyType: 'RSA-1024' });
  strongRoot = await MemoryCA.create('weak.test');
  writeFileSync(join(dir, 'weak.pem'), weakRoot.certPem + strongRoot.certPem);
  s = await startWith(
    {
      trust: [
        { trustDomain: 'zone-a.test', bundle: 'a.pem', intermediates: 'a-intermediates.pem' },
        { trustDomain: 'zone-b.test', bundle: 'b.json' },
        { trustDomain: 'revoked.test', bundle: 'revoked.json' },
        { trustDomain: 'weak.test', bundle: 'weak.pem' },
      ],
      rules: [{ name: 'verified', action: 'allow', from: { trustDomains: ['zone-a.test', 'zone-b.test', 'revoked.test', 'weak.test'] } }],
    },
    dir,
  );
});
afterAll(async () => s?.close());

async function reason(certPem: string): Promise<string> {
  const r = await s.check(checkRequest({ certificate: encodeURIComponent(certPem) }));
  if (!r.ok) throw r.error;
  const st = r.response.status as { code: number; message?: string };
  return st.code === 0 ? 'allow' : `${st.code} ${st.message}`;
}

describe('peer certificate reasons over gRPC', () => {
  it('allows SVIDs of both trust domains (PEM and SPIFFE-bundle files), and a leaf completed by configured intermediates', async () => {
    expect(await reason((await a.issue('spiffe://zone-a.test/web')).certPem)).toBe('allow');
    expect(await reason((await b.issue('spiffe://zone-b.test/api')).certPem)).toBe('allow');
    expect(await reason(viaIntermediate)).toBe('allow');
  });

  it.each([
    ['a CA of A vouching for B', async () => (await a.issue('spiffe://zone-b.test/api')).certPem, '16 ERR_SVID_UNTRUSTED'],
    ['an expired leaf', async () => (await a.issue('spiffe://zone-a.test/old', { notBefore: new Date(Date.now() - 9 * DAY), notAfter: new Date(Date.now() - 3600_000) })).certPem, '16 ERR_SVID_EXPIRED'],
    ['a not-yet-valid leaf', async () => (await a.issue('spiffe://zone-a.test/new', { notBefore: new Date(Date.now() + 3600_000) })).certPem, '16 ERR_SVID_NOT_YET_VALID'],
    ['a self-signed leaf', async () => (await selfSignedSvid('spiffe://zone-a.test/web')).certPem, '16 ERR_SVID_UNTRUSTED'],
    ['an unknown trust domain', async () => (await (await MemoryCA.create('zone-x.test')).issue('spiffe://zone-x.test/w')).certPem, '16 ERR_TRUST_DOMAIN_UNKNOWN'],
    ['a revoked trust domain', async () => (await (await MemoryCA.create('revoked.test')).issue('spiffe://revoked.test/w')).certPem, '16 ERR_TRUST_DOMAIN_REVOKED'],
    ['a CA certificate as the leaf', async () => (await a.issue('spiffe://zone-a.test/ca', { isCa: true })).certPem, '16 ERR_SVID_LEAF_CONSTRAINTS'],
    ['a leaf without a SPIFFE ID', async () => (await a.issue(undefined, { dns: ['web.test'] })).certPem, '16 ERR_SVID_NO_SPIFFE_ID'],
    ['garbage', async () => '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', '16 ERR_SVID_MALFORMED'],
  ])('denies %s', async (_n, make, want) => {
    expect(await reason(await make())).toBe(want);
  });

  it.each([
    ['a leaf with a 1024-bit RSA key', async () => (await a.issue('spiffe://zone-a.test/weak', { keyType: 'RSA-1024' })).certPem],
    ['a leaf with a key on secp256k1', async () => (await a.issue('spiffe://zone-a.test/k1', { keyType: 'secp256k1' })).certPem],
    ['a leaf under a 1024-bit RSA intermediate it sends along', async () => (await weakIm.issue('spiffe://zone-a.test/under-weak', { keyType: 'P-256' })).chainPem],
  ])('denies %s with ERR_KEY_TOO_WEAK', async (_n, make) => {
    expect(await reason(await make())).toBe('16 ERR_KEY_TOO_WEAK');
  });

  it('a weak root in a bundle file is left out with a log line; the good root beside it keeps working', async () => {
    expect(await reason((await strongRoot.issue('spiffe://weak.test/ok')).certPem)).toBe('allow');
    expect(await reason((await weakRoot.issue('spiffe://weak.test/no', { keyType: 'P-256' })).certPem)).toBe('16 ERR_SVID_UNTRUSTED');
    const line = s.logs.find((l) => String(l.msg ?? '').includes('ERR_KEY_TOO_WEAK') || JSON.stringify(l).includes('ERR_KEY_TOO_WEAK'));
    expect(JSON.stringify(line)).toMatch(/weak\.test.*RSA key of 1024 bits.*ERR_KEY_TOO_WEAK/);
  });

  it('a certificate larger than the limit is denied before parsing', async () => {
    expect(await reason(`-----BEGIN CERTIFICATE-----\n${'A'.repeat(100_000)}\n-----END CERTIFICATE-----\n`)).toBe('16 ERR_SVID_TOO_LARGE');
  });
});
