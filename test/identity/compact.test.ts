/**
 * The one front end (src/identity/compact.ts): every token profile — common identity, OIDC bearer
 * JWT, JWT-SVID, WirePact — refuses the same header and the same times with the same reason,
 * because they all go through one parse step and one set of time checks. Tokens are built by hand
 * (base64url and node:crypto), each signed with the key its profile trusts, so every refusal
 * below is the rule under test and not a bad signature.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { parseCompact } from '../../src/identity/compact.js';
import { NOT_BEARER_TYPS, verifyJwt } from '../../src/identity/jwt.js';
import { verifyJwtSvid } from '../../src/identity/jwtsvid.js';
import { CommonIdentityVerifier } from '../../src/identity/verify.js';
import { verifyWirePact } from '../../src/identity/wirepact.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { ciOptions, ciRules, wpRules } from '../helpers/identity.js';

const A = 'zone-a.test';
const B = 'zone-b.test';
const ME = `spiffe://${A}/ns/web/sa/frontend`;
const NOW = Date.now();
const now = Math.floor(NOW / 1000);

type Profile = 'common identity' | 'OIDC bearer JWT' | 'JWT-SVID' | 'WirePact';
const PROFILES: Profile[] = ['common identity', 'OIDC bearer JWT', 'JWT-SVID', 'WirePact'];

let set: BundleSet;
let svid: Issued;
let svidKey: KeyObject;
let wpCa: MemoryCA;
let translator: Issued;
let translatorKey: KeyObject;
const jwtKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** JSON with numbers JSON.stringify cannot write: "+INF" becomes 1e999 (which JSON.parse reads as Infinity). */
const json = (o: unknown) => JSON.stringify(o).replaceAll('"+INF"', '1e999').replaceAll('"-INF"', '-1e999');
const b64 = (s: string) => Buffer.from(s).toString('base64url');

/** What each profile accepts as it is, and the key that signs it. */
function base(p: Profile): { header: Record<string, unknown>; claims: Record<string, unknown>; key: KeyObject } {
  switch (p) {
    case 'common identity':
      return { header: { alg: 'ES256', typ: 'ci+jwt', x5c: [svid.cert.raw.toString('base64')] }, claims: { iss: ME, sub: 'alice', aud: `spiffe://${B}`, iat: now, exp: now + 60 }, key: svidKey };
    case 'OIDC bearer JWT':
      return { header: { alg: 'ES256', typ: 'JWT', kid: 'k1' }, claims: { iss: 'https://idp.test', sub: 'alice', aud: 'zonegate', iat: now, exp: now + 60 }, key: jwtKey.privateKey };
    case 'JWT-SVID':
      return { header: { alg: 'ES256', typ: 'JWT', kid: 'k1' }, claims: { sub: `spiffe://${A}/api`, aud: `spiffe://${B}`, exp: now + 60 }, key: jwtKey.privateKey };
    case 'WirePact':
      return {
        header: { alg: 'RS256', typ: 'JWT', x5c: [translator.cert.raw.toString('base64'), wpCa.cert.raw.toString('base64')], x5t: createHash('sha256').update(translator.cert.raw).digest('base64') },
        claims: { sub: 'user-1', iss: 'wp', aud: ['WirePact'], iat: now, exp: now + 60 },
        key: translatorKey,
      };
  }
}

/** A compact JWS of `header` and `claims` signed by `key` (ES256 or RS256, as the key is). */
function signed(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject): string {
  for (const o of [header, claims]) for (const [k, v] of Object.entries(o)) if (v === undefined) delete o[k];
  const input = `${b64(json(header))}.${b64(json(claims))}`;
  const rsa = key.asymmetricKeyType === 'rsa';
  return `${input}.${sign('sha256', Buffer.from(input), rsa ? key : { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

/** A token of profile `p` with header and claims changed, signed by the key the profile trusts. */
function token(p: Profile, header: Record<string, unknown> = {}, claims: Record<string, unknown> = {}): string {
  const b = base(p);
  return signed({ ...b.header, ...header }, { ...b.claims, ...claims }, b.key);
}

/** The profile's verdict on `t`: 'ok' or the reason code. */
function verdict(p: Profile, t: string): string {
  const r =
    p === 'common identity'
      ? new CommonIdentityVerifier(set, ciRules({ audiences: new Set([`spiffe://${B}`]) }), ciOptions()).verify(t, { now: NOW, peerId: ME })
      : p === 'OIDC bearer JWT'
        ? verifyJwt(t, (kid) => (kid === 'k1' ? { key: jwtKey.publicKey } : undefined), { algorithms: new Set(['ES256', 'RS256'] as const), maxBytes: 16 * 1024, skewSeconds: 30, issuers: new Set(['https://idp.test']), audiences: new Set(['zonegate']), refusedTyps: NOT_BEARER_TYPS }, NOW)
        : p === 'JWT-SVID'
          ? verifyJwtSvid(t, set, { audiences: new Set([`spiffe://${B}`]), skewSeconds: 30, maxBytes: 16 * 1024 }, NOW)
          : verifyWirePact(t, wpRules([wpCa.cert], ['wp']), NOW);
  return r.ok ? 'ok' : r.code;
}

