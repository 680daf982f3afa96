/**
 * `zonegate policy lint`: finds rules that can never decide anything.
 *   unreachable  the rule can never match (a field contradicts itself, an exception covers the
 *                whole rule, it names canonical fields while no trust domain has a naming
 *                template), or it is an allow rule every request of which an enforced deny rule
 *                denies;
 *   shadowed     an earlier rule of the same action matches every request it matches;
 *   no-effect    dryRun on an allow rule (dry run only changes what a deny does).
 * Coverage is decided field by field and conservatively: a finding is always true, but not every
 * covered rule is found (globs and regexes cover only what is written identically).
 */
import { isDeepStrictEqual } from 'node:util';
import { matches } from './match.js';
import type { ConditionConfig, FromConfig, MatchConfig, RuleConfig, StringMatch, ToConfig } from './schema.js';

export interface Finding {
  readonly index: number;
  readonly rule: string;
  readonly kind: 'unreachable' | 'shadowed' | 'no-effect';
  readonly message: string;
}

type M = readonly StringMatch[] | undefined;

/** Does matcher `a` match every string matcher `b` matches? */
function matcherCovers(a: StringMatch, b: StringMatch): boolean {
  if (isDeepStrictEqual(a, b)) return true;
  if (typeof b === 'string' || 'exact' in b) return matches(a, typeof b === 'string' ? b : b.exact);
  if (typeof a === 'string' || 'exact' in a) return false;
  if ('prefix' in b) return 'prefix' in a ? b.prefix.startsWith(a.prefix) : 'glob' in a && a.glob === '**';
  if ('suffix' in b) return 'suffix' in a ? b.suffix.endsWith(a.suffix) : 'glob' in a && a.glob === '**';
  return 'glob' in a && a.glob === '**';
}

const exactOf = (m: StringMatch): string | undefined => (typeof m === 'string' ? m : 'exact' in m ? m.exact : undefined);

/** Does a field (pos, neg) of rule A hold for every value field (pos, neg) of rule B lets through? */
function fieldCovers(aPos: M, aNeg: M, bPos: M, bNeg: M): boolean {
  if (aPos && !(bPos && bPos.every((m) => aPos.some((n) => matcherCovers(n, m))))) return false;
  if (aNeg) {
    const excluded = bNeg !== undefined && aNeg.every((n) => bNeg.some((m) => matcherCovers(m, n)));
    const disjoint = bPos !== undefined && bPos.every((m) => {
      const v = exactOf(m);
      return v !== undefined && !aNeg.some((n) => matches(n, v));
    });
    if (!excluded && !disjoint) return false;
  }
  return true;
}

function setCovers<T>(aPos?: readonly T[], aNeg?: readonly T[], bPos?: readonly T[], bNeg?: readonly T[]): boolean {
  if (aPos && !(bPos && bPos.every((v) => aPos.includes(v)))) return false;
  if (aNeg && !((bNeg && aNeg.every((v) => bNeg.includes(v))) || (bPos && bPos.every((v) => !aNeg.includes(v))))) return false;
  return true;
}

function recordCovers(a?: Readonly<Record<string, readonly StringMatch[]>>, b?: Readonly<Record<string, readonly StringMatch[]>>): boolean {
  return Object.entries(a ?? {}).every(([k, list]) => fieldCovers(list, undefined, b?.[k], undefined));
}

function fromCovers(a: FromConfig, b: FromConfig): boolean {
  return (
    fieldCovers(a.principals, a.notPrincipals, b.principals, b.notPrincipals) &&
    setCovers(a.trustDomains, a.notTrustDomains, b.trustDomains, b.notTrustDomains) &&
    fieldCovers(a.zones, a.notZones, b.zones, b.notZones) &&
    fieldCovers(a.namespaces, a.notNamespaces, b.namespaces, b.notNamespaces) &&
    fieldCovers(a.services, a.notServices, b.services, b.notServices) &&
    recordCovers(a.vars, b.vars) &&
    Object.entries(a.notVars ?? {}).every(([k, list]) => fieldCovers(undefined, list, b.vars?.[k], b.notVars?.[k])) &&
    fieldCovers(a.actors, a.notActors, b.actors, b.notActors) &&
    recordCovers(a.claims, b.claims)
  );
}

function toCovers(a: ToConfig, b: ToConfig): boolean {
  return (
    setCovers(a.methods, a.notMethods, b.methods, b.notMethods) &&
    setCovers(a.ports, a.notPorts, b.ports, b.notPorts) &&
    fieldCovers(a.paths, a.notPaths, b.paths, b.notPaths) &&
    fieldCovers(a.hosts, a.notHosts, b.hosts, b.notHosts) &&
    Object.entries(a.context ?? {}).every(([k, v]) => b.context?.[k] === v)
  );
}

const whenCovers = (a: readonly ConditionConfig[] = [], b: readonly ConditionConfig[] = []) =>
  a.every((c) => b.some((d) => isDeepStrictEqual(c, d)));

