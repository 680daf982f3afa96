/**
 * The policy-matching classes of wrong allows (issue: paths, repeated headers, hosts, globs and
 * regexes, canonical names across zones), at the policy layer. The same classes through the real
 * gRPC server: test/integration/policy-bypass.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import { normalizeHost } from '../../src/request/host.js';
import { compileGlob } from '../../src/policy/glob.js';
import { headerElements, MAX_HEADER_ELEMENTS } from '../../src/policy/compile.js';
import { compileMatchers } from '../../src/policy/match.js';
import { compilePolicy, type PolicyInput } from '../../src/policy/rules.js';
import { PolicyFile } from '../../src/policy/schema.js';

/** The normalized host of a valid authority (the pipeline refuses the others before the policy). */
const hostOf = (raw: string) => {
  const h = normalizeHost(raw);
  if (!h.ok) throw new Error(h.message);
  return { host: h.name, hostPort: h.port };
};

const rules = (rs: unknown[]) => ConfigSchema.parse({ rules: rs }).rules;
const input = (p: Partial<PolicyInput>): PolicyInput => ({ principal: 'spiffe://a.test/x', trustDomain: 'a.test', method: 'GET', path: '/', context: new Map(), ...p });
/** Repeats joined with ",", as Envoy's `headers` map sends them and as `header_map`'s are read. */
const joinedOnly = (h: Record<string, string[]>): Partial<PolicyInput> => ({ headers: new Map(Object.entries(h).map(([k, v]) => [k, v.join(',')])) });
const withValues = joinedOnly;

