/**
 * Istio AuthorizationPolicy (security.istio.io v1 / v1beta1) → zonegate rules.
 *
 * Istio: a rule matches when any `from` source, any `to` operation and every `when` condition
 * match; within a source or operation every field must match; DENY wins over ALLOW; a workload
 * with an ALLOW policy denies what none allows; a workload without one allows what no DENY
 * denies. zonegate rules have one from and one to, so an Istio rule becomes one zonegate rule per
 * (source, operation) pair — an OR of rules, as Istio's lists are an OR.
 *
 * Mapping: principals "td/ns/x/sa/y" → SPIFFE IDs; namespaces → canonical namespaces (the
 * Istio naming template's {namespace}); "*" → any value present, "x*" → prefix, "*x" → suffix,
 * path templates {*} and {**} → globs. The workload (selector `app` label or a Service
 * targetRef) becomes `destinations: [<namespace>/<app>]`; a namespace-wide policy
 * `<namespace>/*`; a policy in the root namespace applies everywhere.
 */
import type { ConditionConfig, RuleInput, StringMatch } from '../schema.js';
import { ImportError, isObject, readDocuments, requireZones, strings, uniqueNames, zonesOf, type ImportOptions, type ImportResult } from './common.js';

type From = NonNullable<RuleInput['from']>;
type To = NonNullable<RuleInput['to']>;

interface Part {
  from: From;
  to: To;
  when: ConditionConfig[];
  lost: string[];
}

/** Istio's string forms: exact, "prefix*", "*suffix", "*" (present); paths also {*} and {**}. */
function istioMatch(v: string, kind: 'principal' | 'plain' | 'path'): StringMatch {
  const spiffe = kind === 'principal' ? 'spiffe://' : '';
  if (v === '*') return kind === 'principal' ? { prefix: 'spiffe://' } : { glob: '**' };
  if (kind === 'path' && /\{\*\*?\}/.test(v)) return { glob: v.replace(/\{\*\*\}/g, '**').replace(/\{\*\}/g, '*') };
  if (v.startsWith('*')) return { suffix: v.slice(1) };
  if (v.endsWith('*')) return { prefix: spiffe + v.slice(0, -1) };
  return spiffe + v;
}
const list = (v: unknown, kind: 'principal' | 'plain' | 'path') => strings(v)?.map((s) => istioMatch(s, kind));

