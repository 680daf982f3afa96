/**
 * The JWS front end (compact.ts) under inputs its profiles were not written for, each with its
 * exact verdict: duplicate and prototype-named JSON members, numbers JSON can spell but a
 * NumericDate cannot be, non-canonical base64, signatures in the wrong form, algorithms that do
 * not fit the key, x5c chains that repeat, wander into another trust domain or sign for another
 * iss, a cnf zonegate cannot check; then the verification cache (a token accepted once and
 * presented where it must fail, a transient failure that must not stick), and prepare() giving
 * the same verdicts as verify() alone. The WirePact and OIDC profiles get their own confusions.
 * Last, the carried token as Envoy can send it to the real server: joined repeats, raw header_map
 * bytes that are not UTF-8, and no token body in any log line.
 */
import { createHash, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { parseCertificates } from '../../src/cert/parse.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { verifyJwt, type JwtRules } from '../../src/identity/jwt.js';
import { CommonIdentityVerifier } from '../../src/identity/verify.js';
import { verifyWirePact } from '../../src/identity/wirepact.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { ciOptions, ciRules, wpRules } from '../helpers/identity.js';
import { ecSpki } from '../helpers/x509.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';

const A = 'zone-a.test';
const B = 'zone-b.test';
const ME = `spiffe://${A}/ns/web/sa/frontend`;
const NOW = Date.now();
const now = Math.floor(NOW / 1000);
let caA: MemoryCA;
let caB: MemoryCA;
let set: BundleSet;
let me: Issued;
let meB: Issued;
let rsa: Issued;
let key: KeyObject;

const b64 = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
type Alg = 'ES256' | 'RS256' | 'PS256';
/** header and claims (objects, or JSON text as sent), signed by `signer` the way `how` says. */
function forge(h: object | string, c: object | string, signer: KeyObject = key, how: Alg = 'ES256'): string {
  const input = `${b64(h)}.${b64(c)}`;
  const data = Buffer.from(input);
  const s =
    how === 'ES256'
      ? sign('sha256', data, { key: signer, dsaEncoding: 'ieee-p1363' })
      : how === 'PS256'
        ? sign('sha256', data, { key: signer, padding: 6, saltLength: 32 })
        : sign('sha256', data, signer);
  return `${input}.${s.toString('base64url')}`;
}
const x5c = (i: Issued) => [i.cert.raw.toString('base64')];
const H = (e: object = {}) => ({ alg: 'ES256', typ: 'ci+jwt', x5c: x5c(me), ...e });
const C = (e: object = {}) => ({ iss: ME, sub: 'alice', aud: `spiffe://${A}`, iat: now, exp: now + 60, ...e });
const json = (o: object) => JSON.stringify(o).slice(1, -1);
/** Replaces the signature part. */
const withSig = (t: string, f: (sig: Buffer, part: string) => string) => {
  const [h, p, s] = t.split('.') as [string, string, string];
  return `${h}.${p}.${f(Buffer.from(s, 'base64url'), s)}`;
};
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

beforeAll(async () => {
  caA = await MemoryCA.create(A);
  caB = await MemoryCA.create(B);
  set = new BundleSet();
  set.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caA.cert] }));
  set.set(new Bundle(TrustDomain.parse(B), { x509Authorities: [caB.cert] }));
  me = await caA.issue(ME);
  meB = await caB.issue(`spiffe://${B}/x`);
  rsa = await caA.issue(`spiffe://${A}/rsa`, { keyType: 'RSA' });
  key = createPrivateKey(me.keyPem);
});

const rules = () => ciRules({ audiences: new Set([`spiffe://${A}`]) });
const thumbprint = (i: Issued) => createHash('sha256').update(i.cert.raw).digest('base64url');

