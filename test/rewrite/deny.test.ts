/**
 * Deny responses as configured (status, reason header, JSON body) in both modes — the gRPC
 * DeniedHttpResponse and the HTTP authorization mode — and the dynamic_metadata Envoy's access
 * log and rate limiting read, on allow and on deny.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMethod } from '../../src/envoy/proto.js';
import { toCheckResponse } from '../../src/envoy/response.js';
import { REASONS } from '../../src/errors.js';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { loadX509Svid } from '../../src/svid/local.js';
import { call } from '../helpers/http.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { EGRESS_TTL_SECONDS } from '../helpers/identity.js';

const A = 'zone-a.test';
const FRONTEND = `spiffe://${A}/ns/web/sa/frontend`;
const AUD = 'spiffe://zone-b.test';

type Hdr = { header: { key: string; value: string } };
type Resp = {
  status: { code: number; message?: string };
  ok_response?: { headers: Hdr[] };
  denied_response?: { status: { code: string }; headers: Hdr[]; body: string };
  dynamic_metadata?: { fields: Record<string, { stringValue?: string; boolValue?: boolean }> };
};

let ca: MemoryCA;
let frontend: Issued;
let dir: string;
let plain: Started; // the defaults
let custom: Started; // every deny knob turned

const config = (deny?: Record<string, unknown>) => ({
  trust: [{ trustDomain: A, bundle: 'a.pem' }],
  commonIdentity: { audiences: [AUD] },
  rules: [
    { name: 'no-admin', action: 'deny', to: { paths: [{ prefix: '/admin' }] } },
    { name: 'zone-a', action: 'allow', from: { trustDomains: [A] } },
  ],
  server: { http: { address: '127.0.0.1', port: 0 } },
  ...(deny ? { deny } : {}),
});

const token = (sub: string) => mintCommonIdentity(loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem)), { ttlSeconds: EGRESS_TTL_SECONDS, sub, aud: AUD });

async function grpcCall(s: Started, o: { cert?: boolean; token?: string; path?: string }): Promise<Resp> {
  const r = await s.check(
    checkRequest({
      ...(o.cert === false ? {} : { certificate: encodeURIComponent(frontend.certPem) }),
      path: o.path ?? '/api',
      headers: o.token ? { 'x-common-identity': o.token } : {},
      context: { destination: 'orders' },
    }),
  );
  if (!r.ok) throw r.error;
  return r.response as Resp;
}

/** One request to the HTTP mode (node:http: fetch turns a 407 into a network error). */
async function httpCall(s: Started, o: { cert?: boolean; token?: string; path?: string }): Promise<{ status: number; headers: IncomingHttpHeaders; json: () => unknown }> {
  const headers: Record<string, string> = {
    'x-original-uri': o.path ?? '/api',
    'x-original-method': 'GET',
    'x-original-host': 'api.test',
    'x-request-id': 'http-req-1',
    ...(o.cert === false ? {} : { 'x-ssl-client-cert': encodeURIComponent(frontend.certPem) }),
    ...(o.token ? { 'x-common-identity': o.token } : {}),
  };
  const r = await call({ to: s.zg.httpAuthz!.port, headers });
  return { status: r.status, headers: r.headers, json: () => JSON.parse(r.body) as unknown };
}

const headerMap = (hs: Hdr[] = []) => Object.fromEntries(hs.map((h) => [h.header.key, h.header.value]));

beforeAll(async () => {
  ca = await MemoryCA.create(A);
  frontend = await ca.issue(FRONTEND);
  dir = mkdtempSync(join(tmpdir(), 'zg-deny-'));
  writeFileSync(join(dir, 'a.pem'), ca.certPem);
  plain = await startWith(config(), dir);
  custom = await startWith(config({ reasonHeader: 'x-denied-because', status: { forbidden: 404, unauthenticated: 407 }, message: true }), dir);
});
afterAll(async () => {
  await plain?.close();
  await custom?.close();
});

