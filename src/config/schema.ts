/**
 * The configuration schema. Validated once at startup (and on reload) into a frozen Config;
 * nothing on the request path reads YAML or re-validates.
 */
import { z } from 'zod';
import { FederationSchema, SourceSchema, trustDomainName } from '../federation/schema.js';
import { CommonIdentitySchema } from '../identity/schema.js';
import { Rule } from '../policy/schema.js';
import { NamingConfig } from '../policy/naming.js';
import { PATH_LEVELS } from '../request/path.js';
import { DenySchema, UpstreamSchema } from '../rewrite/schema.js';
import { filePath as path } from '../schema-parts.js';
import { ServerSchema } from './server.js';

// The policy language lives with the policy (docs/policy.md); re-exported for existing imports.
export { StringMatch, type RuleConfig } from '../policy/schema.js';

const TrustDomainConfig = z
  .strictObject({
    trustDomain: trustDomainName,
    /** Shorthand for `source: {file: …}`: SPIFFE bundle JSON, PEM or DER, watched. */
    bundle: path.optional(),
    source: SourceSchema.optional(),
    /** Readiness waits until a required trust domain has a bundle. */
    required: z.boolean().default(true),
    /** Intermediates to complete chains when the proxy forwards the leaf only. */
    intermediates: path.optional(),
    /** The zone name policies and headers use for this trust domain (default: the trust domain). */
    zone: z.string().min(1).max(128).optional(),
    /** How its SPIFFE IDs map to canonical names: istio, consul, consul-partition, spire or templates. */
    naming: NamingConfig.optional(),
  })
  .refine((t) => (t.bundle === undefined) !== (t.source === undefined), {
    message: 'give exactly one of "bundle" (a file) or "source"',
  });