/** [name, token, expected code or 'ok', the mTLS peer (default ME)] */
type Case = readonly [string, () => string, string, string?];
const cases: Case[] = [
  ['the control', () => forge(H(), C()), 'ok'],
  // JSON: the last of two equal members counts (RFC 7515 §4), so "none" last is what is read
  ['"alg":"ES256" then "alg":"none"', () => forge(`{"alg":"ES256",${json(H()).replace('"alg":"ES256",', '')},"alg":"none"}`, C()), 'ERR_TOKEN_ALG'],
  ['a jku inside a "__proto__" member is no jku, and never read', () => forge(`{${json(H())},"__proto__":{"jku":"https://evil"}}`, C()), 'ok'],
  ['crit: [] is still crit', () => forge(H({ crit: [] }), C()), 'ERR_TOKEN_CRIT'],
  ['b64: false without crit changes nothing (RFC 7797 §6)', () => forge(H({ b64: false }), C()), 'ok'],
  ['jwk in the header', () => forge(H({ jwk: { kty: 'EC' } }), C()), 'ERR_TOKEN_KEY_URL'],
  ['typ in upper case', () => forge(H({ typ: 'CI+JWT' }), C()), 'ERR_TOKEN_TYPE'],
  ['typ as an array', () => forge(H({ typ: ['ci+jwt'] }), C()), 'ERR_TOKEN_TYPE'],
  ['alg as an array', () => forge(H({ alg: ['ES256'] }), C()), 'ERR_TOKEN_ALG'],
  ['a header with a BOM', () => `${Buffer.from(`\ufeff${JSON.stringify(H())}`).toString('base64url')}.${b64(C())}.AAAA`, 'ERR_TOKEN_MALFORMED'],
  // NumericDate: a finite number, nothing else
  ['exp 1e999 (Infinity once parsed)', () => forge(H(), `{${json(C()).replace(/"exp":\d+/, '"exp":1e999')}}`), 'ERR_TOKEN_CLAIMS'],
  ['exp as a string', () => forge(H(), C({ exp: String(now + 60) })), 'ERR_TOKEN_CLAIMS'],
  ['exp a 30-digit integer', () => forge(H(), `{${json(C()).replace(/"exp":\d+/, '"exp":123456789012345678901234567890')}}`), 'ERR_TOKEN_LIFETIME'],
  ['iat -0', () => forge(H(), `{${json(C()).replace(/"iat":\d+/, '"iat":-0')}}`), 'ERR_TOKEN_LIFETIME'],
  ['nbf null', () => forge(H(), C({ nbf: null })), 'ERR_TOKEN_CLAIMS'],
  ['aud nested in an array', () => forge(H(), C({ aud: [[`spiffe://${A}`]] })), 'ERR_TOKEN_CLAIMS'],
  ['sub with U+202E and NUL', () => forge(H(), C({ sub: '\u202e\u0000' })), 'ERR_TOKEN_CLAIMS'],
  ['sub with a C1 control (NEL)', () => forge(H(), C({ sub: 'a\u0085b' })), 'ERR_TOKEN_CLAIMS'],
  ['iss with a trailing slash', () => forge(H(), C({ iss: `${ME}/` })), 'ERR_TOKEN_CLAIMS'],
  ['act as an array', () => forge(H(), C({ act: [{ sub: ME }] })), 'ERR_TOKEN_ACT_INVALID'],
  // base64url: canonical, unpadded, URL alphabet only
  ['a padded header', () => { const [h, p, s] = forge(H(), C()).split('.'); return `${h}=.${p}.${s}`; }, 'ERR_TOKEN_MALFORMED'],
  ['four parts', () => `${forge(H(), C())}.`, 'ERR_TOKEN_MALFORMED'],
  ['the signature in standard base64 with padding', () => withSig(forge(H(), C()), (sig) => sig.toString('base64')), 'ERR_TOKEN_SIGNATURE'],
  ['the signature with other trailing bits', () => withSig(forge(H(), C()), (_s, part) => part.slice(0, -1) + B64URL[B64URL.indexOf(part.at(-1)!) ^ 1]!), 'ERR_TOKEN_SIGNATURE'],
  ['an empty signature', () => withSig(forge(H(), C()), () => ''), 'ERR_TOKEN_SIGNATURE'],
  // signatures and keys
  ['an ES256 signature in DER form', () => forge(H(), C(), key, 'RS256'), 'ERR_TOKEN_SIGNATURE'],
  ['an ES256 signature one byte longer', () => withSig(forge(H(), C()), (sig) => Buffer.concat([sig, Buffer.alloc(1)]).toString('base64url')), 'ERR_TOKEN_SIGNATURE'],
  ['alg RS256 over an EC leaf', () => forge(H({ alg: 'RS256' }), C()), 'ERR_TOKEN_ALG'],
  ['alg ES384 over a P-256 leaf', () => forge(H({ alg: 'ES384' }), C()), 'ERR_TOKEN_ALG'],
  ['PS256 claimed, RS256 signed (RSA leaf)', () => forge(H({ alg: 'PS256', x5c: x5c(rsa) }), C({ iss: `spiffe://${A}/rsa` }), createPrivateKey(rsa.keyPem), 'RS256'), 'ERR_TOKEN_SIGNATURE', `spiffe://${A}/rsa`],
  ['RS256 claimed, PS256 signed (RSA leaf)', () => forge(H({ alg: 'RS256', x5c: x5c(rsa) }), C({ iss: `spiffe://${A}/rsa` }), createPrivateKey(rsa.keyPem), 'PS256'), 'ERR_TOKEN_SIGNATURE', `spiffe://${A}/rsa`],
  ['signed by a key that is not the x5c leaf\'s', () => forge(H(), C(), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), 'ERR_TOKEN_SIGNATURE'],
  // x5c
  ['x5c of zone B, iss of zone A', () => forge(H({ x5c: x5c(meB) }), C(), createPrivateKey(meB.keyPem)), 'ERR_TOKEN_ISSUER_MISMATCH'],
  ['the leaf three times', () => forge(H({ x5c: [...x5c(me), ...x5c(me), ...x5c(me)] }), C()), 'ERR_TOKEN_CHAIN'],
  ['a base64 certificate folded at 64 columns', () => forge(H({ x5c: [x5c(me)[0]!.replace(/(.{64})/g, '$1\n')] }), C()), 'ERR_TOKEN_X5C'],
  ['x5c a string, not an array', () => forge(H({ x5c: x5c(me)[0] }), C()), 'ERR_TOKEN_X5C'],
  // cnf: a binding present is checked, whatever its form
  ['cnf with a DPoP jkt only', () => forge(H(), C({ cnf: { jkt: 'A'.repeat(43) } })), 'ERR_TOKEN_CNF_MISMATCH'],
  ['cnf a string', () => forge(H(), C({ cnf: 'x' })), 'ERR_TOKEN_CNF_MISMATCH'],
  ['cnf null', () => forge(H(), C({ cnf: null })), 'ERR_TOKEN_CNF_MISMATCH'],
  ['cnf x5t#S256 of the peer leaf', () => forge(H(), C({ cnf: { 'x5t#S256': thumbprint(me) } })), 'ok'],
];

