import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { formatPolicy } from '../../../src/policy/import/common.js';
import { importConsul } from '../../../src/policy/import/consul.js';
import { EXAMPLES_DIR } from '../../../src/paths.js';
import { consulAllows, type ConsulCaller, type Req } from '../oracles.js';
import { zonegateAllows } from '../imported.js';

const TD = '6f2a3c1e-8a0b-4c55-9d1e-2b3c4d5e6f70.consul';

const idOf = (c: ConsulCaller) => `spiffe://${TD}${c.partition === 'default' ? '' : `/ap/${c.partition}`}/ns/${c.namespace}/dc/dc1/svc/${c.service}`;
const CALLERS: ConsulCaller[] = [];
for (const service of ['frontend', 'web', 'batch'])
  for (const namespace of ['default', 'ops']) for (const partition of ['default', 'team-a']) CALLERS.push({ service, namespace, partition });

function grid(destinations: string[]): Array<{ caller: ConsulCaller; req: Req }> {
  const out: Array<{ caller: ConsulCaller; req: Req }> = [];
  for (const caller of CALLERS)
    for (const destination of destinations)
      for (const method of ['GET', 'POST', 'DELETE'])
        for (const path of ['/', '/v2', '/v2/widgets', '/v2/widgets/7', '/admin', '/items/42'])
          for (const headers of [{}, { 'x-debug': '1' }, { 'x-env': 'prod-eu' }] as Array<Record<string, string>>)
            out.push({ caller, req: { id: idOf(caller), destination, method, path, headers, host: 'backend', port: 8080 } });
  return out;
}

/** Reads CRD documents for the oracle (the importer reads them itself). */
const crds = (text: string) => parseAllDocuments(text).map((d) => d.toJS());

function check(text: string, destinations: string[]) {
  const result = importConsul(text, 'test.yaml', ZONES);
  const zg = zonegateAllows(formatPolicy('consul', 'test.yaml', result));
  const entries = crds(text);
  const cases = grid(destinations);
  const differ = cases.filter(({ caller, req }) => consulAllows(entries, caller, req) !== zg(req));
  return { result, differ, allowed: cases.filter(({ req }) => zg(req)).length, total: cases.length, zg };
}

/** The test grid's zones (imported.ts names Istio- and Consul-named callers so): canonical names need a zone. */
const ZONES = { zone: ['istio', 'consul'] };

