/**
 * Common identity verification against forgeries built by hand (raw base64url and node:crypto),
 * not only through a JWT library: each one is denied with its own reason.
 */
import { createHash, createHmac, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { loadX509Svid, type LocalSvid } from '../../src/svid/local.js';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { CommonIdentityVerifier, type TokenRules } from '../../src/identity/verify.js';
import { selfSignedSvid, MemoryCA, type Issued } from '../../src/demo/pki.js';
import { ciOptions, ciRules, EGRESS_TTL_SECONDS } from '../helpers/identity.js';

const A = 'zone-a.test';
const B = 'zone-b.test';
const ME = `spiffe://${A}/ns/web/sa/frontend`;
const NOW = Date.now();
const now = Math.floor(NOW / 1000);
let caA: MemoryCA;
let caB: MemoryCA;
let set: BundleSet;
let me: Issued;
let svid: LocalSvid;
let key: KeyObject;

const rules: TokenRules = ciRules({ audiences: new Set([`spiffe://${B}`]) });
const b64 = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
const x5c = (i: Issued) => [i.cert.raw.toString('base64')];

/** A token built by hand: header, claims, and an ES256 signature by `signer` (or a given signature). */
function forge(header: object, claims: object, signer: KeyObject | null = key, sig?: Buffer): string {
  const input = `${b64(header)}.${b64(claims)}`;
  const s = sig ?? (signer ? sign('sha256', Buffer.from(input), { key: signer, dsaEncoding: 'ieee-p1363' }) : Buffer.alloc(0));
  return `${input}.${s.toString('base64url')}`;
}
const header = (extra: object = {}) => ({ alg: 'ES256', typ: 'ci+jwt', x5c: x5c(me), ...extra });
const claims = (extra: object = {}) => ({ iss: ME, sub: 'alice', aud: `spiffe://${B}`, iat: now, exp: now + 60, jti: 'j1', ...extra });

const thumbprint = (der: Buffer) => createHash('sha256').update(der).digest('base64url');
/** The request context code() uses by default: now, with the token's signer as the peer. */
const AS_ME = { now: NOW, peerId: ME };

function code(verifier: CommonIdentityVerifier, token: string, ctx: { peerId?: string; peerCertDer?: Buffer; now?: number } = {}) {
  const r = verifier.verify(token, {
    now: ctx.now ?? NOW,
    ...('peerId' in ctx ? (ctx.peerId ? { peerId: ctx.peerId } : {}) : { peerId: ME }),
    ...(ctx.peerCertDer ? { peerThumbprint: thumbprint(ctx.peerCertDer) } : {}),
  });
  return r.ok ? 'ok' : r.code;
}

beforeAll(async () => {
  caA = await MemoryCA.create(A);
  caB = await MemoryCA.create(B);
  set = new BundleSet();
  set.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caA.cert] }));
  set.set(new Bundle(TrustDomain.parse(B), { x509Authorities: [caB.cert] }));
  me = await caA.issue(ME);
  svid = loadX509Svid(Buffer.from(me.chainPem), Buffer.from(me.keyPem));
  key = createPrivateKey(me.keyPem);
});

