/**
 * Compiles one rule's from / to / when (and its exceptions) into a flat list of predicates over a
 * PolicyInput. Sets, matchers and regexes are built here, once; a predicate only looks up.
 * A field a rule does not list does not constrain; a positive field whose value is absent (no
 * canonical names, no actor) does not match; a `not…` field whose value is absent does match.
 */
import type { Canonical } from '../pipeline/types.js';
import { compileMatchers, type CompiledMatcher } from './match.js';
import type { ConditionConfig, FromConfig, MatchConfig, RuleConfig, StringMatch, ToConfig } from './schema.js';

export interface PolicyInput {
  readonly principal: string;
  readonly trustDomain: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly context: ReadonlyMap<string, string>;
  /** The actor of a verified common identity, if any. */
  readonly actor?: string | undefined;
  /** Canonical names of the peer, from the naming template of its trust domain. */
  readonly canonical?: Canonical | undefined;
  /** The request's host (:authority) as received. */
  readonly host?: string | undefined;
  /** The destination port Envoy reports (0 when unknown). */
  readonly port?: number | undefined;
  /** Lower-cased header name → value. */
  readonly headers?: ReadonlyMap<string, string> | undefined;
  /** Claims of the verified common identity. */
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
  /** The decision id, for the dry-run log line. */
  readonly requestId?: string | undefined;
}

export type Predicate = (input: PolicyInput) => boolean;

function field(checks: Predicate[], get: (i: PolicyInput) => string | undefined, pos?: readonly StringMatch[], neg?: readonly StringMatch[]): void {
  if (pos) {
    const m = compileMatchers(pos);
    checks.push((i) => {
      const v = get(i);
      return v !== undefined && m(v);
    });
  }
  if (neg) {
    const m = compileMatchers(neg);
    checks.push((i) => {
      const v = get(i);
      return v === undefined || !m(v);
    });
  }
}

function set<T>(checks: Predicate[], get: (i: PolicyInput) => T | undefined, pos?: readonly T[], neg?: readonly T[]): void {
  if (pos) {
    const s = new Set(pos);
    checks.push((i) => {
      const v = get(i);
      return v !== undefined && s.has(v);
    });
  }
  if (neg) {
    const s = new Set(neg);
    checks.push((i) => {
      const v = get(i);
      return v === undefined || !s.has(v);
    });
  }
}

/** The string forms of a claim value: itself, each element of an array, numbers and booleans as text. */
export function claimStrings(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  if (typeof v === 'number' || typeof v === 'boolean') return [String(v)];
  if (Array.isArray(v)) return v.filter((e) => ['string', 'number', 'boolean'].includes(typeof e)).map(String);
  return [];
}

const lowerMatch = (m: StringMatch): StringMatch => {
  if (typeof m === 'string') return m.toLowerCase();
  if ('exact' in m) return { exact: m.exact.toLowerCase() };
  if ('prefix' in m) return { prefix: m.prefix.toLowerCase() };
  if ('suffix' in m) return { suffix: m.suffix.toLowerCase() };
  if ('glob' in m) return { glob: m.glob.toLowerCase() };
  return m;
};

function hostMatcher(list: readonly StringMatch[]): CompiledMatcher {
  const m = compileMatchers(list.map(lowerMatch));
  return (host) => {
    const h = host.toLowerCase();
    if (m(h)) return true;
    const colon = h.lastIndexOf(':');
    // host:port, but not a bare IPv6 literal
    return colon > 0 && !h.endsWith(']') && /^[0-9]+$/.test(h.slice(colon + 1)) && m(h.slice(0, colon));
  };
}

function compileCondition(c: ConditionConfig): Predicate {
  const pos = c.values ? compileMatchers(c.values) : undefined;
  const neg = c.notValues ? compileMatchers(c.notValues) : undefined;
  const get: (i: PolicyInput) => string[] | undefined =
    c.claim !== undefined
      ? ((name) => (i) => claimStrings(i.claims?.[name]))(c.claim)
      : ((name) => (i) => {
          const v = i.headers?.get(name);
          return v === undefined ? undefined : [v];
        })(c.header!);
  const present = c.present;
  return (i) => {
    const vs = get(i);
    if (present !== undefined && (vs !== undefined) !== present) return false;
    if (pos && (vs === undefined || !vs.some((v) => pos(v)))) return false;
    if (neg && vs !== undefined && vs.some((v) => neg(v))) return false;
    return true;
  };
}

function fromChecks(f: FromConfig, checks: Predicate[]): void {
  field(checks, (i) => i.principal, f.principals, f.notPrincipals);
  set(checks, (i) => i.trustDomain, f.trustDomains, f.notTrustDomains);
  field(checks, (i) => i.canonical?.zone, f.zones, f.notZones);
  field(checks, (i) => i.canonical?.namespace, f.namespaces, f.notNamespaces);
  field(checks, (i) => i.canonical?.service, f.services, f.notServices);
  for (const [name, list] of Object.entries(f.vars ?? {})) field(checks, (i) => i.canonical?.vars[name], list);
  for (const [name, list] of Object.entries(f.notVars ?? {})) field(checks, (i) => i.canonical?.vars[name], undefined, list);
  field(checks, (i) => i.actor, f.actors, f.notActors);
  for (const [claim, values] of Object.entries(f.claims ?? {})) checks.push(compileCondition({ claim, values }));
}

function toChecks(t: ToConfig, checks: Predicate[]): void {
  set(checks, (i) => i.method, t.methods, t.notMethods);
  field(checks, (i) => i.path, t.paths, t.notPaths);
  set(checks, (i) => (i.port ? i.port : undefined), t.ports, t.notPorts);
  if (t.hosts) {
    const m = hostMatcher(t.hosts);
    checks.push((i) => i.host !== undefined && m(i.host));
  }
  if (t.notHosts) {
    const m = hostMatcher(t.notHosts);
    checks.push((i) => i.host === undefined || !m(i.host));
  }
  if (t.context) {
    const entries = Object.entries(t.context);
    checks.push((i) => entries.every(([k, v]) => i.context.get(k) === v));
  }
}

const all =
  (checks: readonly Predicate[]): Predicate =>
  (input) => {
    for (const c of checks) if (!c(input)) return false;
    return true;
  };

/** Compiles from, to and when into one predicate. */
export function compileMatch(m: MatchConfig): Predicate {
  const checks: Predicate[] = [];
  fromChecks(m.from, checks);
  toChecks(m.to, checks);
  for (const c of m.when ?? []) checks.push(compileCondition(c));
  return all(checks);
}

/** Compiles a whole rule: destinations, from, to, when, and none of its exceptions. */
export function compileRuleTest(rule: RuleConfig): Predicate {
  const checks: Predicate[] = [];
  // Cheapest and most selective first: a rule scoped to another destination is out at once.
  field(checks, (i) => i.context.get('destination'), rule.destinations);
  checks.push(compileMatch(rule));
  if (rule.except) {
    const exceptions = rule.except.map(compileMatch);
    checks.push((i) => !exceptions.some((e) => e(i)));
  }
  return all(checks);
}
