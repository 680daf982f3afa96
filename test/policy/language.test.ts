import { describe, expect, it, vi } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import { normalizeHost } from '../../src/request/host.js';
import { compileNamer } from '../../src/policy/naming.js';
import { compilePolicy, type PolicyInput } from '../../src/policy/rules.js';

/** The normalized host of a valid authority (the pipeline refuses the others before the policy). */
const hostOf = (raw: string) => {
  const h = normalizeHost(raw);
  if (!h.ok) throw new Error(h.message);
  return { host: h.name, hostPort: h.port };
};

const istio = compileNamer('mesh-a', 'istio');
const consul = compileNamer('mesh-b', 'consul');
const input = (p: Partial<PolicyInput>): PolicyInput => ({ principal: '', trustDomain: undefined, method: 'GET', path: '/', context: new Map(), ...p });
const caller = (id: string, td: string, namer: typeof istio) => ({ principal: id, trustDomain: td, canonical: namer(id.slice(`spiffe://${td}`.length)) });
const ISTIO_WEB = caller('spiffe://cluster.local/ns/shop/sa/web', 'cluster.local', istio);
const CONSUL_WEB = caller('spiffe://c1.consul/ns/shop/dc/dc1/svc/web', 'c1.consul', consul);
const CONSUL_WEB_P = caller('spiffe://c1.consul/ap/team-a/ns/shop/dc/dc1/svc/web', 'c1.consul', consul);
const rules = (rs: unknown[]) => ConfigSchema.parse({ rules: rs }).rules;
// The host as the pipeline hands it to the policy (src/request/host.ts).
const withHost = (p: Partial<PolicyInput>): Partial<PolicyInput> => (p.host === undefined ? p : { ...p, ...hostOf(p.host) });
const decide = (rs: unknown[], p: Partial<PolicyInput>) => compilePolicy(rules(rs)).evaluate(input(withHost(p)));

