/**
 * The policy language: rules, their matchers and conditions (docs/policy.md). The config schema
 * (src/config/schema.ts) embeds these; policy files included with `policy.include` and the
 * importers' output are validated by the same schema.
 */
import { z } from 'zod';
import { regexError } from './match.js';

/**
 * A string matcher: a bare string is an exact match; `glob` treats `*` as any run of characters
 * except `/`, `**` as any run including `/`, `?` as one character except `/`; `regex` must match
 * the whole value, in RE2 syntax (no backreferences, no lookaround), and runs on RE2's
 * linear-time engine. Every matcher costs time linear in the value it is shown (match.ts).
 */
export const StringMatch = z.union([
  z.string().min(1),
  z.strictObject({ exact: z.string().min(1) }),
  z.strictObject({ prefix: z.string().min(1) }),
  z.strictObject({ suffix: z.string().min(1) }),
  z.strictObject({ glob: z.string().min(1).max(1024) }),
  z.strictObject({
    regex: z
      .string()
      .min(1)
      .max(1024)
      .superRefine((r, ctx) => {
        const why = regexError(r);
        if (why !== undefined)
          ctx.addIssue({ code: 'custom', message: `not a regular expression RE2 can run in linear time (no backreferences, no lookaround): ${why}` });
      }),
  }),
]);
export type StringMatch = z.infer<typeof StringMatch>;

const matchers = z.array(StringMatch).min(1).optional();
const names = z.array(z.string().min(1)).min(1).optional();
const port = z.union([z.number().int().min(1).max(65535), z.string().regex(/^[0-9]{1,5}$/).transform(Number)]);
const ports = z.array(port.refine((p) => p >= 1 && p <= 65535, 'must be a port number')).min(1).optional();
const methods = z.array(z.string().min(1).transform((m) => m.toUpperCase())).min(1).optional();
const lower = z.string().min(1).transform((h) => h.toLowerCase());
/**
 * A header name as Envoy and nginx report it (a token, or a pseudo-header): a name with a space or
 * another stray character never matches, which would leave a deny rule silently dead.
 */
const headerName = lower.refine((h) => /^:?[!#$%&'*+.^_`|~0-9a-z-]+$/.test(h), {
  message: 'not an HTTP header name (token characters only, no spaces): a condition on it would never match',
});

/** Who calls: every listed field must match (values within a field: any of them). */
export const From = z.strictObject({
  /** Peer principals (SPIFFE IDs when verified). */
  principals: matchers,
  notPrincipals: matchers,
  /** Trust domains of verified peers. */
  trustDomains: names,
  notTrustDomains: names,
  /** Canonical names from the naming template of the peer's trust domain. */
  zones: matchers,
  notZones: matchers,
  namespaces: matchers,
  notNamespaces: matchers,
  services: matchers,
  notServices: matchers,
  /** Any other template variable, e.g. {partition: [default], datacenter: [dc1]}. */
  vars: z.record(z.string().min(1), z.array(StringMatch).min(1)).optional(),
  /** The variable is absent or matches none of these. */
  notVars: z.record(z.string().min(1), z.array(StringMatch).min(1)).optional(),
  /** Actors (the `sub` of a verified common identity). */
  actors: matchers,
  notActors: matchers,
  /** Claims of the verified common identity; every listed claim must match one of its values. */
  claims: z.record(z.string().min(1), z.array(StringMatch).min(1)).optional(),
});
export type FromConfig = z.infer<typeof From>;

/** What is called. */
export const To = z.strictObject({
  /** The request's host (:authority), compared case-insensitively, with and without its port. */
  hosts: z.array(StringMatch).min(1).optional(),
  notHosts: z.array(StringMatch).min(1).optional(),
  /** The destination port Envoy reports. */
  ports,
  notPorts: ports,
  methods,
  notMethods: methods,
  paths: matchers,
  notPaths: matchers,
  /** Match on Envoy's per-route context_extensions (all listed keys must be equal). */
  context: z.record(z.string(), z.string()).optional(),
});
export type ToConfig = z.infer<typeof To>;

/** A condition on a claim of the verified common identity or on a request header. */
export const Condition = z
  .strictObject({
    claim: z.string().min(1).optional(),
    header: headerName.optional(),
    /** The value (any element of an array claim) matches one of these. */
    values: matchers,
    /** The value matches none of these (an absent value matches none). */
    notValues: matchers,
    /** true: the claim or header must be present; false: it must be absent. */
    present: z.boolean().optional(),
  })
  .refine((c) => (c.claim === undefined) !== (c.header === undefined), { message: 'give exactly one of "claim" or "header"' })
  .refine((c) => c.values !== undefined || c.notValues !== undefined || c.present !== undefined, {
    message: 'give "values", "notValues" or "present"',
  });