describe('common identity: forged inputs, each with its reason', () => {
  const peerCtx = (peer: string | undefined) => ({ now: NOW, peerId: peer ?? ME, peerThumbprint: thumbprint(me) });

  /** name, verdict first: the titles read "… → ERR_…". */
  const titled = cases.map(([n, token, want, peer]) => [n, want, token, peer] as const);

  it.each(titled)('%s → %s', (_n, want, token, peer) => {
    const r = new CommonIdentityVerifier(set, rules(), ciOptions()).verify(token(), peerCtx(peer));
    expect(r.ok ? 'ok' : r.code).toBe(want);
  });

  it.each(titled)('prepare() then verify(), %s → %s (the same verdict off the event loop)', async (_n, want, token, peer) => {
    const v = new CommonIdentityVerifier(set, rules(), ciOptions());
    const t = token();
    await v.prepare(t, peerCtx(peer));
    const r = v.verify(t, peerCtx(peer));
    expect(r.ok ? 'ok' : r.code).toBe(want);
  });
});

describe('common identity: the time boundaries, to the second, with the configured skew', () => {
  const T = now * 1000; // a request at a whole second
  const verdict = (c: object, at = T) => {
    const r = new CommonIdentityVerifier(set, rules(), ciOptions()).verify(forge(H(), C(c)), { now: at, peerId: ME });
    return r.ok ? 'ok' : r.code;
  };
  it.each(([
    ['exp = now − skew', (k: number) => ({ exp: now - k, iat: now - k - 10 }), 'ERR_TOKEN_EXPIRED'],
    ['exp = now − skew + 1', (k: number) => ({ exp: now - k + 1, iat: now - k - 10 }), 'ok'],
    ['nbf = now + skew', (k: number) => ({ nbf: now + k }), 'ok'],
    ['nbf = now + skew + 1', (k: number) => ({ nbf: now + k + 1 }), 'ERR_TOKEN_NOT_YET_VALID'],
    ['iat = now + skew', (k: number) => ({ iat: now + k, exp: now + k + 60 }), 'ok'],
    ['iat = now + skew + 1', (k: number) => ({ iat: now + k + 1, exp: now + k + 61 }), 'ERR_TOKEN_NOT_YET_VALID'],
    ['exp − iat = the maximum lifetime', () => ({ exp: now + 60, iat: now + 60 - rules().maxLifetimeSeconds }), 'ok'],
    ['exp − iat = the maximum lifetime + 1', () => ({ exp: now + 60, iat: now + 59 - rules().maxLifetimeSeconds }), 'ERR_TOKEN_LIFETIME'],
  ] as [string, (skew: number) => object, string][]).map(([n, claims, want]) => [n, want, claims] as const))('%s → %s', (_n, want, claims) => {
    expect(rules().skewSeconds).toBeGreaterThan(0);
    expect(verdict(claims(rules().skewSeconds))).toBe(want);
  });
});