describe('common identity: accepted', () => {
  it('a hand-built token and a minted one', () => {
    const v = new CommonIdentityVerifier(set, rules, ciOptions());
    expect(code(v, forge(header(), claims()))).toBe('ok');
    const minted = mintCommonIdentity(svid, { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'alice', aud: `spiffe://${B}` });
    const r = v.verify(minted, { now: NOW, peerId: ME });
    expect(r).toMatchObject({ ok: true, claims: { iss: ME, sub: 'alice', aud: [`spiffe://${B}`] }, actors: [] });
  });

  it('a minted token lives exactly the ttlSeconds it is given: mint has no lifetime of its own (the schema owns the default)', () => {
    const payload = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { iat: number; exp: number };
    for (const ttlSeconds of [1, 7, 3600]) {
      const p = payload(mintCommonIdentity(svid, { sub: 'alice', aud: `spiffe://${B}`, ttlSeconds, now: NOW }));
      expect([p.iat, p.exp - p.iat]).toEqual([now, ttlSeconds]);
    }
    // @ts-expect-error ttlSeconds is required: a caller passes the configured lifetime
    expect(() => mintCommonIdentity(svid, { sub: 'alice', aud: `spiffe://${B}` })).toThrow(RangeError);
    for (const ttlSeconds of [0, -1, 1.5, Number.NaN]) expect(() => mintCommonIdentity(svid, { sub: 'alice', aud: `spiffe://${B}`, ttlSeconds })).toThrow(/ttlSeconds/);
  });

  it.each(['P-384', 'Ed25519', 'RSA', 'RSA-PSS'] as const)('minted with a %s SVID key', async (keyType) => {
    const s = await caA.issue(`spiffe://${A}/k/${keyType}`, { keyType });
    const local = loadX509Svid(Buffer.from(s.chainPem), Buffer.from(s.keyPem));
    const alg = keyType === 'RSA-PSS' ? 'PS256' : undefined;
    const t = mintCommonIdentity(local, { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'alice', aud: `spiffe://${B}`, ...(alg ? { alg } : {}) });
    expect(JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()).alg).toBe(
      { 'P-384': 'ES384', Ed25519: 'EdDSA', RSA: 'RS256', 'RSA-PSS': 'PS256' }[keyType],
    );
    expect(code(new CommonIdentityVerifier(set, rules, ciOptions()), t, { peerId: local.id.value })).toBe('ok');
  });

  it('an act chain within the limit is returned, most recent hop first', () => {
    const act = { sub: `spiffe://${A}/gateway`, act: { sub: `spiffe://${B}/edge` } };
    const r = new CommonIdentityVerifier(set, rules, ciOptions()).verify(forge(header(), claims({ act })), { now: NOW, peerId: ME });
    expect(r).toMatchObject({ ok: true, actors: [`spiffe://${A}/gateway`, `spiffe://${B}/edge`] });
  });
});