beforeAll(async () => {
  const caA = await MemoryCA.create(A);
  svid = await caA.issue(ME);
  svidKey = createPrivateKey(svid.keyPem);
  set = new BundleSet();
  set.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caA.cert], jwtAuthorities: [{ kid: 'k1', key: jwtKey.publicKey, jwk: jwtKey.publicKey.export({ format: 'jwk' }) }] }));
  wpCa = await MemoryCA.create('wirepact.invalid', { subject: 'O=WirePact PKI, CN=WirePact PKI CA' });
  translator = await wpCa.issue(undefined, { keyType: 'RSA', subject: 'O=WirePact PKI, CN=translator' });
  translatorKey = createPrivateKey(translator.keyPem);
});

describe.each(PROFILES)('%s', (p) => {
  it('accepts the token as its issuer writes it', () => {
    expect(verdict(p, token(p))).toBe('ok');
  });

  it.each([
    ['alg none', { alg: 'none' }, 'ERR_TOKEN_ALG'],
    ['alg HS256', { alg: 'HS256' }, 'ERR_TOKEN_ALG'],
    ['no alg', { alg: undefined }, 'ERR_TOKEN_ALG'],
    ['jku', { jku: 'https://attacker.test/keys' }, 'ERR_TOKEN_KEY_URL'],
    ['x5u', { x5u: 'https://attacker.test/cert' }, 'ERR_TOKEN_KEY_URL'],
    ['an embedded jwk', { jwk: { kty: 'EC' } }, 'ERR_TOKEN_KEY_URL'],
    ['crit naming an extension', { crit: ['exp'] }, 'ERR_TOKEN_CRIT'],
    ['crit with b64: false (RFC 7797)', { crit: ['b64'], b64: false }, 'ERR_TOKEN_CRIT'],
    ['an empty crit', { crit: [] }, 'ERR_TOKEN_CRIT'],
  ])('header: %s → %s', (_n, header, want) => {
    expect(verdict(p, token(p, header))).toBe(want);
  });

  it('b64: false without crit changes nothing: the signature covers the encoded payload (as RFC 7797 §6 and jose read it)', () => {
    expect(verdict(p, token(p, { b64: false }))).toBe('ok');
  });

  it.each([
    ['exp passed beyond the skew', { exp: now - 31 }, 'ERR_TOKEN_EXPIRED'],
    ['exp far in the past (no Date can hold it)', { exp: -1e20 }, 'ERR_TOKEN_EXPIRED'],
    ['exp 1e999 (Infinity: never expires)', { exp: '+INF' }, 'ERR_TOKEN_CLAIMS'],
    ['exp a string', { exp: String(now + 60) }, 'ERR_TOKEN_CLAIMS'],
    ['no exp', { exp: undefined }, 'ERR_TOKEN_CLAIMS'],
    ['nbf beyond the skew', { nbf: now + 31 }, 'ERR_TOKEN_NOT_YET_VALID'],
    ['nbf a string', { nbf: String(now) }, 'ERR_TOKEN_CLAIMS'],
    ['nbf null', { nbf: null }, 'ERR_TOKEN_CLAIMS'],
    ['iat beyond the skew', { iat: now + 31 }, 'ERR_TOKEN_NOT_YET_VALID'],
    ['iat -1e999', { iat: '-INF' }, 'ERR_TOKEN_CLAIMS'],
  ])('time: %s → %s', (_n, claims, want) => {
    expect(verdict(p, token(p, {}, claims))).toBe(want);
  });

  it.each([
    ['exp passed within the skew', { exp: now - 29 }],
    ['nbf and iat within the skew', { nbf: now + 29, iat: now + 29 }],
  ])('time: %s is accepted', (_n, claims) => {
    expect(verdict(p, token(p, {}, claims))).toBe('ok');
  });

  it('a token of four parts, a header that is not JSON, and one over the size limit are refused', () => {
    const t = token(p);
    expect(verdict(p, `${t}.x`)).toBe('ERR_TOKEN_MALFORMED');
    expect(verdict(p, `${b64('{"alg":')}.${t.split('.').slice(1).join('.')}`)).toBe('ERR_TOKEN_MALFORMED');
    expect(verdict(p, token(p, {}, { pad: 'x'.repeat(17 * 1024) }))).toBe('ERR_TOKEN_TOO_LARGE');
  });
});