export type ConditionConfig = z.infer<typeof Condition>;

/** from, to and when together: what a rule (or one of its exceptions) matches. */
const matchShape = {
  from: From.default({}),
  to: To.default({}),
  /** Every condition must hold. */
  when: z.array(Condition).min(1).optional(),
};
export const Match = z.strictObject(matchShape);
export type MatchConfig = z.infer<typeof Match>;

/** A positive canonical-name field: names minted by whichever CA signed the caller's SVID. */
const claimsCanonical = (f: FromConfig | undefined): boolean => f !== undefined && (f.namespaces !== undefined || f.services !== undefined || f.vars !== undefined);
/**
 * An excluding canonical-name field: a caller escapes it by carrying one of the listed names,
 * which any federated CA can mint. Toward an allow where it excludes (a deny rule's `from`, an
 * allow rule's exception) it needs a zone as much as a positive field does where it claims.
 */
const excludesCanonical = (f: FromConfig | undefined): boolean =>
  f !== undefined && (f.notNamespaces !== undefined || f.notServices !== undefined || f.notVars !== undefined);
/** A field that says which CA's names count: a zone, a trust domain or a principal. */
const scoped = (f: FromConfig | undefined): boolean => f !== undefined && (f.zones !== undefined || f.trustDomains !== undefined || f.principals !== undefined);

/**
 * Canonical names (namespaces, services, vars) are whatever the CA of the caller's trust domain
 * minted: any federated CA can mint `ns/payments`. Where matching leads toward an allow (an allow
 * rule, a deny rule's exception), such a field must say which zone's names it means
 * (docs/security.md, threat 1; docs/policy.md "Canonical names").
 */
export const UNSCOPED_CANONICAL =
  'matches canonical names (namespaces, services, vars) from any zone: any federated CA can mint them. Add from.zones (or trustDomains, or principals) to say whose names count';

export const Rule = z.strictObject({
  name: z.string().min(1).max(128),
  action: z.enum(['allow', 'deny', 'ALLOW', 'DENY']).transform((a) => a.toLowerCase() as 'allow' | 'deny'),
  /** A deny rule in dry run does not deny: the would-be deny is logged and counted. */
  dryRun: z.boolean().default(false),
  /** The rule applies only to routes whose context_extensions `destination` matches. */
  destinations: matchers,
  ...matchShape,
  /** The rule does not match a request that one of these matches. */
  except: z.array(Match).min(1).optional(),
}).superRefine((r, ctx) => {
  const action = r.action;
  if (action === 'allow' && claimsCanonical(r.from) && !scoped(r.from))
    ctx.addIssue({ code: 'custom', path: ['from'], message: `an allow rule that ${UNSCOPED_CANONICAL}` });
  if (action === 'deny')
    r.except?.forEach((e, i) => {
      if (claimsCanonical(e.from) && !scoped(e.from) && !scoped(r.from))
        ctx.addIssue({ code: 'custom', path: ['except', i, 'from'], message: `an exception of a deny rule that ${UNSCOPED_CANONICAL}` });
    });
  // Excluding fields: a caller named as excluded escapes a deny (or an allow's exception).
  if (action === 'deny' && excludesCanonical(r.from) && !scoped(r.from))
    ctx.addIssue({
      code: 'custom',
      path: ['from'],
      message: `a deny rule that excludes by canonical names (notNamespaces, notServices, notVars) lets a caller escape it with a name any federated CA can mint; it ${UNSCOPED_CANONICAL} (or write the exclusion as an exception with from.zones)`,
    });
  if (action === 'allow')
    r.except?.forEach((e, i) => {
      if (excludesCanonical(e.from) && !scoped(e.from) && !scoped(r.from))
        ctx.addIssue({
          code: 'custom',
          path: ['except', i, 'from'],
          message: `an exception of an allow rule that excludes by canonical names (notNamespaces, notServices, notVars) lets a caller escape it with a name any federated CA can mint; it ${UNSCOPED_CANONICAL}`,
        });
    });
});
export type RuleConfig = z.infer<typeof Rule>;
/** What a rule is written as (before defaults). */
export type RuleInput = z.input<typeof Rule>;

/** A policy file: a rule set of its own (`policy.include`, the importers' output). */
export const PolicyFile = z.strictObject({
  /** Every rule of this file is in dry run. */
  dryRun: z.boolean().default(false),
  rules: z.array(Rule).default([]),
});
export type PolicyFileConfig = z.infer<typeof PolicyFile>;
