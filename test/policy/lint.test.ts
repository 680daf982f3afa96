import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import { covers, lintRules } from '../../src/policy/lint.js';

const rules = (rs: unknown[]) => ConfigSchema.parse({ rules: rs }).rules;
const lint = (rs: unknown[], naming?: boolean) => lintRules(rules(rs), naming === undefined ? {} : { naming }).map((f) => f.message);

describe('policy lint', () => {
  it('a clean rule set has no findings', () => {
    expect(
      lint([
        { name: 'no-admin', action: 'deny', from: { trustDomains: ['b.test'] }, to: { paths: [{ prefix: '/admin/' }] } },
        { name: 'api', action: 'allow', from: { principals: ['spiffe://a.test/web'] }, to: { methods: ['GET'], paths: [{ prefix: '/api/' }] } },
        { name: 'orders', action: 'allow', from: { principals: [{ prefix: 'spiffe://b.test/ns/default/' }] }, to: { paths: ['/api/orders'] } },
      ]),
    ).toEqual([]);
  });

  it('an allow fully covered by an enforced deny is unreachable; by a dry-run deny it is not', () => {
    const rs = [
      { name: 'deny-b', action: 'deny', from: { trustDomains: ['b.test', 'c.test'] } },
      { name: 'dry', action: 'deny', dryRun: true, to: { paths: [{ prefix: '/x' }] } },
      { name: 'b-admin', action: 'allow', from: { trustDomains: ['b.test'] }, to: { paths: ['/admin'] } },
      { name: 'x', action: 'allow', to: { paths: [{ prefix: '/x/y' }] } },
      { name: 'a', action: 'allow', from: { trustDomains: ['a.test', 'b.test'] } },
    ];
    expect(lint(rs)).toEqual(['rules[2] "b-admin": unreachable: every request it matches is denied by rules[0] "deny-b"']);
  });

  it.each([
    [{ from: { principals: ['spiffe://a.test/x'], notPrincipals: [{ prefix: 'spiffe://a.test/' }] } }, 'every value of principals is excluded by notPrincipals'],
    [{ to: { methods: ['GET'], notMethods: ['GET', 'POST'] } }, 'every value of methods is excluded by notMethods'],
    [{ to: { ports: [80], notPorts: ['80'] } }, 'every value of ports is excluded by notPorts'],
    [{ from: { trustDomains: ['a.test'], principals: ['spiffe://b.test/x'] } }, 'no listed principal is in a listed trust domain'],
    [{ when: [{ header: 'x', present: false, values: ['1'] }] }, 'header "x" must be absent and match values'],
    [{ when: [{ claim: 'role', values: ['a'], notValues: ['a', 'b'] }] }, 'every value of claim "role" is excluded by notValues'],
    [{ to: { paths: ['/a'] }, except: [{ from: {}, to: {} }] }, 'except[0] matches every request'],
  ])('a rule that can never match is unreachable: %j', (shape, why) => {
    expect(lint([{ name: 'r', action: 'allow', ...shape }])).toEqual([`rules[0] "r": unreachable: it can never match: ${why}`]);
  });

  it('canonical names without any naming template never match (known only for a whole config)', () => {
    const rs = [{ name: 'svc', action: 'allow', from: { zones: ['mesh-a'], services: ['web'] } }];
    expect(lint(rs, false)).toEqual(['rules[0] "svc": unreachable: it matches on canonical names, but no trust domain has a naming template (trust[].naming)']);
    expect(lint(rs, true)).toEqual([]);
    expect(lint(rs)).toEqual([]);
    const zoned = rules([{ name: 'z', action: 'allow', from: { zones: ['a'] } }]);
    expect(lintRules(zoned, { naming: false, zones: true })).toEqual([]);
    expect(lintRules(zoned, { naming: false, zones: false }).map((f) => f.kind)).toEqual(['unreachable']);
  });

  it('an allow identical to or covered by an earlier allow is shadowed; a broader later one is not', () => {
    const rs = [
      { name: 'api', action: 'allow', from: { zones: ['mesh-a'], namespaces: ['shop'] }, to: { paths: [{ prefix: '/api/' }] } },
      { name: 'api-again', action: 'allow', from: { zones: ['mesh-a'], namespaces: ['shop'] }, to: { paths: [{ prefix: '/api/' }] } },
      { name: 'api-items', action: 'allow', from: { zones: ['mesh-a'], namespaces: ['shop'], services: ['web'] }, to: { methods: ['GET'], paths: ['/api/items', { prefix: '/api/items/' }] } },
      { name: 'broader', action: 'allow', to: { paths: [{ prefix: '/' }] } },
      { name: 'other-ns', action: 'allow', from: { zones: ['mesh-a'], namespaces: ['ops'] }, to: { paths: [{ prefix: '/api/' }] } },
    ];
    expect(lint(rs)).toEqual([
      'rules[1] "api-again": shadowed: rules[0] "api" is identical',
      'rules[2] "api-items": shadowed: rules[0] "api" already allows every request it matches',
      'rules[4] "other-ns": shadowed: rules[3] "broader" already allows every request it matches',
    ]);
  });

  it('dryRun on an allow rule has no effect', () => {
    expect(lint([{ name: 'a', action: 'allow', dryRun: true }])).toEqual(['rules[0] "a": no-effect: dryRun on an allow rule changes nothing (dry run only changes what a deny does)']);
  });

  it('coverage is conservative: exceptions, globs and conditions', () => {
    const [wide, narrow, glob, withExcept, cond] = rules([
      { name: 'w', action: 'allow', from: { notNamespaces: ['kube-system'] }, to: { notMethods: ['DELETE'] } },
      { name: 'n', action: 'allow', from: { zones: ['mesh-a'], namespaces: ['shop'] }, to: { methods: ['GET'] }, when: [{ header: 'x', values: ['1'] }] },
      { name: 'g', action: 'allow', to: { paths: [{ glob: '/a/*' }] } },
      { name: 'e', action: 'allow', except: [{ to: { paths: ['/a/b'] } }] },
      { name: 'c', action: 'allow', when: [{ header: 'x', values: ['1'] }] },
    ]);
    expect(covers(wide!, narrow!)).toBe(true);
    expect(covers(narrow!, wide!)).toBe(false);
    expect(covers(cond!, narrow!)).toBe(true);
    expect(covers(withExcept!, glob!)).toBe(false);
    expect(covers(glob!, rules([{ name: 'x', action: 'allow', to: { paths: ['/a/b'] } }])[0]!)).toBe(true);
    expect(covers(glob!, rules([{ name: 'x', action: 'allow', to: { paths: [{ prefix: '/a/' }] } }])[0]!)).toBe(false);
  });
});
