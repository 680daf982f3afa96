/**
 * Compiles one rule's from / to / when (and its exceptions) into a flat list of predicates over a
 * PolicyInput. Sets, matchers and regexes are built here, once; a predicate only looks up.
 * A field a rule does not list does not constrain; a positive field whose value is absent (no
 * canonical names, no actor) does not match; a `not…` field whose value is absent does match.
 */
import type { Canonical } from '../request/types.js';
import { compileMatchers } from './match.js';
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
  /** The request's host name, normalized (src/request/host.ts): lower case, no port, no trailing dot. */
  readonly host?: string | undefined;
  /** The port written in the request's host, if any (`hosts: [a.example:8443]` matches on it). */
  readonly hostPort?: number | undefined;
  /** The destination port Envoy reports (0 when unknown). */
  readonly port?: number | undefined;
  /**
   * Lower-cased header name → value; a repeated header joined with "," (as Envoy's `headers` map
   * does, and as zonegate joins `header_map`'s repeats): conditions read its elements.
   */
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

const hostMatch = (m: StringMatch): StringMatch => {
  const l = lowerMatch(m);
  // A rule written with the FQDN's trailing dot names the same host as the request's normalized form.
  const trim = (s: string) => s.replace(/\.+(?=$|:[0-9]+$)/, '');
  if (typeof l === 'string') return trim(l);
  if ('exact' in l) return { exact: trim(l.exact) };
  return l;
};

function hostMatcher(list: readonly StringMatch[]): (name: string, port: number | undefined) => boolean {
  const m = compileMatchers(list.map(hostMatch));
  return (name, port) => m(name) || (port !== undefined && m(`${name}:${port}`));
}

/**
 * Which way a condition leads. A condition whose holding leads toward a deny (a deny rule's own
 * conditions, an allow rule's exceptions) holds when ANY received value satisfies it; one whose
 * holding leads toward an allow (an allow rule's own conditions, a deny rule's exceptions) holds
 * only when EVERY value does. So repeating a header can only make a deny more likely.
 */
export type Polarity = 'deny' | 'allow';

/**
 * Most elements one header's conditions look at. Past it the header is treated as the worst case
 * for the rule (toward a deny: the condition holds; toward an allow: it does not), which keeps
 * "a repetition never turns a deny into an allow" and bounds the work per request.
 */
export const MAX_HEADER_ELEMENTS = 100;

/**
 * Every element of every received value: each value split at "," (HTTP list syntax; Envoy's
 * `headers` map joins repeats with ","), optional whitespace trimmed, empty elements kept, repeats
 * dropped (matching is a function of the element). A joined value cannot be told apart from one
 * value containing a comma, so neither reading is trusted: matchers only ever see elements, and an
 * element never contains a comma. undefined: more than MAX_HEADER_ELEMENTS elements.
 */
export function headerElements(values: readonly string[]): string[] | undefined {
  const out = new Set<string>();
  let count = 0;
  for (const v of values) {
    for (const part of v.includes(',') ? v.split(',') : [v]) {
      if (++count > MAX_HEADER_ELEMENTS) return undefined;
      out.add(part.trim());
    }
  }
  return [...out];
}

const TOO_MANY = 'too many' as const;
/** Elements per request and header, computed once however many conditions read them. */
const elementCache = new WeakMap<PolicyInput, Map<string, string[] | typeof TOO_MANY | undefined>>();

function elementsOf(i: PolicyInput, name: string): string[] | typeof TOO_MANY | undefined {
  let perInput = elementCache.get(i);
  if (perInput === undefined) elementCache.set(i, (perInput = new Map()));
  if (perInput.has(name)) return perInput.get(name);
  // Splitting the joined value at "," gives the same elements as splitting each repeat.
  const joined = i.headers?.get(name);
  const out = joined === undefined ? undefined : (headerElements([joined]) ?? TOO_MANY);
  perInput.set(name, out);
  return out;
}

function compileHeaderCondition(c: ConditionConfig, polarity: Polarity): Predicate {
  const name = c.header!;
  const pos = c.values ? compileMatchers(c.values) : undefined;
  const neg = c.notValues ? compileMatchers(c.notValues) : undefined;
  const present = c.present;
  const looks = pos !== undefined || neg !== undefined;
  if (polarity === 'deny')
    return (i) => {
      const vs = elementsOf(i, name);
      if (present !== undefined && (vs !== undefined) !== present) return false;
      if (vs === TOO_MANY) return true; // worst case for the caller: the deny's condition holds
      if (pos && (vs === undefined || !vs.some((v) => pos(v)))) return false;
      // notValues toward a deny: one value outside the list is enough
      if (neg && vs !== undefined && !vs.some((v) => !neg(v))) return false;
      return true;
    };
  return (i) => {
    const vs = elementsOf(i, name);
    if (present !== undefined && (vs !== undefined) !== present) return false;
    if (vs === TOO_MANY) return !looks; // worst case for the caller: the allow's condition fails
    if (pos && (vs === undefined || !vs.every((v) => pos(v)))) return false;
    // notValues toward an allow: any value in the list excludes
    if (neg && vs !== undefined && vs.some((v) => neg(v))) return false;
    return true;
  };
}

function compileCondition(c: ConditionConfig, polarity: Polarity): Predicate {
  if (c.header !== undefined) return compileHeaderCondition(c, polarity);
  // Claims come signed by an issuer, not repeated by a client: an array claim matches when any
  // element is listed, and any listed element excludes (whatever the polarity).
  const pos = c.values ? compileMatchers(c.values) : undefined;
  const neg = c.notValues ? compileMatchers(c.notValues) : undefined;
  const name = c.claim!;
  const present = c.present;
  return (i) => {
    const vs = claimStrings(i.claims?.[name]);
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
  for (const [claim, values] of Object.entries(f.claims ?? {})) checks.push(compileCondition({ claim, values }, 'allow'));
}

function toChecks(t: ToConfig, checks: Predicate[]): void {
  set(checks, (i) => i.method, t.methods, t.notMethods);
  field(checks, (i) => i.path, t.paths, t.notPaths);
  set(checks, (i) => (i.port ? i.port : undefined), t.ports, t.notPorts);
  if (t.hosts) {
    const m = hostMatcher(t.hosts);
    checks.push((i) => i.host !== undefined && i.host !== '' && m(i.host, i.hostPort));
  }
  if (t.notHosts) {
    const m = hostMatcher(t.notHosts);
    checks.push((i) => i.host === undefined || i.host === '' || !m(i.host, i.hostPort));
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

/** Compiles from, to and when into one predicate; `polarity` is where its holding leads. */
export function compileMatch(m: MatchConfig, polarity: Polarity): Predicate {
  const checks: Predicate[] = [];
  fromChecks(m.from, checks);
  toChecks(m.to, checks);
  for (const c of m.when ?? []) checks.push(compileCondition(c, polarity));
  return all(checks);
}

/** Compiles a whole rule: destinations, from, to, when, and none of its exceptions. */
export function compileRuleTest(rule: RuleConfig): Predicate {
  const checks: Predicate[] = [];
  // Cheapest and most selective first: a rule scoped to another destination is out at once.
  field(checks, (i) => i.context.get('destination'), rule.destinations);
  const own: Polarity = rule.action;
  checks.push(compileMatch(rule, own));
  if (rule.except) {
    // An exception turns the rule off: it leads the other way.
    const exceptions = rule.except.map((e) => compileMatch(e, own === 'deny' ? 'allow' : 'deny'));
    checks.push((i) => !exceptions.some((e) => e(i)));
  }
  return all(checks);
}
