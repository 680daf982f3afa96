/**
 * One policy over callers named by two meshes, through the real gRPC server: an Istio-named
 * trust domain (cluster.local, naming istio) and a Consul-named one (<uuid>.consul, naming
 * consul, with and without admin partitions), each with its own root CA. Rules speak canonical
 * names, raw IDs and globs; one included policy file is in dry run.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { MemoryCA } from '../../src/demo/pki.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';

const ISTIO_TD = 'cluster.local';
const CONSUL_TD = '6f2a3c1e-8a0b-4c55-9d1e-2b3c4d5e6f70.consul';
const CALLERS = {
  istioFrontend: `spiffe://${ISTIO_TD}/ns/default/sa/frontend`,
  istioBatch: `spiffe://${ISTIO_TD}/ns/ops/sa/batch`,
  consulFrontend: `spiffe://${CONSUL_TD}/ns/default/dc/dc1/svc/frontend`,
  consulBatchTeamA: `spiffe://${CONSUL_TD}/ap/team-a/ns/ops/dc/dc1/svc/batch`,
  consulAgent: `spiffe://${CONSUL_TD}/agent/client/dc/dc1/id/node-1`,
} as const;
type Caller = keyof typeof CALLERS;
const certs = {} as Record<Caller, string>;
let s: Started;

beforeAll(async () => {
  const istio = await MemoryCA.create(ISTIO_TD);
  const consul = await MemoryCA.create(CONSUL_TD);
  for (const [name, id] of Object.entries(CALLERS) as Array<[Caller, string]>)
    certs[name] = encodeURIComponent((await (id.includes('.consul') ? consul : istio).issue(id)).certPem);
  const dir = mkdtempSync(join(tmpdir(), 'zg-matrix-'));
  writeFileSync(join(dir, 'istio.pem'), istio.certPem);
  writeFileSync(join(dir, 'consul.pem'), consul.certPem);
  writeFileSync(
    join(dir, 'trial.yaml'),
    stringify({ dryRun: true, rules: [{ name: 'trial-no-post', action: 'deny', to: { methods: ['POST'] } }] }),
  );
  s = await startWith(
    {
      trust: [
        { trustDomain: ISTIO_TD, bundle: 'istio.pem', zone: 'mesh-istio', naming: 'istio' },
        { trustDomain: CONSUL_TD, bundle: 'consul.pem', zone: 'mesh-consul', naming: 'consul' },
      ],
      policy: { include: ['trial.yaml'] },
      rules: [
        { name: 'no-team-a-admin', action: 'DENY', from: { vars: { partition: ['team-a'] } }, to: { paths: [{ prefix: '/admin/' }] } },
        { name: 'no-debug', action: 'deny', when: [{ header: 'x-debug', present: true }] },
        { name: 'frontends-read', action: 'ALLOW', from: { zones: ['mesh-istio', 'mesh-consul'], namespaces: ['default'], services: ['frontend'] }, to: { methods: ['GET', 'POST'], paths: [{ glob: '/api/**' }] } },
        { name: 'ops-batch', action: 'allow', from: { zones: ['mesh-istio', 'mesh-consul'], namespaces: ['ops'], services: ['batch'] }, to: { paths: [{ prefix: '/admin/' }, { prefix: '/jobs/' }] } },
        { name: 'consul-zone-health', action: 'allow', from: { zones: ['mesh-consul'] }, to: { paths: ['/health'] } },
        { name: 'agents-by-raw-id', action: 'allow', from: { principals: [{ glob: 'spiffe://*.consul/agent/client/**' }] }, to: { paths: ['/agent'] } },
        { name: 'orders-only-here', action: 'allow', destinations: ['default/orders'], from: { trustDomains: [ISTIO_TD] }, to: { paths: [{ prefix: '/orders' }] } },
      ],
    },
    dir,
  );
});
afterAll(async () => {
  await s?.close();
});

type Hdr = { header: { key: string; value: string } };
async function decide(caller: Caller, o: { method?: string; path: string; headers?: Record<string, string>; context?: Record<string, string> }) {
  const r = await s.check(checkRequest({ certificate: certs[caller], ...o }));
  if (!r.ok) throw new Error(r.error.message);
  const res = r.response as { status: { code: number; message?: string }; dynamic_metadata?: { fields: Record<string, { stringValue?: string }> } };
  return {
    allowed: res.status.code === 0,
    reason: res.status.code === 0 ? null : (res.status.message ?? null),
    rule: res.dynamic_metadata?.fields.rule?.stringValue ?? null,
    dryRun: [res.dynamic_metadata?.fields.dry_run_reason?.stringValue ?? null, res.dynamic_metadata?.fields.dry_run_rule?.stringValue ?? null],
  };
}

describe('one policy across Istio- and Consul-named callers', () => {
  it.each([
    // canonical names: the same rule for both meshes
    ['istioFrontend', 'GET', '/api/items', {}, {}, true, 'frontends-read'],
    ['consulFrontend', 'GET', '/api/items/7', {}, {}, true, 'frontends-read'],
    ['istioBatch', 'GET', '/api/items', {}, {}, false, 'ERR_POLICY_NO_MATCH'],
    ['istioFrontend', 'DELETE', '/api/items', {}, {}, false, 'ERR_POLICY_NO_MATCH'],
    ['istioFrontend', 'GET', '/apix', {}, {}, false, 'ERR_POLICY_NO_MATCH'],
    // template variables: the Consul partition
    ['istioBatch', 'GET', '/admin/jobs', {}, {}, true, 'ops-batch'],
    ['consulBatchTeamA', 'GET', '/jobs/1', {}, {}, true, 'ops-batch'],
    ['consulBatchTeamA', 'GET', '/admin/jobs', {}, {}, false, 'ERR_POLICY_DENIED'],
    // zone
    ['consulFrontend', 'GET', '/health', {}, {}, true, 'consul-zone-health'],
    ['consulAgent', 'GET', '/health', {}, {}, true, 'consul-zone-health'],
    ['istioFrontend', 'GET', '/health', {}, {}, false, 'ERR_POLICY_NO_MATCH'],
    // an ID no template describes still works by raw ID
    ['consulAgent', 'GET', '/agent', {}, {}, true, 'agents-by-raw-id'],
    ['consulAgent', 'GET', '/api/items', {}, {}, false, 'ERR_POLICY_NO_MATCH'],
    // header condition
    ['consulFrontend', 'GET', '/api/items', { 'x-debug': '1' }, {}, false, 'ERR_POLICY_DENIED'],
    // destination scoping
    ['istioFrontend', 'GET', '/orders/1', {}, { destination: 'default/orders' }, true, 'orders-only-here'],
    ['istioFrontend', 'GET', '/orders/1', {}, { destination: 'default/billing' }, false, 'ERR_POLICY_NO_MATCH'],
    ['istioFrontend', 'GET', '/orders/1', {}, {}, false, 'ERR_POLICY_NO_MATCH'],
    ['consulFrontend', 'GET', '/orders/1', {}, { destination: 'default/orders' }, false, 'ERR_POLICY_NO_MATCH'],
  ] as const)('%s %s %s %j %j → allowed %s (%s)', async (caller, method, path, headers, context, allowed, ruleOrReason) => {
    const d = await decide(caller, { method, path, headers, context });
    expect(d.allowed).toBe(allowed);
    if (allowed) expect(d.rule).toBe(ruleOrReason);
    else expect(d.reason).toBe(ruleOrReason);
  });

  it('a deny rule of a dry-run policy file allows, logs and counts what it would deny', async () => {
    const before = s.logs.length;
    const d = await decide('consulFrontend', { method: 'POST', path: '/api/items' });
    // dynamic_metadata says so too, for Envoy's access log
    expect(d).toEqual({ allowed: true, reason: null, rule: 'frontends-read', dryRun: ['ERR_POLICY_DENIED', 'trial-no-post'] });
    await decide('istioFrontend', { method: 'POST', path: '/api/items' });
    const plain = await decide('istioFrontend', { method: 'GET', path: '/api/items' }); // not matched: not counted
    expect(plain.dryRun).toEqual([null, null]);
    const lines = s.logs.slice(before).filter((l) => l.msg === 'policy dry run: would deny');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ rule: 'trial-no-post', reason: 'ERR_POLICY_DENIED', peer: CALLERS.consulFrontend, method: 'POST', path: '/api/items', level: 30 });
    const metrics = await (await fetch(`http://127.0.0.1:${s.zg.ops.port}/metrics`)).text();
    expect(metrics).toMatch(/zonegate_policy_dry_run_denials_total\{rule="trial-no-post",reason="ERR_POLICY_DENIED"\} 2\b/);
  });

  it('the upstream is told who called (the verified ID, whatever the mesh)', async () => {
    const r = await s.check(checkRequest({ certificate: certs.consulFrontend, path: '/api/x' }));
    if (!r.ok) throw new Error(r.error.message);
    const headers = ((r.response as { ok_response?: { headers: Hdr[] } }).ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value]);
    expect(headers).toContainEqual(['x-zonegate-peer', CALLERS.consulFrontend]);
  });
});
