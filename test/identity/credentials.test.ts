/**
 * Credentials zonegate reads are verified or the request is denied; claims another signer
 * asserted are re-signed only when configured, with their provenance in act; claims are bounded
 * in depth and size; Basic passwords are checked off the event loop with one shape for known and
 * unknown users. Through the real gRPC servers of two zones where a proxy would be involved.
 */
import { sign } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BasicUserStore, hashPassword } from '../../src/identity/basic.js';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { loadX509Svid, type LocalSvid } from '../../src/svid/local.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { basicLimits, EGRESS_TTL_SECONDS } from '../helpers/identity.js';

const A = 'zone-a.test';
const B = 'zone-b.test';
const FRONTEND = `spiffe://${A}/ns/web/sa/frontend`;
const BILLING = `spiffe://${B}/ns/default/sa/billing`;
let caA: MemoryCA;
let caB: MemoryCA;
let frontend: Issued;
let billing: Issued;
let billingSvid: LocalSvid;
let frontendSvid: LocalSvid;
let zoneA: Started;
let zoneB: Started;

async function zone(td: string, own: MemoryCA, other: MemoryCA, svid: Issued, otherTd: string, ci: Record<string, unknown>): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), `zg-cred-${td}-`));
  writeFileSync(join(dir, 'own.pem'), own.certPem);
  writeFileSync(join(dir, 'other.pem'), other.certPem);
  writeFileSync(join(dir, 'svid.pem'), svid.chainPem);
  writeFileSync(join(dir, 'svid.key'), svid.keyPem);
  writeFileSync(join(dir, 'users.yaml'), stringify({ users: [{ name: 'bob', password: hashPassword('correct horse', 1024), roles: ['admin'] }] }));
  return startWith(
    {
      identity: { cert: 'svid.pem', key: 'svid.key' },
      trust: [
        { trustDomain: td, bundle: 'own.pem' },
        { trustDomain: otherTd, bundle: 'other.pem' },
      ],
      commonIdentity: { ...ci, egress: { defaultAudience: `spiffe://${otherTd}`, ...((ci.egress as object) ?? {}) } },
      rules: [
        { name: 'egress', action: 'allow', to: { context: { direction: 'egress' } } },
        { name: 'ingress', action: 'allow', from: { trustDomains: [otherTd] } },
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
  frontendSvid = loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem));
  billingSvid = loadX509Svid(Buffer.from(billing.chainPem), Buffer.from(billing.keyPem));
  // A copies only `email` from tokens it forwards; B reads JWT-SVIDs too
  zoneA = await zone(A, caA, caB, frontend, B, { egress: { copyClaims: ['email'], basic: { usersFile: 'users.yaml' } } });
  zoneB = await zone(B, caB, caA, billing, A, { jwtSvid: true });
}, 60_000);
afterAll(async () => {
  await zoneA?.close();
  await zoneB?.close();
});