describe('common identity: the cache never carries a verdict where it does not hold', () => {
  it('accepted for its signer, then presented by another peer, later, and to another audience', () => {
    const v = new CommonIdentityVerifier(set, rules(), ciOptions());
    const t = forge(H(), C());
    const verdict = (ctx: { now: number; peerId?: string }) => {
      const r = v.verify(t, ctx);
      return r.ok ? 'ok' : r.code;
    };
    expect(verdict({ now: NOW, peerId: ME })).toBe('ok');
    expect(verdict({ now: NOW, peerId: `spiffe://${B}/x` })).toBe('ERR_TOKEN_PEER_MISMATCH');
    expect(verdict({ now: NOW })).toBe('ERR_TOKEN_PEER_MISMATCH');
    expect(verdict({ now: NOW + 200_000, peerId: ME })).toBe('ERR_TOKEN_EXPIRED');
    const elsewhere = new CommonIdentityVerifier(set, ciRules({ audiences: new Set([`spiffe://${B}`]) }), ciOptions());
    expect(elsewhere.verify(t, { now: NOW, peerId: ME })).toMatchObject({ ok: false, code: 'ERR_TOKEN_AUDIENCE' });
    expect(v.verifications).toBe(1);
  });

  it('a failure of one request (wrong peer, too early) is not remembered for the next', async () => {
    const v = new CommonIdentityVerifier(set, rules(), ciOptions());
    const t = forge(H(), C({ nbf: now + 45, exp: now + 120 }));
    await v.prepare(t, { now: NOW, peerId: `spiffe://${B}/x` });
    expect(v.verify(t, { now: NOW, peerId: `spiffe://${B}/x` })).toMatchObject({ ok: false, code: 'ERR_TOKEN_NOT_YET_VALID' });
    expect(v.verify(t, { now: NOW + 50_000, peerId: `spiffe://${B}/x` })).toMatchObject({ ok: false, code: 'ERR_TOKEN_PEER_MISMATCH' });
    expect(v.verify(t, { now: NOW + 50_000, peerId: ME })).toMatchObject({ ok: true });
  });

  it('200 concurrent cold tokens through prepare(): each verdict is its own', async () => {
    const v = new CommonIdentityVerifier(set, rules(), ciOptions());
    const tokens = Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? withSig(forge(H(), C({ jti: `j${i}` })), () => 'AAAA') : forge(H(), C({ jti: `j${i}` }))));
    await Promise.all(tokens.map((t) => v.prepare(t, { now: NOW, peerId: ME })));
    const verdicts = tokens.map((t) => {
      const r = v.verify(t, { now: NOW, peerId: ME });
      return r.ok ? 'ok' : r.code;
    });
    expect(verdicts).toEqual(tokens.map((_, i) => (i % 3 === 0 ? 'ERR_TOKEN_SIGNATURE' : 'ok')));
  });
});