describe('common identity: each forgery has its own reason', () => {
  const cases: [string, () => Promise<string> | string, string, object?][] = [
    ['alg none', () => forge(header({ alg: 'none' }), claims(), null), 'ERR_TOKEN_ALG'],
    [
      'HS256 keyed with the public key',
      () => {
        const input = `${b64(header({ alg: 'HS256' }))}.${b64(claims())}`;
        const secret = me.cert.publicKey.export({ format: 'pem', type: 'spki' });
        return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      },
      'ERR_TOKEN_ALG',
    ],
    ['signature by a key other than the x5c leaf', () => forge(header(), claims(), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), 'ERR_TOKEN_SIGNATURE'],
    [
      'tampered payload',
      () => {
        const [h, , s] = forge(header(), claims()).split('.');
        return `${h}.${b64(claims({ sub: 'admin' }))}.${s}`;
      },
      'ERR_TOKEN_SIGNATURE',
    ],
    [
      'x5c self-signed',
      async () => {
        const self = await selfSignedSvid(ME);
        return forge(header({ x5c: x5c(self) }), claims(), createPrivateKey(self.keyPem));
      },
      'ERR_TOKEN_CHAIN',
    ],
    [
      'x5c leaf with a 1024-bit RSA key (RS256)',
      async () => {
        const weak = await caA.issue(ME, { keyType: 'RSA-1024' });
        const input = `${b64(header({ alg: 'RS256', x5c: x5c(weak) }))}.${b64(claims())}`;
        return `${input}.${sign('sha256', Buffer.from(input), createPrivateKey(weak.keyPem)).toString('base64url')}`;
      },
      'ERR_KEY_TOO_WEAK',
    ],
    [
      'x5c through an intermediate with a 1024-bit RSA key',
      async () => {
        const leaf = await (await caA.intermediate({ keyType: 'RSA-1024' })).issue(ME, { keyType: 'P-256' });
        const chain = [leaf.cert.raw.toString('base64'), ...leaf.chainPem.split(/(?=-----BEGIN)/).slice(1).map((p) => Buffer.from(p.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64').toString('base64'))];
        return forge(header({ x5c: chain }), claims(), createPrivateKey(leaf.keyPem));
      },
      'ERR_KEY_TOO_WEAK',
    ],
    ['x5c chaining to A\'s root while iss names B', () => forge(header(), claims({ iss: `spiffe://${B}/ns/web/sa/frontend` })), 'ERR_TOKEN_ISSUER_MISMATCH', { peerId: `spiffe://${B}/ns/web/sa/frontend` }],
    [
      'x5c leaf claiming B, signed by A\'s CA',
      async () => {
        const forged = await caA.issue(`spiffe://${B}/ns/web/sa/frontend`);
        return forge(header({ x5c: x5c(forged) }), claims({ iss: `spiffe://${B}/ns/web/sa/frontend` }), createPrivateKey(forged.keyPem));
      },
      'ERR_TOKEN_CHAIN',
      { peerId: `spiffe://${B}/ns/web/sa/frontend` },
    ],
    ['x5c leaf ID ≠ iss', () => forge(header(), claims({ iss: `spiffe://${A}/ns/web/sa/admin` })), 'ERR_TOKEN_ISSUER_MISMATCH', { peerId: `spiffe://${A}/ns/web/sa/admin` }],
    ['expired', () => forge(header(), claims({ iat: now - 300, exp: now - 60 })), 'ERR_TOKEN_EXPIRED'],
    ['nbf in the future', () => forge(header(), claims({ nbf: now + 120 })), 'ERR_TOKEN_NOT_YET_VALID'],
    ['iat in the future', () => forge(header(), claims({ iat: now + 120, exp: now + 180 })), 'ERR_TOKEN_NOT_YET_VALID'],
    ['lifetime above the maximum', () => forge(header(), claims({ exp: now + 3600 })), 'ERR_TOKEN_LIFETIME'],
    ['wrong aud', () => forge(header(), claims({ aud: [`spiffe://${A}`, 'spiffe://other.test'] })), 'ERR_TOKEN_AUDIENCE'],
    ['peer SPIFFE ID ≠ iss', () => forge(header(), claims()), 'ERR_TOKEN_PEER_MISMATCH', { peerId: `spiffe://${A}/ns/web/sa/other` }],
    ['no peer at all', () => forge(header(), claims()), 'ERR_TOKEN_PEER_MISMATCH', { peerId: undefined }],
    ['cnf mismatch', () => forge(header(), claims({ cnf: { 'x5t#S256': 'A'.repeat(43) } })), 'ERR_TOKEN_CNF_MISMATCH', { peerCertDer: Buffer.from('other cert') }],
    [
      'act too deep',
      () => {
        let act: object | undefined;
        for (let i = 0; i < 6; i++) act = { sub: `spiffe://${A}/hop${i}`, ...(act ? { act } : {}) };
        return forge(header(), claims({ act }));
      },
      'ERR_TOKEN_ACT_DEPTH',
    ],
    ['act hop not a SPIFFE ID', () => forge(header(), claims({ act: { sub: 'https://evil.example/' } })), 'ERR_TOKEN_ACT_INVALID'],
    ['unknown crit', () => forge(header({ crit: ['exp-policy'], 'exp-policy': 1 }), claims()), 'ERR_TOKEN_CRIT'],
    ['jku present', () => forge(header({ jku: 'https://evil.example/jwks' }), claims()), 'ERR_TOKEN_KEY_URL'],
    ['x5u present', () => forge(header({ x5u: 'https://evil.example/cert' }), claims()), 'ERR_TOKEN_KEY_URL'],
    ['embedded jwk', () => forge(header({ jwk: { kty: 'EC' } }), claims()), 'ERR_TOKEN_KEY_URL'],
    ['token of 64 KiB', () => forge(header(), claims({ pad: 'x'.repeat(64 * 1024) })), 'ERR_TOKEN_TOO_LARGE'],
    ['wrong typ', () => forge(header({ typ: 'JWT' }), claims()), 'ERR_TOKEN_TYPE'],
    ['no x5c', () => forge({ alg: 'ES256', typ: 'ci+jwt' }, claims()), 'ERR_TOKEN_X5C'],
    ['x5c not a certificate', () => forge(header({ x5c: ['AAAA'] }), claims()), 'ERR_TOKEN_X5C'],
    ['ES384 header over a P-256 key', () => forge(header({ alg: 'ES384' }), claims()), 'ERR_TOKEN_ALG'],
    ['sub with CR LF (a header split at the upstream)', () => forge(header(), claims({ sub: 'user-x\r\nx-zonegate-actor: admin' })), 'ERR_TOKEN_CLAIMS'],
    ['sub with a NUL', () => forge(header(), claims({ sub: 'user-x\u0000' })), 'ERR_TOKEN_CLAIMS'],
    ['sub with a C1 control', () => forge(header(), claims({ sub: 'user-x\u0085' })), 'ERR_TOKEN_CLAIMS'],
    ['sub longer than 2048 bytes', () => forge(header(), claims({ sub: 'u'.repeat(2049) })), 'ERR_TOKEN_CLAIMS'],
    ['missing exp', () => forge(header(), { iss: ME, sub: 'a', aud: `spiffe://${B}`, iat: now }), 'ERR_TOKEN_CLAIMS'],
    ['two parts', () => forge(header(), claims()).split('.').slice(0, 2).join('.'), 'ERR_TOKEN_MALFORMED'],
    ['padding in base64url', () => forge(header(), claims()).replace('.', '=.'), 'ERR_TOKEN_MALFORMED'],
    ['header is JSON array', () => `${b64([1])}.${b64(claims())}.AAAA`, 'ERR_TOKEN_MALFORMED'],
  ];
  it.each(cases)('%s → %s', async (_n, make, want, ctx) => {
    expect(code(new CommonIdentityVerifier(set, rules, ciOptions()), await make(), ctx ?? {})).toBe(want);
  });

  it('cnf that matches the peer certificate is accepted; requireCnf without cnf is denied', () => {
    const der = me.cert.raw;
    const thumb = thumbprint(der);
    expect(code(new CommonIdentityVerifier(set, rules, ciOptions()), forge(header(), claims({ cnf: { 'x5t#S256': thumb } })), { peerCertDer: der })).toBe('ok');
    expect(code(new CommonIdentityVerifier(set, { ...rules, requireCnf: true }, ciOptions()), forge(header(), claims()), { peerCertDer: der })).toBe('ERR_TOKEN_CNF_MISMATCH');
  });

  it('an algorithm outside a narrowed allowlist is denied', () => {
    expect(code(new CommonIdentityVerifier(set, { ...rules, algorithms: new Set(['EdDSA'] as const) }, ciOptions()), forge(header(), claims()))).toBe('ERR_TOKEN_ALG');
  });

  it('replay: with the replay cache on, a token without jti is refused; a jti is bounded', () => {
    const v = new CommonIdentityVerifier(set, rules, ciOptions({ replayCacheSize: 100 }));
    const { jti: _jti, ...noJti } = claims();
    expect(code(v, forge(header(), noJti))).toBe('ERR_TOKEN_CLAIMS');
    expect(code(new CommonIdentityVerifier(set, rules, ciOptions()), forge(header(), noJti))).toBe('ok'); // optional without the cache
    expect(code(v, forge(header(), claims({ jti: 'j'.repeat(257) })))).toBe('ERR_TOKEN_CLAIMS');
  });

  it('replay: a jti is accepted once when the replay cache is on', () => {
    const v = new CommonIdentityVerifier(set, rules, ciOptions({ replayCacheSize: 100 }));
    const t = forge(header(), claims({ jti: 'once' }));
    expect(code(v, t)).toBe('ok');
    expect(code(v, t)).toBe('ERR_TOKEN_REPLAYED');
  });
});

describe('caches', () => {
  it('a token is verified once; the per-request checks still run on every call', () => {
    const v = new CommonIdentityVerifier(set, rules, ciOptions());
    const t = forge(header(), claims());
    expect(code(v, t)).toBe('ok');
    expect(code(v, t)).toBe('ok');
    expect(code(v, t, { peerId: `spiffe://${A}/x` })).toBe('ERR_TOKEN_PEER_MISMATCH');
    expect(code(v, t, { now: NOW + 3600_000 })).toBe('ERR_TOKEN_EXPIRED');
    expect(v.verifications).toBe(1);
  });

  it('every cache is bounded by its size: an evicted token is verified again, an evicted chain re-verified from parsed certificates', async () => {
    const other = await caA.issue(ME); // another SVID of the same workload
    const otherKey = createPrivateKey(other.keyPem);
    const v = new CommonIdentityVerifier(set, rules, ciOptions({ cache: { tokens: 1, chains: 1, certificates: 2 } }));
    const t1 = forge(header(), claims({ jti: 'a' }));
    const t2 = forge(header({ x5c: x5c(other) }), claims({ jti: 'b' }), otherKey);
    expect([code(v, t1), code(v, t2), code(v, t1)]).toEqual(['ok', 'ok', 'ok']);
    expect(v.verifications).toBe(3); // one token held: t1 was evicted by t2
    expect(v.certificateParses).toBe(2); // t1's chain was evicted too, its certificate was not
    const big = new CommonIdentityVerifier(set, rules, ciOptions({ cache: { tokens: 2 } }));
    expect([code(big, t1), code(big, t2), code(big, t1)]).toEqual(['ok', 'ok', 'ok']);
    expect(big.verifications).toBe(2);
  });

  it('prepare: the signature is checked off the event loop and verify() then answers from the cache, with the same result', async () => {
    const v = new CommonIdentityVerifier(set, rules, ciOptions());
    const good = forge(header(), claims({ jti: 'p1' }));
    const bad = forge(header(), claims({ jti: 'p2' }), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const p = v.prepare(good, AS_ME);
    expect(p).toBeInstanceOf(Promise);
    expect(v.prepare(good, AS_ME)).toBe(p); // one check in flight per token
    await Promise.all([p, v.prepare(bad, AS_ME)]);
    expect(v.verifications).toBe(2);
    expect(code(v, good)).toBe('ok');
    expect(code(v, bad)).toBe('ERR_TOKEN_SIGNATURE');
    expect(code(v, good, { peerId: `spiffe://${A}/x` })).toBe('ERR_TOKEN_PEER_MISMATCH'); // per-request checks still run
    expect(v.verifications).toBe(2);
    expect(v.prepare(good, AS_ME)).toBeUndefined(); // cached: nothing to do
    // refused before the signature: decided (and cached) in place
    expect(v.prepare(forge(header({ alg: 'HS256' }), claims()), AS_ME)).toBeUndefined();
    expect(v.verifications).toBe(3);
  });

  it('a chain preparation that rejects leaves nothing in flight: the next prepare() starts afresh and verify() still decides', async () => {
    const v = new CommonIdentityVerifier(set, rules, ciOptions());
    const t = forge(header(), claims({ jti: 'r1' }));
    // the injected failure: the x5c chain's preparation rejects once
    type Prepared = { parsed?: unknown; wait?: Promise<void> };
    const internals = v as unknown as { prepareChain: (...a: unknown[]) => Prepared; preparing: Map<string, Promise<void>> };
    const original = internals.prepareChain.bind(v);
    let calls = 0;
    internals.prepareChain = (...a: unknown[]) => {
      const r = original(...a);
      return calls++ === 0 ? { ...r, wait: Promise.reject(new Error('injected')) } : r;
    };
    const failed = v.prepare(t, AS_ME);
    expect(failed).toBeInstanceOf(Promise);
    await expect(failed).rejects.toThrow('injected');
    expect(internals.preparing.size).toBe(0);
    const again = v.prepare(t, AS_ME);
    expect(again).not.toBe(failed);
    await again;
    expect(calls).toBe(2);
    expect(internals.preparing.size).toBe(0);
    expect(code(v, t)).toBe('ok');
    expect(v.verifications).toBe(1); // the second preparation verified it; verify() was a cache hit
  });

  it('a request memo carries the token hash from prepare to verify, and is never used for another token', async () => {
    const v = new CommonIdentityVerifier(set, rules, ciOptions());
    const good = forge(header(), claims({ jti: 'm1' }));
    const bad = forge(header(), claims({ jti: 'm2' }), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const memo: { token?: string; key?: string } = {};
    await v.prepare(good, { ...AS_ME, memo });
    expect(memo.token).toBe(good);
    expect(memo.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(v.verify(good, { ...AS_ME, memo }).ok).toBe(true);
    // the memo of the good token, handed to a request with another token: that token is hashed
    // itself and verified on its own merits, and the memo now belongs to it
    const r = v.verify(bad, { ...AS_ME, memo });
    expect(r.ok ? 'ok' : r.code).toBe('ERR_TOKEN_SIGNATURE');
    expect(memo.token).toBe(bad);
    // a memo that lies about its token's key is not consulted for a different token
    const forged = { token: good, key: memo.key };
    expect(v.verify(good, { ...AS_ME, memo: forged }).ok).toBe(false); // the key of `bad`: its cached failure
    const r2 = v.verify(bad, { ...AS_ME, memo: { token: good, key: 'x' } });
    expect(r2.ok ? 'ok' : r2.code).toBe('ERR_TOKEN_SIGNATURE');
  });

  it('a flood of one bad token costs one verification', () => {
    const v = new CommonIdentityVerifier(set, rules, ciOptions());
    const bad = forge(header(), claims(), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    for (let i = 0; i < 50; i++) expect(code(v, bad)).toBe('ERR_TOKEN_SIGNATURE');
    expect(v.verifications).toBe(1);
  });

  it('a bundle change of the issuer\'s trust domain re-verifies: a removed root stops the token', () => {
    const local = new BundleSet();
    local.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caA.cert] }));
    const v = new CommonIdentityVerifier(local, rules, ciOptions());
    const t = forge(header(), claims());
    expect(code(v, t)).toBe('ok');
    local.set(new Bundle(TrustDomain.parse(B), { x509Authorities: [caB.cert] })); // another trust domain: still cached
    expect(code(v, t)).toBe('ok');
    expect(v.verifications).toBe(1);
    local.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caB.cert] }));
    expect(code(v, t)).toBe('ERR_TOKEN_CHAIN');
  });
});

