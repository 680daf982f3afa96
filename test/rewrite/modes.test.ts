/**
 * Every rewrite mode through the real gRPC server, checked from the upstream's side: the
 * CheckResponse is applied to the client's headers the way Envoy applies it (sets overwrite, then
 * removals), and the upstream verifies what arrives — the re-issued JWT against the JWKS fetched
 * over HTTP from the ops server, the HMAC proof with the shipped function and by hand, the Basic
 * credentials by decoding them.
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { verifyProof } from '../../src/rewrite/verify.js';
import { loadX509Svid } from '../../src/svid/local.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { EGRESS_TTL_SECONDS } from '../helpers/identity.js';

const A = 'zone-a.test';
const FRONTEND = `spiffe://${A}/ns/web/sa/frontend`;
const GATEWAY = `spiffe://${A}/ns/web/sa/gateway`;
const AUD = 'spiffe://zone-b.test';
const SECRET = 'a-shared-secret-of-at-least-32-bytes!!';
const ISSUER = 'https://zonegate.zone-b.test';
const ROOT = new URL('../../', import.meta.url).pathname;

let ca: MemoryCA;
let frontend: Issued;
let s: Started;

type Hdr = { header: { key: string; value: string }; append?: { value: boolean } };
type Resp = {
  status: { code: number; message?: string };
  ok_response?: { headers: Hdr[]; headers_to_remove?: string[] };
  denied_response?: { status: { code: number | string }; headers: Hdr[]; body: string };
  dynamic_metadata?: { fields: Record<string, { stringValue?: string; boolValue?: boolean }> };
};

/** A common identity for `sub`, signed by the frontend (the mTLS peer), with roles and one earlier hop. */
function token(sub: string, roles: string[] = ['reader', 'writer']): string {
  return mintCommonIdentity(loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem)), {
    ttlSeconds: EGRESS_TTL_SECONDS,
    sub,
    aud: AUD,
    extra: { roles },
    onBehalfOf: { iss: GATEWAY },
  });
}

async function call(destination: string | undefined, headers: Record<string, string>, path = '/api/items?page=2'): Promise<Resp> {
  const r = await s.check(
    checkRequest({
      certificate: encodeURIComponent(frontend.certPem),
      method: 'POST',
      path,
      headers,
      ...(destination ? { context: { destination } } : {}),
    }),
  );
  if (!r.ok) throw r.error;
  return r.response as Resp;
}

/** What the upstream receives: Envoy applies the sets (overwriting), then the removals. */
function upstreamView(sent: Record<string, string>, r: Resp): Record<string, string> {
  const out: Record<string, string> = { ...sent };
  for (const h of r.ok_response?.headers ?? []) {
    expect(h.append).toEqual({ value: false });
    out[h.header.key] = h.header.value;
  }
  for (const name of r.ok_response?.headers_to_remove ?? []) delete out[name];
  return out;
}

beforeAll(async () => {
  ca = await MemoryCA.create(A);
  frontend = await ca.issue(FRONTEND);
  const dir = mkdtempSync(join(tmpdir(), 'zg-rewrite-'));
  writeFileSync(join(dir, 'a.pem'), ca.certPem);
  writeFileSync(join(dir, 'hmac.secret'), `${SECRET}\n`);
  writeFileSync(join(dir, 'basic.yaml'), '"user:alice": "alice-legacy:pa:ss word"\n');
  s = await startWith(
    {
      trust: [{ trustDomain: A, bundle: 'a.pem' }],
      commonIdentity: { audiences: [AUD] },
      rules: [{ name: 'zone-a', action: 'allow', from: { trustDomains: [A] } }],
      upstream: {
        guard: ['x-user-id'],
        destinations: {
          plain: { mode: 'headers' },
          'billing-api': { mode: 'jwt' },
          ledger: { mode: 'hmac' },
          legacy: { mode: 'basic' },
          mirror: { mode: 'passthrough' },
        },
        jwt: { issuer: ISSUER },
        hmac: { secretFile: 'hmac.secret', keyId: 'k1' },
        basic: { credentialsFile: 'basic.yaml' },
      },
    },
    dir,
  );
});
afterAll(async () => {
  await s?.close();
});

