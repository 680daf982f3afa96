/**
 * jose (panva/jose) as an independent oracle for zonegate's tokens, both ways:
 * - what zonegate mints verifies with jose against the key zonegate publishes for it — a common
 *   identity minted at egress against the x5c leaf (the SVID the bundle vouches for), a
 *   re-issued JWT against the JWKS the ops server serves — and carries the claims zonegate
 *   promises (docs/common-identity.md "Minting", docs/rewrite.md "jwt");
 * - what zonegate reads: over crafted tokens (fast-check), every token jose refuses for its
 *   signature, algorithm or header is refused by zonegate too, in every profile, and a clean token
 *   jose accepts is accepted by zonegate.
 * jose is a development dependency only: src/ never imports it.
 */
import { createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, importX509, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle/bundle.js';
import { BundleSet } from '../../src/bundle/set.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { loadX509Svid } from '../../src/svid/local.js';
import { ALGORITHMS, JWT_SVID_ALGORITHMS } from '../../src/identity/jws.js';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { NOT_BEARER_TYPS, verifyJwt } from '../../src/identity/jwt.js';
import { verifyJwtSvid } from '../../src/identity/jwtsvid.js';
import { CommonIdentityVerifier } from '../../src/identity/verify.js';
import { verifyWirePact } from '../../src/identity/wirepact.js';
import { KeyRing, type ReissueAlgorithm } from '../../src/rewrite/keys.js';
import { Reissuer } from '../../src/rewrite/reissue.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { ciOptions, ciRules, wpRules, EGRESS_TTL_SECONDS } from '../helpers/identity.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';

const A = 'zone-a.test';
const B = 'zone-b.test';
const C = 'zone-c.test';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');

let caA: MemoryCA;
let caB: MemoryCA;

beforeAll(async () => {
  caA = await MemoryCA.create(A);
  caB = await MemoryCA.create(B);
});

describe('tokens zonegate mints verify with jose', () => {
  type KeyType = 'P-256' | 'RSA' | 'Ed25519';
  const ALG: Record<KeyType, string> = { 'P-256': 'ES256', RSA: 'RS256', Ed25519: 'EdDSA' };
  const servers: Started[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  /** zone B's zonegate, whose own SVID has a key of `keyType`, minting at egress. */
  async function egressZone(keyType: KeyType, egress: Record<string, unknown> = {}): Promise<{ s: Started; svid: Issued; id: string }> {
    const id = `spiffe://${B}/ns/default/sa/billing-${keyType.toLowerCase()}`;
    const svid = await caB.issue(id, { keyType });
    const dir = mkdtempSync(join(tmpdir(), 'zg-oracle-'));
    writeFileSync(join(dir, 'b.pem'), caB.certPem);
    writeFileSync(join(dir, 'a.pem'), caA.certPem);
    writeFileSync(join(dir, 'svid.pem'), svid.chainPem);
    writeFileSync(join(dir, 'svid.key'), svid.keyPem);
    const s = await startWith(
      {
        identity: { cert: 'svid.pem', key: 'svid.key' },
        trust: [
          { trustDomain: B, bundle: 'b.pem' },
          { trustDomain: A, bundle: 'a.pem' },
        ],
        commonIdentity: { egress: { defaultAudience: `spiffe://${C}`, ...egress } },
        rules: [{ name: 'out', action: 'allow', to: { context: { direction: 'egress' } } }],
      },
      dir,
    );
    servers.push(s);
    return { s, svid, id };
  }

  async function mintedAtEgress(s: Started, headers: Record<string, string> = {}): Promise<string> {
    const r = await s.check(checkRequest({ headers, context: { direction: 'egress' } }));
    if (!r.ok) throw r.error;
    const resp = r.response as { status: { code: number; message?: string }; ok_response: { headers: { header: { key: string; value: string } }[] } };
    expect(resp.status).toMatchObject({ code: 0 });
    return resp.ok_response.headers.find((h) => h.header.key === 'x-common-identity')!.header.value;
  }

  /** jose's verdict with the x5c leaf as the key, after checking that the leaf is the SVID the bundle vouches for. */
  async function joseVerifies(token: string, svid: Issued, alg: string, o: { issuer: string; audience: string; ttl: number }) {
    const header = decodeProtectedHeader(token);
    expect(header).toMatchObject({ alg, typ: 'ci+jwt' });
    const x5c = header.x5c!;
    expect(Buffer.from(x5c[0]!, 'base64').equals(svid.cert.raw)).toBe(true);
    const leaf = new X509Certificate(Buffer.from(x5c[0]!, 'base64'));
    expect(leaf.verify(caB.cert.publicKey)).toBe(true);
    const key = await importX509(leaf.toString(), alg);
    return jwtVerify(token, key, { algorithms: [alg], typ: 'ci+jwt', issuer: o.issuer, audience: o.audience, requiredClaims: ['iss', 'sub', 'aud', 'iat', 'exp', 'jti'], maxTokenAge: `${o.ttl}s` });
  }

  it.each(['P-256', 'RSA', 'Ed25519'] as const)('a common identity minted at egress with a %s SVID key: jose verifies it against the x5c leaf, with the promised claims', async (keyType) => {
    const { s, svid, id } = await egressZone(keyType);
    const token = await mintedAtEgress(s);
    const { payload } = await joseVerifies(token, svid, ALG[keyType], { issuer: id, audience: `spiffe://${C}`, ttl: 60 });
    // the workload itself acts, for the default audience, for commonIdentity.egress.ttlSeconds (60)
    expect(payload).toMatchObject({ iss: id, sub: id, aud: `spiffe://${C}` });
    expect(payload.exp! - payload.iat!).toBe(60);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(10);
    expect(payload.jti).toMatch(UUID);
    expect(payload).not.toHaveProperty('act');
    expect(payload).not.toHaveProperty('cnf');
    // a token tampered after minting is refused by jose: the oracle can say no
    const [h, , sig] = token.split('.');
    const forged = `${h}.${b64(JSON.stringify({ ...payload, sub: 'admin' }))}.${sig}`;
    await expect(joseVerifies(forged, svid, ALG[keyType], { issuer: id, audience: `spiffe://${C}`, ttl: 60 })).rejects.toMatchObject({ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  });

  it('on behalf of a forwarded caller, bound to the SVID with cnf: act names the caller, copied claims name their signer', async () => {
    const { s, svid, id } = await egressZone('P-256', { bindCnf: true, ttlSeconds: 30, copyClaims: ['email'] });
    const FRONTEND = `spiffe://${A}/ns/web/sa/frontend`;
    const frontend = await caA.issue(FRONTEND);
    const caller = mintCommonIdentity(loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem)), {
      ttlSeconds: EGRESS_TTL_SECONDS,
      sub: 'user:alice',
      aud: `spiffe://${B}`,
      extra: { email: 'alice@example.test', roles: ['admin'] },
      onBehalfOf: { iss: `spiffe://${A}/ns/web/sa/gateway` },
    });
    const token = await mintedAtEgress(s, { 'x-common-identity': caller });
    const { payload } = await joseVerifies(token, svid, 'ES256', { issuer: id, audience: `spiffe://${C}`, ttl: 30 });
    expect(payload).toMatchObject({
      iss: id,
      sub: 'user:alice',
      email: 'alice@example.test',
      act: { sub: FRONTEND, claims: { email: 'alice@example.test' }, act: { sub: `spiffe://${A}/ns/web/sa/gateway` } },
      cnf: { 'x5t#S256': createHash('sha256').update(svid.cert.raw).digest('base64url') },
    });
    // roles were not in copyClaims: the caller's signer asserted them, not us
    expect(payload).not.toHaveProperty('roles');
    expect(payload.exp! - payload.iat!).toBe(30);
  });

  it.each(['ES256', 'EdDSA'] as const)('a JWT re-issued with %s verifies with jose against the JWKS zonegate publishes, with the promised claims', async (alg: ReissueAlgorithm) => {
    const now = Date.now();
    const keys = new KeyRing({ algorithm: alg, everyMs: 3_600_000, publishAheadMs: 600_000, retainMs: 900_000 }, now);
    const reissuer = new Reissuer(keys, { issuer: 'https://zonegate.zone-b.test', ttlSeconds: 120, reuseFraction: 0.5, cacheSize: 100 });
    const identity = { sub: 'user:alice', peer: `spiffe://${A}/ns/web/sa/frontend`, act: [`spiffe://${A}/ns/web/sa/frontend`] };
    const token = reissuer.token(identity, 'billing-api', now);
    const jwks = createLocalJWKSet(keys.jwks(now) as never);
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { algorithms: [alg], typ: 'JWT', issuer: 'https://zonegate.zone-b.test', audience: 'billing-api', currentDate: new Date(now), requiredClaims: ['iat', 'exp', 'jti'] });
    expect(protectedHeader).toMatchObject({ alg, typ: 'JWT', kid: keys.current(now).kid });
    expect(payload).toMatchObject({ ...identity, iss: 'https://zonegate.zone-b.test', aud: 'billing-api' });
    expect(payload.exp! - payload.iat!).toBe(120);
    expect(payload.jti).toMatch(UUID);
    // another ring's JWKS does not verify it
    const other = new KeyRing({ algorithm: alg, everyMs: 3_600_000, publishAheadMs: 600_000, retainMs: 900_000 }, now);
    await expect(jwtVerify(token, createLocalJWKSet(other.jwks(now) as never), { currentDate: new Date(now) })).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });
});

describe('whatever jose refuses for signature, algorithm or header reasons, zonegate refuses', () => {
  const NOW = Date.now();
  const now = Math.floor(NOW / 1000);
  const ME = `spiffe://${A}/ns/web/sa/frontend`;
  const jwtKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const strangerEc = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const strangerRsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
  const ed = generateKeyPairSync('ed25519').privateKey;

  interface Profile {
    readonly name: string;
    readonly header: Record<string, unknown>;
    readonly claims: Record<string, unknown>;
    /** The key zonegate trusts for this token (jose gets its public half). */
    readonly key: KeyObject;
    readonly algorithms: readonly string[];
    readonly verdict: (token: string) => string;
  }
  const profiles: Profile[] = [];
  const code = (r: { ok: boolean; code?: string }) => (r.ok ? 'ok' : r.code!);

  beforeAll(async () => {
    const svid = await caA.issue(ME);
    const rsaSvid = await caA.issue(`spiffe://${A}/ns/web/sa/rsa`, { keyType: 'RSA' });
    const set = new BundleSet();
    set.set(new Bundle(TrustDomain.parse(A), { x509Authorities: [caA.cert], jwtAuthorities: [{ kid: 'k1', key: jwtKey.publicKey, jwk: jwtKey.publicKey.export({ format: 'jwk' }) }] }));
    const wpCa = await MemoryCA.create('wirepact.invalid', { subject: 'O=WirePact PKI, CN=WirePact PKI CA' });
    const translator = await wpCa.issue(undefined, { keyType: 'RSA', subject: 'O=WirePact PKI, CN=translator' });
    const ci = (key: KeyObject, leaf: Issued, iss: string, alg: string): Profile => ({
      name: `common identity (${alg})`,
      header: { alg, typ: 'ci+jwt', x5c: [leaf.cert.raw.toString('base64')] },
      claims: { iss, sub: 'alice', aud: `spiffe://${B}`, iat: now, exp: now + 60 },
      key,
      algorithms: ALGORITHMS,
      // a fresh verifier per token: no cache answers for another token
      verdict: (t) => code(new CommonIdentityVerifier(set, ciRules({ audiences: new Set([`spiffe://${B}`]) }), ciOptions()).verify(t, { now: NOW, peerId: iss })),
    });
    profiles.push(
      ci(createPrivateKey(svid.keyPem), svid, ME, 'ES256'),
      ci(createPrivateKey(rsaSvid.keyPem), rsaSvid, `spiffe://${A}/ns/web/sa/rsa`, 'RS256'),
      {
        name: 'JWT-SVID',
        header: { alg: 'ES256', typ: 'JWT', kid: 'k1' },
        claims: { sub: `spiffe://${A}/api`, aud: `spiffe://${B}`, exp: now + 60 },
        key: jwtKey.privateKey,
        algorithms: JWT_SVID_ALGORITHMS,
        verdict: (t) => code(verifyJwtSvid(t, set, { audiences: new Set([`spiffe://${B}`]), skewSeconds: 30, maxBytes: 16 * 1024 }, NOW)),
      },
      {
        name: 'OIDC bearer JWT',
        header: { alg: 'ES256', typ: 'JWT', kid: 'k1' },
        claims: { iss: 'https://idp.test', sub: 'alice', aud: 'zonegate', iat: now, exp: now + 60 },
        key: jwtKey.privateKey,
        algorithms: ALGORITHMS,
        verdict: (t) =>
          code(verifyJwt(t, (kid) => (kid === 'k1' ? { key: jwtKey.publicKey } : undefined), { algorithms: new Set(ALGORITHMS), maxBytes: 16 * 1024, skewSeconds: 30, issuers: new Set(['https://idp.test']), audiences: new Set(['zonegate']), refusedTyps: NOT_BEARER_TYPS }, NOW)),
      },
      {
        name: 'WirePact',
        header: { alg: 'RS256', typ: 'JWT', x5c: [translator.cert.raw.toString('base64'), wpCa.cert.raw.toString('base64')] },
        claims: { sub: 'user-1', iss: 'wp', aud: ['WirePact'], iat: now, exp: now + 60 },
        key: createPrivateKey(translator.keyPem),
        algorithms: ['RS256'],
        verdict: (t) => code(verifyWirePact(t, wpRules([wpCa.cert], ['wp']), NOW)),
      },
    );
  });

  /** A JWS signature as `alg` names it, made with `key` (whatever the key's own type). */
  function signature(alg: string, key: KeyObject | 'public-as-hmac', profileKey: KeyObject, input: string): Buffer {
    if (key === 'public-as-hmac') {
      // the classic confusion: the verifier's public key used as an HMAC secret
      const secret = createPublicKey(profileKey).export({ format: 'pem', type: 'spki' });
      return createHmac('sha256', secret).update(input).digest();
    }
    const bits = /\d+$/.exec(alg)?.[0] ?? '256';
    const t = key.asymmetricKeyType;
    if (t === 'ed25519') return sign(null, Buffer.from(input), key);
    if (t === 'ec') return sign(`sha${bits}`, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return sign(`sha${bits}`, Buffer.from(input), alg.startsWith('PS') ? { key, padding: 6, saltLength: Number(bits) / 8 } : key);
  }

  const mutation = fc.record({
    // each part left as the profile has it about half the time, so clean tokens are frequent too
    alg: fc.option(fc.constantFrom('none', 'HS256', 'ES256', 'ES384', 'ES512', 'RS256', 'RS512', 'PS256', 'EdDSA', 'es256', 'ES256 ', ''), { nil: undefined, freq: 2 }),
    header: fc.option(
      fc.record(
        {
          crit: fc.constantFrom(['b64'], ['exp'], [], 'b64', ['b64', 'b64']),
          b64: fc.constantFrom(true, false, 'false'),
          jku: fc.constant('https://attacker.test/jwks'),
          jwk: fc.constant({ kty: 'oct', k: 'AAAA' }),
          typ: fc.constantFrom('JWT', 'ci+jwt', 'dpop+jwt'),
        },
        { requiredKeys: [] },
      ),
      { nil: undefined, freq: 2 },
    ),
    signer: fc.oneof(fc.constant('profile'), fc.constantFrom('stranger-ec', 'stranger-rsa', 'p384', 'ed25519', 'public-as-hmac')),
    post: fc.oneof(fc.constant('none'), fc.constantFrom('flip-signature', 'flip-payload', 'flip-header', 'pad', 'standard-base64', 'drop-signature', 'truncate-signature', 'extra-part', 'swap-payload')),
  });

  type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;
  function craft(p: Profile, m: Mutation): string {
    const header: Record<string, unknown> = { ...p.header, ...(m.alg !== undefined ? { alg: m.alg } : {}), ...m.header };
    const encodedPayload = b64(JSON.stringify(p.claims));
    const h = b64(JSON.stringify(header));
    // with crit ["b64"] and b64 false (RFC 7797), jose verifies over the raw payload: sign what it reads
    const unencoded = Array.isArray(header.crit) && header.crit.includes('b64') && header.b64 === false;
    const input = `${h}.${unencoded ? JSON.stringify(p.claims) : encodedPayload}`;
    const keys: Record<string, KeyObject | 'public-as-hmac'> = { profile: p.key, 'stranger-ec': strangerEc, 'stranger-rsa': strangerRsa, p384, ed25519: ed, 'public-as-hmac': 'public-as-hmac' };
    let sig: string;
    try {
      sig = b64(signature(String(header.alg), keys[m.signer]!, p.key, input));
    } catch {
      sig = 'AAAA';
    }
    const flip = (s: string) => (s.length === 0 ? 'A' : s.slice(0, -2) + (s.at(-2) === 'A' ? 'B' : 'A') + s.at(-1));
    const payload = unencoded ? JSON.stringify(p.claims) : encodedPayload;
    switch (m.post) {
      case 'flip-signature':
        return `${h}.${payload}.${flip(sig)}`;
      case 'flip-payload':
        return `${h}.${flip(payload)}.${sig}`;
      case 'flip-header':
        return `${flip(h)}.${payload}.${sig}`;
      case 'pad':
        return `${h}.${payload}.${sig}==`;
      case 'standard-base64':
        return `${h}.${payload}.${Buffer.from(sig, 'base64url').toString('base64')}`;
      case 'drop-signature':
        return `${h}.${payload}.`;
      case 'truncate-signature':
        return `${h}.${payload}.${sig.slice(0, sig.length >> 1)}`;
      case 'extra-part':
        return `${h}.${payload}.${sig}.${sig}`;
      case 'swap-payload':
        return `${h}.${b64(JSON.stringify({ ...p.claims, sub: 'admin' }))}.${sig}`;
      default:
        return `${h}.${payload}.${sig}`;
    }
  }

  /** jose's verdict on the JWS alone (signature, algorithm, header): true when it verifies. */
  async function joseAccepts(p: Profile, token: string): Promise<boolean> {
    try {
      await compactVerify(token, createPublicKey(p.key), { algorithms: [...p.algorithms] });
      return true;
    } catch {
      return false;
    }
  }

  it('the genuine token of every profile: both accept', async () => {
    for (const p of profiles) {
      const t = craft(p, { alg: undefined, header: undefined, signer: 'profile', post: 'none' });
      expect({ profile: p.name, jose: await joseAccepts(p, t), zonegate: p.verdict(t) }).toEqual({ profile: p.name, jose: true, zonegate: 'ok' });
    }
  });

  it('crafted tokens: a jose refusal is a zonegate refusal; a clean token jose accepts, zonegate accepts', async () => {
    let refusedByJose = 0;
    let acceptedByJose = 0;
    let clean = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...profiles.keys()), mutation, async (i, m) => {
        const p = profiles[i]!;
        const t = craft(p, m);
        const jose = await joseAccepts(p, t);
        const zg = p.verdict(t);
        if (!jose) {
          refusedByJose++;
          expect({ profile: p.name, mutation: m, zonegate: zg }).not.toMatchObject({ zonegate: 'ok' });
          return;
        }
        acceptedByJose++;
        // Clean: the profile's own header members, its key, an alg it allows, nothing changed after signing.
        if (m.header === undefined && m.post === 'none' && m.signer === 'profile' && (m.alg === undefined || m.alg === p.header.alg)) {
          clean++;
          expect({ profile: p.name, mutation: m, zonegate: zg }).toMatchObject({ zonegate: 'ok' });
        }
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 400), seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) },
    );
    // both sides of the property were reached
    expect(refusedByJose).toBeGreaterThan(0);
    expect(acceptedByJose).toBeGreaterThan(0);
    expect(clean).toBeGreaterThan(0);
  });
});