export const ConfigSchema = z.strictObject({
  /** The listeners (src/config/server.ts): loopback unless configured otherwise, mTLS or insecure: true beyond. */
  server: ServerSchema.prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxHeaders: z.number().int().min(1).max(10_000).default(100),
      maxHeaderBytes: z.number().int().min(256).max(1024 * 1024).default(64 * 1024),
      maxCertificateBytes: z.number().int().min(256).max(1024 * 1024).default(16 * 1024),
      maxChainLength: z.number().int().min(1).max(16).default(5),
      /** A whole certificate chain as received: peer certificate, XFCC Cert and Chain, token x5c. */
      maxChainBytes: z.number().int().min(1024).max(4 * 1024 * 1024).default(64 * 1024),
      /** Keys (or certificates) in one bundle document, JWKS or Consul roots response. */
      maxBundleKeys: z.number().int().min(1).max(100_000).default(1000),
      /** Rules in the policy. */
      maxRules: z.number().int().min(1).max(1_000_000).default(10_000),
      /**
       * Characters all glob and regex patterns together may scan in one decision (each pattern
       * is linear in its input; a decision tries many): past it, ERR_POLICY_TOO_COSTLY. About
       * 5 ms of event-loop time at RE2's measured 18 ns per character.
       */
      maxPatternCharacters: z.number().int().min(10_000).max(100_000_000).default(300_000),
      /**
       * Certificate signatures one path search may check (peer chain, token x5c chain): every
       * candidate issuer whose name matches costs one. Past it: ERR_SIGNATURE_LIMIT.
       */
      maxSignatureChecks: z.number().int().min(1).max(64).default(8),
    })
    .prefault({}),
  peer: z
    .strictObject({
      /**
       * Where the peer identity comes from:
       * - certificate: the leaf in attributes.source.certificate, verified against the bundle of
       *   its own trust domain (needs Envoy's include_peer_certificate);
       * - xfcc: the x-forwarded-client-cert header, verified the same way (only when the proxy
       *   sanitizes XFCC);
       * - principal: Envoy's source.principal, trusted as is (no verification; warns at startup).
       */
      source: z.enum(['certificate', 'xfcc', 'principal']).default('certificate'),
      clockSkewSeconds: z.number().int().min(0).max(3600).default(30),
    })
    .prefault({}),
  trust: z.array(TrustDomainConfig).default([]),
  /** Refresh, staleness and fetch limits; our bundle endpoint (src/federation/schema.ts). */
  federation: FederationSchema.prefault({}),
  /** Common identity tokens (docs/common-identity.md, src/identity/schema.ts): verified at ingress, minted at egress. */
  commonIdentity: CommonIdentitySchema.optional(),
  /** zonegate's own X509-SVID and key, as SPIRE's spiffe-helper, cert-manager or a mesh write them. */
  identity: z.strictObject({ cert: path, key: path }).optional(),
  rules: z.array(Rule).default([]),
  /** The rule set as a whole (docs/policy.md). */
  policy: z
    .strictObject({
      /** No policy deny is enforced: would-be denies are logged and counted. */
      dryRun: z.boolean().default(false),
      /** Policy files whose rules are added after `rules` (each may set its own dryRun). */
      include: z.array(path).default([]),
      /** How request paths are read before any rule sees them (docs/policy.md "Paths"). */
      paths: z
        .strictObject({
          /** Istio's normalization levels; the strictest is the default. */
          normalization: z.enum(PATH_LEVELS).default('DECODE_AND_MERGE_SLASHES'),
          /**
           * The proxy in front already normalizes to this level (Envoy: normalize_path,
           * merge_slashes, path_with_escaped_slashes_action): decide on the normalized form.
           * false: a path that differs from its normalized form is denied (ERR_PATH_NOT_NORMALIZED).
           */
          proxyNormalizes: z.boolean().default(false),
          /** `;` in a path: reject (ERR_PATH_INVALID), strip `;params` per segment (Tomcat), or keep as a character. */
          semicolons: z.enum(['reject', 'strip', 'keep']).default('reject'),
          /** Longest path, in characters (ERR_PATH_TOO_LONG). */
          maxLength: z.number().int().min(64).max(1024 * 1024).default(8192),
        })
        .prefault({}),
    })
    .prefault({}),
  /** What the upstream receives, per destination (src/rewrite/schema.ts, docs/rewrite.md). */
  upstream: UpstreamSchema.prefault({}),
  /** What a denied client receives. */
  deny: DenySchema.prefault({}),
  /** Entries of each request-path cache: every one is a bounded LRU (docs/performance.md). */
  cache: z
    .strictObject({
      /** Peer certificate strings, as received, and their verification results. */
      svids: z.number().int().min(1).max(10_000_000).default(10_000),
      /** Common identity tokens and their verified claims (or failure). Egress mints a token per
       * call, so at ingress most tokens are new: this cache serves retries, not steady state. */
      tokens: z.number().int().min(1).max(10_000_000).default(10_000),
      /** Verified x5c chains (signer and key), shared by all tokens of one workload SVID. */
      chains: z.number().int().min(1).max(1_000_000).default(10_000),
      /**
       * Parsed certificates (x5c certificates by their base64 text, peer chain certificates by
       * the digest of their DER), so an intermediate is parsed once. One size for each cache.
       */
      certificates: z.number().int().min(1).max(1_000_000).default(1_000),
    })
    .prefault({}),
});

export type Config = z.output<typeof ConfigSchema>;

let defaults: (Config & { commonIdentity: NonNullable<Config['commonIdentity']> }) | undefined;

/**
 * What an empty config means, common identity's section included: the limits the commands that
 * run without a config (svid verify, token verify, bundle fetch, bundle show) apply, so that no
 * default is written twice.
 */
export function configDefaults(): Config & { commonIdentity: NonNullable<Config['commonIdentity']> } {
  return (defaults ??= ConfigSchema.parse({ commonIdentity: {} }) as Config & { commonIdentity: NonNullable<Config['commonIdentity']> });
}