describe('rewrite modes, seen from the upstream', () => {
  it('headers (the default): the verified facts, one header each', async () => {
    const t = token('user:alice');
    for (const destination of [undefined, 'plain', 'not-listed']) {
      const r = await call(destination, { 'x-common-identity': t });
      expect(r.status.code).toBe(0);
      const up = upstreamView({ 'x-common-identity': t }, r);
      expect(up).toEqual({
        'x-zonegate-peer': FRONTEND,
        'x-zonegate-peer-trust-domain': A,
        'x-zonegate-actor': 'user:alice',
        'x-zonegate-act': GATEWAY,
        'x-zonegate-roles': 'reader,writer',
        'x-zonegate-decision-id': 'req-1',
      });
      expect(r.dynamic_metadata?.fields.rewrite?.stringValue).toBe('headers');
    }
  });

  it('jwt: a short-lived token that verifies against the JWKS served on the ops server', async () => {
    const t = token('user:alice');
    const r = await call('billing-api', { 'x-common-identity': t });
    expect(r.status.code).toBe(0);
    const up = upstreamView({ 'x-common-identity': t }, r);
    // the token replaces the identity headers; the common identity stops here
    expect(Object.keys(up).sort()).toEqual(['x-zonegate-decision-id', 'x-zonegate-jwt']);
    const jwks = createRemoteJWKSet(new URL(`http://127.0.0.1:${s.zg.ops.port}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(up['x-zonegate-jwt']!, jwks, { issuer: ISSUER, audience: 'billing-api', algorithms: ['ES256'] });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(protectedHeader.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(payload).toMatchObject({
      sub: 'user:alice',
      peer: FRONTEND,
      trust_domain: A,
      roles: ['reader', 'writer'],
      act: { sub: GATEWAY },
    });
    expect(payload.exp! - payload.iat!).toBe(5);
    expect(typeof payload.jti).toBe('string');
    // a JWKS the client could fill in does not exist: the kid is published by zonegate only
    const served = (await (await fetch(`http://127.0.0.1:${s.zg.ops.port}/.well-known/jwks.json`)).json()) as { keys: { kid: string; d?: string }[] };
    expect(served.keys.map((k) => k.kid)).toContain(protectedHeader.kid);
    for (const k of served.keys) expect(k.d).toBeUndefined();

    // the same identity and destination reuse the signed token; another actor gets its own
    const again = upstreamView({}, await call('billing-api', { 'x-common-identity': t }));
    expect(again['x-zonegate-jwt']).toBe(up['x-zonegate-jwt']);
    const bob = upstreamView({}, await call('billing-api', { 'x-common-identity': token('user:bob') }));
    expect(bob['x-zonegate-jwt']).not.toBe(up['x-zonegate-jwt']);
    expect((await jwtVerify(bob['x-zonegate-jwt']!, jwks, { issuer: ISSUER, audience: 'billing-api' })).payload.sub).toBe('user:bob');
    // a token for one destination is not valid for another
    await expect(jwtVerify(up['x-zonegate-jwt']!, jwks, { issuer: ISSUER, audience: 'ledger' })).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' });
  });

  it('hmac: the identity headers with a proof the upstream checks, with the shipped function and by hand', async () => {
    const t = token('user:alice');
    const r = await call('ledger', { 'x-common-identity': t });
    expect(r.status.code).toBe(0);
    const up = upstreamView({ 'x-common-identity': t }, r);
    const proof = up['x-zonegate-proof']!;
    expect(up['x-zonegate-actor']).toBe('user:alice');

    const ok = verifyProof({ headers: up, method: 'POST', path: '/api/items?page=2', secrets: { k1: SECRET }, required: [':method', ':path', 'x-zonegate-peer', 'x-zonegate-actor'] });
    expect(ok).toMatchObject({ ok: true, kid: 'k1', headers: { 'x-zonegate-peer': FRONTEND, 'x-zonegate-actor': 'user:alice', 'x-zonegate-roles': 'reader,writer', 'x-zonegate-zone': '' } });

    // independently, following docs/rewrite.md: parse, rebuild the canonical string, HMAC-SHA256
    const fields = Object.fromEntries(proof.split(';').slice(1).map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    expect(proof.startsWith('v1;')).toBe(true);
    expect(Math.abs(Number(fields.t) - Date.now() / 1000)).toBeLessThan(30);
    const names = fields.h!.split(',');
    expect(names).toEqual([':method', ':path', 'x-zonegate-peer', 'x-zonegate-peer-trust-domain', 'x-zonegate-zone', 'x-zonegate-namespace', 'x-zonegate-service', 'x-zonegate-actor', 'x-zonegate-act', 'x-zonegate-roles', 'x-zonegate-decision-id']);
    const value = (n: string) => (n === ':method' ? 'POST' : n === ':path' ? '/api/items?page=2' : (up[n] ?? ''));
    const canonical = ['zonegate-proof/v1', fields.kid, fields.t, ...names.map((n) => `${n}:${value(n)}`)].join('\n');
    expect(createHmac('sha256', SECRET).update(canonical).digest('base64url')).toBe(fields.sig);

    // what the proof is for: a changed value, another path, an old proof or another key fail
    expect(verifyProof({ headers: { ...up, 'x-zonegate-actor': 'user:root' }, method: 'POST', path: '/api/items?page=2', secrets: { k1: SECRET } })).toEqual({ ok: false, reason: 'signature' });
    expect(verifyProof({ headers: { ...up, 'x-zonegate-zone': 'zone-b' }, method: 'POST', path: '/api/items?page=2', secrets: { k1: SECRET } })).toEqual({ ok: false, reason: 'signature' });
    expect(verifyProof({ headers: up, method: 'DELETE', path: '/api/items?page=2', secrets: { k1: SECRET } })).toEqual({ ok: false, reason: 'signature' });
    expect(verifyProof({ headers: up, method: 'POST', path: '/api/items?page=2', secrets: { k1: SECRET }, now: Date.now() + 60_000 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyProof({ headers: up, method: 'POST', path: '/api/items?page=2', secrets: { k2: SECRET } })).toEqual({ ok: false, reason: 'unknown-key' });
    expect(verifyProof({ headers: up, method: 'POST', path: '/api/items?page=2', secrets: { k1: `${SECRET}x` } })).toEqual({ ok: false, reason: 'signature' });
    expect(verifyProof({ headers: { ...up, 'x-zonegate-proof': undefined }, method: 'POST', path: '/', secrets: { k1: SECRET } })).toEqual({ ok: false, reason: 'missing' });
    expect(verifyProof({ headers: up, method: 'POST', path: '/api/items?page=2', secrets: { k1: SECRET }, required: ['x-tenant'] })).toEqual({ ok: false, reason: 'not-covered' });
  });

  it('hmac: the verification function ships in the package (zonegate/proof)', async () => {
    const up = upstreamView({}, await call('ledger', { 'x-common-identity': token('user:alice') }));
    const script = `import { verifyProof } from 'zonegate/proof';
      const o = JSON.parse(process.env.PROOF_INPUT);
      process.stdout.write(JSON.stringify(verifyProof(o)));`;
    const input = { headers: up, method: 'POST', path: '/api/items?page=2', secrets: { k1: SECRET } };
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, PROOF_INPUT: JSON.stringify(input) }, encoding: 'utf8' });
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout)).toMatchObject({ ok: true, kid: 'k1', headers: { 'x-zonegate-actor': 'user:alice' } });
  });

  it('basic: legacy credentials for the actor; an actor without an entry is denied with its own code', async () => {
    const r = await call('legacy', { 'x-common-identity': token('user:alice') });
    expect(r.status.code).toBe(0);
    const up = upstreamView({}, r);
    const [scheme, b64] = up.authorization!.split(' ');
    expect(scheme).toBe('Basic');
    expect(Buffer.from(b64!, 'base64').toString('utf8')).toBe('alice-legacy:pa:ss word');
    expect(up['x-zonegate-actor']).toBeUndefined();

    const d = await call('legacy', { 'x-common-identity': token('user:mallory') });
    expect(d.status).toMatchObject({ code: 7, message: 'ERR_UPSTREAM_NO_CREDENTIAL' });
    expect(d.denied_response?.status.code).toBe('Forbidden');
    expect(JSON.parse(d.denied_response!.body)).toEqual({ reason: 'ERR_UPSTREAM_NO_CREDENTIAL', decisionId: 'req-1' });
    expect(d.denied_response!.body).not.toContain('alice-legacy');
  });

  it('passthrough: the verified token goes on to the upstream as received, with the identity headers', async () => {
    const t = token('user:alice');
    const r = await call('mirror', { 'x-common-identity': t });
    expect(r.status.code).toBe(0);
    const up = upstreamView({ 'x-common-identity': t }, r);
    expect(up['x-common-identity']).toBe(t);
    expect(up['x-zonegate-actor']).toBe('user:alice');
    expect(r.ok_response?.headers_to_remove).not.toContain('x-common-identity');
  });

  it('without canonical names (no naming template) every mode still answers, and the canonical headers are stripped', async () => {
    for (const d of ['plain', 'billing-api', 'ledger', 'legacy', 'mirror']) {
      const r = await call(d, { 'x-common-identity': token('user:alice'), 'x-zonegate-zone': 'spoofed' });
      expect(r.status.code).toBe(0);
      expect(upstreamView({ 'x-zonegate-zone': 'spoofed' }, r)['x-zonegate-zone']).toBeUndefined();
    }
  });
});

