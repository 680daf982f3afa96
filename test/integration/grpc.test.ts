/**
 * The real gRPC server on loopback, driven by a grpc-js client, on the example config (two
 * trust domains, verified X509-SVIDs). The independent-client test is grpcio.test.ts.
 */
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { checkRequest, exampleCert, startWith, type Started } from '../helpers/zonegate.js';

const exampleConfig = parse(readFileSync(join(EXAMPLES_DIR, 'zonegate.yaml'), 'utf8')) as Record<string, unknown>;
let s: Started;

beforeAll(async () => {
  s = await startWith(exampleConfig);
});
afterAll(async () => {
  await s?.close();
});

type Hdr = { header: { key: string; value: string }; append?: { value?: boolean } };
const ok = (r: Awaited<ReturnType<Started['check']>>) => {
  if (!r.ok) throw new Error(`call failed: ${r.error.message}`);
  return r.response as {
    status: { code: number; message?: string };
    ok_response?: { headers: Hdr[]; headers_to_remove?: string[] };
    denied_response?: { status: { code: string }; headers: Hdr[]; body: string };
    dynamic_metadata?: { fields: Record<string, { stringValue?: string; boolValue?: boolean }> };
  };
};
const headerMap = (hs: Hdr[] = []) => Object.fromEntries(hs.map((h) => [h.header.key, h.header.value]));

describe('Check over gRPC', () => {
  it('allows a verified SVID that a rule allows, and tells the upstream who called', async () => {
    const r = ok(await s.check(checkRequest({ certificate: exampleCert('frontend'), path: '/api/items' })));
    expect(r.status.code).toBe(0);
    expect(headerMap(r.ok_response?.headers)).toEqual({
      'x-zonegate-peer': 'spiffe://zone-a.example/ns/shop/sa/frontend',
      'x-zonegate-peer-trust-domain': 'zone-a.example',
      'x-zonegate-decision-id': 'req-1',
    });
    // append explicitly false on every header: overwrite on every Envoy version
    for (const h of r.ok_response?.headers ?? []) expect(h.append).toEqual({ value: false });
    // guarded header removed; nothing we set is also removed (Envoy removes after setting)
    // (the canonical names, actor, act chain and roles are unknown here: their headers go)
    expect(r.ok_response?.headers_to_remove).toEqual(['x-zonegate-zone', 'x-zonegate-namespace', 'x-zonegate-service', 'x-zonegate-actor', 'x-zonegate-act', 'x-zonegate-roles']);
    expect(r.dynamic_metadata?.fields.rule?.stringValue).toBe('frontend-calls-api');
    expect(r.dynamic_metadata?.fields.peer_verified?.boolValue).toBe(true);
  });

  it('overwrites identity headers a client sent itself', async () => {
    const r = ok(
      await s.check(
        checkRequest({
          certificate: exampleCert('frontend'),
          headers: { 'x-zonegate-peer': 'spiffe://zone-a.example/ns/shop/sa/admin', 'x-zonegate-actor': 'root' },
        }),
      ),
    );
    expect(headerMap(r.ok_response?.headers)['x-zonegate-peer']).toBe('spiffe://zone-a.example/ns/shop/sa/frontend');
    expect(r.ok_response?.headers_to_remove).toContain('x-zonegate-actor');
  });

  it('allows a peer from the other trust domain verified against its own bundle', async () => {
    const r = ok(await s.check(checkRequest({ certificate: exampleCert('billing'), path: '/api/orders/7' })));
    expect(r.status.code).toBe(0);
    expect(headerMap(r.ok_response?.headers)['x-zonegate-peer-trust-domain']).toBe('zone-b.example');
  });

  it.each([
    ['a deny rule', { certificate: 'billing', path: '/admin/users' }, 'ERR_POLICY_DENIED', 7, 'Forbidden'],
    ['no allow rule', { certificate: 'frontend', method: 'DELETE', path: '/api/items/1' }, 'ERR_POLICY_NO_MATCH', 7, 'Forbidden'],
    ['no identity', { path: '/api/items' }, 'ERR_NO_IDENTITY', 16, 'Unauthorized'],
    ['a zone-a CA signing a zone-b ID', { certificate: 'forged', path: '/api/orders' }, 'ERR_SVID_UNTRUSTED', 16, 'Unauthorized'],
  ])('denies %s with its reason', async (_name, opts, reason, grpcCode, http) => {
    const { certificate, ...rest } = opts as { certificate?: string; path: string; method?: string };
    const r = ok(await s.check(checkRequest({ ...rest, ...(certificate ? { certificate: exampleCert(certificate) } : {}) })));
    expect(r.status).toMatchObject({ code: grpcCode, message: reason });
    expect(r.ok_response).toBeUndefined();
    expect(r.denied_response?.status.code).toBe(http);
    expect(headerMap(r.denied_response?.headers)['x-zonegate-reason']).toBe(reason);
    expect(JSON.parse(r.denied_response?.body ?? '')).toEqual({ reason, decisionId: 'req-1' });
    expect(r.dynamic_metadata?.fields.reason?.stringValue).toBe(reason);
  });

  it('denies a certificate that is not PEM with a reason, never an allow', async () => {
    const r = ok(await s.check(checkRequest({ certificate: '%%%not-a-cert' })));
    expect(r.status.code).toBe(16);
    expect(r.status.message).toMatch(/^ERR_/);
  });

  it('logs one decision line per Check without certificate bodies', async () => {
    const before = s.logs.length;
    await s.check(checkRequest({ certificate: exampleCert('frontend') }));
    const lines = s.logs.slice(before).filter((l) => l.msg === 'decision');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ result: 'allow', reason: null, peer: 'spiffe://zone-a.example/ns/shop/sa/frontend' });
    expect(typeof lines[0]?.latencyUs).toBe('number');
    const all = JSON.stringify(s.logs);
    expect(all).not.toMatch(/BEGIN%20CERTIFICATE|BEGIN CERTIFICATE|MII[A-Za-z0-9+/]{20}/);
  });

  it('serves health, readiness and metrics', async () => {
    const base = `http://127.0.0.1:${s.zg.ops.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/zonegate_decisions_total\{result="allow",reason=""\} [1-9]/);
    expect(metrics).toMatch(/zonegate_decisions_total\{result="deny",reason="ERR_NO_IDENTITY"\} [1-9]/);
    expect(metrics).toMatch(/zonegate_check_duration_seconds_bucket/);
    expect(metrics).toMatch(/zonegate_checks_in_flight 0/);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('answers gRPC health Check as SERVING for "" and the Authorization service', async () => {
    const { loadProtos } = await import('../../src/envoy/proto.js');
    const Health = grpc.makeGenericClientConstructor(loadProtos().healthService, 'Health');
    const h = new Health(s.target, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      Check: (req: unknown, cb: (e: grpc.ServiceError | null, r: { status: string }) => void) => void;
    };
    const call = (service: string) =>
      new Promise<{ status?: string; code?: number }>((resolve) =>
        h.Check({ service }, (e, r) => resolve(e ? { code: e.code } : { status: r.status })),
      );
    expect(await call('')).toEqual({ status: 'SERVING' });
    expect(await call('envoy.service.auth.v3.Authorization')).toEqual({ status: 'SERVING' });
    expect(await call('other')).toEqual({ code: grpc.status.NOT_FOUND });
    h.close();
  });
});
