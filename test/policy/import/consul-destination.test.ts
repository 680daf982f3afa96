/**
 * Consul's builtin/ext-authz extension sends no context_extensions, so a rule scoped to a
 * `destination` never matches what it sends. The importer leaves the rules of one destination
 * unscoped (zonegate runs beside that one service), scopes those of several and says so, and a
 * deny whose only near miss is a destination scope says which rule was skipped and why.
 */
import { describe, expect, it } from 'vitest';
import { importConsul } from '../../../src/policy/import/consul.js';
import { compilePolicy, type PolicyInput } from '../../../src/policy/rules.js';
import { Rule } from '../../../src/policy/schema.js';

const entry = (name: string, sources: string[]) => JSON.stringify({ Kind: 'service-intentions', Name: name, Sources: sources.map((s) => ({ Name: s, Action: 'allow' })) });

describe('policy import consul: destinations', () => {
  it('one destination: the rules are not scoped, and a note says why', () => {
    const r = importConsul(entry('billing', ['web', 'zone-a-edge']), 'i.json', { zone: 'dc1.consul' });
    expect(r.rules).toHaveLength(2);
    for (const rule of r.rules) expect(rule.destinations).toBeUndefined();
    expect(r.notes.join('\n')).toMatch(/not scoped to a destination: Consul's ext-authz extension sends none; run zonegate beside default\/billing/);
  });

  it('several destinations: each rule stays scoped to its own, and a note says the route must send it', () => {
    const r = importConsul(`[${entry('billing', ['web'])}, ${entry('orders', ['web'])}]`, 'i.json', { zone: 'dc1.consul' });
    expect(r.rules.map((x) => x.destinations)).toEqual([['default/billing'], ['default/orders']]);
    expect(r.notes.join('\n')).toMatch(/scoped to context_extensions "destination".*sends none/);
  });

  it('--destination scopes every rule to it, as before', () => {
    const r = importConsul(entry('billing', ['web']), 'i.json', { destination: 'billing', zone: 'dc1.consul' });
    expect(r.rules[0]!.destinations).toEqual(['billing']);
  });
});

describe('the default deny names rules skipped because of their destination', () => {
  const input = (context: Record<string, string>): PolicyInput =>
    ({ principal: 'spiffe://td/ns/default/dc/dc1/svc/web', method: 'GET', path: '/api', context: new Map(Object.entries(context)), headers: new Map() }) as unknown as PolicyInput;
  const policy = compilePolicy([
    Rule.parse({ name: 'web-to-billing', action: 'allow', destinations: ['default/billing'], from: { principals: ['spiffe://td/ns/default/dc/dc1/svc/web'] } }),
    Rule.parse({ name: 'batch-to-billing', action: 'allow', destinations: ['default/billing'], from: { principals: ['spiffe://td/ns/default/dc/dc1/svc/batch'] } }),
  ]);

  it('no destination sent', () => {
    const d = policy.evaluate(input({}));
    expect(d).toMatchObject({ allowed: false, reason: 'ERR_POLICY_NO_MATCH' });
    expect((d as { message: string }).message).toBe(
      'policy: no allow rule matched GET /api from "spiffe://td/ns/default/dc/dc1/svc/web"; skipped because of its destination: rule "web-to-billing" (destinations ["default/billing"]): this check sent no destination (context_extensions "destination")',
    );
  });

  it('another destination sent', () => {
    const d = policy.evaluate(input({ destination: 'default/orders' }));
    expect((d as { message: string }).message).toMatch(/rule "web-to-billing" .*: this check's destination is "default\/orders"$/);
  });

  it('the scope matches: allowed; a rule that fails on more than its scope is not named', () => {
    expect(policy.evaluate(input({ destination: 'default/billing' }))).toMatchObject({ allowed: true, rule: 'web-to-billing' });
    const d = policy.evaluate({ ...input({}), principal: 'spiffe://td/ns/default/dc/dc1/svc/other' } as PolicyInput);
    expect((d as { message: string }).message).not.toMatch(/skipped/);
  });
});
