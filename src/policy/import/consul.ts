/**
 * Consul service intentions → zonegate rules. Reads the Kubernetes CRD (kind ServiceIntentions,
 * consul.hashicorp.com/v1alpha1, YAML, several documents) and the config entry
 * (Kind "service-intentions", JSON as `consul config read -format json` prints it; an array of
 * entries is fine).
 *
 * Consul: of the sources that match a caller, only the most specific one decides (an exact name
 * before "*", an exact namespace before "*"); an L4 source allows or denies; an L7 source's
 * permissions are tried in order and the first that matches decides; none matching falls to the
 * default (deny, with default-deny ACLs). zonegate's "any matching deny wins" expresses both with
 * `except`: a source's rules except the more specific sources, a permission's rule except the
 * earlier permissions of the other action. The caller is matched on canonical names
 * (services, namespaces, vars.partition): give Consul trust domains `naming: consul`.
 */
import type { ConditionConfig, MatchConfig, RuleInput, StringMatch } from '../schema.js';
import { ImportError, isObject, readDocuments, requireZones, strings, uniqueNames, zonesOf, type ImportOptions, type ImportResult } from './common.js';

type Obj = Record<string, unknown>;

/** PascalCase (config entry) and camelCase (CRD) keys alike: Name → name, HTTP → http. */
function camel(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camel);
  if (!isObject(v)) return v;
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [k === k.toUpperCase() ? k.toLowerCase() : k[0]!.toLowerCase() + k.slice(1), camel(x)]),
  );
}

