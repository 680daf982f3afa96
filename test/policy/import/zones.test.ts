/**
 * `--zone` narrows what leads toward an allow, never a deny: an Istio DENY or a Consul deny
 * intention imported with a zone must still deny callers of every other zone, or another allow
 * rule of the same config (a second import, a hand-written rule) lets them through.
 */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigSchema } from '../../../src/config/schema.js';
import { formatPolicy } from '../../../src/policy/import/common.js';
import { importConsul } from '../../../src/policy/import/consul.js';
import { importIstio } from '../../../src/policy/import/istio.js';
import { compilePolicy, type PolicyInput } from '../../../src/policy/rules.js';

/** The imported rules beside an allow for every caller of zone-b (as another policy file would add). */
function withZoneBAllowed(text: string) {
  const imported = (parse(text) as { rules: unknown[] }).rules;
  return compilePolicy(ConfigSchema.parse({ rules: [...imported, { name: 'zone-b-callers', action: 'allow', from: { zones: ['zone-b'] } }] }).rules);
}

const caller = (zone: string, namespace: string, service: string, path: string, destination: string): PolicyInput => ({
  principal: `spiffe://${zone}.test/ns/${namespace}/sa/${service}`,
  trustDomain: `${zone}.test`,
  method: 'GET',
  path,
  context: new Map([['destination', destination]]),
  canonical: { zone, namespace, service, vars: { namespace, service } },
});

describe('imported deny rules are not narrowed by --zone', () => {
  it('Istio: a DENY on /admin/* still denies a zone-b caller', () => {
    const src = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: shop}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  action: ALLOW
  rules:
  - from: [{source: {namespaces: ["web"]}}]
`;
    const p = withZoneBAllowed(formatPolicy('istio', 't.yaml', importIstio(src, 't.yaml', { zone: 'zone-a' })));
    expect(p.evaluate(caller('zone-b', 'web', 'web', '/admin/x', 'shop/orders'))).toMatchObject({ allowed: false, rule: 'shop/deny-admin' });
    expect(p.evaluate(caller('zone-a', 'web', 'web', '/admin/x', 'shop/orders'))).toMatchObject({ allowed: false, rule: 'shop/deny-admin' });
    // the ALLOW is still narrowed to zone-a's callers
    expect(p.evaluate(caller('zone-a', 'web', 'web', '/x', 'shop/orders'))).toMatchObject({ allowed: true, rule: 'shop/allow-web' });
    expect(p.evaluate(caller('zone-c', 'web', 'web', '/x', 'shop/orders'))).toMatchObject({ allowed: false });
  });

  it('Istio: a DENY "all but these namespaces" (notNamespaces) cannot be escaped by another zone minting one of them', () => {
    const src = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: pay-only, namespace: shop}
spec:
  action: DENY
  rules:
  - from: [{source: {notNamespaces: ["pay"]}}]
    to: [{operation: {paths: ["/pay/*"]}}]
`;
    const imported = importIstio(src, 't.yaml', { zone: 'zone-a' });
    expect(imported.rules[0]).toMatchObject({ action: 'deny', except: [{ from: { namespaces: ['pay'], zones: ['zone-a'] } }] });
    expect(imported.rules[0]!.from).not.toHaveProperty('notNamespaces');
    const p = withZoneBAllowed(formatPolicy('istio', 't.yaml', imported));
    // zone-b's CA mints ns/pay: still denied; zone-a's pay is not; everyone else is
    expect(p.evaluate(caller('zone-b', 'pay', 'x', '/pay/1', 'shop/orders'))).toMatchObject({ allowed: false, rule: 'shop/pay-only' });
    expect(p.evaluate(caller('zone-b', 'web', 'x', '/pay/1', 'shop/orders'))).toMatchObject({ allowed: false, rule: 'shop/pay-only' });
    expect(p.evaluate(caller('zone-a', 'pay', 'x', '/pay/1', 'shop/orders'))).not.toMatchObject({ rule: 'shop/pay-only' });
    // without a zone the import is refused rather than written unscoped
    expect(() => importIstio(src, 't.yaml')).toThrow(/--zone/);
  });

  it("Consul: a deny intention still denies a zone-b caller of that name; a more specific allow stays zone-a's", () => {
    const src = `
apiVersion: consul.hashicorp.com/v1alpha1
kind: ServiceIntentions
metadata: {name: backend}
spec:
  destination: {name: backend}
  sources:
  - {name: batch, action: deny}
  - {name: "*", action: deny}
  - {name: web, action: allow}
`;
    const p = withZoneBAllowed(formatPolicy('consul', 't.yaml', importConsul(src, 't.yaml', { zone: 'zone-a' })));
    expect(p.evaluate(caller('zone-b', 'default', 'batch', '/', 'backend'))).toMatchObject({ allowed: false });
    expect(p.evaluate(caller('zone-b', 'default', 'web', '/', 'backend'))).toMatchObject({ allowed: false }); // zone-b's "web" is not zone-a's
    expect(p.evaluate(caller('zone-a', 'default', 'web', '/', 'backend'))).toMatchObject({ allowed: true });
    expect(p.evaluate(caller('zone-a', 'default', 'batch', '/', 'backend'))).toMatchObject({ allowed: false });
  });
});