describe('the signer certificate\'s validity', () => {
  it('a token is refused once the x5c leaf has expired, whether the chain or the token was cached or not', async () => {
    const id = `spiffe://${A}/short-lived`;
    const short = await caA.issue(id, { notAfter: new Date(NOW + 60_000) });
    const k = createPrivateKey(short.keyPem);
    const t1 = forge(header({ x5c: x5c(short) }), claims({ iss: id, jti: 'a', exp: now + 300 }), k);
    const t2 = forge(header({ x5c: x5c(short) }), claims({ iss: id, jti: 'b', iat: now + 100, exp: now + 400 }), k);
    const v = new CommonIdentityVerifier(set, rules, ciOptions());
    expect(code(v, t1, { peerId: id })).toBe('ok'); // chain verified and cached at NOW
    const later = NOW + 60_000 + rules.skewSeconds * 1000 + 1000; // past notAfter and the skew
    expect(code(v, t1, { peerId: id, now: later })).toBe('ERR_TOKEN_CHAIN'); // cached token entry
    expect(code(v, t2, { peerId: id, now: later })).toBe('ERR_TOKEN_CHAIN'); // cached chain, new token
    expect(code(new CommonIdentityVerifier(set, rules, ciOptions()), t2, { peerId: id, now: later })).toBe('ERR_TOKEN_CHAIN'); // cold: checked at ctx.now
  });

  it('the chain is verified at the request clock, not the wall clock', async () => {
    const id = `spiffe://${A}/future`;
    const future = await caA.issue(id, { notBefore: new Date(NOW + 3600_000), notAfter: new Date(NOW + 7200_000) });
    const at = NOW + 3700_000;
    const t = forge(header({ x5c: x5c(future) }), claims({ iss: id, iat: Math.floor(at / 1000), exp: Math.floor(at / 1000) + 60 }), createPrivateKey(future.keyPem));
    expect(code(new CommonIdentityVerifier(set, rules, ciOptions()), t, { peerId: id, now: at })).toBe('ok');
    expect(code(new CommonIdentityVerifier(set, rules, ciOptions()), t, { peerId: id })).not.toBe('ok');
  });
});