interface Source {
  readonly name: string;
  readonly namespace: string;
  /** The source's partition; Consul defaults it to the destination's. */
  readonly partition: string;
  readonly raw: Obj;
  readonly label: string;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Is `t` a strictly more specific source than `s` that `s` also matches? */
function narrower(t: Source, s: Source): boolean {
  if (t === s) return false;
  const within = (sv: string, tv: string) => sv === '*' || sv === tv;
  return within(s.name, t.name) && within(s.namespace, t.namespace) && within(s.partition, t.partition) && (t.name !== s.name || t.namespace !== s.namespace || t.partition !== s.partition);
}

/** One code point for RE2, safe inside and outside a character class: itself or an escape. */
const hex = (c: string) => (/^[A-Za-z0-9_]$/.test(c) ? c : `\\x{${c.codePointAt(0)!.toString(16)}}`);

/**
 * An RE2 regex (no lookaround: RE2 has none) matching every non-empty string except `s`: a strict
 * prefix of s, a string that leaves s at some character, or s followed by more.
 *
 *   notLiteral('ab') // (?s)(?:a|[^a].*|a[^b].*|ab.+)
 */
export function notLiteral(s: string): string {
  const cps = [...s];
  const lit = (n: number) => cps.slice(0, n).map(hex).join('');
  const alts: string[] = [];
  for (let i = 1; i < cps.length; i++) alts.push(lit(i));
  for (let i = 0; i < cps.length; i++) alts.push(`${lit(i)}[^${hex(cps[i]!)}].*`);
  alts.push(`${lit(cps.length)}.+`);
  return `(?s)(?:${alts.join('|')})`;
}

/**
 * The caller as canonical names. Consul's default partition is also what an ID without /ap/
 * implies, so it is written as "no other partition": callers whose naming has no partition
 * (Istio-named ones) still match by namespace and service.
 */
function fromOf(s: Source, zones: readonly string[]): NonNullable<RuleInput['from']> {
  return {
    ...(s.name !== '*' ? { services: [s.name] } : {}),
    ...(s.namespace !== '*' ? { namespaces: [s.namespace] } : {}),
    ...(s.partition === '*' ? {} : s.partition === 'default' ? { notVars: { partition: [{ regex: notLiteral(s.partition) }] } } : { vars: { partition: [s.partition] } }),
    ...(zones.length > 0 ? { zones: [...zones] } : {}),
  };
}

/** One L7 permission's HTTP match as to + when, or what cannot be expressed. */
function permissionMatch(perm: Obj, lost: string[]): MatchConfig {
  const to: Obj = {};
  const when: ConditionConfig[] = [];
  const http = isObject(perm.http) ? perm.http : {};
  if (perm.jwt !== undefined) lost.push('JWT');
  const exact = str(http.pathExact);
  const prefix = str(http.pathPrefix);
  const regex = str(http.pathRegex);
  if (exact) to.paths = [exact];
  else if (prefix) to.paths = [{ prefix }];
  else if (regex) to.paths = [{ regex }];
  const methods = strings(http.methods);
  if (methods) to.methods = methods.map((m) => m.toUpperCase());
  for (const h of Array.isArray(http.header) ? http.header : []) {
    if (!isObject(h) || !str(h.name)) {
      lost.push('a header match without a name');
      continue;
    }
    const header = str(h.name)!.toLowerCase();
    const invert = h.invert === true;
    const m: StringMatch | undefined = str(h.exact) ?? (str(h.prefix) ? { prefix: str(h.prefix)! } : str(h.suffix) ? { suffix: str(h.suffix)! } : str(h.regex) ? { regex: str(h.regex)! } : undefined);
    if (m !== undefined) when.push(invert ? { header, notValues: [m] } : { header, values: [m] });
    else when.push({ header, present: !invert });
  }
  for (const k of Object.keys(http)) if (!['pathExact', 'pathPrefix', 'pathRegex', 'methods', 'header'].includes(k)) lost.push(`HTTP ${k}`);
  return { from: {}, to, ...(when.length > 0 ? { when } : {}) } as MatchConfig;
}

interface Entry {
  readonly name: string;
  readonly namespace: string;
  readonly partition: string;
  readonly sources: Obj[];
  readonly jwt: unknown;
}

/** A document read once: the entry it holds, or why it is skipped (reported in document order). */
type ReadDocument = { readonly entry: Entry } | { readonly skipped: string };

function readEntry(doc: unknown, n: number): ReadDocument {
  if (!isObject(doc)) return { skipped: `document ${n + 1}: not an object: skipped` };
  let entry: Entry;
  if (doc.kind === 'ServiceIntentions') {
    const spec = camel(isObject(doc.spec) ? doc.spec : {}) as Obj;
    const dest = isObject(spec.destination) ? spec.destination : {};
    entry = { name: str(dest.name) ?? '', namespace: str(dest.namespace) ?? 'default', partition: str(dest.partition) ?? 'default', sources: (Array.isArray(spec.sources) ? spec.sources : []) as Obj[], jwt: spec.jwt };
  } else {
    const e = camel(doc) as Obj;
    if (e.kind !== 'service-intentions') return { skipped: `document ${n + 1}: kind ${String(doc.kind ?? doc.Kind)} is neither ServiceIntentions nor service-intentions: skipped` };
    entry = { name: str(e.name) ?? '', namespace: str(e.namespace) ?? 'default', partition: str(e.partition) ?? 'default', sources: (Array.isArray(e.sources) ? e.sources : []) as Obj[], jwt: e.jwt };
  }
  return entry.name ? { entry } : { skipped: `document ${n + 1}: no destination name: skipped` };
}

/**
 * Whether rules are scoped to a destination, with the note that says why. Consul's
 * builtin/ext-authz extension sends no context_extensions, so a rule scoped to a destination
 * would never match what it sends. One destination: zonegate runs beside that service and sees
 * only its calls, so the rules stay unscoped. Several: they must stay apart.
 */
function destinationScope(entries: readonly Entry[], opts: ImportOptions, notes: string[]): boolean {
  const named = new Set(entries.map((e) => `${e.namespace}/${e.name}`));
  const scope = opts.destination !== undefined || named.size > 1;
  if (!scope && named.size === 1)
    notes.push(`rules are not scoped to a destination: Consul's ext-authz extension sends none; run zonegate beside ${[...named][0]} only (or pass --destination NAME with a route context_extensions "destination")`);
  if (scope && opts.destination === undefined)
    notes.push('rules are scoped to context_extensions "destination" = <namespace>/<service>: Consul\'s ext-authz extension sends none, so set it on each route (or import each destination on its own)');
  return scope;
}

/** What every rule of one destination shares. */
interface Destination {
  readonly out: ImportResult;
  readonly zones: readonly string[];
  /** "<namespace>/<service>", for rule names and messages. */
  readonly dest: string;
  readonly destinations: StringMatch[] | undefined;
  readonly jwt: boolean;
}

/** The entry's sources, each with its partition (Consul defaults it to the destination's). */
function sourcesOf(e: Entry): Source[] {
  return e.sources.map((s) => {
    const name = str(s.name) ?? '*';
    const namespace = str(s.namespace) ?? 'default';
    const explicit = str(s.partition);
    return { name, namespace, partition: explicit ?? e.partition, raw: s, label: `${explicit ? `${explicit}/` : ''}${namespace}/${name}` };
  });
}

/**
 * One rule for source `s` (an L4 source's action, or one L7 permission, `suffix` "#i"), or the
 * reason it is left out. `except` holds what takes precedence in Consul: more specific sources,
 * earlier permissions of the other action.
 */
function emitRule(d: Destination, s: Source, action: string, suffix: string, match: MatchConfig, except: MatchConfig[], lost: string[]): void {
  const where = `${d.dest} from ${s.label}${suffix}`;
  const a = action.toLowerCase();
  if (a !== 'allow' && a !== 'deny') return void d.out.unsupported.push(`${where}: action "${action}": skipped`);
  if (lost.length > 0 && a === 'allow') return void d.out.unsupported.push(`${where}: ${lost.join(', ')}: not imported (without ${lost.length > 1 ? 'them' : 'it'} the rule would allow more)`);
  if (lost.length > 0) d.out.unsupported.push(`${where}: ${lost.join(', ')}: left out (the rule denies more than in Consul)`);
  // --zone narrows what leads toward an allow: an allow rule's callers, a deny rule's
  // exceptions. A deny rule itself stays on every zone (scoped, it would deny less than Consul).
  // A deny's "no other partition" (notVars) would let another zone's CA escape it by
  // minting a partition: it becomes an exception for the other partitions of these zones.
  const denyFrom = fromOf(s, []);
  const partitionExcept: MatchConfig[] = [];
  if (a === 'deny' && denyFrom.notVars) {
    partitionExcept.push({ from: { vars: denyFrom.notVars }, to: {} } as MatchConfig);
    delete denyFrom.notVars;
  }
  const allExcept = [...except, ...partitionExcept];
  const scopedExcept = a === 'deny' && d.zones.length > 0 ? allExcept.map((e) => ({ ...e, from: { ...e.from, zones: [...d.zones] } })) : allExcept;
  d.out.rules.push({
    name: `${d.dest}<-${s.label}${suffix}`,
    action: a,
    ...(d.destinations ? { destinations: d.destinations } : {}),
    from: a === 'allow' ? fromOf(s, d.zones) : denyFrom,
    to: match.to,
    ...(match.when ? { when: match.when } : {}),
    ...(scopedExcept.length > 0 ? { except: scopedExcept } : {}),
  });
}

/** The rules of one source: its action (L4), or one rule per permission (L7), first match winning. */
function importSource(d: Destination, s: Source, sources: readonly Source[]): void {
  const lost: string[] = [];
  if (s.raw.peer !== undefined) lost.push(`peer ${String(s.raw.peer)}`);
  if (s.raw.samenessGroup !== undefined) lost.push(`samenessGroup ${String(s.raw.samenessGroup)}`);
  if (s.raw.type !== undefined && s.raw.type !== 'consul') lost.push(`type ${String(s.raw.type)}`);
  if (d.jwt) lost.push('destination JWT');
  const specific = sources.filter((t) => narrower(t, s)).map((t): MatchConfig => ({ from: fromOf(t, []), to: {} }) as MatchConfig);
  const perms = Array.isArray(s.raw.permissions) ? (s.raw.permissions as unknown[]).filter(isObject) : [];
  if (perms.length === 0) return emitRule(d, s, str(s.raw.action) ?? '', '', { from: {}, to: {} } as MatchConfig, specific, lost);
  const matches = perms.map((p) => {
    const l: string[] = [];
    return { action: (str(p.action) ?? '').toLowerCase(), match: permissionMatch(p, l), lost: l };
  });
  matches.forEach((p, i) => {
    // First match wins in Consul: an earlier permission of the other action takes precedence.
    const earlier = matches.slice(0, i).filter((q) => q.action !== p.action && q.lost.length === 0).map((q) => q.match);
    const earlierLost = matches.slice(0, i).some((q) => q.action !== p.action && q.lost.length > 0);
    emitRule(d, s, p.action, `#${i}`, p.match, [...specific, ...earlier], [...lost, ...p.lost, ...(earlierLost && p.action === 'allow' ? ['an earlier deny permission that is not expressible'] : [])]);
  });
}

/** The rules of one destination (one config entry). */
function importEntry(e: Entry, scope: boolean, opts: ImportOptions, zones: readonly string[], out: ImportResult): void {
  const dest = `${e.namespace}/${e.name}`;
  const destinations: StringMatch[] | undefined = opts.destination
    ? [opts.destination]
    : !scope
      ? undefined
      : e.name === '*'
        ? [{ glob: e.namespace === '*' ? '**' : `${e.namespace}/*` }]
        : [dest];
  if (e.jwt !== undefined) out.unsupported.push(`${dest}: JWT requirements of the destination: not checked (sources that allow are left out)`);
  const d: Destination = { out, zones, dest, destinations, jwt: e.jwt !== undefined };
  const sources = sourcesOf(e);
  for (const s of sources) importSource(d, s, sources);
}

/** Converts service intentions (CRD YAML or config-entry JSON) into zonegate rules. */
export function importConsul(text: string, name: string, opts: ImportOptions = {}): ImportResult {
  const out: ImportResult = { rules: [], unsupported: [], notes: [] };
  const zones = zonesOf(opts);
  const docs = readDocuments(text, name);
  if (docs.length === 0) throw new ImportError(`${name}: no documents`);
  const read = docs.map(readEntry);
  const scope = destinationScope(
    read.flatMap((r) => ('entry' in r ? [r.entry] : [])),
    opts,
    out.notes,
  );
  // document order: a skipped document is reported where it stands among the others' messages
  for (const r of read) {
    if ('skipped' in r) out.unsupported.push(r.skipped);
    else importEntry(r.entry, scope, opts, zones, out);
  }
  out.notes.push('sources are matched on canonical names (services, namespaces, partition): give Consul trust domains naming: consul');
  out.notes.push('a request no intention matches is denied (Consul with default-deny ACLs or default intention policy deny)');
  requireZones(out.rules, name);
  return { ...out, rules: uniqueNames(out.rules) };
}
