/**
 * Canonical naming: per trust domain, naming templates map a SPIFFE ID to mesh-independent names
 * (zone, namespace, service and every other template variable), so that one policy can speak of
 * "service billing in namespace default" whether Istio or Consul issued the caller's SVID.
 *
 *   istio             /ns/{namespace}/sa/{service}            (the service account is the service)
 *   consul            /ns/{namespace}/dc/{datacenter}/svc/{service}, partition "default"
 *                     /ap/{partition}/ns/{namespace}/dc/{datacenter}/svc/{service}
 *   consul-partition  only the /ap/{partition}/… form
 *   spire             /ns/{namespace}/sa/{service}            (SPIRE Controller Manager's default)
 *
 * A template is the path after the trust domain; `{name}` captures exactly one path segment.
 * An ID that matches no template of its trust domain has no canonical names: rules on principals
 * and trust domains still apply to it, rules on canonical names do not match it.
 */
import { z } from 'zod';
import type { Canonical } from '../request/types.js';
import type { SpiffeId } from '../spiffe/id.js';

const VAR = /^\{([a-z][A-Za-z0-9_]*)\}$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Why a template is not valid, or undefined. */
export function templateProblem(t: string): string | undefined {
  if (!t.startsWith('/')) return 'must start with "/"';
  const seen = new Set<string>();
  for (const seg of t.slice(1).split('/')) {
    const v = VAR.exec(seg);
    if (v) {
      const name = v[1]!;
      if (name === 'zone') return '"zone" is not a template variable (it is the trust domain\'s zone)';
      if (seen.has(name)) return `variable {${name}} appears twice`;
      seen.add(name);
    } else if (!SEGMENT.test(seg)) return `segment "${seg}" is neither a literal path segment nor {variable}`;
  }
  return undefined;
}

const Template = z.string().superRefine((t, ctx) => {
  const p = templateProblem(t);
  if (p) ctx.addIssue({ code: 'custom', message: `naming template "${t}": ${p}` });
});

export const BUILTIN_NAMING = {
  istio: { templates: ['/ns/{namespace}/sa/{service}'], defaults: {} },
  consul: {
    templates: ['/ns/{namespace}/dc/{datacenter}/svc/{service}', '/ap/{partition}/ns/{namespace}/dc/{datacenter}/svc/{service}'],
    defaults: { partition: 'default' },
  },
  'consul-partition': { templates: ['/ap/{partition}/ns/{namespace}/dc/{datacenter}/svc/{service}'], defaults: {} },
  spire: { templates: ['/ns/{namespace}/sa/{service}'], defaults: {} },
} as const satisfies Record<string, { templates: readonly string[]; defaults: Record<string, string> }>;
export type BuiltinNaming = keyof typeof BUILTIN_NAMING;

/** `naming:` of a trust domain: a built-in name, one template, or templates tried in order. */
export const NamingConfig = z.union([
  z.enum(Object.keys(BUILTIN_NAMING) as [BuiltinNaming, ...BuiltinNaming[]]),
  Template,
  z.strictObject({
    templates: z.array(Template).min(1),
    /** Values of variables a template does not capture (e.g. partition: default). */
    defaults: z.record(z.string().regex(/^[a-z][A-Za-z0-9_]*$/), z.string().min(1)).default({}),
  }),
]);
export type NamingConfig = z.infer<typeof NamingConfig>;

interface CompiledTemplate {
  readonly re: RegExp;
  readonly vars: readonly string[];
}

function compileTemplate(t: string): CompiledTemplate {
  const vars: string[] = [];
  const parts = t
    .slice(1)
    .split('/')
    .map((seg) => {
      const v = VAR.exec(seg);
      if (!v) return seg.replace(/[.]/g, '\\.');
      vars.push(v[1]!);
      return '([^/]+)';
    });
  return { re: new RegExp(`^/${parts.join('/')}$`), vars };
}

/** Resolves a naming config into its templates and defaults. */
export function resolveNaming(n: NamingConfig): { templates: readonly string[]; defaults: Readonly<Record<string, string>> } {
  if (typeof n === 'string') return n in BUILTIN_NAMING ? BUILTIN_NAMING[n as BuiltinNaming] : { templates: [n], defaults: {} };
  return n;
}

/** Maps a SPIFFE ID of one trust domain to its canonical names, or undefined when no template matches. */
export type Namer = (path: string) => Canonical | undefined;

/** Compiles the naming of one trust domain (zone: its configured zone name, else the trust domain name). */
export function compileNamer(zone: string, naming: NamingConfig | undefined): Namer {
  if (naming === undefined) return () => undefined;
  const { templates, defaults } = resolveNaming(naming);
  const compiled = templates.map(compileTemplate);
  return (path) => {
    for (const t of compiled) {
      const m = t.re.exec(path);
      if (!m) continue;
      const vars: Record<string, string> = { ...defaults };
      t.vars.forEach((name, i) => (vars[name] = m[i + 1]!));
      return Object.freeze({
        zone,
        ...(vars.namespace !== undefined ? { namespace: vars.namespace } : {}),
        ...(vars.service !== undefined ? { service: vars.service } : {}),
        vars: Object.freeze(vars),
      });
    }
    return undefined;
  };
}

export interface TrustNaming {
  readonly trustDomain: string;
  readonly zone?: string | undefined;
  readonly naming?: NamingConfig | undefined;
}

/**
 * Compiles the naming of every configured trust domain into one lookup. A trust domain with a
 * zone but no naming still gets canonical names with just its zone.
 */
export function compileNaming(trust: readonly TrustNaming[]): (id: SpiffeId) => Canonical | undefined {
  const byTd = new Map<string, Namer>();
  for (const t of trust) {
    if (t.naming === undefined && t.zone === undefined) continue;
    const zone = t.zone ?? t.trustDomain;
    if (t.naming === undefined) {
      const only: Canonical = Object.freeze({ zone, vars: Object.freeze({}) });
      byTd.set(t.trustDomain, () => only);
    } else {
      const namer = compileNamer(zone, t.naming);
      const bare: Canonical = Object.freeze({ zone, vars: Object.freeze({}) });
      // An ID its templates do not describe still belongs to the zone.
      byTd.set(t.trustDomain, (path) => namer(path) ?? bare);
    }
  }
  if (byTd.size === 0) return () => undefined;
  return (id) => byTd.get(id.trustDomain.name)?.(id.path);
}
