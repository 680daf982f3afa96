import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import { compilePolicy, type PolicyInput } from '../../src/policy/rules.js';

const rules = ConfigSchema.parse({
  rules: [
    { name: 'deny-admin', action: 'DENY', to: { paths: [{ prefix: '/admin' }] } },
    { name: 'exact', action: 'allow', from: { principals: ['spiffe://a.test/web'] }, to: { methods: ['get'] } },
    { name: 'prefix', action: 'allow', from: { principals: [{ prefix: 'spiffe://b.test/ns/x/' }] }, to: { paths: ['/p', { prefix: '/q/' }] } },
    { name: 'suffix', action: 'allow', from: { principals: [{ suffix: '/sa/batch' }] }, to: { context: { direction: 'ingress' } } },
    { name: 'td', action: 'allow', from: { trustDomains: ['c.test'] }, to: { methods: ['POST'] } },
  ],
}).rules;
const policy = compilePolicy(rules);
const input = (p: Partial<PolicyInput>): PolicyInput => ({
  principal: '',
  trustDomain: undefined,
  method: 'GET',
  path: '/',
  context: new Map(),
  ...p,
});

describe('compilePolicy', () => {
  it.each([
    ['exact principal and method', { principal: 'spiffe://a.test/web' }, 'exact'],
    ['prefix principal, exact path', { principal: 'spiffe://b.test/ns/x/sa/y', path: '/p' }, 'prefix'],
    ['prefix principal, prefix path', { principal: 'spiffe://b.test/ns/x/sa/y', path: '/q/1' }, 'prefix'],
    ['suffix principal and context', { principal: 'spiffe://z.test/ns/q/sa/batch', context: new Map([['direction', 'ingress']]) }, 'suffix'],
    ['trust domain', { principal: 'spiffe://c.test/any', trustDomain: 'c.test', method: 'POST' }, 'td'],
  ])('allows: %s', (_name, p, rule) => {
    expect(policy.evaluate(input(p))).toEqual({ allowed: true, rule });
  });

  it.each([
    ['wrong method', { principal: 'spiffe://a.test/web', method: 'POST' }],
    ['principal differs by one char', { principal: 'spiffe://a.test/web2' }],
    ['prefix principal but path outside', { principal: 'spiffe://b.test/ns/x/sa/y', path: '/pp' }],
    ['suffix without context', { principal: 'spiffe://z.test/ns/q/sa/batch' }],
    ['suffix with other context', { principal: 'spiffe://z.test/sa/batch', context: new Map([['direction', 'egress']]) }],
    ['trust domain unknown (unverified peer)', { principal: 'spiffe://c.test/any', method: 'POST' }],
    ['empty input', {}],
  ])('denies by default: %s', (_name, p) => {
    expect(policy.evaluate(input(p))).toMatchObject({ allowed: false, reason: 'ERR_POLICY_NO_MATCH' });
  });

  it('a matching deny rule wins over a matching allow rule', () => {
    expect(policy.evaluate(input({ principal: 'spiffe://a.test/web', path: '/admin/x' }))).toMatchObject({
      allowed: false,
      reason: 'ERR_POLICY_DENIED',
      rule: 'deny-admin',
    });
  });

  it('no rules: everything is denied', () => {
    expect(compilePolicy([]).evaluate(input({ principal: 'spiffe://a.test/web' }))).toMatchObject({ allowed: false });
  });
});