describe('common identity: a header accepted once decides nothing for another header or another profile', () => {
  const verdict = (v: CommonIdentityVerifier, t: string, at = NOW) => {
    const r = v.verify(t, { now: at, peerId: ME });
    return r.ok ? 'ok' : r.code;
  };
  const prepared = async (v: CommonIdentityVerifier, t: string, at = NOW) => {
    await v.prepare(t, { now: at, peerId: ME, memo: {} });
    return verdict(v, t, at);
  };

  it('the same JSON in other bytes is its own header, and a signature is over the header\'s bytes', async () => {
    const v = new CommonIdentityVerifier(set, rules(), ciOptions());
    const t = forge(H(), C({ jti: 'bytes-1' }));
    expect(await prepared(v, t)).toBe('ok');
    const [, p, sig] = t.split('.') as [string, string, string];
    // the same members, spaced and reordered: accepted as a header, refused as this signature's
    const spaced = b64(` ${JSON.stringify(H())}`);
    const reordered = b64({ x5c: x5c(me), typ: 'ci+jwt', alg: 'ES256' });
    for (const h of [spaced, reordered]) {
      expect(await prepared(v, `${h}.${p}.${sig}`)).toBe('ERR_TOKEN_SIGNATURE');
      expect(await prepared(v, forge(Buffer.from(h, 'base64url').toString(), C({ jti: `bytes-${h.length}` })))).toBe('ok');
    }
    // the accepted header's text with another payload under its signature
    expect(await prepared(v, `${t.split('.')[0]}.${b64(C({ jti: 'bytes-2', sub: 'mallory' }))}.${sig}`)).toBe('ERR_TOKEN_SIGNATURE');
  });

  it('the x5c of an accepted header under another alg, typ, crit, key URL or kid: each decided again', async () => {
    const v = new CommonIdentityVerifier(set, rules(), ciOptions());
    expect(await prepared(v, forge(H(), C({ jti: 'x-0' })))).toBe('ok');
    const cases: [object, string][] = [
      [{ alg: 'RS256' }, 'ERR_TOKEN_ALG'],
      [{ alg: 'ES384' }, 'ERR_TOKEN_ALG'],
      [{ alg: 'none' }, 'ERR_TOKEN_ALG'],
      [{ typ: 'JWT' }, 'ERR_TOKEN_TYPE'],
      [{ typ: undefined }, 'ERR_TOKEN_TYPE'],
      [{ crit: ['exp'] }, 'ERR_TOKEN_CRIT'],
      [{ x5u: 'https://elsewhere.test/x' }, 'ERR_TOKEN_KEY_URL'],
      [{ kid: 'anything' }, 'ok'],
      [{ x5c: [...x5c(me), ...x5c(meB)] }, 'ERR_TOKEN_CHAIN'],
    ];
    for (const [n, [h, want]] of cases.entries()) {
      // twice each: the second finds the verdict on its own text, never the accepted header's
      for (const i of [1, 2]) expect(await prepared(v, forge(H(h), C({ jti: `x-${n}-${i}` }))), Object.keys(h).join()).toBe(want);
    }
    expect(await prepared(v, forge(H(), C({ jti: 'x-last' })))).toBe('ok');
  });

  it('a header accepted by one verifier is refused by another whose rules differ (typ, algorithms, x5c size)', async () => {
    const t = forge(H(), C({ jti: 'rules-1' }));
    const warm = new CommonIdentityVerifier(set, rules(), ciOptions());
    expect(await prepared(warm, t)).toBe('ok');
    const other = (o: Parameters<typeof ciRules>[0]) => new CommonIdentityVerifier(set, ciRules({ audiences: new Set([`spiffe://${A}`]), ...o }), ciOptions());
    expect(await prepared(other({ typ: 'other+jwt' }), t)).toBe('ERR_TOKEN_TYPE');
    expect(await prepared(other({ algorithms: new Set(['RS256'] as const) }), t)).toBe('ERR_TOKEN_ALG');
    expect(await prepared(other({ maxX5cBytes: 100 }), t)).toBe('ERR_TOKEN_X5C_TOO_LARGE');
    expect(await prepared(warm, t)).toBe('ok');
  });

  it('300 signers\' headers in flight at once (past the 256 the header cache keeps): each verdict is its own, the first again after', async () => {
    const v = new CommonIdentityVerifier(set, rules(), ciOptions());
    // one signer, 300 header texts (kid differs), a third of them under a bad signature
    const tokens = Array.from({ length: 300 }, (_, i) => {
      const t = forge(H({ kid: `k${i}` }), C({ jti: `evict-${i}` }));
      return i % 3 === 0 ? withSig(t, () => 'AAAA') : t;
    });
    const verdicts = await Promise.all(tokens.map((t) => prepared(v, t)));
    expect(verdicts).toEqual(tokens.map((_, i) => (i % 3 === 0 ? 'ERR_TOKEN_SIGNATURE' : 'ok')));
    expect(await prepared(v, forge(H({ kid: 'k1' }), C({ jti: 'evict-again' })))).toBe('ok');
    expect(await prepared(v, withSig(forge(H({ kid: 'k1' }), C({ jti: 'evict-bad' })), () => 'AAAA'))).toBe('ERR_TOKEN_SIGNATURE');
  });

  it('a header and chain accepted, then the CA leaves the bundle, the clock passes the leaf\'s notAfter, or the token its exp', async () => {
    const own = new BundleSet();
    own.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caA.cert] }));
    const short = await caA.issue(ME, { notAfter: new Date(NOW + 10 * 60_000) });
    const k = createPrivateKey(short.keyPem);
    const v = new CommonIdentityVerifier(own, rules(), ciOptions());
    const t = (jti: string, c: object = {}) => forge(H({ x5c: x5c(short) }), C({ jti, ...c }), k);
    expect(await prepared(v, t('t-1'))).toBe('ok');
    own.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caB.cert] }));
    expect(await prepared(v, t('t-2'))).toBe('ERR_TOKEN_CHAIN');
    own.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caA.cert] }));
    expect(await prepared(v, t('t-3'))).toBe('ok');
    const later = NOW + 11 * 60_000 + rules().skewSeconds * 1000;
    expect(await prepared(v, t('t-4', { iat: Math.floor(later / 1000), exp: Math.floor(later / 1000) + 60 }), later)).toBe('ERR_TOKEN_CHAIN');
    expect(await prepared(v, t('t-5', { exp: now + 1 }), NOW + (2 + rules().skewSeconds) * 1000)).toBe('ERR_TOKEN_EXPIRED');
  });
});

describe('WirePact: the chain leads to the configured WirePact CA, and nowhere else', () => {
  let pki: MemoryCA;
  let translator: Issued;
  let zoneRsa: Issued;
  beforeAll(async () => {
    pki = await MemoryCA.create('wirepact.invalid', { subject: 'O=WirePact PKI, CN=WirePact PKI CA' });
    translator = await pki.issue(undefined, { keyType: 'RSA', subject: 'O=WirePact PKI, CN=translator' });
    zoneRsa = await caA.issue(`spiffe://${A}/rsa2`, { keyType: 'RSA' });
  });
  const raw = (c: { cert: { raw: Buffer } }) => c.cert.raw.toString('base64');
  const W = (e: object = {}) => ({ sub: 'user', iss: 'wp', aud: ['WirePact'], iat: now, exp: now + 60, ...e });

  it.each(([
    ['the control', () => forge({ alg: 'RS256', typ: 'JWT', x5c: [raw(translator), raw(pki)] }, W(), createPrivateKey(translator.keyPem), 'RS256'), 'ok'],
    ['a zone SVID chained to its own trust domain CA', () => forge({ alg: 'RS256', typ: 'JWT', x5c: [raw(zoneRsa), raw(caA)] }, W(), createPrivateKey(zoneRsa.keyPem), 'RS256'), 'ERR_TOKEN_CHAIN'],
    ['x5t in base64url, not base64', () => forge({ alg: 'RS256', typ: 'JWT', x5c: [raw(translator), raw(pki)], x5t: createHash('sha256').update(translator.cert.raw).digest('base64url') }, W(), createPrivateKey(translator.keyPem), 'RS256'), 'ERR_TOKEN_X5C'],
    ['PS256', () => forge({ alg: 'PS256', typ: 'JWT', x5c: [raw(translator), raw(pki)] }, W(), createPrivateKey(translator.keyPem), 'PS256'), 'ERR_TOKEN_ALG'],
    ['the translator twice', () => forge({ alg: 'RS256', typ: 'JWT', x5c: [raw(translator), raw(translator), raw(pki)] }, W(), createPrivateKey(translator.keyPem), 'RS256'), 'ERR_TOKEN_CHAIN'],
    ['no iat and a day to live', () => forge({ alg: 'RS256', typ: 'JWT', x5c: [raw(translator), raw(pki)] }, W({ iat: undefined, exp: now + 86_400 }), createPrivateKey(translator.keyPem), 'RS256'), 'ERR_TOKEN_LIFETIME'],
  ] as [string, () => string, string][]).map(([n, token, want]) => [n, want, token] as const))('%s → %s', (_n, want, token) => {
    const r = verifyWirePact(token(), wpRules(parseCertificates(Buffer.from(pki.certPem))), NOW);
    expect(r.ok ? 'ok' : r.code).toBe(want);
  });
});

