import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import { compileNamer, compileNaming, templateProblem } from '../../src/policy/naming.js';
import { SpiffeId } from '../../src/spiffe/id.js';

const CONSUL_TD = '6f2a3c1e-8a0b-4c55-9d1e-2b3c4d5e6f70.consul';

describe('naming templates', () => {
  it.each([
    ['istio', 'istio', '/ns/shop/sa/frontend', { namespace: 'shop', service: 'frontend', vars: { namespace: 'shop', service: 'frontend' } }],
    ['spire', 'spire', '/ns/default/sa/web', { namespace: 'default', service: 'web' }],
    [
      'consul without partition (partition defaults to "default")',
      'consul',
      '/ns/default/dc/dc1/svc/billing',
      { namespace: 'default', service: 'billing', vars: { partition: 'default', namespace: 'default', datacenter: 'dc1', service: 'billing' } },
    ],
    [
      'consul with a partition',
      'consul',
      '/ap/team-a/ns/ops/dc/eu1/svc/billing',
      { namespace: 'ops', service: 'billing', vars: { partition: 'team-a', namespace: 'ops', datacenter: 'eu1', service: 'billing' } },
    ],
    ['consul-partition', 'consul-partition', '/ap/p1/ns/n/dc/d/svc/s', { namespace: 'n', service: 's', vars: { partition: 'p1', namespace: 'n', datacenter: 'd', service: 's' } }],
    ['a custom template', '/cluster/{cluster}/workload/{service}', '/cluster/c1/workload/w', { service: 'w', vars: { cluster: 'c1', service: 'w' } }],
  ])('%s', (_n, naming, path, expected) => {
    expect(compileNamer('zone-x', naming)(path)).toMatchObject({ zone: 'zone-x', ...expected });
  });

  it.each([
    ['istio', '/ns/shop/sa/frontend/extra'],
    ['istio', '/ns/shop/svc/frontend'],
    ['consul', '/ns/default/dc/dc1/svc'],
    ['consul-partition', '/ns/default/dc/dc1/svc/billing'],
    ['/a/{x}', '/a/b/c'],
  ])('%s does not name %s', (naming, path) => {
    expect(compileNamer('z', naming)(path)).toBeUndefined();
  });

  it('several templates are tried in order, with defaults for what a template does not capture', () => {
    const namer = compileNamer('z', { templates: ['/svc/{service}', '/{namespace}/{service}'], defaults: { namespace: 'root' } });
    expect(namer('/svc/a')).toMatchObject({ namespace: 'root', service: 'a' });
    expect(namer('/ns1/b')).toMatchObject({ namespace: 'ns1', service: 'b' });
  });

  it('per trust domain: its zone and its templates; an unmatched ID keeps only the zone; unconfigured: nothing', () => {
    const trust = ConfigSchema.parse({
      trust: [
        { trustDomain: 'cluster.local', bundle: 'x.pem', zone: 'mesh-istio', naming: 'istio' },
        { trustDomain: CONSUL_TD, bundle: 'y.pem', zone: 'mesh-consul', naming: 'consul' },
        { trustDomain: 'zoned.test', bundle: 'z.pem', zone: 'zoned' },
        { trustDomain: 'plain.test', bundle: 'p.pem' },
      ],
    }).trust;
    const canonical = compileNaming(trust);
    expect(canonical(SpiffeId.parse('spiffe://cluster.local/ns/a/sa/b'))).toMatchObject({ zone: 'mesh-istio', namespace: 'a', service: 'b' });
    expect(canonical(SpiffeId.parse(`spiffe://${CONSUL_TD}/ns/a/dc/dc1/svc/b`))).toMatchObject({ zone: 'mesh-consul', namespace: 'a', service: 'b' });
    expect(canonical(SpiffeId.parse(`spiffe://${CONSUL_TD}/agent/client/dc/dc1/id/n1`))).toEqual({ zone: 'mesh-consul', vars: {} });
    expect(canonical(SpiffeId.parse('spiffe://zoned.test/anything'))).toEqual({ zone: 'zoned', vars: {} });
    expect(canonical(SpiffeId.parse('spiffe://plain.test/ns/a/sa/b'))).toBeUndefined();
    expect(canonical(SpiffeId.parse('spiffe://other.test/ns/a/sa/b'))).toBeUndefined();
  });

  it.each([
    ['ns/{namespace}', 'must start with "/"'],
    ['/ns/{namespace}/{namespace}', 'appears twice'],
    ['/z/{zone}', '"zone" is not a template variable'],
    ['/a/{b}c', 'neither a literal'],
    ['/a//b', 'neither a literal'],
  ])('refuses template %s', (t, why) => {
    expect(templateProblem(t)).toContain(why);
    const r = ConfigSchema.safeParse({ trust: [{ trustDomain: 't.test', bundle: 'b.pem', naming: t }] });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.message).join('\n')).toContain(why);
  });

  it('refuses an unknown built-in', () => {
    expect(() => ConfigSchema.parse({ trust: [{ trustDomain: 't.test', bundle: 'b.pem', naming: 'linkerd' }] })).toThrow();
  });
});
