/**
 * Independent models of what the source documents mean, written from the Istio and Consul
 * references (not from the importers), so the importers' output can be checked against them.
 */
export interface Req {
  /** SPIFFE ID of the caller. */
  readonly id: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly port: number;
  readonly headers: Record<string, string>;
  readonly claims?: Record<string, unknown>;
  /** The destination workload, "<namespace>/<name>". */
  readonly destination: string;
}

type Obj = Record<string, any>;

// ---------------------------------------------------------------- Istio AuthorizationPolicy
function istioString(pattern: string, value: string | undefined, path = false): boolean {
  if (value === undefined) return false;
  if (pattern === '*') return value !== '';
  if (path && pattern.includes('{')) {
    const re = pattern.split(/(\{\*\*\}|\{\*\})/).map((p) => (p === '{**}' ? '.*' : p === '{*}' ? '[^/]+' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
    return new RegExp(`^${re}$`).test(value);
  }
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  return value === pattern;
}
const any = (list: string[] | undefined, v: string | undefined, path = false) => list === undefined || list.some((p) => istioString(p, v, path));
const none = (list: string[] | undefined, v: string | undefined, path = false) => list === undefined || !list.some((p) => istioString(p, v, path));

function istioSource(s: Obj, r: Req): boolean {
  const principal = r.id.replace(/^spiffe:\/\//, '');
  const ns = /\/ns\/([^/]+)\//.exec(principal)?.[1];
  return any(s.principals, principal) && none(s.notPrincipals, principal) && any(s.namespaces, ns) && none(s.notNamespaces, ns) && !s.requestPrincipals && !s.ipBlocks;
}
function istioOperation(o: Obj, r: Req): boolean {
  const host = r.host.toLowerCase();
  const hostOk = (l: string[] | undefined) => l === undefined || l.some((p) => istioString(p.toLowerCase(), host) || istioString(p.toLowerCase(), host.replace(/:\d+$/, '')));
  return (
    hostOk(o.hosts) && (o.notHosts === undefined || !hostOk(o.notHosts)) &&
    (o.ports === undefined || o.ports.map(String).includes(String(r.port))) && (o.notPorts === undefined || !o.notPorts.map(String).includes(String(r.port))) &&
    (o.methods === undefined || o.methods.includes(r.method)) && (o.notMethods === undefined || !o.notMethods.includes(r.method)) &&
    any(o.paths, r.path, true) && none(o.notPaths, r.path, true)
  );
}
function istioWhen(c: Obj, r: Req): boolean {
  const principal = r.id.replace(/^spiffe:\/\//, '');
  let v: string[] | undefined;
  const h = /^request\.headers\[(.+)\]$/.exec(c.key);
  const cl = /^request\.auth\.claims\[(.+)\]$/.exec(c.key);
  if (h) v = r.headers[h[1]!.toLowerCase()] === undefined ? undefined : [r.headers[h[1]!.toLowerCase()]!];
  else if (cl) {
    const x = r.claims?.[cl[1]!];
    v = x === undefined ? undefined : Array.isArray(x) ? x.map(String) : [String(x)];
  } else if (c.key === 'source.namespace') v = [/\/ns\/([^/]+)\//.exec(principal)?.[1] ?? ''];
  else if (c.key === 'source.principal') v = [principal];
  else if (c.key === 'destination.port') v = [String(r.port)];
  else return false;
  const pos = c.values === undefined || (v !== undefined && v.some((x) => c.values.some((p: string) => istioString(p, x))));
  const neg = c.notValues === undefined || v === undefined || !v.some((x) => c.notValues.some((p: string) => istioString(p, x)));
  return pos && neg;
}
function istioRule(rule: Obj, r: Req): boolean {
  const fromOk = !rule.from || rule.from.some((f: Obj) => istioSource(f.source ?? {}, r));
  const toOk = !rule.to || rule.to.some((t: Obj) => istioOperation(t.operation ?? {}, r));
  return fromOk && toOk && (rule.when ?? []).every((c: Obj) => istioWhen(c, r));
}
function applies(p: Obj, r: Req, root: string): boolean {
  const ns = p.metadata?.namespace ?? 'default';
  const app = p.spec?.selector?.matchLabels?.app;
  if (app) return r.destination === `${ns}/${app}`;
  return ns === root || r.destination.startsWith(`${ns}/`);
}
/** Istio's decision for a workload: DENY first, then ALLOW (any ALLOW policy → one must match). */
export function istioAllows(policies: Obj[], r: Req, root = 'istio-system'): boolean {
  const mine = policies.filter((p) => p.kind === 'AuthorizationPolicy' && applies(p, r, root));
  const rulesOf = (action: string) => mine.filter((p) => (p.spec?.action ?? 'ALLOW') === action);
  if (rulesOf('DENY').some((p) => (p.spec.rules ?? []).some((rule: Obj) => istioRule(rule, r)))) return false;
  const allows = rulesOf('ALLOW');
  if (allows.length === 0) return true;
  return allows.some((p) => (p.spec?.rules ?? []).some((rule: Obj) => istioRule(rule, r)));
}

// ---------------------------------------------------------------- Consul service intentions
export interface ConsulCaller {
  readonly service: string;
  readonly namespace: string;
  readonly partition: string;
}
function consulHttp(h: Obj, r: Req): boolean {
  if (h.pathExact !== undefined && r.path !== h.pathExact) return false;
  if (h.pathPrefix !== undefined && !r.path.startsWith(h.pathPrefix)) return false;
  if (h.pathRegex !== undefined && !new RegExp(`^(?:${h.pathRegex})$`).test(r.path)) return false;
  if (h.methods !== undefined && !h.methods.includes(r.method)) return false;
  for (const m of h.header ?? []) {
    const v = r.headers[m.name.toLowerCase()];
    let ok: boolean;
    if (m.present) ok = v !== undefined;
    else if (v === undefined) ok = false;
    else if (m.exact !== undefined) ok = v === m.exact;
    else if (m.prefix !== undefined) ok = v.startsWith(m.prefix);
    else if (m.suffix !== undefined) ok = v.endsWith(m.suffix);
    else ok = new RegExp(`^(?:${m.regex})$`).test(v);
    if (m.invert) ok = !ok;
    if (!ok) return false;
  }
  return true;
}
/** Consul: the most precise matching source decides; L7 permissions: first match; else deny. */
export function consulAllows(entries: Obj[], caller: ConsulCaller, r: Req): boolean {
  const e = entries.find((x) => `${x.spec.destination.namespace ?? 'default'}/${x.spec.destination.name}` === r.destination);
  if (!e) return false;
  const destPartition = e.spec.destination.partition ?? 'default';
  const matching = (e.spec.sources as Obj[])
    .map((s) => ({ s, name: s.name, ns: s.namespace ?? 'default', part: s.partition ?? destPartition }))
    .filter((x) => (x.name === '*' || x.name === caller.service) && (x.ns === '*' || x.ns === caller.namespace) && x.part === caller.partition);
  // precedence: exact namespace before wildcard, then exact name before wildcard
  matching.sort((a, b) => Number(a.ns === '*') - Number(b.ns === '*') || Number(a.name === '*') - Number(b.name === '*'));
  const best = matching[0];
  if (!best) return false;
  if (!best.s.permissions) return best.s.action === 'allow';
  const first = (best.s.permissions as Obj[]).find((p) => consulHttp(p.http ?? {}, r));
  return first?.action === 'allow';
}