describe('deny responses over gRPC', () => {
  it('defaults: 401 without a peer, 401 without a carried identity, 403 by policy; reason header and {reason, decisionId}', async () => {
    const cases: [Parameters<typeof grpcCall>[1], string, string, number][] = [
      [{ cert: false }, 'ERR_NO_IDENTITY', 'Unauthorized', 16],
      [{}, 'ERR_NO_CARRIED_IDENTITY', 'Unauthorized', 16],
      [{ token: token('user:alice'), path: '/admin/users' }, 'ERR_POLICY_DENIED', 'Forbidden', 7],
    ];
    for (const [o, reason, http, grpc] of cases) {
      const r = await grpcCall(plain, o);
      expect(r.status).toEqual({ code: grpc, message: reason });
      expect(r.denied_response?.status.code).toBe(http);
      expect(headerMap(r.denied_response?.headers)).toEqual({ 'content-type': 'application/json', 'x-zonegate-reason': reason });
      expect(JSON.parse(r.denied_response!.body)).toEqual({ reason, decisionId: 'req-1' });
    }
  });

  it('configured: statuses, reason header and the fixed summary as message', async () => {
    const unauth = await grpcCall(custom, { cert: false });
    expect(unauth.denied_response?.status.code).toBe('ProxyAuthenticationRequired');
    expect(headerMap(unauth.denied_response?.headers)).toEqual({ 'content-type': 'application/json', 'x-denied-because': 'ERR_NO_IDENTITY' });
    expect(JSON.parse(unauth.denied_response!.body)).toEqual({ reason: 'ERR_NO_IDENTITY', message: REASONS.ERR_NO_IDENTITY.summary, decisionId: 'req-1' });
    const forbidden = await grpcCall(custom, { token: token('user:alice'), path: '/admin/x' });
    expect(forbidden.denied_response?.status.code).toBe('NotFound');
    expect(forbidden.status.code).toBe(7); // the gRPC status keeps its meaning
  });

  it('the message never echoes what the client sent', async () => {
    const r = await grpcCall(custom, { token: 'eyJhbGciOiJFUzI1NiJ9.c2VjcmV0.c2ln' });
    expect(JSON.parse(r.denied_response!.body)).toEqual({ reason: 'ERR_TOKEN_TYPE', message: REASONS.ERR_TOKEN_TYPE.summary, decisionId: 'req-1' });
    expect(r.denied_response!.body).not.toContain('eyJ');
  });

  it('body: false sends no body and no content-type', () => {
    const denied = { allowed: false as const, id: 'd-1', direction: 'ingress' as const, reason: 'ERR_POLICY_NO_MATCH' as const, message: 'policy: no rule', steps: [] };
    const bytes = toCheckResponse(denied, { reasonHeader: '', status: { forbidden: 403, unauthenticated: 401 }, body: false, message: false });
    const r = checkMethod().responseDeserialize(bytes) as { denied_response: { headers?: unknown[]; body: string; status: { code: string } } };
    expect(r.denied_response).toEqual({ status: { code: 'Forbidden' }, body: '' }); // 403, and no header at all (an empty list decodes as absent)
  });
});

describe('dynamic_metadata', () => {
  it('on deny: decision id, reason, peer and actor', async () => {
    const r = await grpcCall(plain, { token: token('user:alice'), path: '/admin/users' });
    expect(r.dynamic_metadata?.fields).toMatchObject({
      decision_id: { stringValue: 'req-1' },
      result: { stringValue: 'deny' },
      reason: { stringValue: 'ERR_POLICY_DENIED' },
      peer: { stringValue: FRONTEND },
      peer_trust_domain: { stringValue: A },
      actor: { stringValue: 'user:alice' },
      rule: { stringValue: 'no-admin' },
    });
    const noPeer = await grpcCall(plain, { cert: false });
    expect(noPeer.dynamic_metadata?.fields).toMatchObject({ decision_id: { stringValue: 'req-1' }, reason: { stringValue: 'ERR_NO_IDENTITY' } });
    expect(noPeer.dynamic_metadata?.fields.peer).toBeUndefined();
  });

  it('on allow: decision id, peer, actor, destination and rewrite mode; no canonical keys without a naming template', async () => {
    const r = await grpcCall(plain, { token: token('user:alice') });
    expect(r.status.code).toBe(0);
    const f = r.dynamic_metadata!.fields;
    expect(f).toMatchObject({
      decision_id: { stringValue: 'req-1' },
      result: { stringValue: 'allow' },
      peer: { stringValue: FRONTEND },
      actor: { stringValue: 'user:alice' },
      destination: { stringValue: 'orders' },
      rewrite: { stringValue: 'headers' },
    });
    expect(f.reason).toBeUndefined();
    expect(f.zone).toBeUndefined();
  });
});

describe('deny responses in the HTTP authorization mode', () => {
  it('defaults', async () => {
    const r = await httpCall(plain, { cert: false });
    expect(r.status).toBe(401);
    expect(r.headers['x-zonegate-reason']).toBe('ERR_NO_IDENTITY');
    expect(r.json()).toEqual({ reason: 'ERR_NO_IDENTITY', decisionId: 'http-req-1' });
    const p = await httpCall(plain, { token: token('user:alice'), path: '/admin/users' });
    expect(p.status).toBe(403);
    expect(p.json()).toEqual({ reason: 'ERR_POLICY_DENIED', decisionId: 'http-req-1' });
  });

  it('configured, the same as over gRPC', async () => {
    const r = await httpCall(custom, {});
    expect(r.status).toBe(407);
    expect(r.headers['x-denied-because']).toBe('ERR_NO_CARRIED_IDENTITY');
    expect(r.headers['x-zonegate-reason']).toBeUndefined();
    expect(r.json()).toEqual({ reason: 'ERR_NO_CARRIED_IDENTITY', message: REASONS.ERR_NO_CARRIED_IDENTITY.summary, decisionId: 'http-req-1' });
    const p = await httpCall(custom, { token: token('user:alice'), path: '/admin/users' });
    expect(p.status).toBe(404);
    const ok = await httpCall(custom, { token: token('user:alice') });
    expect(ok.status).toBe(200);
    expect(ok.headers['x-zonegate-actor']).toBe('user:alice');
  });
});
