/**
 * Verifier rules and options built the way the server builds them: from a parsed configuration,
 * so a test that constructs a verifier directly gets the schema's defaults and not a copy of them.
 */
import type { X509Certificate } from 'node:crypto';
import { ConfigSchema, type Config } from '../../src/config/schema.js';
import type { BasicLimits } from '../../src/identity/basic.js';
import { tokenRules, verifierOptions, wirepactRules } from '../../src/identity/carried.js';
import type { TokenRules, VerifierOptions } from '../../src/identity/verify.js';
import type { WirePactRules } from '../../src/identity/wirepact.js';

/** The configuration `partial` parses to, with commonIdentity on. */
export const parsedConfig = (partial: Record<string, unknown> = {}): Config => ConfigSchema.parse({ commonIdentity: {}, ...partial });

/** commonIdentity.egress.ttlSeconds as configured by default: the lifetime of the tokens tests mint. */
export const EGRESS_TTL_SECONDS = parsedConfig().commonIdentity!.egress.ttlSeconds;

/** Common identity rules as configured (defaults unless `partial` says otherwise), with `overrides`. */
export function ciRules(overrides: Partial<TokenRules> = {}, partial: Record<string, unknown> = {}): TokenRules {
  const config = parsedConfig(partial);
  return { ...tokenRules(config, config.commonIdentity!, undefined), ...overrides };
}

/** The verifier's caches as configured, with `overrides` (cache sizes, replay cache, byte budget). */
export function ciOptions(overrides: Partial<Omit<VerifierOptions, 'cache'>> & { cache?: Partial<VerifierOptions['cache']> } = {}): VerifierOptions {
  const config = parsedConfig();
  const { cache, ...rest } = overrides;
  return { ...verifierOptions(config, 0), cache: { ...config.cache, ...cache }, ...rest };
}

/** The WirePact profile's rules as configured (limits, skew, lifetime) for these roots. */
export function wpRules(roots: readonly X509Certificate[], issuers: readonly string[] = [], overrides: Partial<WirePactRules> = {}): WirePactRules {
  const config = parsedConfig();
  return { ...wirepactRules(config, config.commonIdentity!, roots, issuers), ...overrides };
}

/** commonIdentity.egress.basic's limits as configured, with `overrides`. */
export function basicLimits(overrides: Partial<BasicLimits> = {}): BasicLimits {
  const basic = parsedConfig({ commonIdentity: { egress: { basic: { usersFile: 'users.yaml' } } } }).commonIdentity!.egress.basic!;
  return { maxConcurrent: basic.maxConcurrent, maxQueued: basic.maxQueued, ...overrides };
}
