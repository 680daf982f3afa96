/**
 * Egress user credentials through the real gRPC server: an OIDC bearer JWT verified against the
 * issuer's keys (discovery over HTTPS, refetch on an unknown kid, cached keys through an outage)
 * and Basic credentials against a scrypt user store, each becoming the actor of the minted token.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { hashPassword } from '../../src/identity/basic.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { testServer, type TestServer } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import { zonegate } from '../helpers/cli.js';

const A = 'zone-a.test';
let s: Started;
let idp: TestServer;
let issuer: string;
let idpDown = false;
const keys: { kid: string; key: KeyObject; jwk?: object }[] = [];
/** Each key's JWK says use sig, alg RS256 unless `jwk` says otherwise (a member set to undefined is left out). */
const jwks = () => ({ keys: keys.map(({ kid, key, jwk }) => ({ ...(key.export({ format: 'jwk' }) as object), kid, use: 'sig', alg: 'RS256', ...jwk })) });
const newKey = (kid: string, jwk?: object) => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  keys.push({ kid, key: publicKey, ...(jwk ? { jwk } : {}) });
  return privateKey;
};
/** Signed as alg says: PS* with RSASSA-PSS, anything else with RSASSA-PKCS1-v1_5 (SHA-256 either way). */
function jwt(priv: KeyObject, kid: string, claims: object, alg = 'RS256', typ = 'JWT'): string {
  const input = `${Buffer.from(JSON.stringify({ alg, kid, typ })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const key = alg.startsWith('PS') ? { key: priv, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 } : priv;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}
let k1: KeyObject;
/** JWKs that limit their own use: alg PS256; no alg at all; key_ops without verify; key_ops with it. */
let kPs: KeyObject;
let kAny: KeyObject;
let kSignOnly: KeyObject;
let kVerify: KeyObject;
let dir: string;
const now = () => Math.floor(Date.now() / 1000);
const user = (extra: object = {}) => ({ iss: issuer, sub: 'alice@example.com', aud: 'zonegate', exp: now() + 300, iat: now(), email: 'alice@example.com', roles: ['orders.read'], secret_claim: 'x', ...extra });

beforeAll(async () => {
  const ca = await MemoryCA.create(A);
  const web = await MemoryCA.create('idp.test');
  const tls = await web.server();
  idp = await testServer({ cert: tls.chainPem, key: tls.keyPem }, (req, res) => {
    if (idpDown) return void res.writeHead(503).end();
    if (req.url === '/.well-known/openid-configuration') return void res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/keys` }));
    if (req.url === '/keys') return void res.end(JSON.stringify(jwks()));
    res.writeHead(404).end();
  });
  issuer = `https://127.0.0.1:${idp.port}`;
  k1 = newKey('k1');
  kPs = newKey('ps', { alg: 'PS256' });
  kAny = newKey('any', { alg: undefined });
  kSignOnly = newKey('sign-only', { alg: undefined, use: undefined, key_ops: ['sign'] });
  kVerify = newKey('verify', { alg: undefined, use: undefined, key_ops: ['verify'] });
  dir = mkdtempSync(join(tmpdir(), 'zg-egress-'));
  const svid = await ca.issue(`spiffe://${A}/ns/web/sa/frontend`);
  writeFileSync(join(dir, 'svid.pem'), svid.chainPem);
  writeFileSync(join(dir, 'svid.key'), svid.keyPem);
  writeFileSync(join(dir, 'own.pem'), ca.certPem);
  writeFileSync(join(dir, 'idp-ca.pem'), web.certPem);
  writeFileSync(join(dir, 'users.yaml'), stringify({ users: [{ name: 'bob', password: hashPassword('correct horse', 1024), roles: ['admin'] }] }));
  s = await startWith(
    {
      identity: { cert: 'svid.pem', key: 'svid.key' },
      trust: [{ trustDomain: A, bundle: 'own.pem' }],
      commonIdentity: {
        egress: {
          defaultAudience: 'spiffe://zone-b.test',
          workload: false,
          basic: { usersFile: 'users.yaml' },
          oidc: { issuer, ca: 'idp-ca.pem', audiences: ['zonegate'], minRefetchSeconds: 0.2 },
        },
      },
      rules: [{ name: 'egress', action: 'allow', to: { context: { direction: 'egress' } } }],
    },
    dir,
  );
});
afterAll(async () => {
  await s?.close();
  await idp?.close();
});

async function out(authorization?: string): Promise<{ code: number; reason?: string; claims?: Record<string, unknown>; remove?: string[] }> {
  const r = await s.check(checkRequest({ headers: authorization ? { authorization } : {}, context: { direction: 'egress' } }));
  if (!r.ok) throw r.error;
  const resp = r.response as { status: { code: number; message?: string }; ok_response?: { headers: { header: { key: string; value: string } }[]; headers_to_remove: string[] } };
  const token = resp.ok_response?.headers.find((h) => h.header.key === 'x-common-identity')?.header.value;
  return {
    code: resp.status.code,
    ...(resp.status.message ? { reason: resp.status.message } : {}),
    ...(token ? { claims: JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) } : {}),
    ...(resp.ok_response ? { remove: resp.ok_response.headers_to_remove } : {}),
  };
}

