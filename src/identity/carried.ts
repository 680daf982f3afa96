/**
 * What the parts of the carried-identity phase share: the result they return, reading the one
 * token of the configured header, and the rules and caches of the token verifiers as the
 * configuration sets them (the defaults live in the config schema only: identity/schema.ts, composed by config/schema.ts).
 */
import type { X509Certificate } from 'node:crypto';
import type { IdentityConfig as Config } from './schema.js';
import type { SpiffeId } from '../spiffe/id.js';
import type { AuthRequest, CarriedIdentity, HeaderToSet } from '../request/types.js';
import type { TokenFailure } from './compact.js';
import { COMMON_IDENTITY_TYP, type TokenRules, type VerifierOptions } from './verify.js';
import type { WirePactRules } from './wirepact.js';

export type CarriedResult =
  | {
      readonly ok: true;
      readonly carried?: CarriedIdentity;
      readonly detail: string;
      /** Egress: headers to set (the minted token) and remove (the original credential). */
      readonly set?: readonly HeaderToSet[];
      readonly remove?: readonly string[];
    }
  | TokenFailure;

export type CommonIdentityConfig = NonNullable<Config['commonIdentity']>;

/**
 * The verification rules of common identity tokens as configured. Accepted `aud` values:
 * commonIdentity.audiences, or by default our trust domain's ID and our own SPIFFE ID (`ownId`).
 */
export function tokenRules(config: Config, ci: CommonIdentityConfig, ownId: SpiffeId | undefined): TokenRules {
  const audiences = ci.audiences.length > 0 ? ci.audiences : ownId ? [ownId.trustDomain.idString, ownId.value] : [];
  return {
    algorithms: new Set(ci.algorithms),
    maxBytes: ci.maxTokenBytes,
    maxLifetimeSeconds: ci.maxLifetimeSeconds,
    skewSeconds: ci.clockSkewSeconds,
    audiences: new Set(audiences),
    maxActDepth: ci.maxActDepth,
    maxX5cCertificates: config.limits.maxChainLength,
    maxX5cBytes: config.limits.maxChainBytes,
    maxSignatureChecks: config.limits.maxSignatureChecks,
    maxClaimDepth: ci.maxClaimDepth,
    maxClaimBytes: ci.maxClaimBytes,
    bindToPeer: ci.bindToPeer,
    requireCnf: ci.requireCnf,
    typ: COMMON_IDENTITY_TYP,
  };
}

/** The WirePact profile's rules as configured, for these roots and accepted issuers (empty: any). */
export function wirepactRules(config: Config, ci: CommonIdentityConfig, roots: readonly X509Certificate[], issuers: readonly string[]): WirePactRules {
  return {
    roots,
    maxBytes: ci.maxTokenBytes,
    maxX5cCertificates: config.limits.maxChainLength,
    maxX5cBytes: config.limits.maxChainBytes,
    maxSignatureChecks: config.limits.maxSignatureChecks,
    skewSeconds: ci.clockSkewSeconds,
    maxLifetimeSeconds: ci.maxLifetimeSeconds,
    issuers: new Set(issuers),
  };
}

/** The verifier's caches as configured (`cache`), with replay protection or without. */
export const verifierOptions = (config: Config, replayCacheSize: number): VerifierOptions => ({ cache: config.cache, replayCacheSize });

/** One token in `header`, or why not: absent, repeated, several joined by a proxy, not UTF-8. */
export function readToken(req: AuthRequest, header: string): { token?: string; error?: CarriedResult } {
  const raw = req.headers.get(header);
  if (raw === undefined || raw === '') return {};
  if (req.duplicateHeaders.has(header) || raw.includes(','))
    return { error: { ok: false, code: 'ERR_TOKEN_MULTIPLE', message: `carried: more than one token in ${header}` } };
  if (req.nonUtf8Headers.has(header)) return { error: { ok: false, code: 'ERR_TOKEN_MALFORMED', message: `carried: ${header} is not UTF-8` } };
  return { token: raw.trim() };
}
