import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { importIstio } from '../../../src/policy/import/istio.js';
import { formatPolicy } from '../../../src/policy/import/common.js';
import { EXAMPLES_DIR } from '../../../src/paths.js';
import { istioAllows, type Req } from '../oracles.js';
import { zonegateAllows } from '../imported.js';


const CALLERS = [
  'spiffe://cluster.local/ns/default/sa/frontend',
  'spiffe://cluster.local/ns/default/sa/batch',
  'spiffe://cluster.local/ns/todos/sa/todos-viewer',
  'spiffe://cluster.local/ns/todos/sa/todos-editor',
  'spiffe://cluster.local/ns/shop/sa/admin',
  'spiffe://cluster.local/ns/kube-system/sa/ops',
];
const grid = (destinations: string[]): Req[] => {
  const out: Req[] = [];
  for (const id of CALLERS)
    for (const destination of destinations)
      for (const method of ['GET', 'POST', 'DELETE'])
        for (const path of ['/', '/info', '/info/health', '/todos', '/todos/1', '/todos/1/items', '/admin/x', '/api/v1/x'])
          for (const headers of [{}, { 'x-tenant': 't1' }, { 'x-tenant': 't2' }] as Array<Record<string, string>>)
            for (const port of [8080, 9090]) out.push({ id, destination, method, path, headers, port, host: port === 8080 ? 'api.example.com' : 'Internal.svc:9090' });
  return out;
};

function equivalent(source: string, destinations: string[]) {
  const docs = parseAllDocuments(source).map((d) => d.toJS());
  const result = importIstio(source, 'test.yaml', ZONES);
  const zg = zonegateAllows(formatPolicy('istio', 'test.yaml', result));
  const reqs = grid(destinations);
  const differ = reqs.filter((r) => istioAllows(docs, r) !== zg(r));
  return { result, differ, allowed: reqs.filter((r) => zg(r)).length, total: reqs.length };
}

/** The test grid's zones (imported.ts names Istio- and Consul-named callers so): canonical names need a zone. */
const ZONES = { zone: ['istio', 'consul'] };

describe('zonegate policy import istio', () => {
  // Destinations no policy of a file applies to are left out of its grid: Istio allows everything
  // there, zonegate denies what no rule allows (docs/policy.md).
  it.each([
    ['istio-allow-info.yaml', 'default/api'],
    ['istio-todos-viewer-allow.yaml', 'todos/todos'],
  ])('%s: the same decisions as Istio on every request of the grid', (f, destination) => {
    const { result, differ, allowed } = equivalent(readFileSync(join(EXAMPLES_DIR, 'policy', f), 'utf8'), [destination]);
    expect(result.unsupported).toEqual([]);
    expect(differ).toEqual([]);
    expect(allowed).toBeGreaterThan(0);
  });

  it('allow-info: exactly the frontend, GET, /info…, on default/api', () => {
    const r = importIstio(readFileSync(join(EXAMPLES_DIR, 'policy', 'istio-allow-info.yaml'), 'utf8'), 'x');
    expect(r.rules).toEqual([
      {
        name: 'default/allow-info',
        action: 'allow',
        destinations: ['default/api'],
        from: { principals: ['spiffe://cluster.local/ns/default/sa/frontend'] },
        to: { methods: ['GET'], paths: [{ prefix: '/info' }] },
      },
    ]);
  });

  const MANY = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  action: DENY
  rules:
    - to: [{operation: {paths: ["/admin/*"]}}]
    - from: [{source: {notNamespaces: ["default", "todos"]}}]
      to: [{operation: {methods: ["DELETE"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api, namespace: default}
spec:
  selector: {matchLabels: {app: api}}
  rules:
    - from:
        - source: {namespaces: ["todos"]}
        - source: {principals: ["cluster.local/ns/default/*"], notPrincipals: ["*/sa/batch"]}
      to:
        - operation: {methods: ["GET"], notPaths: ["/info/*"]}
        - operation: {ports: ["9090"], hosts: ["internal.svc"]}
      when:
        - key: request.headers[X-Tenant]
          notValues: ["t2"]
    - from: [{source: {principals: ["*"]}}]
      to: [{operation: {paths: ["/todos/{*}"], methods: ["POST"]}}]
      when:
        - key: source.namespace
          values: ["shop"]
        - key: destination.port
          values: ["8080"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: everything, namespace: todos}
spec:
  selector: {matchLabels: {app: todos}}
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: nothing, namespace: shop}
spec: {}
`;

  it('several documents: deny wins, OR of sources and operations, negations, when, templates, allow-all and allow-nothing', () => {
    const { result, differ, allowed, total } = equivalent(MANY, ['default/api', 'todos/todos', 'shop/cart']);
    expect(result.unsupported).toEqual([]);
    expect(differ).toEqual([]);
    expect(allowed).toBeGreaterThan(10);
    expect(allowed).toBeLessThan(total);
    // two sources × two operations
    expect(result.rules.filter((r) => r.name.startsWith('default/api[0]'))).toHaveLength(4);
  });

  it('a DENY-only file: Istio allows the rest, so the import adds the allow rules that say so', () => {
    const src = `
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: no-delete, namespace: shop}
spec:
  action: DENY
  rules: [{to: [{operation: {methods: ["DELETE"]}}]}]
`;
    const { result, differ, allowed } = equivalent(src, ['shop/cart', 'shop/db']);
    expect(differ).toEqual([]);
    expect(allowed).toBeGreaterThan(0);
    expect(result.rules.map((r) => r.action)).toEqual(['deny', 'allow']);
  });

  it('reports what it cannot express and fails closed: never allows what Istio denies', () => {
    const src = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: jwt-users, namespace: default}
spec:
  selector: {matchLabels: {app: api}}
  rules:
    - from: [{source: {requestPrincipals: ["https://issuer.example/*"]}}]
    - from: [{source: {ipBlocks: ["10.0.0.0/8"]}}, {source: {namespaces: ["todos"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-ip, namespace: default}
spec:
  action: DENY
  rules: [{from: [{source: {remoteIpBlocks: ["1.2.3.4"]}}], to: [{operation: {paths: ["/admin/*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit, namespace: default}
spec: {action: AUDIT, rules: [{}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
`;
    const docs = parseAllDocuments(src).map((d) => d.toJS());
    const result = importIstio(src, 't', ZONES);
    expect(result.unsupported).toEqual([
      'default/jwt-users[0]: source.requestPrincipals: not imported (without it the rule would allow more)',
      'default/jwt-users[1].from0.to0: source.ipBlocks: not imported (without it the rule would allow more)',
      'default/deny-ip: source.remoteIpBlocks: left out (the rule denies more than in Istio)',
      'default/audit: action AUDIT has no zonegate equivalent: skipped',
      'document 4: found kind "ConfigMap", expected kind AuthorizationPolicy (security.istio.io/v1): skipped',
    ]);
    const zg = zonegateAllows(formatPolicy('istio', 't', result));
    const reqs = grid(['default/api']);
    // the todos namespace alternative was kept
    expect(reqs.some((r) => zg(r))).toBe(true);
    for (const r of reqs) if (zg(r)) expect(istioAllows(docs, r)).toBe(true);
  });
});