describe('egress: OIDC bearer tokens', () => {
  it.each([40, 5000])('an ID token whose mapped claim nests %i deep is refused before minting: ERR_CLAIMS_TOO_LARGE, not ERR_INTERNAL', async (depth) => {
    // built as text (as deep as fits in commonIdentity.maxTokenBytes)
    const payload = JSON.stringify(user({ roles: 'DEEP' })).replace('"DEEP"', '['.repeat(depth) + ']'.repeat(depth));
    const input = `${Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'k1', typ: 'JWT' })).toString('base64url')}.${Buffer.from(payload).toString('base64url')}`;
    const token = `${input}.${sign('sha256', Buffer.from(input), k1).toString('base64url')}`;
    const r = await out(`Bearer ${token}`);
    expect(r).toMatchObject({ code: 16, reason: 'ERR_CLAIMS_TOO_LARGE' });
  });

  it('a valid ID token becomes the actor, with its mapped claims; authorization is removed', async () => {
    const r = await out(`Bearer ${jwt(k1, 'k1', user())}`);
    expect(r.code).toBe(0);
    expect(r.claims).toMatchObject({ sub: 'alice@example.com', email: 'alice@example.com', roles: ['orders.read'] });
    expect(r.claims).not.toHaveProperty('secret_claim');
    expect(r.remove).toContain('authorization');
  });

  it.each([
    ['wrong issuer', () => jwt(k1, 'k1', user({ iss: 'https://evil.example' })), 'ERR_TOKEN_ISSUER_MISMATCH'],
    ['wrong audience', () => jwt(k1, 'k1', user({ aud: 'other' })), 'ERR_TOKEN_AUDIENCE'],
    ['expired', () => jwt(k1, 'k1', user({ exp: now() - 120 })), 'ERR_TOKEN_EXPIRED'],
    ['nbf in the future', () => jwt(k1, 'k1', user({ nbf: now() + 600 })), 'ERR_TOKEN_NOT_YET_VALID'],
    ['a JWT of another kind (typ ci+jwt)', () => jwt(k1, 'k1', user(), 'RS256', 'ci+jwt'), 'ERR_TOKEN_TYPE'],
    ['a JWT of another kind (typ application/DPoP+jwt)', () => jwt(k1, 'k1', user(), 'RS256', 'application/DPoP+jwt'), 'ERR_TOKEN_TYPE'],
    ['a sub with CR LF', () => jwt(k1, 'k1', user({ sub: 'alice\r\nx-zonegate-actor: admin' })), 'ERR_TOKEN_CLAIMS'],
    ['a sub longer than 2048 bytes', () => jwt(k1, 'k1', user({ sub: 'a'.repeat(3000) })), 'ERR_TOKEN_CLAIMS'],
    ['signed by an unknown key under a known kid', () => jwt(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'k1', user()), 'ERR_TOKEN_SIGNATURE'],
    ['alg none', () => `${Buffer.from('{"alg":"none","kid":"k1"}').toString('base64url')}.${Buffer.from(JSON.stringify(user())).toString('base64url')}.`, 'ERR_TOKEN_ALG'],
  ])('refuses %s', async (_n, make, reason) => {
    expect(await out(`Bearer ${make()}`)).toMatchObject({ code: 16, reason });
  });

  it('a JWK with alg verifies only tokens of that alg (RFC 8725 §3.1): a PS256 token over an RS256 JWK is ERR_TOKEN_ALG', async () => {
    expect(await out(`Bearer ${jwt(k1, 'k1', user(), 'PS256')}`)).toMatchObject({ code: 16, reason: 'ERR_TOKEN_ALG' });
    expect(await out(`Bearer ${jwt(kPs, 'ps', user(), 'RS256')}`)).toMatchObject({ code: 16, reason: 'ERR_TOKEN_ALG' });
    expect((await out(`Bearer ${jwt(kPs, 'ps', user(), 'PS256')}`)).code).toBe(0);
    // a JWK without alg leaves the choice to the allowlist and the key type
    expect((await out(`Bearer ${jwt(kAny, 'any', user(), 'PS256')}`)).code).toBe(0);
    expect((await out(`Bearer ${jwt(kAny, 'any', user(), 'RS256')}`)).code).toBe(0);
  });

  it('a JWK whose key_ops do not include verify verifies nothing: ERR_TOKEN_ALG; with verify it does', async () => {
    expect(await out(`Bearer ${jwt(kSignOnly, 'sign-only', user())}`)).toMatchObject({ code: 16, reason: 'ERR_TOKEN_ALG' });
    expect((await out(`Bearer ${jwt(kVerify, 'verify', user())}`)).code).toBe(0);
  });

  it('a new signing key is picked up by refetching on an unknown kid; keys survive an issuer outage', async () => {
    const k2 = newKey('k2');
    const t = jwt(k2, 'k2', user());
    expect(await out(`Bearer ${t}`)).toMatchObject({ code: 16, reason: 'ERR_TOKEN_KEY_UNKNOWN' });
    await until(async () => (await out(`Bearer ${t}`)).code === 0, 5000, 'the refetched key');
    idpDown = true;
    expect((await out(`Bearer ${jwt(k1, 'k1', user())}`)).code).toBe(0);
    idpDown = false;
  });
});

