/**
 * The `upstream` and `deny` sections of the config: what the upstream receives on an allow
 * (chosen per destination) and what the client receives on a deny. docs/rewrite.md explains
 * every key; src/config/schema.ts places these two sections in the whole.
 */
import { z } from 'zod';
import { filePath as path, headerName } from '../schema-parts.js';

const optionalHeader = (name: string) => z.union([headerName, z.literal('')]).default(name);

/**
 * The default name of each identity header. A name turned off ("") or renamed is still guarded
 * under its default name (src/rewrite/guard.ts): a client copy never reaches the upstream.
 */
export const DEFAULT_IDENTITY_HEADERS = {
  principal: 'x-zonegate-peer',
  trustDomain: 'x-zonegate-peer-trust-domain',
  decisionId: 'x-zonegate-decision-id',
  actor: 'x-zonegate-actor',
  actors: 'x-zonegate-act',
  zone: 'x-zonegate-zone',
  namespace: 'x-zonegate-namespace',
  service: 'x-zonegate-service',
  roles: 'x-zonegate-roles',
} as const;
export const DEFAULT_JWT_HEADER = 'x-zonegate-jwt';
export const DEFAULT_PROOF_HEADER = 'x-zonegate-proof';

export const REWRITE_MODES = ['headers', 'jwt', 'hmac', 'basic', 'passthrough'] as const;
export type RewriteMode = (typeof REWRITE_MODES)[number];

const Destination = z.strictObject({
  /** headers | jwt (re-issue) | hmac (headers with a proof) | basic (legacy) | passthrough. */
  mode: z.enum(REWRITE_MODES).default('headers'),
  /** `aud` of a re-issued JWT; default: the destination's name. */
  audience: z.string().min(1).optional(),
  /** Also set the identity headers (default: on for headers, hmac and passthrough; hmac needs them). */
  identityHeaders: z.boolean().optional(),
});
export type DestinationConfig = z.output<typeof Destination>;

const keyId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1–64 characters of A-Z a-z 0-9 . _ -');

