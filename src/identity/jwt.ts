/**
 * Plain JWT verification against a set of keys by kid: OIDC bearer tokens at egress. The same
 * front end as every token (compact.ts): an alg allowlist that must fit the key, no key URLs, no
 * crit, exp/nbf/iat with skew; then issuer and audience.
 */
import type { JsonWebKey, KeyObject } from 'node:crypto';
import type { Algorithm } from './jws.js';
import { audienceList, checkJwk, checkSignature, checkTime, failure, failWith, parseCompact, timeClaims, type TokenFailure } from './compact.js';
import { subjectProblem } from './subject.js';

export interface JwtRules {
  readonly algorithms: ReadonlySet<Algorithm>;
  readonly maxBytes: number;
  readonly skewSeconds: number;
  /** Accepted `iss` values (undefined: any). */
  readonly issuers?: ReadonlySet<string>;
  readonly audiences: ReadonlySet<string>;
  /**
   * Refuse tokens whose typ is one of these (lower case, without "application/"): JWTs of other
   * kinds that must never pass as this one (RFC 8725 §3.11).
   */
  readonly refusedTyps?: ReadonlySet<string>;
}

/** JWT kinds that are never a user's bearer token: our own common identity, and other explicit types. */
export const NOT_BEARER_TYPS: ReadonlySet<string> = new Set(['ci+jwt', 'dpop+jwt', 'logout+jwt', 'secevent+jwt']);

export type JwtResult = { readonly ok: true; readonly claims: Record<string, unknown> & { sub: string; exp: number }; readonly kid: string } | TokenFailure;

const fail = failWith('jwt');

/** A verification key by kid, with the JWK it came from (whose alg, use and key_ops are kept to). */
export interface JwtKey {
  readonly key: KeyObject;
  readonly jwk?: JsonWebKey;
}

/** Verifies a compact JWT with the key its kid names. */
export function verifyJwt(token: string, keys: (kid: string) => JwtKey | undefined, rules: JwtRules, nowMs: number): JwtResult {
  try {
    const t = parseCompact(token, {
      name: 'jwt',
      maxBytes: rules.maxBytes,
      algorithms: rules.algorithms,
      ...(rules.refusedTyps ? { typ: { refused: rules.refusedTyps } } : {}),
      kid: true,
      decode: 'first',
    });
    const k = keys(t.kid);
    if (!k) return fail('ERR_TOKEN_KEY_UNKNOWN', `no key with kid "${t.kid.slice(0, 64)}"`);
    const what = `key "${t.kid.slice(0, 64)}"`;
    checkJwk(t, k.jwk, what, fail);
    checkSignature(t, k.key, what, fail);
    const claims = t.claims;
    const subProblem = subjectProblem(claims.sub);
    if (subProblem) fail('ERR_TOKEN_CLAIMS', subProblem);
    checkTime(timeClaims(claims, false, fail), nowMs, rules, fail);
    if (rules.issuers && (typeof claims.iss !== 'string' || !rules.issuers.has(claims.iss))) fail('ERR_TOKEN_ISSUER_MISMATCH', 'iss is not the configured issuer');
    if (!audienceList(claims.aud).some((a) => typeof a === 'string' && rules.audiences.has(a))) fail('ERR_TOKEN_AUDIENCE', 'aud does not name us');
    return { ok: true, claims: claims as Record<string, unknown> & { sub: string; exp: number }, kid: t.kid };
  } catch (err) {
    return failure(err);
  }
}
