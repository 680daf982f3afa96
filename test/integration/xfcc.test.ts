/** peer.source: xfcc — the identity comes from a (proxy-sanitized) XFCC header and is verified like a peer certificate. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';

const pem = (n: string) => readFileSync(join(EXAMPLES_DIR, 'certs', `${n}.svid.pem`), 'utf8');
const xfcc = (cert: string, extra = '') => `By=spiffe://zone-a.example/ns/shop/sa/api;Hash=00;Cert="${encodeURIComponent(cert)}"${extra}`;

let s: Started;
beforeAll(async () => {
  s = await startWith({
    peer: { source: 'xfcc' },
    trust: [
      { trustDomain: 'zone-a.example', bundle: 'certs/zone-a.root.pem' },
      { trustDomain: 'zone-b.example', bundle: 'certs/zone-b.root.pem' },
    ],
    rules: [{ name: 'any-verified', action: 'allow', from: { trustDomains: ['zone-a.example', 'zone-b.example'] } }],
  });
});
afterAll(async () => s?.close());

const verdict = async (headers: Record<string, string>, certificate?: string) => {
  const r = await s.check(checkRequest({ headers, ...(certificate ? { certificate } : {}) }));
  if (!r.ok) throw r.error;
  const st = r.response.status as { code: number; message?: string };
  return st.code === 0 ? 'allow' : st.message;
};

describe('XFCC peer source', () => {
  it('verifies the Cert of the last element (the nearest proxy) against its own trust domain', async () => {
    expect(await verdict({ 'x-forwarded-client-cert': xfcc(pem('frontend')) })).toBe('allow');
    expect(await verdict({ 'x-forwarded-client-cert': `${xfcc(pem('forged'))},${xfcc(pem('billing'))}` })).toBe('allow');
    expect(await verdict({ 'x-forwarded-client-cert': `${xfcc(pem('billing'))},${xfcc(pem('forged'))}` })).toBe('ERR_SVID_UNTRUSTED');
  });

  it('accepts a Chain that repeats the leaf', async () => {
    const h = xfcc(pem('frontend'), `;Chain="${encodeURIComponent(pem('frontend'))}"`);
    expect(await verdict({ 'x-forwarded-client-cert': h })).toBe('allow');
  });

  it('a URI field must name the verified certificate\'s SPIFFE ID', async () => {
    expect(await verdict({ 'x-forwarded-client-cert': xfcc(pem('frontend'), ';URI=spiffe://zone-a.example/ns/shop/sa/frontend') })).toBe('allow');
    expect(await verdict({ 'x-forwarded-client-cert': xfcc(pem('frontend'), ';URI=spiffe://zone-a.example/ns/shop/sa/billing') })).toBe('ERR_XFCC_MISMATCH');
    expect(await verdict({ 'x-forwarded-client-cert': xfcc(pem('frontend'), ';URI=spiffe://zone-a.example/ns/shop/sa/frontend;URI=spiffe://x.test/y') })).toBe('ERR_XFCC_MISMATCH');
  });

  it('a Chain that holds Cert after another certificate cannot make that one the leaf', async () => {
    const h = xfcc(pem('frontend'), `;Chain="${encodeURIComponent(pem('billing') + pem('frontend'))}"`);
    expect(await verdict({ 'x-forwarded-client-cert': h })).toBe('ERR_XFCC_MISMATCH');
  });

  it.each([
    ['no header', {}, 'ERR_NO_IDENTITY'],
    ['unparseable header', { 'x-forwarded-client-cert': 'nonsense' }, 'ERR_XFCC_MALFORMED'],
    ['no Cert field', { 'x-forwarded-client-cert': 'By=spiffe://a.test/x;URI=spiffe://zone-a.example/ns/shop/sa/frontend' }, 'ERR_XFCC_MALFORMED'],
    ['a URI field alone is never trusted', { 'x-forwarded-client-cert': 'Hash=1;URI=spiffe://zone-a.example/ns/shop/sa/frontend' }, 'ERR_XFCC_MALFORMED'],
    ['Cert that does not decode', { 'x-forwarded-client-cert': 'Cert="%25%25"' }, 'ERR_PEER_CERT_MALFORMED'],
    ['Cert that is not a certificate', { 'x-forwarded-client-cert': 'Cert="hello"' }, 'ERR_SVID_MALFORMED'],
  ])('denies %s', async (_n, headers, reason) => {
    expect(await verdict(headers as Record<string, string>)).toBe(reason);
  });

  it('ignores source.certificate in xfcc mode (one configured source, no fallback)', async () => {
    expect(await verdict({}, encodeURIComponent(pem('frontend')))).toBe('ERR_NO_IDENTITY');
  });
});