describe('when the payload and signature parts are decoded', () => {
  it('bearer profiles decode all three parts first; the common identity judges the header before the payload', () => {
    for (const p of ['OIDC bearer JWT', 'JWT-SVID', 'WirePact'] as const) {
      const [h, , s] = token(p, { alg: 'none' }).split('.');
      expect(verdict(p, `${h}.@@.${s}`)).toBe('ERR_TOKEN_MALFORMED');
    }
    const [h, , s] = token('common identity', { alg: 'none' }).split('.');
    expect(verdict('common identity', `${h}.@@.${s}`)).toBe('ERR_TOKEN_ALG');
  });

  it('a signature part that is not base64url: malformed for bearer profiles, a signature that does not verify for the common identity', () => {
    for (const p of ['OIDC bearer JWT', 'JWT-SVID', 'WirePact'] as const) expect(verdict(p, token(p).replace(/\.[^.]*$/, '.A=A'))).toBe('ERR_TOKEN_MALFORMED');
    expect(verdict('common identity', token('common identity').replace(/\.[^.]*$/, '.A=A'))).toBe('ERR_TOKEN_SIGNATURE');
  });

  it('parseCompact refuses with the profile name in the message and the reason as the code', () => {
    const rules = { name: 'demo', maxBytes: 1024, algorithms: new Set(['ES256'] as const), decode: 'first' } as const;
    expect(() => parseCompact(token('JWT-SVID', { alg: 'none' }), rules)).toThrow(expect.objectContaining({ code: 'ERR_TOKEN_ALG', message: expect.stringMatching(/^demo: alg "none"/) }));
    expect(parseCompact(token('JWT-SVID'), rules)).toMatchObject({ alg: 'ES256', kid: '', x5c: [], claims: { sub: `spiffe://${A}/api` } });
  });
});

describe('WirePact x5c through the X509-SVID path validation', () => {
  it('an x5c certificate whose base64 is not canonical (its padding left out) is refused', async () => {
    let t = translator;
    while (t.cert.raw.length % 3 === 0) t = await wpCa.issue(undefined, { keyType: 'RSA', subject: 'O=WirePact PKI, CN=translator' });
    const make = (leaf: string) => signed({ alg: 'RS256', typ: 'JWT', x5c: [leaf, wpCa.cert.raw.toString('base64')] }, base('WirePact').claims, createPrivateKey(t.keyPem));
    const b64der = t.cert.raw.toString('base64');
    expect(verdict('WirePact', make(b64der))).toBe('ok');
    expect(verdict('WirePact', make(b64der.replace(/=+$/, '')))).toBe('ERR_TOKEN_X5C');
  });

  it('a CA whose keyUsage does not allow certificate signing signs nothing: ERR_TOKEN_CHAIN', async () => {
    const ca = await MemoryCA.create('wirepact2.invalid', { subject: 'CN=WirePact PKI CA 2', keyUsage: x509.KeyUsageFlags.digitalSignature });
    const tr = await ca.issue(undefined, { keyType: 'RSA', subject: 'CN=translator 2' });
    const claims = base('WirePact').claims;
    const t = signed({ alg: 'RS256', typ: 'JWT', x5c: [tr.cert.raw.toString('base64')] }, claims, createPrivateKey(tr.keyPem));
    expect(verifyWirePact(t, wpRules([ca.cert], ['wp']), NOW)).toMatchObject({ ok: false, code: 'ERR_TOKEN_CHAIN', message: expect.stringContaining('keyCertSign') });
    // the same token is accepted when its CA may sign certificates
    const good = await MemoryCA.create('wirepact3.invalid', { subject: 'CN=WirePact PKI CA 3' });
    const tr3 = await good.issue(undefined, { keyType: 'RSA', subject: 'CN=translator 3' });
    const t3 = signed({ alg: 'RS256', typ: 'JWT', x5c: [tr3.cert.raw.toString('base64')] }, claims, createPrivateKey(tr3.keyPem));
    expect(verifyWirePact(t3, wpRules([good.cert], ['wp']), NOW)).toMatchObject({ ok: true });
  });
});