describe('OIDC bearer JWTs: the kid names a key, the key decides the algorithm', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rs = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  const keys = new Map<string, KeyObject>([['ec', ec.publicKey], ['rsa', rs.publicKey], ['ed', ed.publicKey]]);
  const jwtRules: JwtRules = { algorithms: new Set(['ES256', 'RS256', 'PS256', 'EdDSA']), maxBytes: 8192, skewSeconds: 30, issuers: new Set(['https://idp']), audiences: new Set(['api']), refusedTyps: new Set(['ci+jwt', 'dpop+jwt']) };
  const J = (e: object = {}) => ({ sub: 'u', iss: 'https://idp', aud: 'api', exp: now + 60, ...e });
  const edSigned = (h: object) => {
    const input = `${b64(h)}.${b64(J())}`;
    return `${input}.${sign(null, Buffer.from(input), ed.privateKey).toString('base64url')}`;
  };

  it.each(([
    ['the control', () => forge({ alg: 'ES256', kid: 'ec' }, J(), ec.privateKey), 'ok'],
    ['kid "__proto__"', () => forge({ alg: 'ES256', kid: '__proto__' }, J(), ec.privateKey), 'ERR_TOKEN_KEY_UNKNOWN'],
    ['kid of an RSA key, alg ES256', () => forge({ alg: 'ES256', kid: 'rsa' }, J(), ec.privateKey), 'ERR_TOKEN_ALG'],
    ['kid of an EC key, alg EdDSA', () => edSigned({ alg: 'EdDSA', kid: 'ec' }), 'ERR_TOKEN_ALG'],
    ['HS256 with a public key as the secret', () => `${b64({ alg: 'HS256', kid: 'rsa' })}.${b64(J())}.AAAA`, 'ERR_TOKEN_ALG'],
    ['PS256 claimed, RS256 signed', () => forge({ alg: 'PS256', kid: 'rsa' }, J(), rs.privateKey, 'RS256'), 'ERR_TOKEN_SIGNATURE'],
    ['typ application/CI+JWT (our own kind)', () => forge({ alg: 'ES256', kid: 'ec', typ: 'application/CI+JWT' }, J(), ec.privateKey), 'ERR_TOKEN_TYPE'],
    ['iss as an array', () => forge({ alg: 'ES256', kid: 'ec' }, J({ iss: ['https://idp'] }), ec.privateKey), 'ERR_TOKEN_ISSUER_MISMATCH'],
    ['nbf at the end of the skew', () => forge({ alg: 'ES256', kid: 'ec' }, J({ nbf: now + 30 }), ec.privateKey), 'ok'],
    ['nbf a second past the skew', () => forge({ alg: 'ES256', kid: 'ec' }, J({ nbf: now + 31 }), ec.privateKey), 'ERR_TOKEN_NOT_YET_VALID'],
  ] as [string, () => string, string][]).map(([n, token, want]) => [n, want, token] as const))('%s → %s', (_n, want, token) => {
    const r = verifyJwt(token(), (k) => { const key = keys.get(k); return key && { key }; }, jwtRules, now * 1000);
    expect(r.ok ? 'ok' : r.code).toBe(want);
  });
});