export const UpstreamSchema = z
  .strictObject({
    /**
     * Headers zonegate sets for the upstream; set to "" to leave one out. A header left out or
     * renamed is still guarded under its default name (and its configured one).
     */
    headers: z
      .strictObject({
        principal: optionalHeader(DEFAULT_IDENTITY_HEADERS.principal),
        trustDomain: optionalHeader(DEFAULT_IDENTITY_HEADERS.trustDomain),
        decisionId: optionalHeader(DEFAULT_IDENTITY_HEADERS.decisionId),
        /** The actor (sub of the verified common identity) at ingress. */
        actor: optionalHeader(DEFAULT_IDENTITY_HEADERS.actor),
        /** The previous hops (act chain), comma-separated, most recent first. */
        actors: optionalHeader(DEFAULT_IDENTITY_HEADERS.actors),
        /** The peer's canonical zone, namespace and service (naming templates). */
        zone: optionalHeader(DEFAULT_IDENTITY_HEADERS.zone),
        namespace: optionalHeader(DEFAULT_IDENTITY_HEADERS.namespace),
        service: optionalHeader(DEFAULT_IDENTITY_HEADERS.service),
        /** The `roles` claim of the verified common identity, comma-separated. */
        roles: optionalHeader(DEFAULT_IDENTITY_HEADERS.roles),
      })
      .prefault({}),
    /**
     * More headers no client may send through: removed from every allowed request (the identity
     * headers, under their default and configured names, are always guarded).
     */
    guard: z.array(headerName).default([]),
    /** The rewrite for routes that name no destination (context_extensions destination) or one not listed. */
    default: Destination.prefault({}),
    /** Rewrite per destination, selected by the route's context_extensions `destination`. */
    destinations: z.record(z.string().min(1), Destination).default({}),
    /** Re-issued JWTs (mode jwt); the keys are published on the ops server at /.well-known/jwks.json. */
    jwt: z
      .strictObject({
        header: headerName.default(DEFAULT_JWT_HEADER),
        issuer: z.string().min(1).default('zonegate'),
        ttlSeconds: z.number().int().min(1).max(300).default(5),
        algorithm: z.enum(['ES256', 'EdDSA']).default('ES256'),
        /** A PKCS#8 PEM private key to sign with (no rotation); default: generated at startup and rotated. */
        keyFile: path.optional(),
        rotation: z
          .strictObject({
            /** A generated key signs for this long. */
            everySeconds: z.number().int().min(60).default(86_400),
            /** The next key is in the JWKS this long before it signs (≥ the upstreams' JWKS cache time). */
            publishAheadSeconds: z.number().int().min(0).default(300),
          })
          .prefault({}),
        /** A signed token is reused for this fraction of its lifetime (0: sign every request). */
        reuseFraction: z.number().min(0).max(0.9).default(0.5),
        cacheSize: z.number().int().min(1).default(10_000),
      })
      .prefault({}),
    /** Identity headers with an HMAC proof of origin (mode hmac). */
    hmac: z
      .strictObject({
        header: headerName.default(DEFAULT_PROOF_HEADER),
        /** The shared secret (at least 32 bytes; a trailing newline is ignored). */
        secretFile: path,
        /** Names the secret so upstreams can hold two during a rotation. */
        keyId,
        /** Sign the method and the request target too (turn off when the proxy rewrites the path). */
        bindRequest: z.boolean().default(true),
      })
      .optional(),
    /** Legacy Basic credentials per actor (mode basic). */
    basic: z.strictObject({ credentialsFile: path }).optional(),
  })
  .superRefine((u, ctx) => {
    const check = (d: DestinationConfig, at: (string | number)[]) => {
      if (d.mode === 'hmac' && !u.hmac) ctx.addIssue({ code: 'custom', path: at, message: 'mode hmac needs upstream.hmac' });
      if (d.mode === 'basic' && !u.basic) ctx.addIssue({ code: 'custom', path: at, message: 'mode basic needs upstream.basic' });
      if (d.mode === 'hmac' && d.identityHeaders === false)
        ctx.addIssue({ code: 'custom', path: at, message: 'mode hmac signs the identity headers: they cannot be turned off' });
    };
    check(u.default, ['default', 'mode']);
    for (const [name, d] of Object.entries(u.destinations)) check(d, ['destinations', name, 'mode']);
  });
export type UpstreamConfig = z.output<typeof UpstreamSchema>;

/** True when some destination has its upstream receive a re-issued JWT (mode jwt). */
export function reissuesJwt(u: UpstreamConfig): boolean {
  return [u.default, ...Object.values(u.destinations)].some((d) => d.mode === 'jwt');
}

/** What the rewrite phase and the re-issue key ring read of the config (src/rewrite/index.ts). */
export interface RewriteConfig {
  readonly upstream: UpstreamConfig;
}

// Envoy's envoy.type.v3.StatusCode is a closed enum (defined_only): only these 4xx/5xx exist.
const ENVOY_STATUS = new Set([
  400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431,
  500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);
const denyStatus = (d: number) =>
  z.number().int().refine((n) => ENVOY_STATUS.has(n), 'must be a 4xx or 5xx status Envoy knows (envoy.type.v3.StatusCode)').default(d);

export const DenySchema = z.strictObject({
  /** Response header carrying the reason code on a deny; "" to leave it out. */
  reasonHeader: z.union([headerName, z.literal('')]).default('x-zonegate-reason'),
  status: z
    .strictObject({
      /** A verified identity that is not allowed (policy, limits, rewrite). */
      forbidden: denyStatus(403),
      /** No valid identity: the peer or the carried identity is missing or did not verify. */
      unauthenticated: denyStatus(401),
    })
    .prefault({}),
  /** The JSON body {"reason", "message"?, "decisionId"}; false for an empty body. */
  body: z.boolean().default(true),
  /** Add the reason's fixed summary (docs/reasons.md) as "message"; never request data. */
  message: z.boolean().default(false),
});
export type DenyConfig = z.output<typeof DenySchema>;