describe('zonegate policy import consul', () => {
  it('allow-backend (CRD): the same decisions as Consul', () => {
    const { result, differ, allowed } = check(readFileSync(join(EXAMPLES_DIR, 'policy', 'consul-allow-backend.yaml'), 'utf8'), ['default/backend']);
    expect(result.unsupported).toEqual([]);
    expect(differ).toEqual([]);
    // frontend in the default namespace and partition, GET /, three header variants
    expect(allowed).toBe(3);
  });

  it('the config-entry JSON of allow-backend imports to the same rules as the CRD', () => {
    const yaml = importConsul(readFileSync(join(EXAMPLES_DIR, 'policy', 'consul-allow-backend.yaml'), 'utf8'), 'a', ZONES);
    const json = importConsul(readFileSync(join(EXAMPLES_DIR, 'policy', 'consul-allow-backend.json'), 'utf8'), 'b', ZONES);
    expect(json.rules).toEqual(yaml.rules);
    expect(json.unsupported).toEqual([]);
  });

  const MANY = `
apiVersion: consul.hashicorp.com/v1alpha1
kind: ServiceIntentions
metadata: {name: api}
spec:
  destination: {name: api}
  sources:
    - name: "*"
      action: deny
    - name: web
      permissions:
        - action: deny
          http: {pathPrefix: /admin}
        - action: allow
          http: {pathPrefix: /v2, methods: [GET, POST]}
        - action: deny
          http:
            header: [{name: x-debug, present: true}]
        - action: allow
          http: {pathRegex: "/items/[0-9]+"}
    - name: batch
      namespace: ops
      action: allow
    - name: "*"
      namespace: ops
      permissions:
        - action: allow
          http:
            methods: [GET]
            header: [{name: x-env, suffix: "-eu", invert: true}]
    - name: frontend
      partition: team-a
      action: allow
---
apiVersion: consul.hashicorp.com/v1alpha1
kind: ServiceIntentions
metadata: {name: db}
spec:
  destination: {name: db, namespace: ops}
  sources:
    - {name: batch, namespace: ops, action: allow}
    - {name: batch, namespace: "*", action: deny}
    - {name: "*", namespace: "*", action: allow}
`;

  it('precedence of sources, first-match permissions, headers, regexes, partitions and namespaces', () => {
    const { result, differ, allowed, total } = check(MANY, ['default/api', 'ops/db', 'default/other']);
    expect(result.unsupported).toEqual([]);
    expect(differ).toEqual([]);
    expect(allowed).toBeGreaterThan(20);
    expect(allowed).toBeLessThan(total);
  });

  it('config-entry JSON (an array of entries, PascalCase keys) decides like its CRD form', () => {
    const json = JSON.stringify([
      {
        Kind: 'service-intentions',
        Name: 'api',
        Sources: [
          { Name: '*', Action: 'deny' },
          { Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/v2', Methods: ['GET'], Header: [{ Name: 'X-Debug', Present: true, Invert: true }] } }] },
        ],
      },
    ]);
    const crd = `
kind: ServiceIntentions
spec:
  destination: {name: api}
  sources:
    - {name: "*", action: deny}
    - name: web
      permissions: [{action: allow, http: {pathPrefix: /v2, methods: [GET], header: [{name: x-debug, present: true, invert: true}]}}]
`;
    const zg = zonegateAllows(formatPolicy('consul', 'j', importConsul(json, 'j', ZONES)));
    const entries = crds(crd);
    const cases = grid(['default/api']);
    expect(cases.filter(({ caller, req }) => consulAllows(entries, caller, req) !== zg(req))).toEqual([]);
    expect(cases.some(({ req }) => zg(req))).toBe(true);
  });

  it('an Istio-named caller with the same namespace and service is the same caller (canonical names)', () => {
    const { zg } = check(readFileSync(join(EXAMPLES_DIR, 'policy', 'consul-allow-backend.yaml'), 'utf8'), ['default/backend']);
    const req = { destination: 'default/backend', method: 'GET', path: '/', headers: {}, host: 'b', port: 80 };
    expect(zg({ ...req, id: 'spiffe://cluster.local/ns/default/sa/frontend' })).toBe(true);
    expect(zg({ ...req, id: 'spiffe://cluster.local/ns/ops/sa/frontend' })).toBe(false);
  });

  it('reports what it cannot express and fails closed', () => {
    const src = `
kind: ServiceIntentions
spec:
  destination: {name: api}
  sources:
    - {name: web, peer: cluster-2, action: allow}
    - {name: batch, samenessGroup: g1, action: deny}
    - name: frontend
      permissions:
        - action: allow
          jwt: {providers: [{name: okta}]}
          http: {pathPrefix: /v2}
        - action: allow
          http: {pathPrefix: /}
---
kind: ProxyDefaults
metadata: {name: global}
`;
    const r = importConsul(src, 't', ZONES);
    expect(r.unsupported).toEqual([
      'default/api from default/web: peer cluster-2: not imported (without it the rule would allow more)',
      'default/api from default/batch: samenessGroup g1: left out (the rule denies more than in Consul)',
      'default/api from default/frontend#0: JWT: not imported (without it the rule would allow more)',
      'document 2: kind ProxyDefaults is neither ServiceIntentions nor service-intentions: skipped',
    ]);
    expect(r.rules.map((x) => `${x.action} ${x.name}`)).toEqual(['deny default/api<-default/batch', 'allow default/api<-default/frontend#1']);
  });
});