describe('policy language', () => {
  it('canonical names match Istio- and Consul-named callers alike', () => {
    const rs = [{ name: 'web', action: 'allow', from: { zones: ['mesh-a', 'mesh-b'], namespaces: ['shop'], services: ['web'] } }];
    expect(decide(rs, ISTIO_WEB)).toEqual({ allowed: true, rule: 'web' });
    expect(decide(rs, CONSUL_WEB)).toEqual({ allowed: true, rule: 'web' });
    expect(decide(rs, { principal: 'spiffe://cluster.local/ns/shop/sa/web' })).toMatchObject({ allowed: false }); // no canonical names
  });

  it('zones and template variables', () => {
    const rs = [
      { name: 'b-default', action: 'allow', from: { zones: ['mesh-b'], vars: { partition: ['default'] } } },
      { name: 'a', action: 'allow', from: { zones: [{ glob: 'mesh-a' }], notServices: ['db'] } },
    ];
    expect(decide(rs, CONSUL_WEB)).toMatchObject({ rule: 'b-default' });
    expect(decide(rs, CONSUL_WEB_P)).toMatchObject({ allowed: false });
    expect(decide(rs, ISTIO_WEB)).toMatchObject({ rule: 'a' });
  });

  it('negations: a not… field matches an absent value, a positive field does not', () => {
    const rs = [{ name: 'n', action: 'allow', from: { notNamespaces: ['kube-system'], notPrincipals: [{ suffix: '/sa/admin' }] }, to: { notMethods: ['DELETE'], notPaths: [{ prefix: '/admin' }] } }];
    expect(decide(rs, ISTIO_WEB)).toMatchObject({ allowed: true });
    expect(decide(rs, { principal: 'spiffe://x.test/unnamed' })).toMatchObject({ allowed: true });
    expect(decide(rs, { ...ISTIO_WEB, method: 'DELETE' })).toMatchObject({ allowed: false });
    expect(decide(rs, { ...ISTIO_WEB, path: '/admin/x' })).toMatchObject({ allowed: false });
    expect(decide(rs, caller('spiffe://cluster.local/ns/kube-system/sa/x', 'cluster.local', istio))).toMatchObject({ allowed: false });
    expect(decide(rs, caller('spiffe://cluster.local/ns/shop/sa/admin', 'cluster.local', istio))).toMatchObject({ allowed: false });
  });

  it('hosts (case-insensitive, with or without port) and ports', () => {
    const rs = [{ name: 'h', action: 'allow', to: { hosts: ['api.example.com', { suffix: '.internal' }], ports: [8080, '9090'] } }];
    expect(decide(rs, { host: 'API.example.com:443', port: 8080 })).toMatchObject({ allowed: true });
    expect(decide(rs, { host: 'db.internal', port: 9090 })).toMatchObject({ allowed: true });
    expect(decide(rs, { host: 'api.example.com.evil', port: 8080 })).toMatchObject({ allowed: false });
    expect(decide(rs, { host: 'api.example.com', port: 443 })).toMatchObject({ allowed: false });
    expect(decide(rs, { host: 'api.example.com' })).toMatchObject({ allowed: false });
  });

  it('claim and header conditions', () => {
    const rs = [
      { name: 'admins', action: 'allow', from: { claims: { roles: ['admin'] } }, when: [{ header: 'X-Tenant', values: ['t1'] }] },
      { name: 'no-debug', action: 'deny', when: [{ header: 'x-debug', present: true }] },
      { name: 'not-guests', action: 'allow', when: [{ claim: 'email', values: [{ suffix: '@example.com' }], notValues: [{ prefix: 'guest' }] }] },
    ];
    const headers = new Map([['x-tenant', 't1']]);
    expect(decide(rs, { claims: { roles: ['user', 'admin'] }, headers })).toMatchObject({ rule: 'admins' });
    expect(decide(rs, { claims: { roles: 'admin' }, headers })).toMatchObject({ rule: 'admins' });
    expect(decide(rs, { claims: { roles: ['admin'] }, headers: new Map() })).toMatchObject({ allowed: false });
    expect(decide(rs, { claims: { roles: ['admin'] }, headers: new Map([['x-tenant', 't1'], ['x-debug', '']]) })).toMatchObject({ rule: 'no-debug', allowed: false });
    expect(decide(rs, { claims: { email: 'ann@example.com' } })).toMatchObject({ rule: 'not-guests' });
    expect(decide(rs, { claims: { email: 'guest@example.com' } })).toMatchObject({ allowed: false });
    expect(decide(rs, { claims: { email: { nested: 'x@example.com' } } })).toMatchObject({ allowed: false });
    expect(decide(rs, {})).toMatchObject({ allowed: false });
  });

  it('destinations scope a rule to routes whose context_extensions destination matches', () => {
    const rs = [{ name: 'api-only', action: 'allow', destinations: ['default/api', { glob: 'ops/*' }] }];
    expect(decide(rs, { context: new Map([['destination', 'default/api']]) })).toMatchObject({ allowed: true });
    expect(decide(rs, { context: new Map([['destination', 'ops/x']]) })).toMatchObject({ allowed: true });
    expect(decide(rs, { context: new Map([['destination', 'default/db']]) })).toMatchObject({ allowed: false });
    expect(decide(rs, {})).toMatchObject({ allowed: false });
  });

  it('except takes requests out of a rule', () => {
    const rs = [{ name: 'all-but-db', action: 'deny', from: { namespaces: ['shop'] }, except: [{ from: { zones: ['mesh-a', 'mesh-b'], services: ['web'] }, to: { methods: ['GET'] } }] }, { name: 'any', action: 'allow' }];
    expect(decide(rs, ISTIO_WEB)).toMatchObject({ allowed: true, rule: 'any' });
    expect(decide(rs, { ...ISTIO_WEB, method: 'POST' })).toMatchObject({ allowed: false, rule: 'all-but-db' });
  });

  it('upper- and lower-case actions, and the old syntax, stay valid', () => {
    expect(rules([{ name: 'a', action: 'ALLOW' }, { name: 'b', action: 'deny', from: { principals: ['spiffe://a/b'], trustDomains: ['a'] }, to: { methods: ['get'], paths: ['/x'], context: { k: 'v' } } }]).map((r) => r.action)).toEqual(['allow', 'deny']);
  });

  describe('dry run', () => {
    const rs = [
      { name: 'new-deny', action: 'deny', dryRun: true, to: { paths: [{ prefix: '/admin' }] } },
      { name: 'hard-deny', action: 'deny', to: { paths: ['/admin/root'] } },
      { name: 'allow-all-get', action: 'allow', to: { methods: ['GET'] } },
    ];

    it('a dry-run deny rule allows, names the rule, and tells the observer', () => {
      const onDryRun = vi.fn();
      const p = compilePolicy(rules(rs), { onDryRun });
      const d = p.evaluate(input({ path: '/admin/users', requestId: 'r1' }));
      expect(d).toEqual({ allowed: true, rule: 'allow-all-get', dryRun: { reason: 'ERR_POLICY_DENIED', rule: 'new-deny', message: 'policy: deny rule "new-deny" matched' } });
      expect(onDryRun).toHaveBeenCalledTimes(1);
      expect(onDryRun.mock.calls[0]![1]).toMatchObject({ requestId: 'r1', path: '/admin/users' });
      // an enforced deny still wins
      expect(p.evaluate(input({ path: '/admin/root' }))).toMatchObject({ allowed: false, rule: 'hard-deny' });
      // not matched: no report
      p.evaluate(input({ path: '/x' }));
      expect(onDryRun).toHaveBeenCalledTimes(1);
    });

    it('the default deny is enforced unless the whole rule set is in dry run', () => {
      expect(compilePolicy(rules(rs)).evaluate(input({ method: 'POST', path: '/admin/x' }))).toMatchObject({ allowed: false, reason: 'ERR_POLICY_NO_MATCH' });
      const onDryRun = vi.fn();
      const all = compilePolicy(rules(rs), { dryRun: true, onDryRun });
      expect(all.evaluate(input({ method: 'POST', path: '/y' }))).toMatchObject({ allowed: true, dryRun: { reason: 'ERR_POLICY_NO_MATCH' } });
      expect(all.evaluate(input({ path: '/admin/root' }))).toMatchObject({ allowed: true, rule: 'allow-all-get', dryRun: { rule: 'new-deny' } }); // the first matching deny is named
      expect(onDryRun).toHaveBeenCalledTimes(2);
    });
  });
});