describe('repeated headers never turn a deny into an allow', () => {
  const policy = compilePolicy(
    rules([
      { name: 'no-debug', action: 'deny', when: [{ header: 'x-debug', values: ['on'] }] },
      { name: 'only-safe-mode', action: 'deny', when: [{ header: 'x-mode', present: true, notValues: ['safe'] }] },
      { name: 'read', action: 'allow', when: [{ header: 'x-tenant', values: ['t1', 't2'] }, { header: 'x-role', notValues: ['guest'] }] },
      { name: 'ops', action: 'allow', to: { paths: ['/ops'] }, except: [{ when: [{ header: 'x-env', values: ['prod'] }] }] },
    ]),
  );
  const decide = (h: Record<string, string[]>, path = '/') => policy.evaluate(input({ path, ...withValues(h) }));

  it.each([
    ['a deny rule\'s values: "on" twice (header_map)', { 'x-tenant': ['t1'], 'x-debug': ['on', 'on'] }],
    ['a deny rule\'s values: "on" twice, joined by Envoy', { 'x-tenant': ['t1'], 'x-debug': ['on,on'] }],
    ['a deny rule\'s values: "off" then "on"', { 'x-tenant': ['t1'], 'x-debug': ['off', 'on'] }],
    ['a deny rule\'s values: joined with spaces', { 'x-tenant': ['t1'], 'x-debug': ['off , on'] }],
    ['a deny rule\'s notValues: safe then unsafe', { 'x-tenant': ['t1'], 'x-mode': ['safe', 'raw'] }],
    ['a deny rule\'s notValues: joined', { 'x-tenant': ['t1'], 'x-mode': ['safe,raw'] }],
    ['a deny rule\'s notValues: an empty element', { 'x-tenant': ['t1'], 'x-mode': ['safe,'] }],
    ['an allow rule\'s values: one listed, one not', { 'x-tenant': ['t1', 't3'] }],
    ['an allow rule\'s values: joined', { 'x-tenant': ['t1,t3'] }],
    ['an allow rule\'s notValues: guest hidden behind another role', { 'x-tenant': ['t1'], 'x-role': ['admin', 'guest'] }],
    ['an allow rule\'s notValues: joined', { 'x-tenant': ['t1'], 'x-role': ['admin,guest'] }],
  ])('%s → denied', (_what, h) => {
    expect(decide(h)).toMatchObject({ allowed: false });
  });

  it('the single values still decide as written', () => {
    expect(decide({ 'x-tenant': ['t1'] })).toMatchObject({ allowed: true, rule: 'read' });
    expect(decide({ 'x-tenant': ['t1', 't2'] })).toMatchObject({ allowed: true, rule: 'read' });
    expect(decide({ 'x-tenant': ['t1'], 'x-mode': ['safe', 'safe'] })).toMatchObject({ allowed: true });
    expect(decide({ 'x-tenant': ['t1'], 'x-debug': ['off'] })).toMatchObject({ allowed: true });
    expect(decide({ 'x-tenant': ['t1'], 'x-debug': ['on'] })).toMatchObject({ allowed: false, rule: 'no-debug' });
    expect(decide({ 'x-tenant': ['t1'], 'x-role': ['admin'] })).toMatchObject({ allowed: true });
  });

  it('an allow rule\'s exception leads toward a deny: any value takes the request out', () => {
    expect(decide({ 'x-env': ['dev'] }, '/ops')).toMatchObject({ allowed: true, rule: 'ops' });
    expect(decide({ 'x-env': ['dev', 'prod'] }, '/ops')).toMatchObject({ allowed: false });
    expect(decide({ 'x-env': ['dev,prod'] }, '/ops')).toMatchObject({ allowed: false });
  });

  it('a deny rule\'s exception leads toward an allow: every value must satisfy it', () => {
    const p = compilePolicy(rules([{ name: 'd', action: 'deny', except: [{ when: [{ header: 'x-key', values: ['k1'] }] }] }, { name: 'a', action: 'allow' }]));
    const d = (v: string[]) => p.evaluate(input(withValues({ 'x-key': v })));
    expect(d(['k1'])).toMatchObject({ allowed: true });
    expect(d(['k1', 'k1'])).toMatchObject({ allowed: true });
    expect(d(['k1', 'k2'])).toMatchObject({ allowed: false, rule: 'd' });
    expect(d(['k1,k2'])).toMatchObject({ allowed: false, rule: 'd' });
  });

  it('header values are matched element by element: trimmed, split at commas, empty elements kept', () => {
    expect(headerElements(['a, b', 'c', ' d ', 'e,,f', 'a'])).toEqual(['a', 'b', 'c', 'd', 'e', '', 'f']);
  });

  it('past MAX_HEADER_ELEMENTS elements a header is the worst case: a deny\'s condition holds, an allow\'s fails', () => {
    const many = Array.from({ length: MAX_HEADER_ELEMENTS + 1 }, (_, k) => `t${k % 2 ? 1 : 2}`);
    expect(headerElements(many)).toBeUndefined();
    expect(decide({ 'x-tenant': many })).toMatchObject({ allowed: false, reason: 'ERR_POLICY_NO_MATCH' });
    expect(decide({ 'x-tenant': ['t1'], 'x-debug': [many.join(',')] })).toMatchObject({ allowed: false, rule: 'no-debug' });
    expect(decide({ 'x-tenant': many.slice(0, MAX_HEADER_ELEMENTS) })).toMatchObject({ allowed: true, rule: 'read' });
  });

  it('property: for random policies and repetitions, adding a value to a header never turns a deny into an allow (header_map and joined)', () => {
    const names = ['x-a', 'x-b'] as const;
    const vals = ['on', 'off', 'v1', 'v2', ''];
    const matcher = fc.oneof(fc.constantFrom(...vals.filter(Boolean)), fc.constantFrom({ prefix: 'v' }, { glob: 'o*' }, { regex: 'v[0-9]' }, { suffix: 'f' }));
    const condition = fc.record(
      { header: fc.constantFrom(...names), values: fc.array(matcher, { minLength: 1, maxLength: 2 }), notValues: fc.array(matcher, { minLength: 1, maxLength: 2 }), present: fc.boolean() },
      { requiredKeys: ['header'] },
    ).filter((c) => c.values !== undefined || c.notValues !== undefined || c.present !== undefined);
    const match = fc.record({ when: fc.array(condition, { minLength: 1, maxLength: 2 }) });
    const rule = fc.record({ action: fc.constantFrom('allow', 'deny'), when: fc.array(condition, { minLength: 1, maxLength: 2 }), except: fc.option(fc.array(match, { minLength: 1, maxLength: 2 }), { nil: undefined }) });
    const headers = fc.record({ 'x-a': fc.array(fc.constantFrom(...vals, 'on,off', 'v1, v2'), { minLength: 1, maxLength: 3 }), 'x-b': fc.array(fc.constantFrom(...vals), { minLength: 1, maxLength: 3 }) }, { requiredKeys: [] });
    fc.assert(
      fc.property(fc.array(rule, { minLength: 1, maxLength: 4 }), headers, fc.constantFrom(...names), fc.constantFrom(...vals, 'on,v1', ' off'), (rs, h, name, extra) => {
        if (h[name] === undefined) return; // a repetition: the header was already there
        const p = compilePolicy(rules(rs.map((r, i) => ({ name: `r${i}`, ...r, ...(r.except ? {} : { except: undefined }) }))));
        const more = { ...h, [name]: [...h[name]!, extra] };
        for (const view of [withValues, joinedOnly]) {
          const before = p.evaluate(input(view(h as Record<string, string[]>)));
          const after = p.evaluate(input(view(more as Record<string, string[]>)));
          if (!before.allowed) expect(after).toMatchObject({ allowed: false });
        }
      }),
      { numRuns: 3000, seed: 1414 },
    );
  });
});