describe('the carried token through a real Check', () => {
  let s: Started;
  const sent: string[] = [];
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-identity-attack-'));
    writeFileSync(join(dir, 'a.pem'), caA.certPem);
    s = await startWith(
      {
        trust: [{ trustDomain: A, bundle: 'a.pem' }],
        commonIdentity: { audiences: [`spiffe://${A}`] },
        rules: [{ name: 'any', action: 'allow', from: { trustDomains: [A] } }],
      },
      dir,
    );
  });
  afterAll(async () => s?.close());

  /** The Check's status: the actor on an allow, the reason code on a deny. */
  const check = async (http: Record<string, unknown>) => {
    const req = checkRequest({ certificate: encodeURIComponent(me.certPem) }) as { attributes: { request: { http: Record<string, unknown> } } };
    Object.assign(req.attributes.request.http, http);
    const r = await s.check(req);
    if (!r.ok) throw r.error;
    const st = r.response.status as { code: number; message?: string };
    return st.code === 0 ? `allow ${(r.response.ok_response as { headers: { header: { key: string; value: string } }[] }).headers.find((h) => h.header.key === 'x-zonegate-actor')?.header.value}` : st.message;
  };
  const token = (sub = 'alice') => {
    const t = forge(H(), C({ sub, jti: `${sub}-${sent.length}` }));
    sent.push(t);
    return t;
  };
  const utf8 = (v: string) => new Uint8Array(Buffer.from(v, 'utf8'));

  it('one token, with the whitespace a proxy may leave around it: allowed', async () => {
    expect(await check({ headers: { 'x-common-identity': ` ${token()}\t` } })).toBe('allow alice');
  });

  it('a subject past Latin-1 reaches the upstream as it was signed', async () => {
    expect(await check({ headers: { 'x-common-identity': token('李') } })).toBe('allow 李');
  });

  it('roles ["reader,admin"] would reach the upstream as roles ["reader", "admin"] do: ERR_UPSTREAM_HEADER_VALUE', async () => {
    const roles = (r: string[]) => {
      const t = forge(H(), C({ roles: r, jti: `roles-${sent.length}` }));
      sent.push(t);
      return t;
    };
    const req = (r: string[]) => {
      const q = checkRequest({ certificate: encodeURIComponent(me.certPem), headers: { 'x-common-identity': roles(r) } });
      return s.check(q);
    };
    const two = await req(['reader', 'admin']);
    if (!two.ok) throw two.error;
    expect((two.response.ok_response as { headers: { header: { key: string; value: string } }[] }).headers.find((h) => h.header.key === 'x-zonegate-roles')?.header.value).toBe('reader,admin');
    const one = await req(['reader,admin']);
    if (!one.ok) throw one.error;
    expect((one.response.status as { message?: string }).message).toBe('ERR_UPSTREAM_HEADER_VALUE');
  });

  it('two tokens joined by Envoy (headers map): ERR_TOKEN_MULTIPLE', async () => {
    expect(await check({ headers: { 'x-common-identity': `${token()},${token()}` } })).toBe('ERR_TOKEN_MULTIPLE');
  });

  it('the same token twice in header_map, under two spellings of the name: ERR_TOKEN_MULTIPLE', async () => {
    const t = token();
    const headers = [
      { key: 'x-common-identity', raw_value: utf8(t) },
      { key: 'X-Common-Identity', raw_value: utf8(t) },
    ];
    expect(await check({ headers: {}, header_map: { headers } })).toBe('ERR_TOKEN_MULTIPLE');
  });

  it('a token followed by a byte that is not UTF-8 (header_map raw_value): ERR_TOKEN_MALFORMED', async () => {
    const raw = new Uint8Array([...utf8(token()), 0xff]);
    expect(await check({ headers: {}, header_map: { headers: [{ key: 'x-common-identity', raw_value: raw }] } })).toBe('ERR_TOKEN_MALFORMED');
  });

  it('a token with a NUL inside: ERR_TOKEN_MALFORMED', async () => {
    const t = token();
    expect(await check({ headers: { 'x-common-identity': `${t.slice(0, 20)}\u0000${t.slice(20)}` } })).toBe('ERR_TOKEN_MALFORMED');
  });

  it('150 concurrent Checks with cold tokens, a third forged: each gets its own verdict and actor', async () => {
    const tokens = Array.from({ length: 150 }, (_, i) => {
      const t = token(`user-${i}`);
      return i % 3 === 0 ? withSig(t, () => 'AAAA') : t;
    });
    const verdicts = await Promise.all(tokens.map((t) => check({ headers: { 'x-common-identity': t } })));
    expect(verdicts).toEqual(tokens.map((_, i) => (i % 3 === 0 ? 'ERR_TOKEN_SIGNATURE' : `allow user-${i}`)));
  });

  it('an x5c leaf whose EC key is the point at infinity: ERR_KEY_TOO_WEAK, and the server serves on', async () => {
    const infinity = (curveOid: string) => ecSpki(Buffer.from(curveOid, 'hex'), Buffer.from([0]));
    // secp256k1, from a CA nobody trusts: node:crypto's asymmetricKeyDetails aborted the process
    // before any signature was checked; P-256, from the trusted CA: the ES256 check crashed it
    const rogue = await (await MemoryCA.create(A)).issue(ME, { spki: infinity('06052b8104000a') });
    const trusted = await caA.issue(ME, { spki: infinity('06082a8648ce3d030107') });
    for (const leaf of [rogue, trusted]) {
      const t = forge(H({ x5c: x5c(leaf) }), C({ jti: `inf-${sent.length}` }));
      sent.push(t);
      expect(await check({ headers: { 'x-common-identity': t } })).toBe('ERR_KEY_TOO_WEAK');
    }
    // the same leaves as the mTLS peer certificate Envoy forwards
    for (const leaf of [rogue, trusted]) {
      const r = await s.check(checkRequest({ certificate: encodeURIComponent(leaf.certPem) }));
      if (!r.ok) throw r.error;
      expect((r.response.status as { message?: string }).message).toBe('ERR_KEY_TOO_WEAK');
    }
    expect(await check({ headers: { 'x-common-identity': token() } })).toBe('allow alice');
  });

  it('no token, key or certificate body in any log line', () => {
    expect(sent.length).toBeGreaterThan(5);
    const logs = JSON.stringify(s.logs);
    for (const t of sent) for (const part of t.split('.')) expect(logs).not.toContain(part.slice(0, 40));
    expect(logs).not.toContain(me.cert.raw.toString('base64').slice(0, 60));
  });
});

