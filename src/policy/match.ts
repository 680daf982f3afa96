/**
 * String matchers compiled once: exact values go into a Set, prefixes and suffixes into arrays,
 * globs into a linear automaton (glob.ts), regexes into RE2 (re2js). Nothing is parsed per
 * request, and no matcher backtracks: every match costs time linear in the value.
 *
 * Why not a native RegExp: V8's engine backtracks, so `[^/]*\\.[^/]*` (what `/static/*.*` used to
 * compile to) is quadratic on a path of dots and a user's `(a+)+b` is exponential. Measured on
 * typical patterns: native RegExp 35–90 ns per match, re2js 210–950 ns, the glob automaton
 * 190–420 ns; a 60,000-dot path costs the automaton about 1 ms where the RegExp took seconds.
 */
import { RE2JS } from 're2js';
import { compileGlob } from './glob.js';
import type { StringMatch } from './schema.js';

export interface CompiledMatcher {
  (value: string): boolean;
}

/** A predicate on whole strings that runs in time linear in the input. */
type Linear = CompiledMatcher;

/**
 * Compiles a user-written regex on RE2's linear-time engine (re2js), matching the whole value.
 * RE2 syntax: no backreferences, no lookaround. Throws RE2's syntax error otherwise.
 */
function compileRegex(source: string): Linear {
  const re = RE2JS.compile(source);
  return (v) => re.testExact(v);
}

/** Why RE2 cannot compile `source` (backreferences, lookaround, bad syntax), or undefined. */
export function regexError(source: string): string | undefined {
  try {
    RE2JS.compile(source);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Characters the glob and regex patterns may still scan in the decision under way. Each pattern
 * is linear in its input, but one decision tries the patterns of many rules, each on a value of
 * up to the configured limits: the sum is what holds the event loop. Policy.evaluate sets it
 * (withPatternBudget); outside a decision (lint, importers) it is unbounded.
 */
let budget = Infinity;

/** Thrown through the predicates when a decision's patterns exceed their budget (caught by evaluate). */
export const PATTERN_BUDGET_EXCEEDED: unique symbol = Symbol('pattern budget exceeded');

/** Runs `fn` with at most `chars` characters of pattern matching; throws PATTERN_BUDGET_EXCEEDED past it. */
export function withPatternBudget<T>(chars: number, fn: () => T): T {
  const saved = budget;
  budget = chars;
  try {
    return fn();
  } finally {
    budget = saved;
  }
}

/** Compiles a list of matchers into one predicate that is true when any of them matches. */
export function compileMatchers(list: readonly StringMatch[]): CompiledMatcher {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  // Globs that only compare their literal ends cost what a prefix does: never charged to the budget.
  const literalGlobs: Linear[] = [];
  const patterns: Linear[] = [];
  for (const m of list) {
    if (typeof m === 'string') exact.add(m);
    else if ('exact' in m) exact.add(m.exact);
    else if ('prefix' in m) prefixes.push(m.prefix);
    else if ('suffix' in m) suffixes.push(m.suffix);
    else if ('glob' in m) {
      const g = compileGlob(m.glob);
      (g.scans ? patterns : literalGlobs).push(g);
    } else patterns.push(compileRegex(m.regex));
  }
  if (prefixes.length === 0 && suffixes.length === 0 && literalGlobs.length === 0 && patterns.length === 0) return (value) => exact.has(value);
  return (value) => {
    if (exact.has(value)) return true;
    for (const p of prefixes) if (value.startsWith(p)) return true;
    for (const s of suffixes) if (value.endsWith(s)) return true;
    for (const g of literalGlobs) if (g(value)) return true;
    for (const p of patterns) {
      if ((budget -= value.length) < 0) throw PATTERN_BUDGET_EXCEEDED;
      if (p(value)) return true;
    }
    return false;
  };
}

/** Does matcher `m` match the string `v`? (Single-matcher form, for lint and importers.) */
export function matches(m: StringMatch, v: string): boolean {
  return compileMatchers([m])(v);
}