type Resp = { status: { code: number; message?: string }; ok_response?: { headers: { header: { key: string; value: string } }[]; headers_to_remove?: string[] } };
const headers = (r: Resp) => Object.fromEntries((r.ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value]));
const payload = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
async function call(s: Started, o: Parameters<typeof checkRequest>[0]): Promise<Resp> {
  const r = await s.check(checkRequest(o));
  if (!r.ok) throw r.error;
  return r.response as Resp;
}
const egress = (s: Started, h: Record<string, string> = {}) => call(s, { headers: h, context: { direction: 'egress' } });
const ingress = (s: Started, peer: Issued, h: Record<string, string>) => call(s, { certificate: encodeURIComponent(peer.certPem), headers: h });
/** A's egress token for the frontend, as B's ingress receives it. */
const fromA = async () => headers(await egress(zoneA))['x-common-identity']!;
/** A common identity signed by `svid` with a payload given as JSON text (any depth). */
function signedText(svid: LocalSvid, payloadJson: string): string {
  const header = { alg: 'ES256', typ: 'ci+jwt', x5c: svid.chain.map((c) => c.raw.toString('base64')) };
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(payloadJson).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: svid.key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

describe('every credential header zonegate reads is verified, or the request is denied', () => {
  it.each([
    ['an unverified JWT-SVID', 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly96b25lLWIudGVzdC9hZG1pbiJ9.c2ln'],
    ['a JWT-SVID with lower-case scheme', 'bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln'],
    ['an empty Bearer', 'Bearer'],
    ['two Bearer tokens', 'Bearer a.b.c d.e.f'],
  ])('%s beside a valid common identity: ERR_TOKEN_MULTIPLE (never passed through)', async (_n, authorization) => {
    const r = await ingress(zoneB, frontend, { 'x-common-identity': await fromA(), authorization });
    expect(r.status).toMatchObject({ code: 16, message: 'ERR_TOKEN_MULTIPLE' });
  });

  it('the common identity alone is allowed; a non-Bearer authorization (the app\'s own) is not read and not touched', async () => {
    const alone = await ingress(zoneB, frontend, { 'x-common-identity': await fromA() });
    expect(alone.status.code).toBe(0);
    const basic = await ingress(zoneB, frontend, { 'x-common-identity': await fromA(), authorization: 'Basic YTpi' });
    expect(basic.status.code).toBe(0);
    expect(basic.ok_response?.headers_to_remove ?? []).not.toContain('authorization');
  });

  it('an unverifiable JWT-SVID alone is denied, not passed through', async () => {
    const r = await ingress(zoneB, frontend, { authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln' });
    expect(r.status.code).toBe(16);
    expect(r.status.message).toMatch(/^ERR_TOKEN_/);
  });
});

describe('egress copies only configured claims, with their provenance in act', () => {
  /** What B's workload sends to A (aud A), asserting roles it has no business asserting for A. */
  const fromBilling = (extra: Record<string, unknown>) => mintCommonIdentity(billingSvid, { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'user:carol', aud: `spiffe://${A}`, extra });

  it("roles asserted by zone B's signer are not re-signed by A; email (configured) is, and act says B asserted it", async () => {
    const out = await egress(zoneA, { 'x-common-identity': fromBilling({ roles: ['admin'], email: 'carol@b.test', tier: 'gold' }) });
    expect(out.status.code).toBe(0);
    const token = headers(out)['x-common-identity']!;
    const claims = payload(token);
    expect(claims).toMatchObject({ iss: FRONTEND, sub: 'user:carol', email: 'carol@b.test', act: { sub: BILLING, claims: { email: 'carol@b.test' } } });
    expect(claims).not.toHaveProperty('roles');
    expect(claims).not.toHaveProperty('tier');
    // the next hop verifies it, act and provenance included
    const inB = await ingress(zoneB, frontend, { 'x-common-identity': token });
    expect(inB.status.code).toBe(0);
    expect(headers(inB)).toMatchObject({ 'x-zonegate-actor': 'user:carol', 'x-zonegate-act': BILLING });
  });

  it('nothing configured to copy is asserted: no copied claims and no claims member in act', async () => {
    const out = await egress(zoneB, { 'x-common-identity': mintCommonIdentity(frontendSvid, { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'user:dan', aud: `spiffe://${B}`, extra: { roles: ['admin'], email: 'dan@a.test' } }) });
    expect(out.status.code).toBe(0);
    const claims = payload(headers(out)['x-common-identity']!);
    expect(claims).toMatchObject({ iss: BILLING, sub: 'user:dan', act: { sub: FRONTEND } });
    expect(claims).not.toHaveProperty('roles');
    expect(claims).not.toHaveProperty('email');
    expect(claims.act).not.toHaveProperty('claims');
  });
});

describe('claims are bounded in depth and size (ERR_CLAIMS_TOO_LARGE)', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const base = (extra: string) => `{"iss":"${FRONTEND}","sub":"${FRONTEND}","aud":"spiffe://${B}","iat":${now()},"exp":${now() + 60},"x":${extra}}`;

  it.each([
    ['17 levels of arrays', '['.repeat(16) + ']'.repeat(16)],
    ['17 levels of objects', '{"a":'.repeat(16) + '1' + '}'.repeat(16)],
    ['5000 levels (what overflowed JSON.stringify)', '['.repeat(5000) + ']'.repeat(5000)],
    ['9 KiB of claims', JSON.stringify('a'.repeat(9 * 1024))],
  ])('ingress: %s', async (_n, extra) => {
    const r = await ingress(zoneB, frontend, { 'x-common-identity': signedText(frontendSvid, base(extra)) });
    expect(r.status).toMatchObject({ code: 16, message: 'ERR_CLAIMS_TOO_LARGE' });
  });

  it('ingress: 16 levels and 7 KiB are within the defaults', async () => {
    expect((await ingress(zoneB, frontend, { 'x-common-identity': signedText(frontendSvid, base('['.repeat(15) + ']'.repeat(15))) })).status.code).toBe(0);
    expect((await ingress(zoneB, frontend, { 'x-common-identity': signedText(frontendSvid, base(JSON.stringify('a'.repeat(7 * 1024)))) })).status.code).toBe(0);
  });

  it('egress: a forwarded token with a deep claim is refused where it enters, never an internal error', async () => {
    const deep = signedText(billingSvid, `{"iss":"${BILLING}","sub":"u","aud":"spiffe://${A}","iat":${now()},"exp":${now() + 60},"email":${'['.repeat(5000) + ']'.repeat(5000)}}`);
    const r = await egress(zoneA, { 'x-common-identity': deep });
    expect(r.status).toMatchObject({ code: 16, message: 'ERR_CLAIMS_TOO_LARGE' });
  });

  it('mint refuses claims past the limits before JSON.stringify (any depth, no stack overflow)', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const limits = { maxClaimDepth: 16, maxClaimBytes: 8192 };
    expect(() => mintCommonIdentity(frontendSvid, { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'u', aud: 'spiffe://b', extra: { x: deep }, limits })).toThrow(expect.objectContaining({ code: 'ERR_CLAIMS_TOO_LARGE' }));
    expect(() => mintCommonIdentity(frontendSvid, { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'u', aud: 'spiffe://b', extra: { x: 'a'.repeat(9000) }, limits })).toThrow(expect.objectContaining({ code: 'ERR_CLAIMS_TOO_LARGE' }));
    expect(mintCommonIdentity(frontendSvid, { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'u', aud: 'spiffe://b', extra: { x: [[1]] }, limits }).split('.')).toHaveLength(3);
  });
});

describe('Basic credentials: async, one shape for known and unknown users, bounded', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zg-basic-'));
  const file = (users: unknown) => {
    const f = join(dir, `u${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(f, stringify({ users }));
    return f;
  };
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  let store: BasicUserStore;
  beforeAll(() => {
    store = new BasicUserStore(file([{ name: 'bob', password: hashPassword('correct horse', 16384), roles: ['admin'] }]), basicLimits());
  });

  it('a right password, a wrong one, an unknown user: each runs scrypt once, on the thread pool', async () => {
    for (const [auth, ok] of [
      [basic('bob', 'wrong'), false],
      [basic('nobody', 'wrong'), false],
      [basic('alice', 'correct horse'), false],
      [basic('bob', 'correct horse'), true],
    ] as const) {
      const before = store.computations;
      const t = performance.now();
      const pending = store.check(auth);
      // the call returns at once: scrypt (tens of ms at N = 16384, on the calling thread before) runs on the pool
      expect(performance.now() - t).toBeLessThan(20);
      expect((await pending).ok).toBe(ok);
      expect(store.computations - before).toBe(1);
    }
  });

  it('a remembered success costs no scrypt; the sync form gives the same answers', async () => {
    await store.check(basic('bob', 'correct horse'));
    const before = store.computations;
    expect(await store.check(basic('bob', 'correct horse'))).toMatchObject({ ok: true, user: { name: 'bob', roles: ['admin'] } });
    expect(store.computations).toBe(before);
    expect(store.verifySync(basic('nobody', 'x'))).toMatchObject({ ok: false, code: 'ERR_USER_CREDENTIAL' });
    expect(store.computations).toBe(before + 1);
  });

  it('past maxConcurrent running and maxQueued waiting: ERR_OVERLOADED at once; the others are decided', async () => {
    const small = new BasicUserStore(file([{ name: 'bob', password: hashPassword('pw', 1024) }]), basicLimits({ maxConcurrent: 1, maxQueued: 2 }));
    const results = await Promise.all([1, 2, 3, 4, 5].map((i) => small.check(basic('bob', `wrong${i}`))));
    expect(results.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['ERR_USER_CREDENTIAL', 'ERR_USER_CREDENTIAL', 'ERR_USER_CREDENTIAL', 'ERR_OVERLOADED', 'ERR_OVERLOADED']);
    expect((await small.check(basic('bob', 'pw'))).ok).toBe(true);
  });

  it.each([
    ['N above 2^20', 'scrypt$2097152$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g='],
    ['N not a power of two', 'scrypt$1000$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g='],
    ['r above 32', 'scrypt$1024$64$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g='],
    ['p above 16', 'scrypt$1024$8$64$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g='],
    ['more than 64 MiB per computation', 'scrypt$1048576$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g='],
  ])('a users file with %s is refused when read', (_n, password) => {
    expect(() => new BasicUserStore(file([{ name: 'bob', password }]), basicLimits())).toThrow(/scrypt/);
  });

  it('a users file whose hashes use different scrypt parameters is refused when read (an unknown name would take the first user\'s time)', () => {
    const same = [{ name: 'bob', password: hashPassword('a', 1024) }, { name: 'eve', password: hashPassword('b', 1024) }];
    expect(() => new BasicUserStore(file(same), basicLimits())).not.toThrow();
    const mixed = [{ name: 'bob', password: hashPassword('a', 1024) }, { name: 'eve', password: hashPassword('b', 2048) }];
    expect(() => new BasicUserStore(file(mixed), basicLimits())).toThrow(/user "eve": scrypt parameters \(N=2048 r=8 p=1.*differ from the first user's \(N=1024/);
  });

  it('through the real server: a known user is the actor; a wrong password and an unknown user are ERR_USER_CREDENTIAL', async () => {
    const ok = await egress(zoneA, { authorization: basic('bob', 'correct horse') });
    expect(ok.status.code).toBe(0);
    expect(payload(headers(ok)['x-common-identity']!)).toMatchObject({ sub: 'bob', roles: ['admin'] });
    for (const auth of [basic('bob', 'nope'), basic('eve', 'correct horse')])
      expect((await egress(zoneA, { authorization: auth })).status).toMatchObject({ code: 16, message: 'ERR_USER_CREDENTIAL' });
  });
});