describe('cheap before expensive', () => {
  const garbageCert = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]).toString('base64'); // a DER SEQUENCE, not a certificate

  it('x5c longer than the chain length limit, or an element holding two certificates, is refused', async () => {
    const v = new CommonIdentityVerifier(set, { ...rules, maxX5cCertificates: 5 }, ciOptions());
    expect(code(v, forge(header({ x5c: Array.from({ length: 6 }, () => x5c(me)[0]) }), claims()))).toBe('ERR_TOKEN_X5C_TOO_LARGE');
    const joined = Buffer.concat([me.cert.raw, caA.cert.raw]).toString('base64');
    expect(code(v, forge(header({ x5c: [joined] }), claims()))).toBe('ERR_TOKEN_X5C');
    expect(code(v, forge(header({ x5c: [joined] }), claims()))).toBe('ERR_TOKEN_X5C');
  });

  it('time, audience and peer are checked on the claims as sent before x5c is parsed', () => {
    const v = new CommonIdentityVerifier(set, rules, ciOptions());
    expect(code(v, forge(header({ x5c: [garbageCert] }), claims({ iat: now - 300, exp: now - 60 })))).toBe('ERR_TOKEN_EXPIRED');
    expect(code(v, forge(header({ x5c: [garbageCert] }), claims({ aud: 'spiffe://elsewhere.test' })))).toBe('ERR_TOKEN_AUDIENCE');
    expect(code(v, forge(header({ x5c: [garbageCert] }), claims()), { peerId: `spiffe://${A}/someone-else` })).toBe('ERR_TOKEN_PEER_MISMATCH');
    expect(code(v, forge(header({ x5c: [garbageCert] }), claims()))).toBe('ERR_TOKEN_X5C');
  });

  it('a token replayed from the wrong peer is not cached as a failure for its rightful one', () => {
    const v = new CommonIdentityVerifier(set, rules, ciOptions());
    const t = forge(header(), claims());
    expect(code(v, t, { peerId: `spiffe://${A}/thief` })).toBe('ERR_TOKEN_PEER_MISMATCH');
    expect(code(v, t)).toBe('ok');
  });
});