describe('hosts: one form for a rule and a request', () => {
  const policy = compilePolicy(
    rules([
      { name: 'no-admin', action: 'deny', to: { hosts: ['admin.zone-a.example'] } },
      { name: 'no-metrics-port', action: 'deny', to: { hosts: ['api.zone-a.example:9090'] } },
      { name: 'fqdn-rule', action: 'deny', to: { hosts: ['legacy.zone-a.example.'] } },
      { name: 'all', action: 'allow' },
    ]),
  );
  const decide = (host: string) => policy.evaluate(input({ ...hostOf(host) }));

  it.each(['admin.zone-a.example', 'admin.zone-a.example.', 'ADMIN.zone-a.EXAMPLE.', 'admin.zone-a.example.:443', 'Admin.Zone-A.Example:8443', 'admin.zone-a.example..'])('%s is the denied host', (host) => {
    expect(decide(host)).toMatchObject({ allowed: false, rule: 'no-admin' });
  });

  it('a rule with a port matches that port only; a rule written with a trailing dot matches without it', () => {
    expect(decide('api.zone-a.example.:9090')).toMatchObject({ allowed: false, rule: 'no-metrics-port' });
    expect(decide('api.zone-a.example:443')).toMatchObject({ allowed: true });
    expect(decide('legacy.zone-a.example')).toMatchObject({ allowed: false, rule: 'fqdn-rule' });
    expect(decide('legacy.zone-a.example.:80')).toMatchObject({ allowed: false, rule: 'fqdn-rule' });
  });

  it('IPv6 literals and an empty host', () => {
    const p = compilePolicy(rules([{ name: 'v6', action: 'allow', to: { hosts: ['[::1]'] } }, { name: 'not-empty', action: 'deny', to: { notHosts: [{ glob: '**' }] } }]));
    const d = (h: string) => p.evaluate(input({ ...hostOf(h) }));
    expect(d('[::1]:8080')).toMatchObject({ allowed: true, rule: 'v6' });
    expect(d('[::2]')).toMatchObject({ allowed: false });
    expect(d('')).toMatchObject({ allowed: false, rule: 'not-empty' }); // no host: every notHosts matches, no hosts does
  });
});

/** The glob semantics, written as the backtracking RegExp zonegate used to run (a test oracle only). */
function oracle(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\/-]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

describe('globs and regexes run in linear time with the same meaning', () => {
  it('property: the glob automaton agrees with the RegExp semantics on random globs and values', () => {
    const globChar = fc.constantFrom('a', 'b', '/', '.', '*', '**', '?', 'é');
    const valChar = fc.constantFrom('a', 'b', '/', '.', 'é', 'c');
    fc.assert(
      fc.property(fc.array(globChar, { minLength: 1, maxLength: 12 }), fc.array(valChar, { maxLength: 16 }), (g, v) => {
        const glob = g.join('');
        const value = v.join('');
        expect(compileGlob(glob)(value)).toBe(oracle(glob).test(value));
      }),
      { numRuns: 20_000, seed: 6 },
    );
  });

  it('a long glob (more than 31 tokens between its ends) uses the multi-word automaton, with the same meaning', () => {
    const glob = `/*${'/a?*'.repeat(12)}/**/x`;
    for (const v of [`/q${'/ab'.repeat(12)}/x`, `/q${'/abc'.repeat(12)}/y/z/x`, `/q${'/a'.repeat(12)}/x`, `/q${'/ab'.repeat(11)}/x`])
      expect(compileGlob(glob)(v)).toBe(oracle(glob).test(v));
  });

  it('a regex RE2 cannot run (backreference, lookaround) is a config error naming the key; RE2 syntax works', () => {
    for (const regex of ['(a)\\1', '(?!admin).*', '(?<=x)y', '(?=a)a'])
      expect(() => ConfigSchema.parse({ rules: [{ name: 'r', action: 'allow', to: { paths: [{ regex }] } }] })).toThrow(/rules.*0.*to.*paths|RE2/s);
    const m = compileMatchers([{ regex: '/items/[0-9]+(/[a-z]+)?' }, { regex: '(?i)/ADMIN' }]);
    expect(['/items/1', '/items/22/abc', '/admin', '/Admin'].map(m)).toEqual([true, true, true, true]);
    expect(['/items/', '/items/1/2', 'x/admin'].map(m)).toEqual([false, false, false]);
  });

  it('a policy file with such a regex is refused too (policy lint and include read the same schema)', () => {
    expect(PolicyFile.safeParse({ rules: [{ name: 'r', action: 'deny', when: [{ header: 'x', values: [{ regex: '(a+)\\1' }] }] }] }).success).toBe(false);
  });
});

