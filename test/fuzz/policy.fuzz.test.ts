/**
 * Property-based checks of the policy (fast-check, fixed seed, bounded runs): random rule sets
 * compiled from validated config and random requests. Every request gets a decision (never an
 * exception), the same request the same decision, and the decision is what the rules say: any
 * matching deny wins, else a matching allow, else the default deny — checked against a plain
 * re-statement of the matching rules. Random config documents are valid or a ConfigError.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { RuleConfig, StringMatch } from '../../src/config/schema.js';
import { compilePolicy, type PolicyInput } from '../../src/policy/rules.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);

// small alphabets, so random rules and random requests actually meet
const ids = ['spiffe://a.test/x', 'spiffe://a.test/y', 'spiffe://b.test/x', 'alice', ''];
const tds = ['a.test', 'b.test'];
const paths = ['/', '/api', '/api/x', '/admin/x', '/x'];
const piece = fc.constantFrom('spiffe://', 'a.test', '/x', '/api', 'x', '/');
const matcher: fc.Arbitrary<StringMatch> = fc.oneof(
  fc.constantFrom(...ids.filter(Boolean), ...paths),
  piece.map((exact) => ({ exact })),
  piece.map((prefix) => ({ prefix })),
  piece.map((suffix) => ({ suffix })),
);
const rawRule = fc.record({
  action: fc.constantFrom('allow', 'deny', 'ALLOW', 'DENY'),
  from: fc.record(
    {
      principals: fc.array(matcher, { minLength: 1, maxLength: 3 }),
      trustDomains: fc.array(fc.constantFrom(...tds), { minLength: 1, maxLength: 2 }),
      actors: fc.array(matcher, { minLength: 1, maxLength: 2 }),
    },
    { requiredKeys: [] },
  ),
  to: fc.record(
    {
      methods: fc.array(fc.constantFrom('GET', 'post', 'DELETE'), { minLength: 1, maxLength: 2 }),
      paths: fc.array(matcher, { minLength: 1, maxLength: 3 }),
      context: fc.dictionary(fc.constantFrom('direction', 'k'), fc.constantFrom('ingress', 'egress', 'v'), { maxKeys: 2 }),
    },
    { requiredKeys: [] },
  ),
});
const request: fc.Arbitrary<PolicyInput> = fc.record({
  principal: fc.constantFrom(...ids),
  trustDomain: fc.constantFrom(...tds, undefined),
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT'),
  path: fc.constantFrom(...paths),
  context: fc.dictionary(fc.constantFrom('direction', 'k'), fc.constantFrom('ingress', 'egress', 'v'), { maxKeys: 2 }).map((d) => new Map(Object.entries(d))),
  actor: fc.constantFrom('alice', 'spiffe://a.test/x', undefined),
});

const one = (m: StringMatch, v: string) =>
  typeof m === 'string'
    ? m === v
    : 'exact' in m
      ? m.exact === v
      : 'prefix' in m
        ? v.startsWith(m.prefix)
        : 'suffix' in m
          ? v.endsWith(m.suffix)
          : unmodelled(m);
/** The generator writes exact, prefix and suffix matchers only; globs and regexes have their own tests. */
function unmodelled(m: StringMatch): never {
  throw new Error(`the model has no ${JSON.stringify(m)} matcher`);
}
const any = (ms: readonly StringMatch[] | undefined, v: string | undefined) => ms === undefined || (v !== undefined && ms.some((m) => one(m, v)));
/** The rule language, restated plainly: every condition given must hold. */
function matches(r: RuleConfig, i: PolicyInput): boolean {
  return (
    any(r.from.principals, i.principal) &&
    (r.from.trustDomains === undefined || (i.trustDomain !== undefined && r.from.trustDomains.includes(i.trustDomain))) &&
    any(r.from.actors, i.actor) &&
    (r.to.methods === undefined || r.to.methods.includes(i.method)) &&
    any(r.to.paths, i.path) &&
    Object.entries(r.to.context ?? {}).every(([k, v]) => i.context.get(k) === v)
  );
}

describe('policy under random rules and requests', () => {
  it('decides every request as the rules say: deny wins, then allow, else default deny', () => {
    const seen = { allow: 0, denied: 0, noMatch: 0 };
    fc.assert(
      fc.property(fc.array(rawRule, { maxLength: 6 }), fc.array(request, { minLength: 1, maxLength: 8 }), (raw, requests) => {
        const yaml = stringify({ rules: raw.map((r, n) => ({ name: `r${n}`, ...r })) });
        const { config } = parseConfig(yaml, 'fuzz', '.');
        const policy = compilePolicy(config.rules);
        for (const req of requests) {
          const d = policy.evaluate(req);
          expect(policy.evaluate(req)).toEqual(d);
          const denies = config.rules.filter((r) => r.action === 'deny' && matches(r, req));
          const allows = config.rules.filter((r) => r.action === 'allow' && matches(r, req));
          if (denies.length > 0) {
            expect(d).toMatchObject({ allowed: false, reason: 'ERR_POLICY_DENIED' });
            expect(denies.map((r) => r.name)).toContain(d.allowed ? '' : d.rule);
            seen.denied++;
          } else if (allows.length > 0) {
            expect(d.allowed).toBe(true);
            expect(allows.map((r) => r.name)).toContain(d.allowed ? d.rule : '');
            seen.allow++;
          } else {
            expect(d).toMatchObject({ allowed: false, reason: 'ERR_POLICY_NO_MATCH' });
            seen.noMatch++;
          }
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // every branch was exercised
    expect(Math.min(seen.allow, seen.denied, seen.noMatch)).toBeGreaterThan(RUNS / 150);
  });

  it('random config documents are either valid or a ConfigError naming where, never another exception', () => {
    const value = fc.anything({ maxDepth: 3, withNullPrototype: false });
    const doc = fc.oneof(
      fc.record({ rules: fc.oneof(fc.array(fc.oneof(rawRule, value), { maxLength: 3 }), value), limits: value, trust: value }, { requiredKeys: [] }).map((d) => stringify(d)),
      value.map((v) => String(stringify(v) ?? '')),
      fc.string({ maxLength: 80 }),
    );
    fc.assert(
      fc.property(doc, (text) => {
        try {
          parseConfig(text, 'fuzz.yaml', '.');
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
          for (const p of (err as ConfigError).problems) expect(p).toMatch(/^fuzz\.yaml(:\d+)?: /);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