/** Does every request `b` matches also match `a` (its destinations, from, to, when, no exception)? */
export function covers(a: RuleConfig | MatchConfig, b: RuleConfig | MatchConfig): boolean {
  const ra = a as Partial<RuleConfig>;
  const rb = b as Partial<RuleConfig>;
  if (ra.except) return false; // an exception of A might take out part of B: not provable here
  return fieldCovers(ra.destinations, undefined, rb.destinations, undefined) && fromCovers(a.from, b.from) && toCovers(a.to, b.to) && whenCovers(a.when, b.when);
}

/** Why a match can never hold, or undefined. */
function contradiction(m: MatchConfig): string | undefined {
  const f = m.from;
  const t = m.to;
  const strings: Array<[string, M, M]> = [
    ['principals', f.principals, f.notPrincipals],
    ['zones', f.zones, f.notZones],
    ['namespaces', f.namespaces, f.notNamespaces],
    ['services', f.services, f.notServices],
    ['actors', f.actors, f.notActors],
    ['paths', t.paths, t.notPaths],
    ['hosts', t.hosts, t.notHosts],
  ];
  for (const [name, pos, neg] of strings) {
    if (!pos || !neg) continue;
    if (pos.every((p) => neg.some((n) => matcherCovers(n, p)))) return `every value of ${name} is excluded by not${name[0]!.toUpperCase()}${name.slice(1)}`;
  }
  const sets: Array<[string, readonly unknown[] | undefined, readonly unknown[] | undefined]> = [
    ['trustDomains', f.trustDomains, f.notTrustDomains],
    ['methods', t.methods, t.notMethods],
    ['ports', t.ports, t.notPorts],
  ];
  for (const [name, pos, neg] of sets)
    if (pos && neg && pos.every((v) => neg.includes(v))) return `every value of ${name} is excluded by not${name[0]!.toUpperCase()}${name.slice(1)}`;
  if (f.trustDomains && f.principals?.every((p) => exactOf(p) !== undefined)) {
    const tdOf = (id: string) => /^spiffe:\/\/([^/]+)/.exec(id)?.[1];
    if (f.principals.every((p) => !f.trustDomains!.includes(tdOf(exactOf(p)!) ?? '')))
      return 'no listed principal is in a listed trust domain';
  }
  for (const c of m.when ?? []) {
    const what = c.claim !== undefined ? `claim "${c.claim}"` : `header "${c.header}"`;
    if (c.present === false && c.values) return `${what} must be absent and match values`;
    if (c.values && c.notValues && c.values.every((v) => c.notValues!.some((n) => matcherCovers(n, v)))) return `every value of ${what} is excluded by notValues`;
  }
  return undefined;
}

/** Positive canonical fields: they never match without canonical names (not… fields always do). */
const usesNaming = (m: MatchConfig) => [m.from.namespaces, m.from.services, m.from.vars].some((x) => x !== undefined);
const usesZones = (m: MatchConfig) => m.from.zones !== undefined;

const everything = (m: MatchConfig) => covers(m, { from: {}, to: {} });

export interface LintContext {
  /** Whether any trust domain of the config has a naming template; undefined for a policy file alone. */
  readonly naming?: boolean;
  /** Whether any trust domain has a zone or a naming template (and so canonical zones). */
  readonly zones?: boolean;
}

/** Lints a rule set, in order. */
export function lintRules(rules: readonly RuleConfig[], ctx: LintContext = {}): Finding[] {
  const findings: Finding[] = [];
  const label = (i: number) => `rules[${i}] "${rules[i]!.name}"`;
  rules.forEach((r, i) => {
    const add = (kind: Finding['kind'], message: string) => findings.push({ index: i, rule: r.name, kind, message: `${label(i)}: ${kind}: ${message}` });
    const never = contradiction(r);
    if (never) return add('unreachable', `it can never match: ${never}`);
    const total = r.except?.findIndex(everything) ?? -1;
    if (total >= 0) return add('unreachable', `it can never match: except[${total}] matches every request`);
    if (ctx.naming === false && usesNaming(r))
      return add('unreachable', 'it matches on canonical names, but no trust domain has a naming template (trust[].naming)');
    if (ctx.zones === false && usesZones(r)) return add('unreachable', 'it matches on zones, but no trust domain has a zone or a naming template');
    if (r.action === 'allow') {
      const j = rules.findIndex((d) => d.action === 'deny' && !d.dryRun && covers(d, r));
      if (j >= 0) return add('unreachable', `every request it matches is denied by ${label(j)}`);
      if (r.dryRun) add('no-effect', 'dryRun on an allow rule changes nothing (dry run only changes what a deny does)');
    }
    const k = rules.findIndex((e, idx) => idx < i && e.action === r.action && (r.action === 'allow' || e.dryRun === r.dryRun) && covers(e, r));
    if (k >= 0) {
      const same = isDeepStrictEqual({ ...rules[k], name: '' }, { ...r, name: '' });
      const verb = r.action === 'allow' ? 'allows' : 'denies';
      add('shadowed', same ? `${label(k)} is identical` : `${label(k)} already ${verb} every request it matches`);
    }
  });
  return findings;
}