describe('cache memory', () => {
  it('the token cache is bounded by the bytes of its tokens, not only by their count', () => {
    const v = new CommonIdentityVerifier(set, rules, ciOptions({ cacheBytes: 64 * 1024 }));
    const big = (i: number) => forge(header(), claims({ jti: `big-${i}`, pad: 'x'.repeat(8000) }));
    const first = big(0);
    expect(code(v, first)).toBe('ok');
    for (let i = 1; i <= 20; i++) expect(code(v, big(i))).toBe('ok');
    expect(v.cachedBytes).toBeGreaterThan(0);
    expect(v.cachedBytes).toBeLessThanOrEqual(64 * 1024);
    const before = v.verifications;
    expect(code(v, first)).toBe('ok'); // evicted: verified again
    expect(v.verifications).toBe(before + 1);
  });
});

describe('header cache memory', () => {
  it('headers kept are bounded by their bytes: 20 junk headers at a 1 MiB token limit keep at most 1 MiB, the signer\'s header is kept again', () => {
    const v = new CommonIdentityVerifier(set, { ...rules, maxBytes: 1024 * 1024 }, ciOptions());
    expect(code(v, forge(header(), claims({ jti: 'h-0' })))).toBe('ok');
    const small = v.cachedHeaderBytes;
    expect(small).toBeGreaterThan(100);
    expect(small).toBeLessThan(4096);
    // accepted headers (alg, typ, x5c of base64 are all the header rules read) with 700 KB of
    // padding and an empty payload: refused for their claims, nothing verified, headers kept
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    for (let i = 0; i < 20; i++) expect(code(v, `${b64({ alg: 'ES256', typ: 'ci+jwt', x5c: ['AAAA'], pad: `${i}`.padEnd(700_000, 'x') })}.e30.AAAA`)).toBe('ERR_TOKEN_CLAIMS');
    expect(v.cachedHeaderBytes).toBeLessThanOrEqual(1024 * 1024);
    expect(code(v, forge(header(), claims({ jti: 'h-1' })))).toBe('ok');
    expect(v.cachedHeaderBytes).toBeGreaterThanOrEqual(small);
  });
});

describe('a bundle source without generations', () => {
  it('is asked again on every request: a root it stops returning stops the token', () => {
    let roots = [caA.cert];
    const source = { x509Authorities: (td: TrustDomain) => (td.name === A ? roots : undefined) };
    const v = new CommonIdentityVerifier(source, rules, ciOptions());
    const t = forge(header(), claims());
    expect(code(v, t)).toBe('ok');
    roots = [caB.cert];
    expect(code(v, t)).toBe('ERR_TOKEN_CHAIN');
    expect(code(v, forge(header(), claims({ jti: 'other' })))).toBe('ERR_TOKEN_CHAIN');
  });
});
