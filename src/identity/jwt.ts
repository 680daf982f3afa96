/**
 * Plain JWT verification against a set of JWT authorities (kid → key): for OIDC bearer tokens at
 * egress and JWT-SVIDs. Same strictness as the common identity: an alg allowlist that must fit
 * the key, no key URLs, no crit, exp/nbf with skew, issuer and audience checked.
 */
import type { KeyObject } from 'node:crypto';
import type { ReasonCode } from '../errors.js';
import { b64urlDecode, decodeJsonPart, isAlgorithm, keyFits, verifySignature, type Algorithm } from './jws.js';
import { subjectProblem } from './subject.js';
import { keyWeakness } from '../cert/strength.js';

export interface JwtRules {
  readonly algorithms: ReadonlySet<Algorithm>;
  readonly maxBytes: number;
  readonly skewSeconds: number;
  /** Accepted `iss` values (undefined: any, e.g. JWT-SVIDs whose issuer is not fixed). */
  readonly issuers?: ReadonlySet<string>;
  readonly audiences: ReadonlySet<string>;
  /** Refuse tokens whose typ is given and not one of these (undefined: any). */
  readonly typs?: ReadonlySet<string>;
  /**
   * Refuse tokens whose typ is one of these (lower case, without "application/"): JWTs of other
   * kinds that must never pass as this one (RFC 8725 §3.11).
   */
  readonly refusedTyps?: ReadonlySet<string>;
}

/** JWT kinds that are never a user's bearer token: our own common identity, and other explicit types. */
export const NOT_BEARER_TYPS: ReadonlySet<string> = new Set(['ci+jwt', 'dpop+jwt', 'logout+jwt', 'secevent+jwt']);

export type JwtResult =
  | { readonly ok: true; readonly claims: Record<string, unknown> & { sub: string; exp: number }; readonly kid: string }
  | { readonly ok: false; readonly code: ReasonCode; readonly message: string };

const no = (code: ReasonCode, message: string): JwtResult => ({ ok: false, code, message: `jwt: ${message}` });



/** Verifies a compact JWT with the key its kid names. */
export function verifyJwt(token: string, keys: (kid: string) => KeyObject | undefined, rules: JwtRules, nowMs: number): JwtResult {
  if (token.length > rules.maxBytes) return no('ERR_TOKEN_TOO_LARGE', `${token.length} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3) return no('ERR_TOKEN_MALFORMED', 'not three parts');
  const header = decodeJsonPart(parts[0]);
  const claims = decodeJsonPart(parts[1]);
  const sig = b64urlDecode(parts[2]!);
  if (!header || !claims || !sig) return no('ERR_TOKEN_MALFORMED', 'not base64url JSON');
  const alg = header.alg;
  if (!isAlgorithm(alg) || !rules.algorithms.has(alg)) return no('ERR_TOKEN_ALG', `alg "${String(alg).slice(0, 20)}" is not allowed`);
  if (header.typ !== undefined && rules.typs && !rules.typs.has(String(header.typ))) return no('ERR_TOKEN_TYPE', `typ "${String(header.typ).slice(0, 20)}"`);
  if (typeof header.typ === 'string' && rules.refusedTyps?.has(header.typ.toLowerCase().replace(/^application\//, '')))
    return no('ERR_TOKEN_TYPE', `typ "${header.typ.slice(0, 20)}" is not a bearer token`);
  if ('jku' in header || 'x5u' in header || 'jwk' in header) return no('ERR_TOKEN_KEY_URL', 'jku, x5u and jwk are never followed');
  if ('crit' in header) return no('ERR_TOKEN_CRIT', 'unknown crit extension');
  const kid = header.kid;
  if (typeof kid !== 'string' || kid === '') return no('ERR_TOKEN_KEY_UNKNOWN', 'no kid');
  const key = keys(kid);
  if (!key) return no('ERR_TOKEN_KEY_UNKNOWN', `no key with kid "${kid.slice(0, 64)}"`);
  const weak = keyWeakness(key);
  if (weak) return no('ERR_KEY_TOO_WEAK', `key "${kid.slice(0, 64)}" is refused: ${weak}`);
  if (!keyFits(alg, key)) return no('ERR_TOKEN_ALG', `alg ${alg} does not fit key "${kid}"`);
  if (!verifySignature(alg, key, `${parts[0]}.${parts[1]}`, sig)) return no('ERR_TOKEN_SIGNATURE', 'signature does not verify');
  const now = nowMs / 1000;
  const skew = rules.skewSeconds;
  const subProblem = subjectProblem(claims.sub);
  if (subProblem) return no('ERR_TOKEN_CLAIMS', subProblem);
  if (typeof claims.exp !== 'number') return no('ERR_TOKEN_CLAIMS', 'exp is missing');
  if (now - skew >= claims.exp) return no('ERR_TOKEN_EXPIRED', 'expired');
  if (typeof claims.nbf === 'number' && now + skew < claims.nbf) return no('ERR_TOKEN_NOT_YET_VALID', 'nbf in the future');
  if (rules.issuers && (typeof claims.iss !== 'string' || !rules.issuers.has(claims.iss))) return no('ERR_TOKEN_ISSUER_MISMATCH', 'iss is not the configured issuer');
  const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  if (!aud.some((a) => typeof a === 'string' && rules.audiences.has(a))) return no('ERR_TOKEN_AUDIENCE', 'aud does not name us');
  return { ok: true, claims: claims as Record<string, unknown> & { sub: string; exp: number }, kid };
}
