/**
 * The OIDC issuer's JWKS endpoint fails in every way while zonegate holds its keys: cached keys
 * keep verifying user tokens, an unknown kid is denied (never fetched on the request path), the
 * failures are logged, and a JWKS with too many keys never replaces the good one.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCA } from '../../src/demo/pki.js';
import { testServer, type TestServer } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';

const A = 'zone-a.test';
type Mode = 'ok' | 'reset' | 'stall' | 'garbage' | 'http500' | 'too-many-keys';
let mode: Mode = 'ok';
let s: Started;
let idp: TestServer;
let issuer: string;
const stalled = new Set<ServerResponse>();
const { privateKey: k1, publicKey: pub1 } = generateKeyPairSync('rsa', { modulusLength: 2048 });
/** A 1024-bit RSA key the issuer publishes beside k1: held, but every token it signs is refused. */
const { privateKey: weak, publicKey: weakPub } = generateKeyPairSync('rsa', { modulusLength: 1024 });
const jwk = (kid: string, key: KeyObject) => ({ ...(key.export({ format: 'jwk' }) as object), kid, use: 'sig', alg: 'RS256' });

function jwt(priv: KeyObject, kid: string): string {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: issuer, sub: 'alice@example.com', aud: 'zonegate', exp: now + 300, iat: now };
  const input = `${Buffer.from(JSON.stringify({ alg: 'RS256', kid, typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), priv).toString('base64url')}`;
}

/** A zonegate whose egress verifies users of the issuer served with `web`'s certificate; `oidc` completes commonIdentity.egress.oidc. */
async function startWithIdp(ca: MemoryCA, web: MemoryCA, oidc: Record<string, unknown>): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'zg-oidc-'));
  const svid = await ca.issue(`spiffe://${A}/ns/web/sa/frontend`);
  writeFileSync(join(dir, 'svid.pem'), svid.chainPem);
  writeFileSync(join(dir, 'svid.key'), svid.keyPem);
  writeFileSync(join(dir, 'own.pem'), ca.certPem);
  writeFileSync(join(dir, 'idp-ca.pem'), web.certPem);
  return startWith(
    {
      identity: { cert: 'svid.pem', key: 'svid.key' },
      trust: [{ trustDomain: A, bundle: 'own.pem' }],
      federation: { fetch: { connectTimeoutMs: 300, totalTimeoutMs: 600 } },
      commonIdentity: {
        egress: { defaultAudience: 'spiffe://zone-b.test', workload: false, oidc: { ca: 'idp-ca.pem', audiences: ['zonegate'], ...oidc } },
      },
      rules: [{ name: 'egress', action: 'allow', to: { context: { direction: 'egress' } } }],
    },
    dir,
  );
}

