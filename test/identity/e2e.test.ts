/**
 * Common identity end to end through the real gRPC servers: zone A's egress mints, zone B's
 * ingress verifies through B's copy of A's bundle and tells its upstream who acts; B calling
 * back on behalf of that actor chains the hops in act.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { EGRESS_TTL_SECONDS } from '../helpers/identity.js';

const A = 'zone-a.test';
const B = 'zone-b.test';
const FRONTEND = `spiffe://${A}/ns/web/sa/frontend`;
const BILLING = `spiffe://${B}/ns/default/dc/dc1/svc/billing`;
let caA: MemoryCA;
let caB: MemoryCA;
let frontend: Issued;
let billing: Issued;
let zoneA: Started;
let zoneB: Started;

async function zone(td: string, own: MemoryCA, other: MemoryCA, svid: Issued, otherTd: string): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), `zg-ci-${td}-`));
  writeFileSync(join(dir, 'own.pem'), own.certPem);
  writeFileSync(join(dir, 'other.pem'), other.certPem); // this zone's copy of the other zone's bundle
  writeFileSync(join(dir, 'svid.pem'), svid.chainPem);
  writeFileSync(join(dir, 'svid.key'), svid.keyPem);
  return startWith(
    {
      identity: { cert: 'svid.pem', key: 'svid.key' },
      trust: [
        { trustDomain: td, bundle: 'own.pem' },
        { trustDomain: otherTd, bundle: 'other.pem' },
      ],
      commonIdentity: { egress: { defaultAudience: `spiffe://${otherTd}`, bindCnf: true } },
      rules: [
        { name: 'egress', action: 'allow', to: { context: { direction: 'egress' } } },
        { name: 'no-mallory', action: 'deny', from: { actors: ['mallory'] } },
        { name: 'ingress-users', action: 'allow', from: { trustDomains: [otherTd], actors: [{ prefix: 'user:' }, { prefix: 'spiffe://' }] } },
        { name: 'public', action: 'allow', to: { paths: [{ prefix: '/public/' }] } },
      ],
    },
    dir,
  );
}

beforeAll(async () => {
  caA = await MemoryCA.create(A);
  caB = await MemoryCA.create(B);
  frontend = await caA.issue(FRONTEND);
  billing = await caB.issue(BILLING);
  zoneA = await zone(A, caA, caB, frontend, B);
  zoneB = await zone(B, caB, caA, billing, A);
});
afterAll(async () => {
  await zoneA?.close();
  await zoneB?.close();
});

type Resp = { status: { code: number; message?: string }; ok_response?: { headers: { header: { key: string; value: string } }[]; headers_to_remove?: string[] } };
const headers = (r: Resp) => Object.fromEntries((r.ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value]));

async function call(s: Started, o: Parameters<typeof checkRequest>[0]): Promise<Resp> {
  const r = await s.check(checkRequest(o));
  if (!r.ok) throw r.error;
  return r.response as Resp;
}
const egress = (s: Started, reqHeaders: Record<string, string> = {}, audience?: string) =>
  call(s, { headers: reqHeaders, context: { direction: 'egress', ...(audience ? { audience } : {}) } });
const ingress = (s: Started, peer: Issued | undefined, reqHeaders: Record<string, string>, path = '/api') =>
  call(s, { ...(peer ? { certificate: encodeURIComponent(peer.certPem) } : {}), headers: reqHeaders, path });

describe('common identity across zones', () => {
  it("A's egress mints for the workload; B's ingress verifies it and tells its upstream who acts", async () => {
    const out = await egress(zoneA);
    expect(out.status.code).toBe(0);
    const token = headers(out)['x-common-identity']!;
    expect(token.split('.')).toHaveLength(3);
    // a user credential zonegate cannot verify is refused, not replaced by the workload identity
    expect((await egress(zoneA, { authorization: 'Bearer not-verifiable-here' })).status).toMatchObject({ code: 16, message: 'ERR_USER_CREDENTIAL' });
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ iss: FRONTEND, sub: FRONTEND, aud: `spiffe://${B}` });
    // bound to the certificate A's side presents on the mTLS hop (RFC 8705)
    expect(claims.cnf['x5t#S256']).toBe(createHash('sha256').update(frontend.cert.raw).digest('base64url'));
    expect(claims.exp - claims.iat).toBe(60);

    const inB = await ingress(zoneB, frontend, { 'x-common-identity': token, 'x-zonegate-actor': 'root' });
    expect(inB.status.code).toBe(0);
    expect(headers(inB)).toMatchObject({ 'x-zonegate-peer': FRONTEND, 'x-zonegate-actor': FRONTEND });
    // the token is consumed at ingress, never passed on
    expect(inB.ok_response?.headers_to_remove).toContain('x-common-identity');
  });

  it('on behalf of: B forwards the verified token on its way out; the new token chains the hop in act', async () => {
    const fromA = headers(await egress(zoneA))['x-common-identity']!;
    // B's app calls A back, forwarding what it received: B's egress verifies it (aud B) and re-mints
    const out = await egress(zoneB, { 'x-common-identity': fromA });
    expect(out.status.code).toBe(0);
    const token = headers(out)['x-common-identity']!;
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ iss: BILLING, sub: FRONTEND, aud: `spiffe://${A}`, act: { sub: FRONTEND } });
    const inA = await ingress(zoneA, billing, { 'x-common-identity': token });
    expect(inA.status.code).toBe(0);
    expect(headers(inA)).toMatchObject({ 'x-zonegate-peer': BILLING, 'x-zonegate-actor': FRONTEND, 'x-zonegate-act': FRONTEND });
  });

  it.each([
    ['no token', async () => ({}), 'ERR_NO_CARRIED_IDENTITY'],
    ['two tokens in the header', async () => {
      const t = headers(await egress(zoneA))['x-common-identity']!;
      return { 'x-common-identity': `${t},${t}` };
    }, 'ERR_TOKEN_MULTIPLE'],
    ['a token presented by another peer than its signer', async () => ({ 'x-common-identity': headers(await egress(zoneA))['x-common-identity']! }), 'ERR_TOKEN_PEER_MISMATCH', 'billing-peer'],
    ['a token minted for another audience', async () => ({ 'x-common-identity': headers(await egress(zoneA, {}, `spiffe://${A}`))['x-common-identity']! }), 'ERR_TOKEN_AUDIENCE'],
    ['garbage', async () => ({ 'x-common-identity': 'a.b.c' }), 'ERR_TOKEN_MALFORMED'],
  ])('B denies %s', async (_n, make, reason, peerKind?: string) => {
    const peer = peerKind === 'billing-peer' ? await caA.issue(`spiffe://${A}/ns/web/sa/other`) : frontend;
    const r = await ingress(zoneB, peer, await make());
    expect(r.status).toMatchObject({ code: 16, message: reason });
  });

  it('a route that allows anonymous callers (carried_identity: optional) lets a request without a token through', async () => {
    const r = await call(zoneB, { certificate: encodeURIComponent(frontend.certPem), path: '/public/x', context: { carried_identity: 'optional' } });
    expect(r.status.code).toBe(0);
    expect(headers(r)['x-zonegate-actor']).toBeUndefined();
    expect(r.ok_response?.headers_to_remove).toContain('x-zonegate-actor');
  });

  it('a verified actor can still be denied by policy', async () => {
    // zone B's egress forwards nothing and mints for its workload; make a token whose sub is mallory
    const { mintCommonIdentity } = await import('../../src/identity/mint.js');
    const { loadX509Svid } = await import('../../src/svid/local.js');
    const t = mintCommonIdentity(loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem)), { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'mallory', aud: `spiffe://${B}` });
    const r = await ingress(zoneB, frontend, { 'x-common-identity': t });
    expect(r.status).toMatchObject({ code: 7, message: 'ERR_POLICY_DENIED' });
  });
});