describe('canonical names count only with the zone that minted them', () => {
  it.each([
    ['an allow on namespaces', { name: 'r', action: 'allow', from: { namespaces: ['payments'] } }, 'rules.0.from'],
    ['an allow on services', { name: 'r', action: 'allow', from: { services: ['ledger'] } }, 'rules.0.from'],
    ['an allow on vars', { name: 'r', action: 'allow', from: { vars: { partition: ['p'] } } }, 'rules.0.from'],
    ['an ALLOW (upper case) on namespaces and services', { name: 'r', action: 'ALLOW', from: { namespaces: ['a'], services: ['b'] } }, 'rules.0.from'],
    ['a deny rule\'s exception on services', { name: 'r', action: 'deny', except: [{ from: { services: ['ledger'] } }] }, 'rules.0.except.0.from'],
    // excluding fields where the exclusion leads toward an allow: minting an excluded name escapes
    ['a deny on notNamespaces ("all but payments" escaped by minting payments)', { name: 'r', action: 'deny', from: { notNamespaces: ['payments'] }, to: { paths: [{ prefix: '/pay/' }] } }, 'rules.0.from'],
    ['a deny on notServices', { name: 'r', action: 'deny', from: { notServices: ['ledger'] } }, 'rules.0.from'],
    ['a deny on notVars', { name: 'r', action: 'deny', from: { notVars: { partition: ['p'] } } }, 'rules.0.from'],
    ['an allow of every caller whose exception is notNamespaces ("only payments", of any zone)', { name: 'r', action: 'allow', to: { paths: [{ prefix: '/pay/' }] }, except: [{ from: { notNamespaces: ['payments'] } }] }, 'rules.0.except.0.from'],
  ])('%s without zones, trustDomains or principals is refused', (_what, rule, where) => {
    const r = ConfigSchema.safeParse({ rules: [rule] });
    expect(r.success).toBe(false);
    const issue = r.error!.issues.find((i) => i.message.includes('any federated CA can mint them'));
    expect(issue?.path.join('.')).toBe(where);
    expect(PolicyFile.safeParse({ rules: [rule] }).success).toBe(false);
  });

  it.each([['x-debug '], [' x-debug'], ['x debug'], ['x-debug:'], ['x-débug']])('a condition on header %j is refused: it would never match, leaving its rule dead', (header) => {
    const r = ConfigSchema.safeParse({ rules: [{ name: 'r', action: 'deny', when: [{ header, values: ['on'] }] }] });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.message).join()).toMatch(/not an HTTP header name/);
  });

  it('header names are compared lower-cased; pseudo-headers are names too', () => {
    const r = ConfigSchema.parse({ rules: [{ name: 'r', action: 'deny', when: [{ header: 'X-Debug', values: ['on'] }, { header: ':authority', present: true }] }] });
    expect(r.rules[0]!.when!.map((c) => c.header)).toEqual(['x-debug', ':authority']);
  });

  it.each([
    ['with zones', { name: 'r', action: 'allow', from: { zones: ['mesh-a'], namespaces: ['payments'] } }],
    ['with trustDomains', { name: 'r', action: 'allow', from: { trustDomains: ['a.test'], services: ['ledger'] } }],
    ['with principals', { name: 'r', action: 'allow', from: { principals: [{ prefix: 'spiffe://a.test/' }], services: ['ledger'] } }],
    ['a deny (it only denies more)', { name: 'r', action: 'deny', from: { namespaces: ['payments'] } }],
    ['a deny scoped to a zone, its exception by service', { name: 'r', action: 'deny', from: { zones: ['mesh-a'] }, except: [{ from: { services: ['ledger'] } }] }],
    ['an allow whose exception names services (it only allows less)', { name: 'r', action: 'allow', from: { zones: ['mesh-a'] }, except: [{ from: { services: ['x'] } }] }],
    ['an allow on notNamespaces (it excludes, never claims a name)', { name: 'r', action: 'allow', from: { notNamespaces: ['kube-system'] } }],
    ['a deny on notNamespaces scoped to a zone (other zones are outside it by its own words)', { name: 'r', action: 'deny', from: { zones: ['mesh-a'], notNamespaces: ['payments'] } }],
    ['a deny whose exception names payments of a zone (the safe form of "all but payments")', { name: 'r', action: 'deny', except: [{ from: { zones: ['mesh-a'], namespaces: ['payments'] } }] }],
    ['an allow scoped to a zone, its exception on notNamespaces', { name: 'r', action: 'allow', from: { zones: ['mesh-a'] }, except: [{ from: { notNamespaces: ['payments'] } }] }],
  ])('%s is accepted', (_what, rule) => {
    expect(ConfigSchema.safeParse({ rules: [rule] }).success).toBe(true);
  });
});