describe('JWT-SVIDs and common identities through a real Check: one profile never passes as another', () => {
  let s: Started;
  const pairA = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pairB = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-identity-attack-jwt-'));
    // both trust domains name their JWT authority "k1"
    const bundle = (ca: MemoryCA, pub: KeyObject) =>
      JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'EC', crv: 'P-256', x5c: [ca.cert.raw.toString('base64')] }, { ...pub.export({ format: 'jwk' }), use: 'jwt-svid', kid: 'k1' }] });
    writeFileSync(join(dir, 'a.json'), bundle(caA, pairA.publicKey));
    writeFileSync(join(dir, 'b.json'), bundle(caB, pairB.publicKey));
    s = await startWith(
      {
        trust: [
          { trustDomain: A, bundle: 'a.json' },
          { trustDomain: B, bundle: 'b.json' },
        ],
        commonIdentity: { audiences: [`spiffe://${A}`], jwtSvid: true },
        rules: [{ name: 'any', action: 'allow', from: { trustDomains: [A, B] } }],
      },
      dir,
    );
  });
  afterAll(async () => s?.close());

  const jwtSvid = (sub: string, signer: KeyObject, header: object = {}) => forge({ alg: 'ES256', typ: 'JWT', kid: 'k1', ...header }, { sub, aud: `spiffe://${A}`, exp: now + 60 }, signer);
  const check = async (headers: Record<string, string>) => {
    const r = await s.check(checkRequest({ certificate: encodeURIComponent(me.certPem), headers }));
    if (!r.ok) throw r.error;
    const st = r.response.status as { code: number; message?: string };
    return st.code === 0 ? `allow ${(r.response.ok_response as { headers: { header: { key: string; value: string } }[] }).headers.find((h) => h.header.key === 'x-zonegate-actor')?.header.value}` : st.message;
  };

  it.each(([
    ['a JWT-SVID of zone A signed by A\'s k1', () => ({ authorization: `Bearer ${jwtSvid(`spiffe://${A}/api`, pairA.privateKey)}` }), `allow spiffe://${A}/api`],
    ['a JWT-SVID of zone B signed by A\'s k1 (the kid both bundles use)', () => ({ authorization: `Bearer ${jwtSvid(`spiffe://${B}/api`, pairA.privateKey)}` }), 'ERR_TOKEN_SIGNATURE'],
    ['a JWT-SVID of an unknown zone', () => ({ authorization: `Bearer ${jwtSvid('spiffe://zone-c.test/api', pairA.privateKey)}` }), 'ERR_TRUST_DOMAIN_UNKNOWN'],
    ['a JWT-SVID with typ ci+jwt', () => ({ authorization: `Bearer ${jwtSvid(`spiffe://${A}/api`, pairA.privateKey, { typ: 'ci+jwt' })}` }), 'ERR_TOKEN_TYPE'],
    ['a common identity sent as a Bearer JWT-SVID', () => ({ authorization: `Bearer ${forge(H(), C())}` }), 'ERR_TOKEN_TYPE'],
    ['a JWT-SVID sent as the common identity', () => ({ 'x-common-identity': jwtSvid(`spiffe://${A}/api`, pairA.privateKey) }), 'ERR_TOKEN_TYPE'],
    ['two Bearer tokens joined by Envoy', () => ({ authorization: `Bearer ${jwtSvid(`spiffe://${A}/api`, pairA.privateKey)},Bearer ${jwtSvid(`spiffe://${A}/x`, pairA.privateKey)}` }), 'ERR_TOKEN_MALFORMED'],
    ['a Bearer JWT-SVID beside a valid common identity', () => ({ authorization: `Bearer ${jwtSvid(`spiffe://${A}/api`, pairA.privateKey)}`, 'x-common-identity': forge(H(), C()) }), 'ERR_TOKEN_MULTIPLE'],
  ] as [string, () => Record<string, string>, string][]).map(([n, headers, want]) => [n, want, headers] as const))('%s → %s', async (_n, want, headers) => {
    expect(await check(headers())).toBe(want);
  });
});
