/**
 * The configuration schema. Validated once at startup (and on reload) into a frozen Config;
 * nothing on the request path reads YAML or re-validates.
 */
import { z } from 'zod';
import { ALGORITHMS } from '../identity/jws.js';
import { Rule } from '../policy/schema.js';
import { NamingConfig } from '../policy/naming.js';
import { PATH_LEVELS } from '../request/path.js';
import { DenySchema, UpstreamSchema } from '../rewrite/schema.js';
import { ServerSchema } from './server.js';
import { SpiffeId, TrustDomain } from '../spiffe/id.js';

const port = z.number().int().min(0).max(65535);
const headerName = z
  .string()
  .regex(/^[a-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a lower-case HTTP header name')
  .refine((n) => !n.startsWith(':') && n !== 'host', 'must not be a pseudo-header or host');

// The policy language lives with the policy (docs/policy.md); re-exported for existing imports.
export { StringMatch, type RuleConfig } from '../policy/schema.js';

const path = z.string().min(1);
/** A value the SPIFFE parser must accept, checked here so the problem gets a file, line and key path. */
const parsedBy = (parse: (s: string) => unknown) =>
  z.string().min(1).superRefine((v, ctx) => {
    try {
      parse(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });
const trustDomainName = parsedBy((v) => TrustDomain.parse(v));
/** The longest delay a Node timer can hold (2^31 − 1 ms); a longer one fires after 1 ms. */
export const MAX_TIMER_SECONDS = 2_147_483;
const url = z.string().url();

/** Exactly one source per trust domain, named by its kind (SPIFFE_Federation.md profiles). */
const SourceConfig = z.union([
  z.strictObject({ file: path }),
  z.strictObject({ istio: z.strictObject({ rootCert: path }) }),
  z.strictObject({ https_web: z.strictObject({ url, ca: path.optional() }) }),
  z.strictObject({ https_spiffe: z.strictObject({ url, endpointSpiffeId: parsedBy((v) => SpiffeId.parse(v)), bootstrap: path }) }),
  z.strictObject({
    consul: z.strictObject({ url, tokenFile: path.optional(), ca: path.optional(), datacenter: z.string().min(1).optional() }),
  }),
]);

const TrustDomainConfig = z
  .strictObject({
    trustDomain: trustDomainName,
    /** Shorthand for `source: {file: …}`: SPIFFE bundle JSON, PEM or DER, watched. */
    bundle: path.optional(),
    source: SourceConfig.optional(),
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
  federation: z
    .strictObject({
      refresh: z
        .strictObject({
          /** Used when a bundle carries no spiffe_refresh_hint. */
          defaultSeconds: z.number().positive().max(MAX_TIMER_SECONDS).default(300),
          minSeconds: z.number().positive().max(MAX_TIMER_SECONDS).default(30),
          maxSeconds: z.number().positive().max(MAX_TIMER_SECONDS).default(3600),
          /** ± fraction of the interval, so many instances do not poll in step. */
          jitter: z.number().min(0).max(0.5).default(0.1),
        })
        .prefault({}),
      /** After this long without a successful refresh, a trust domain fails closed. */
      maxStalenessSeconds: z.number().positive().max(MAX_TIMER_SECONDS).default(86_400),
      fetch: z
        .strictObject({
          connectTimeoutMs: z.number().int().positive().default(5000),
          totalTimeoutMs: z.number().int().positive().default(15_000),
          maxBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
        })
        .prefault({}),
      /** Publish the local trust domain's bundle as a SPIFFE bundle endpoint. */
      endpoint: z
        .strictObject({
          trustDomain: trustDomainName,
          address: z.string().min(1).default('0.0.0.0'),
          port: port.default(8443),
          profile: z.enum(['https_web', 'https_spiffe']),
          /** https_web: the server certificate and key (https_spiffe uses the local SVID). */
          cert: path.optional(),
          key: path.optional(),
        })
        .refine((e) => e.profile === 'https_spiffe' || (e.cert !== undefined && e.key !== undefined), {
          message: 'the https_web profile needs cert and key',
        })
        .optional(),
    })
    .prefault({}),
  /** Common identity tokens (docs/common-identity.md): verified at ingress, minted at egress. */
  commonIdentity: z
    .strictObject({
      header: headerName.default('x-common-identity'),
      /** Accepted `aud` at ingress. Default: spiffe://<our trust domain> and our SPIFFE ID. */
      audiences: z.array(z.string().min(1)).default([]),
      algorithms: z.array(z.enum(ALGORITHMS)).min(1).default([...ALGORITHMS]),
      maxTokenBytes: z.number().int().min(256).max(1024 * 1024).default(16 * 1024),
      maxLifetimeSeconds: z.number().int().positive().default(600),
      clockSkewSeconds: z.number().int().min(0).max(600).default(30),
      /** The token's signer must be the mTLS peer. */
      bindToPeer: z.boolean().default(true),
      /** Require cnf (RFC 8705); it is checked whenever present. */
      requireCnf: z.boolean().default(false),
      maxActDepth: z.number().int().min(0).max(32).default(5),
      /** Deepest nesting of objects and arrays in token claims (ingress) and minted claims (egress). */
      maxClaimDepth: z.number().int().min(2).max(64).default(16),
      /** Largest claims, as JSON bytes (ingress: the decoded payload; egress: before signing). */
      maxClaimBytes: z.number().int().min(256).max(1024 * 1024).default(8 * 1024),
      /** Remember this many jti values to refuse replays (0: off). */
      replayCacheSize: z.number().int().min(0).default(0),
      /**
       * Ingress: a request without a token is denied (ERR_NO_CARRIED_IDENTITY) unless its route
       * sets context_extensions carried_identity: optional.
       */
      required: z.boolean().default(true),
      /**
       * Ingress: also accept a JWT-SVID in `authorization: Bearer` as the carried identity,
       * verified against the JWT authorities of its subject's trust domain.
       */
      jwtSvid: z.boolean().default(false),
      /** The WirePact profile (x-wirepact-identity), to replace WirePact translators one by one. */
      wirepact: z
        .strictObject({
          /** WirePact PKI CA certificate(s): enables reading x-wirepact-identity at ingress. */
          ca: path,
          /** Accepted iss values (empty: any). */
          issuers: z.array(z.string().min(1)).default([]),
          /** Also emit x-wirepact-identity at egress, signed with a WirePact translator certificate. */
          emit: z.strictObject({ cert: path, key: path, issuer: z.string().min(1) }).optional(),
        })
        .optional(),
      egress: z
        .strictObject({
          ttlSeconds: z.number().int().min(1).max(3600).default(60),
          /** Used when the route sets no context_extensions audience. */
          defaultAudience: z.string().min(1).optional(),
          /** A verified token on the outgoing request (we call on behalf of our caller) → act chain. */
          forward: z.boolean().default(true),
          /** With no user credential, the workload itself is the actor. */
          workload: z.boolean().default(true),
          /** Keep the original authorization header (default: removed once translated). */
          keepAuthorization: z.boolean().default(false),
          /**
           * Bind minted tokens to our SVID with cnf x5t#S256 (RFC 8705). Only when the proxy
           * presents this same SVID on the mTLS hop, or the callee's cnf check fails.
           */
          bindCnf: z.boolean().default(false),
          /**
           * Claims of a forwarded common identity copied into the token minted for the next hop
           * (beside sub, and act which records who asserted them). Default: none.
           */
          copyClaims: z.array(z.string().min(1)).default([]),
          /** `authorization: Basic` checked against a user store file (zonegate user hash). */
          basic: z
            .strictObject({
              usersFile: path,
              /** scrypt computations at once (each holds 128·N·r bytes); more wait in a queue. */
              maxConcurrent: z.number().int().min(1).max(64).default(2),
              /** Checks waiting for a turn; past it a check is answered ERR_OVERLOADED at once. */
              maxQueued: z.number().int().min(0).max(100_000).default(64),
            })
            .optional(),
          /** `authorization: Bearer <JWT>` verified against an OIDC issuer's keys. */
          oidc: z
            .strictObject({
              issuer: url,
              /** Skip discovery and fetch keys from here. */
              jwksUri: url.optional(),
              ca: path.optional(),
              audiences: z.array(z.string().min(1)).min(1),
              algorithms: z.array(z.enum(ALGORITHMS)).min(1).default(['RS256', 'ES256', 'PS256', 'ES384', 'EdDSA']),
              /** Claims copied into the common identity. */
              claims: z.array(z.string().min(1)).default(['email', 'roles', 'groups']),
              refreshSeconds: z.number().positive().default(300),
              /** A token with an unknown kid triggers a refetch at most this often. */
              minRefetchSeconds: z.number().positive().default(30),
              /** Keys fetched longer ago than this are fetched again, whatever refreshSeconds says. */
              keysMaxAgeSeconds: z.number().positive().max(MAX_TIMER_SECONDS).default(86_400),
              /**
               * Keys past keysMaxAgeSeconds keep verifying this long while refetches fail; then the
               * issuer's tokens fail closed (ERR_OIDC_KEYS_STALE) until a fetch succeeds.
               */
              keysMaxStaleSeconds: z.number().min(0).max(MAX_TIMER_SECONDS).default(3600),
            })
            .optional(),
        })
        .prefault({}),
    })
    .optional(),
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
      /** Parsed x5c certificates by their base64 text, so an intermediate is parsed once. */
      certificates: z.number().int().min(1).max(1_000_000).default(1_000),
    })
    .prefault({}),
});

export type Config = z.output<typeof ConfigSchema>;
