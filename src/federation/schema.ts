/**
 * The `federation` section of the config and the trust source of each `trust` entry
 * (SPIFFE_Federation.md profiles); src/config/schema.ts places them in the whole, beside the
 * naming and zone of each trust domain, which belong to the policy.
 */
import { z } from 'zod';
import { SpiffeId, TrustDomain } from '../spiffe/id.js';
import { filePath as path, MAX_TIMER_SECONDS, parsedBy, port, url } from '../schema-parts.js';
import type { FetchLimits } from '../net/fetch.js';

export const trustDomainName = parsedBy((v) => TrustDomain.parse(v));

/** Exactly one source per trust domain, named by its kind (SPIFFE_Federation.md profiles). */
export const SourceSchema = z.union([
  z.strictObject({ file: path }),
  z.strictObject({ istio: z.strictObject({ rootCert: path }) }),
  z.strictObject({ https_web: z.strictObject({ url, ca: path.optional() }) }),
  z.strictObject({ https_spiffe: z.strictObject({ url, endpointSpiffeId: parsedBy((v) => SpiffeId.parse(v)), bootstrap: path }) }),
  z.strictObject({
    consul: z.strictObject({ url, tokenFile: path.optional(), ca: path.optional(), datacenter: z.string().min(1).optional() }),
  }),
]);
/** One trust domain's source as configured; src/federation/sources.ts builds it. */
export type SourceConfig = z.output<typeof SourceSchema>;

/** Refresh, staleness and fetch limits for every source; our own bundle endpoint. */
export const FederationSchema = z
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
  });
export type FederationConfig = z.output<typeof FederationSchema>;
/** Bounds on one fetch of a bundle, a JWKS or an OIDC discovery document. */
export type FetchConfig = FederationConfig['fetch'];

/** The limits every outgoing fetch runs under (bundle sources, OIDC keys): federation.fetch and limits.maxBundleKeys. */
export function fetchLimits(c: { readonly federation: { readonly fetch: FetchConfig }; readonly limits: { readonly maxBundleKeys: number } }): FetchLimits {
  const f = c.federation.fetch;
  return { connectTimeoutMs: f.connectTimeoutMs, totalTimeoutMs: f.totalTimeoutMs, maxBytes: f.maxBytes, maxKeys: c.limits.maxBundleKeys };
}

/** One `trust` entry as the trust manager reads it. */
export interface TrustSourceConfig {
  readonly trustDomain: string;
  readonly bundle?: string | undefined;
  readonly source?: SourceConfig | undefined;
  readonly required: boolean;
  readonly intermediates?: string | undefined;
}

/** What the trust manager reads of the config (src/federation/manager.ts). */
export interface TrustConfig {
  readonly trust: readonly TrustSourceConfig[];
  readonly federation: FederationConfig;
  readonly limits: { readonly maxBundleKeys: number };
}

/**
 * Exactly the TrustConfig part of a config, nothing more: what a TrustManager is built from and
 * what a reload compares to decide whether the running one is kept (src/config/diff.ts). Spelled
 * out key by key, so a key added to TrustConfig does not compile until it is here too.
 */
export function trustSlice(c: TrustConfig): TrustConfig {
  return { trust: c.trust, federation: c.federation, limits: { maxBundleKeys: c.limits.maxBundleKeys } };
}

/**
 * One trust domain's source as configured, with the limits its fetches run under: a new trust
 * manager takes over the bundle (and history) of a domain whose key is unchanged, and fetches
 * only the others (src/config/diff.ts compares the rest of a config).
 */
export function trustSourceKey(t: TrustSourceConfig, config: TrustConfig): string {
  return JSON.stringify([t, config.federation.fetch, config.limits.maxBundleKeys]);
}