const UNSUPPORTED_SOURCE = ['requestPrincipals', 'notRequestPrincipals', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'];

function source(s: Record<string, unknown>, p: Part): void {
  const set = (key: keyof From, v: StringMatch[] | undefined) => {
    if (v) (p.from as Record<string, unknown>)[key] = v;
  };
  set('principals', list(s.principals, 'principal'));
  set('notPrincipals', list(s.notPrincipals, 'principal'));
  set('namespaces', list(s.namespaces, 'plain'));
  set('notNamespaces', list(s.notNamespaces, 'plain'));
  for (const k of UNSUPPORTED_SOURCE) if (s[k] !== undefined) p.lost.push(`source.${k}`);
  for (const k of Object.keys(s)) if (!['principals', 'notPrincipals', 'namespaces', 'notNamespaces', ...UNSUPPORTED_SOURCE].includes(k)) p.lost.push(`source.${k}`);
}

function operation(o: Record<string, unknown>, p: Part): void {
  const to = p.to as Record<string, unknown>;
  const hosts = list(o.hosts, 'plain');
  const notHosts = list(o.notHosts, 'plain');
  if (hosts) to.hosts = hosts;
  if (notHosts) to.notHosts = notHosts;
  const ports = strings(o.ports);
  const notPorts = strings(o.notPorts);
  if (ports) to.ports = ports.map(Number);
  if (notPorts) to.notPorts = notPorts.map(Number);
  const methods = strings(o.methods);
  const notMethods = strings(o.notMethods);
  // "*" in methods means any method: no constraint.
  if (methods && !methods.includes('*')) to.methods = methods;
  if (notMethods) to.notMethods = notMethods;
  const paths = list(o.paths, 'path');
  const notPaths = list(o.notPaths, 'path');
  if (paths) to.paths = paths;
  if (notPaths) to.notPaths = notPaths;
  for (const k of Object.keys(o)) if (!['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'].includes(k)) p.lost.push(`operation.${k}`);
}

/** One `when` condition; it narrows the part (several conditions on one key: see `lost`). */
function condition(c: Record<string, unknown>, p: Part): void {
  const key = typeof c.key === 'string' ? c.key : '';
  const values = strings(c.values);
  const notValues = strings(c.notValues);
  const header = /^request\.headers\[(.+)\]$/.exec(key)?.[1];
  const claim = /^request\.auth\.claims\[(.+)\]$/.exec(key)?.[1];
  if (header !== undefined || claim !== undefined) {
    if (claim !== undefined && claim.includes('][')) return void p.lost.push(`when ${key} (nested claims)`);
    const cond: ConditionConfig = header !== undefined ? { header: header.toLowerCase() } : { claim: claim! };
    if (values) cond.values = values.map((v) => istioMatch(v, 'plain'));
    if (notValues) cond.notValues = notValues.map((v) => istioMatch(v, 'plain'));
    if (!values && !notValues) return void p.lost.push(`when ${key} without values`);
    return void p.when.push(cond);
  }
  const field = ({ 'source.namespace': ['namespaces', 'notNamespaces', 'plain'], 'source.principal': ['principals', 'notPrincipals', 'principal'] } as const)[key as 'source.namespace'];
  if (field) {
    const f = p.from as Record<string, unknown>;
    const [pos, neg, kind] = field;
    if ((values && f[pos]) || (notValues && f[neg])) return void p.lost.push(`when ${key} together with the same field in the source`);
    if (values) f[pos] = values.map((v) => istioMatch(v, kind));
    if (notValues) f[neg] = notValues.map((v) => istioMatch(v, kind));
    return;
  }
  if (key === 'destination.port') {
    const to = p.to as Record<string, unknown>;
    if ((values && to.ports) || (notValues && to.notPorts)) return void p.lost.push('when destination.port together with operation ports');
    if (values) to.ports = values.map(Number);
    if (notValues) to.notPorts = notValues.map(Number);
    return;
  }
  p.lost.push(`when ${key || '(no key)'}`);
}

function scope(spec: Record<string, unknown>, ns: string, root: string, opts: ImportOptions, what: string, out: ImportResult): StringMatch[] | undefined | null {
  if (opts.destination) return [opts.destination];
  const labels = isObject(spec.selector) && isObject(spec.selector.matchLabels) ? spec.selector.matchLabels : undefined;
  const refs = Array.isArray(spec.targetRefs) ? spec.targetRefs : isObject(spec.targetRef) ? [spec.targetRef] : undefined;
  if (labels) {
    const app = labels.app ?? labels['app.kubernetes.io/name'];
    if (typeof app === 'string') return [`${ns}/${app}`];
    out.unsupported.push(`${what}: selector ${JSON.stringify(labels)} names no app label; the workload cannot be named as a destination`);
    return null;
  }
  if (refs) {
    const services = refs.filter((r) => isObject(r) && r.kind === 'Service' && typeof r.name === 'string').map((r) => `${ns}/${(r as { name: string }).name}`);
    if (services.length === refs.length) return services;
    out.unsupported.push(`${what}: targetRefs other than Service cannot be named as a destination`);
    return null;
  }
  return ns === root ? undefined : [{ glob: `${ns}/*` }];
}

/** What a document that is not an AuthorizationPolicy is, in words (Consul's own kinds named as such). */
function foundKind(doc: unknown): string {
  if (!isObject(doc)) return `found ${Array.isArray(doc) ? 'a list' : typeof doc}`;
  const kind = doc.kind ?? doc.Kind;
  if (kind === undefined) return `found a document without kind (keys: ${Object.keys(doc).slice(0, 5).join(', ') || 'none'})`;
  const consul = kind === 'service-intentions' || kind === 'ServiceIntentions' ? ' (Consul service intentions: use `zonegate policy import consul`)' : '';
  return `found kind ${JSON.stringify(kind)}${consul}`;
}

/** One AuthorizationPolicy as read: what it is called, its action and the workloads it applies to. */
interface Policy {
  /** "<namespace>/<name>", for rule names and messages. */
  readonly what: string;
  readonly action: 'ALLOW' | 'DENY';
  /** undefined: every workload (a policy in the root namespace). */
  readonly destinations: StringMatch[] | undefined;
  readonly rules: unknown[];
}

/** Document `n` as a policy zonegate can express, or undefined with the reason in `out`. */
function readPolicy(doc: unknown, n: number, root: string, opts: ImportOptions, out: ImportResult): Policy | undefined {
  if (!isObject(doc) || doc.kind !== 'AuthorizationPolicy') {
    out.unsupported.push(`document ${n + 1}: ${foundKind(doc)}, expected kind AuthorizationPolicy (security.istio.io/v1): skipped`);
    return undefined;
  }
  const meta = isObject(doc.metadata) ? doc.metadata : {};
  const ns = typeof meta.namespace === 'string' ? meta.namespace : 'default';
  const what = `${ns}/${typeof meta.name === 'string' ? meta.name : `policy-${n + 1}`}`;
  const spec = isObject(doc.spec) ? doc.spec : {};
  const action = typeof spec.action === 'string' ? spec.action : 'ALLOW';
  if (action !== 'ALLOW' && action !== 'DENY') {
    out.unsupported.push(`${what}: action ${action} has no zonegate equivalent: skipped`);
    return undefined;
  }
  const destinations = scope(spec, ns, root, opts, what, out);
  if (destinations === null) return undefined;
  return { what, action, destinations, rules: Array.isArray(spec.rules) ? spec.rules : [] };
}

/** The zonegate rule for one (source, operation) pair of an Istio rule, or the reason it is left out. */
function importPair(p: Policy, rule: Record<string, unknown>, f: unknown, t: unknown, ruleName: string, zones: string[], out: ImportResult): void {
  const part: Part = { from: {}, to: {}, when: [], lost: [] };
  if (isObject(f) && isObject(f.source)) source(f.source, part);
  if (isObject(t) && isObject(t.operation)) operation(t.operation, part);
  for (const c of Array.isArray(rule.when) ? rule.when : []) if (isObject(c)) condition(c, part);
  // --zone narrows an ALLOW's callers; a DENY stays on every zone (scoped, it would deny less than Istio)
  if (zones.length > 0 && p.action === 'ALLOW') part.from.zones = zones;
  // A DENY's notNamespaces ("deny all but these namespaces") becomes an exception for
  // those namespaces of the given zones: another zone's CA cannot mint its way out of it.
  let except: { from: Record<string, unknown>; to: Record<string, never> }[] | undefined;
  if (p.action === 'DENY' && part.from.notNamespaces && zones.length > 0) {
    except = [{ from: { namespaces: part.from.notNamespaces, zones }, to: {} }];
    delete part.from.notNamespaces;
  }
  if (part.lost.length > 0 && p.action === 'ALLOW') {
    out.unsupported.push(`${ruleName}: ${part.lost.join(', ')}: not imported (without ${part.lost.length > 1 ? 'them' : 'it'} the rule would allow more)`);
    return;
  }
  if (part.lost.length > 0) out.unsupported.push(`${ruleName}: ${part.lost.join(', ')}: left out (the rule denies more than in Istio)`);
  out.rules.push({
    name: ruleName,
    action: p.action.toLowerCase() as 'allow' | 'deny',
    ...(p.destinations ? { destinations: p.destinations } : {}),
    from: part.from,
    to: part.to,
    ...(part.when.length > 0 ? { when: part.when } : {}),
    ...(except ? { except } : {}),
  });
}

/** The rules of one policy: one zonegate rule per (source, operation) pair of each Istio rule. */
function importPolicy(p: Policy, zones: string[], out: ImportResult): void {
  if (p.rules.length === 0) out.notes.push(`${p.what}: no rules: ${p.action === 'ALLOW' ? 'allows nothing (its workloads deny what no other ALLOW allows)' : 'denies nothing'}`);
  p.rules.forEach((r, i) => {
    const rule = isObject(r) ? r : {};
    const froms = Array.isArray(rule.from) && rule.from.length > 0 ? rule.from : [undefined];
    const tos = Array.isArray(rule.to) && rule.to.length > 0 ? rule.to : [undefined];
    const many = froms.length * tos.length > 1;
    froms.forEach((f, fi) =>
      tos.forEach((t, ti) => importPair(p, rule, f, t, `${p.what}${p.rules.length > 1 || many ? `[${i}]` : ''}${many ? `.from${fi}.to${ti}` : ''}`, zones, out)),
    );
  });
}

/**
 * Istio allows what no DENY denies on a workload without ALLOW policies; zonegate denies it by
 * default. Without any ALLOW policy, an allow rule per DENY scope keeps Istio's answer.
 */
function closeDefaults(policies: readonly Policy[], out: ImportResult): void {
  const denyScopes = new Map<string, StringMatch[] | undefined>();
  for (const p of policies) if (p.action === 'DENY') denyScopes.set(JSON.stringify(p.destinations ?? null), p.destinations);
  if (!policies.some((p) => p.action === 'ALLOW') && denyScopes.size > 0) {
    for (const d of denyScopes.values())
      out.rules.push({ name: `istio-default-allow${d ? `:${typeof d[0] === 'string' ? d[0] : JSON.stringify(d[0])}` : ''}`, action: 'allow', ...(d ? { destinations: d } : {}) });
    out.notes.push('no ALLOW policy: Istio allows what no DENY policy denies, so allow rules for the same destinations were added');
  } else if (denyScopes.size > 0) {
    out.notes.push('workloads with only DENY policies allow the rest in Istio; zonegate denies it unless an allow rule matches');
  }
}

/** Converts AuthorizationPolicy documents (YAML, several documents) into zonegate rules. */
export function importIstio(text: string, name: string, opts: ImportOptions & { rootNamespace?: string } = {}): ImportResult {
  const root = opts.rootNamespace ?? 'istio-system';
  const zones = zonesOf(opts);
  const out: ImportResult = { rules: [], unsupported: [], notes: [] };
  const docs = readDocuments(text, name);
  if (docs.length === 0) throw new ImportError(`${name}: no documents`);
  const policies: Policy[] = [];
  docs.forEach((doc, n) => {
    const p = readPolicy(doc, n, root, opts, out);
    if (!p) return;
    policies.push(p);
    importPolicy(p, zones, out);
  });
  closeDefaults(policies, out);
  if (out.rules.some((r) => r.from?.namespaces || r.from?.notNamespaces))
    out.notes.push('namespaces are matched on canonical names: give the callers\' trust domains a naming template (trust[].naming: istio)');
  requireZones(out.rules, name);
  return { ...out, rules: uniqueNames(out.rules) };
}