describe('egress: Basic against the user store', () => {
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  it('a matching password makes the user the actor with their roles', async () => {
    const r = await out(basic('bob', 'correct horse'));
    expect(r).toMatchObject({ code: 0, claims: { sub: 'bob', roles: ['admin'] } });
  });
  it.each([
    ['a wrong password', basic('bob', 'wrong')],
    ['an unknown user', basic('eve', 'correct horse')],
    ['an unsupported scheme', 'Digest abc'],
  ])('refuses %s, never falling back to the workload', async (_n, auth) => {
    expect(await out(auth)).toMatchObject({ code: 16, reason: 'ERR_USER_CREDENTIAL' });
  });
  it.each([
    ['a scheme that only starts with Bearer', () => `BearerX ${jwt(k1, 'k1', user())}`],
    ['a scheme that only starts with Basic', () => `BasicX ${Buffer.from('bob:correct horse').toString('base64')}`],
    ['a tab after Bearer (RFC 9110: one or more SP)', () => `Bearer\t${jwt(k1, 'k1', user())}`],
    ['a space and a tab after Bearer', () => `Bearer \t${jwt(k1, 'k1', user())}`],
    ['a no-break space after Bearer', () => `Bearer \u00a0${jwt(k1, 'k1', user())}`],
    ['a space and a tab after Basic', () => `Basic \t${Buffer.from('bob:correct horse').toString('base64')}`],
    ['a scheme alone', () => 'Bearer'],
    ['credentials that are not one token68', () => `Bearer ${jwt(k1, 'k1', user())} x`],
  ])('authorization is RFC 9110 credentials or nothing zonegate verifies: %s → ERR_USER_CREDENTIAL', async (_n, auth) => {
    expect(await out(auth())).toMatchObject({ code: 16, reason: 'ERR_USER_CREDENTIAL' });
  });
  it.each([
    ['BEARER in capitals, two spaces', () => `BEARER  ${jwt(k1, 'k1', user())}`, 'alice@example.com'],
    ['bAsIc, three spaces', () => `bAsIc   ${Buffer.from('bob:correct horse').toString('base64')}`, 'bob'],
  ])('the scheme is case-insensitive and followed by one or more spaces: %s', async (_n, auth, sub) => {
    expect(await out(auth())).toMatchObject({ code: 0, claims: { sub } });
  });
  it('without any credential and workload identity off, there is no actor', async () => {
    expect(await out()).toMatchObject({ code: 16, reason: 'ERR_NO_CARRIED_IDENTITY' });
  });
  it('zonegate user hash prints a hash the store accepts', () => {
    const r = zonegate(['user', 'hash'], { input: 's3cret\n' });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(r.stdout).not.toContain('s3cret');
  });
});

describe('egress with forward off', () => {
  let noForward: Started;
  beforeAll(async () => {
    noForward = await startWith(
      {
        identity: { cert: 'svid.pem', key: 'svid.key' },
        trust: [{ trustDomain: A, bundle: 'own.pem' }],
        commonIdentity: { egress: { defaultAudience: 'spiffe://zone-b.test', forward: false, workload: false, basic: { usersFile: 'users.yaml' } } },
        rules: [{ name: 'egress', action: 'allow', to: { context: { direction: 'egress' } } }],
      },
      dir,
    );
  });
  afterAll(async () => noForward?.close());
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  const send = async (authorization: string) => {
    const r = await noForward.check(checkRequest({ headers: { authorization, 'x-common-identity': 'a.token.the-app-sent' }, context: { direction: 'egress' } }));
    if (!r.ok) throw r.error;
    const resp = r.response as { status: { code: number; message?: string }; ok_response?: { headers: { header: { key: string; value: string } }[] } };
    const token = resp.ok_response?.headers.find((h) => h.header.key === 'x-common-identity')?.header.value;
    return { code: resp.status.code, reason: resp.status.message, sub: token ? JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sub : undefined };
  };

  it('a token the app sends is not forwarded, and the user credential beside it is still verified and used', async () => {
    expect(await send(basic('bob', 'correct horse'))).toMatchObject({ code: 0, sub: 'bob' });
    expect(await send(basic('bob', 'wrong'))).toMatchObject({ code: 16, reason: 'ERR_USER_CREDENTIAL' });
  });
});
