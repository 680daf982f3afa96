/**
 * Every glob and regex runs in linear time, but one decision tries the patterns of many rules:
 * limits.maxPatternCharacters bounds their sum. A policy of 1,000 pattern rules and a path at the
 * path limit (which took 53–185 ms before the bound) is denied ERR_POLICY_TOO_COSTLY in a few
 * milliseconds; ordinary requests on the same policy are decided as before.
 */
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import { matches } from '../../src/policy/match.js';
import { compilePolicy, type PolicyInput } from '../../src/policy/rules.js';

const rules = [
  ...Array.from({ length: 500 }, (_, k) => ({ name: `g${k}`, action: 'allow', from: { trustDomains: ['a.test'] }, to: { paths: [{ glob: `/**/v${k}/**/*.json` }] } })),
  ...Array.from({ length: 500 }, (_, k) => ({ name: `r${k}`, action: 'allow', from: { trustDomains: ['a.test'] }, to: { paths: [{ regex: `/(.*)/w${k}/(.*)\\.json` }] } })),
];
const config = ConfigSchema.parse({ rules });
const input = (path: string): PolicyInput => ({ principal: 'spiffe://a.test/x', trustDomain: 'a.test', method: 'GET', path, context: new Map() });
const longPath = `/${'a/'.repeat((config.policy.paths.maxLength - 16) / 2)}x.json`;

const best = (fn: () => unknown, runs = 5) => {
  let ms = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    fn();
    ms = Math.min(ms, Number(process.hrtime.bigint() - t) / 1e6);
  }
  return ms;
};

describe('limits.maxPatternCharacters', () => {
  const bounded = compilePolicy(config.rules, { maxPatternCharacters: config.limits.maxPatternCharacters });
  const unbounded = compilePolicy(config.rules);

  it('a path at the limit against 1,000 pattern rules: ERR_POLICY_TOO_COSTLY, under 10 ms of event-loop time', () => {
    expect(bounded.evaluate(input(longPath))).toMatchObject({ allowed: false, reason: 'ERR_POLICY_TOO_COSTLY' });
    const ms = best(() => bounded.evaluate(input(longPath)));
    expect(ms, `best of 5: ${ms} ms`).toBeLessThan(10);
    // without the bound the same decision scans every pattern (the cost the bound removes)
    expect(unbounded.evaluate(input(longPath))).toMatchObject({ allowed: false, reason: 'ERR_POLICY_NO_MATCH' });
  });

  it('ordinary requests on the same policy are decided as without the bound', () => {
    for (const p of ['/api/v7/items/x.json', '/api/w499/a/b.json', '/api/v1000/x.json', '/x']) expect(bounded.evaluate(input(p))).toEqual(unbounded.evaluate(input(p)));
    expect(bounded.evaluate(input('/api/w499/a/b.json'))).toMatchObject({ allowed: true, rule: 'r499' });
  });

  it('globs that only compare their literal ends (no wildcard, or head/**/tail) are not charged: a long path is decided, not refused', () => {
    const literal = compilePolicy(
      ConfigSchema.parse({ rules: Array.from({ length: 60 }, (_, k) => ({ name: `p${k}`, action: 'allow', to: { paths: [{ glob: `/p${k}/**` }, { glob: `/q${k}/x.json` }] } })) }).rules,
      { maxPatternCharacters: config.limits.maxPatternCharacters },
    );
    const path = `/p59/${'a/'.repeat(4_000)}x`;
    expect(literal.evaluate(input(path))).toMatchObject({ allowed: true, rule: 'p59' });
  });

  it('fails closed in dry run too: the request, not a rule, decided', () => {
    const dry = compilePolicy(config.rules, { dryRun: true, maxPatternCharacters: config.limits.maxPatternCharacters });
    expect(dry.evaluate(input(longPath))).toMatchObject({ allowed: false, reason: 'ERR_POLICY_TOO_COSTLY' });
  });

  it('outside a decision (lint, importers) patterns are not bounded, and a decision leaves no budget behind', () => {
    bounded.evaluate(input(longPath));
    for (let i = 0; i < 100; i++) expect(matches({ glob: '/**/*.json' }, longPath)).toBe(true);
  });

  it('the default is in the config schema and the bound is configurable', () => {
    expect(config.limits.maxPatternCharacters).toBe(300_000);
    const wide = compilePolicy(config.rules, { maxPatternCharacters: 100_000_000 });
    expect(wide.evaluate(input(longPath))).toMatchObject({ reason: 'ERR_POLICY_NO_MATCH' });
  });
});