describe('a client that sends its own copies of every identity header', () => {
  const SPOOFABLE = [
    'x-zonegate-peer',
    'x-zonegate-peer-trust-domain',
    'x-zonegate-zone',
    'x-zonegate-namespace',
    'x-zonegate-service',
    'x-zonegate-actor',
    'x-zonegate-act',
    'x-zonegate-roles',
    'x-zonegate-decision-id',
    'x-zonegate-jwt',
    'x-zonegate-proof',
    'authorization',
    'x-user-id',
  ];

  it.each(['plain', 'billing-api', 'ledger', 'legacy', 'mirror', 'not-listed'])('gets them replaced or stripped (destination %s)', async (destination) => {
    const t = token('user:alice');
    const sent = { ...Object.fromEntries(SPOOFABLE.map((h) => [h, 'spoofed'])), 'x-common-identity': t };
    const r = await call(destination, sent);
    expect(r.status.code).toBe(0);
    const set = new Map((r.ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value]));
    const removed = new Set(r.ok_response?.headers_to_remove ?? []);
    for (const h of SPOOFABLE) {
      // each is either overwritten by zonegate or removed, never both (Envoy removes after setting)
      expect(set.has(h) !== removed.has(h), h).toBe(true);
      if (set.has(h)) expect(set.get(h), h).not.toBe('spoofed');
    }
    const up = upstreamView(sent, r);
    expect(Object.values(up)).not.toContain('spoofed');
    // the carried token is consumed, except where the destination takes it as is
    expect(up['x-common-identity']).toBe(destination === 'mirror' ? t : undefined);
  });
});

describe('the JWT key id names the signing key', () => {
  it('is the RFC 7638 thumbprint of the published key', async () => {
    const { calculateJwkThumbprint } = await import('jose');
    const up = upstreamView({}, await call('billing-api', { 'x-common-identity': token('user:alice') }));
    const { kid } = decodeProtectedHeader(up['x-zonegate-jwt']!);
    const served = (await (await fetch(`http://127.0.0.1:${s.zg.ops.port}/.well-known/jwks.json`)).json()) as { keys: Record<string, string>[] };
    const jwk = served.keys.find((k) => k.kid === kid)!;
    expect(await calculateJwkThumbprint({ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! })).toBe(kid);
  });
});
