/**
 * The `commonIdentity` section of the config (docs/common-identity.md): the tokens verified at
 * ingress and minted at egress, and the user credentials egress accepts. src/config/schema.ts
 * places it in the whole.
 */
import { z } from 'zod';
import type { FetchConfig } from '../federation/schema.js';
import { filePath as path, headerName, MAX_TIMER_SECONDS, url } from '../schema-parts.js';
import { ALGORITHMS } from './jws.js';

export const CommonIdentitySchema = z
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
  });
export type CommonIdentityConfig = z.output<typeof CommonIdentitySchema>;

/** What the carried-identity phase reads of the config (src/identity/phase.ts). */
export interface IdentityConfig {
  readonly commonIdentity?: CommonIdentityConfig | undefined;
  readonly limits: {
    readonly maxChainLength: number;
    readonly maxChainBytes: number;
    readonly maxSignatureChecks: number;
    readonly maxBundleKeys: number;
  };
  readonly cache: { readonly tokens: number; readonly chains: number; readonly certificates: number };
  readonly federation: { readonly fetch: FetchConfig };
}

/**
 * Exactly the IdentityConfig part of a config, nothing more: what createCarriedPhase builds from
 * and what a reload compares to decide whether the running phase is kept (src/config/diff.ts).
 * Spelled out key by key, so a key added to IdentityConfig does not compile until it is here too.
 */
export function identitySlice(c: IdentityConfig): IdentityConfig {
  const { limits: l, cache } = c;
  return {
    commonIdentity: c.commonIdentity,
    limits: { maxChainLength: l.maxChainLength, maxChainBytes: l.maxChainBytes, maxSignatureChecks: l.maxSignatureChecks, maxBundleKeys: l.maxBundleKeys },
    cache: { tokens: cache.tokens, chains: cache.chains, certificates: cache.certificates },
    federation: { fetch: c.federation.fetch },
  };
}
