/**
 * The limits and cache sizes serve applies with the default config (src/config/schema.ts), for
 * the units that take them as arguments: their defaults live in the schema only.
 */
import { configDefaults } from '../../src/config/schema.js';

const d = configDefaults();

/** verifyX509Svid and prepareSignatures. */
export const SVID_LIMITS = { maxChainLength: d.limits.maxChainLength, maxSignatureChecks: d.limits.maxSignatureChecks } as const;

/** new X509SvidVerifier(bundles, { ...VERIFIER_LIMITS }). */
export const VERIFIER_LIMITS = {
  ...SVID_LIMITS,
  maxBytes: d.limits.maxChainBytes,
  maxCertificateBytes: d.limits.maxCertificateBytes,
  cacheSize: d.cache.svids,
  certificateCacheSize: d.cache.certificates,
} as const;

/** parseBundle, parseSpiffeBundle, parseBundleMap and the bundle sources. */
export const BUNDLE_LIMITS = { maxKeys: d.limits.maxBundleKeys } as const;