beforeAll(async () => {
  const ca = await MemoryCA.create(A);
  const web = await MemoryCA.create('idp.test');
  const tls = await web.server();
  idp = await testServer({ cert: tls.chainPem, key: tls.keyPem }, (req, res) => {
    if (req.url === '/.well-known/openid-configuration') return void res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/keys` }));
    if (mode === 'ok') return void res.end(JSON.stringify({ keys: [jwk('k1', pub1), jwk('weak', weakPub)] }));
    if (mode === 'reset') return void res.socket?.destroy();
    if (mode === 'stall') return void stalled.add(res);
    if (mode === 'garbage') return void res.end('<html>maintenance</html>');
    if (mode === 'http500') return void res.writeHead(500).end();
    res.end(JSON.stringify({ keys: Array.from({ length: 1001 }, (_, i) => jwk(`x${i}`, pub1)) }));
  });
  issuer = `https://127.0.0.1:${idp.port}`;
  s = await startWithIdp(ca, web, { issuer, refreshSeconds: 0.2, minRefetchSeconds: 0.1 });
});
afterAll(async () => {
  for (const r of stalled) r.destroy();
  await s?.close();
  await idp?.close();
});

async function out(token: string): Promise<string> {
  const r = await s.check(checkRequest({ headers: { authorization: `Bearer ${token}` }, context: { direction: 'egress' } }));
  if (!r.ok) return `error ${r.error.code}`;
  const st = r.response.status as { code: number; message?: string };
  return st.code === 0 ? 'allow' : String(st.message);
}
const failures = () => s.logs.filter((l) => l.msg === 'identity keys not refreshed');

describe('OIDC JWKS endpoint down', () => {
  it.each(['reset', 'stall', 'garbage', 'http500', 'too-many-keys'] as const)('JWKS endpoint %s: cached keys keep verifying; unknown kids are denied; the failure is logged', async (m) => {
    expect(await out(jwt(k1, 'k1'))).toBe('allow');
    const before = failures().length;
    mode = m;
    await until(() => failures().length > before + 1, 10_000, `failed refreshes (${m})`);
    if (m === 'too-many-keys') expect(String(failures().pop()?.detail)).toMatch(/ERR_BUNDLE_TOO_LARGE/);
    expect(await out(jwt(k1, 'k1'))).toBe('allow');
    const { privateKey: other } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(await out(jwt(other, 'k9'))).toBe('ERR_TOKEN_KEY_UNKNOWN');
    mode = 'ok';
    for (const r of stalled) r.destroy();
    stalled.clear();
  });
});

describe('OIDC key strength', () => {
  it('a token signed by a 1024-bit RSA key of the JWKS is denied ERR_KEY_TOO_WEAK; the issuer\'s other keys still work', async () => {
    expect(await out(jwt(weak, 'weak'))).toBe('ERR_KEY_TOO_WEAK');
    expect(await out(jwt(k1, 'k1'))).toBe('allow');
  });
});

describe('OIDC key maximum age', () => {
  // Its own issuer and zonegate: keys at most 2 s old, 2 s more while the issuer is down, and a
  // refresh interval (1 h) that alone would never refetch within the test.
  type Serve = 'k1' | 'k2' | 'down';
  let serve: Serve = 'k1';
  let fetches = 0;
  let z: Started;
  let idp2: TestServer;
  let issuer2: string;
  const { privateKey: k2, publicKey: pub2 } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const token = (priv: KeyObject, kid: string) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: issuer2, sub: 'bob@example.com', aud: 'zonegate', exp: now + 300, iat: now };
    const input = `${Buffer.from(JSON.stringify({ alg: 'RS256', kid, typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return `${input}.${sign('sha256', Buffer.from(input), priv).toString('base64url')}`;
  };
  const verdict = async (t: string) => {
    const r = await z.check(checkRequest({ headers: { authorization: `Bearer ${t}` }, context: { direction: 'egress' } }));
    // an error (could not decide) is a failed call whose details start with the reason code
    if (!r.ok) return `error ${r.error.code} ${String(r.error.details).split(':')[0]}`;
    const st = r.response.status as { code: number; message?: string };
    return st.code === 0 ? 'allow' : String(st.message);
  };
  const notes = () => z.logs.filter((l) => l.msg === 'identity keys not refreshed').map((l) => String(l.detail));

  beforeAll(async () => {
    const ca = await MemoryCA.create(A);
    const web = await MemoryCA.create('idp2.test');
    const tls = await web.server();
    idp2 = await testServer({ cert: tls.chainPem, key: tls.keyPem }, (req, res) => {
      if (serve === 'down') return void res.writeHead(503).end();
      if (req.url === '/.well-known/openid-configuration') return void res.end(JSON.stringify({ issuer: issuer2, jwks_uri: `${issuer2}/keys` }));
      fetches++;
      res.end(JSON.stringify({ keys: [serve === 'k1' ? jwk('k1', pub1) : jwk('k2', pub2)] }));
    });
    issuer2 = `https://127.0.0.1:${idp2.port}`;
    z = await startWithIdp(ca, web, { issuer: issuer2, refreshSeconds: 3600, minRefetchSeconds: 3600, keysMaxAgeSeconds: 2, keysMaxStaleSeconds: 2 });
  });
  afterAll(async () => {
    await z?.close();
    await idp2?.close();
  });

  it('keys are fetched again within their maximum age, whatever the refresh interval: a key the issuer dropped stops verifying', async () => {
    expect(await verdict(token(k1, 'k1'))).toBe('allow');
    const before = fetches;
    serve = 'k2'; // k1 revoked at the issuer
    expect(await verdict(token(k1, 'k1'))).toBe('allow'); // still cached
    await until(() => fetches > before, 6000, 'a refetch after the maximum age');
    await until(async () => (await verdict(token(k1, 'k1'))) === 'ERR_TOKEN_KEY_UNKNOWN', 2000, 'the dropped key');
    expect(await verdict(token(k2, 'k2'))).toBe('allow');
  });

  it('issuer down: keys past their maximum age keep verifying up to the stale limit, then fail closed (UNAVAILABLE, ERR_OIDC_KEYS_STALE); back up: recovers', async () => {
    await until(async () => (await verdict(token(k2, 'k2'))) === 'allow', 6000, 'k2 held');
    serve = 'down';
    await until(() => notes().some((n) => n.includes('past their maximum age, still used')), 6000, 'a stale refresh failure');
    expect(await verdict(token(k2, 'k2'))).toBe('allow');
    await until(async () => (await verdict(token(k2, 'k2'))) === 'error 14 ERR_OIDC_KEYS_STALE', 6000, 'failing closed (UNAVAILABLE)');
    await until(() => notes().some((n) => n.includes('tokens fail closed with ERR_OIDC_KEYS_STALE')), 3000, 'the fail-closed log line');
    expect(await verdict(token(k1, 'k1'))).toBe('error 14 ERR_OIDC_KEYS_STALE'); // before any key lookup
    serve = 'k2';
    await until(async () => (await verdict(token(k2, 'k2'))) === 'allow', 6000, 'recovery');
  });
});
