/**
 * JWT-SVIDs (JWT-SVID.md) as a carried identity: `authorization: Bearer <JWT-SVID>` verified
 * against the JWT authorities of the bundle of the trust domain of its `sub`, and only those.
 * Structure first (header: alg from RFC 7518 §3.3–3.5, typ JWT or JOSE when present, kid;
 * claims: sub a SPIFFE ID, aud non-empty, exp a number), then time, audience, key and signature.
 */
import type { JwtBundleSource } from '../bundle/set.js';
import { SpiffeId } from '../spiffe/id.js';
import { JWT_SVID_ALGORITHMS } from './jws.js';
import { checkJwk, checkSignature, checkTime, failure, failWith, parseCompact, timeClaims, type Compact, type Times, type TokenFailure } from './compact.js';

export interface JwtSvidRules {
  readonly audiences: ReadonlySet<string>;
  readonly skewSeconds: number;
  readonly maxBytes: number;
}

export type JwtSvidResult = { readonly ok: true; readonly id: SpiffeId; readonly claims: Record<string, unknown>; readonly aud: readonly string[] } | TokenFailure;

/** A JWT-SVID that passed the structure checks: nothing in it is verified yet. */
interface Structure {
  readonly t: Compact;
  readonly id: SpiffeId;
  readonly aud: readonly string[];
  readonly times: Times;
}

const fail = failWith('jwtsvid');
const ALGS = new Set(JWT_SVID_ALGORITHMS);
const TYPS = new Set(['JWT', 'JOSE']);

/** The header and claims checks of JWT-SVID.md, without keys. Throws TokenError. */
function structure(token: string, maxBytes: number): Structure {
  // kid is OPTIONAL in the spec, but without it no authority can be chosen (as go- and rust-spiffe)
  const t = parseCompact(token, { name: 'jwtsvid', maxBytes, algorithms: ALGS, typ: { allowed: TYPS }, kid: true, decode: 'first' });
  const { sub, aud } = t.claims;
  if (typeof sub !== 'string') fail('ERR_TOKEN_CLAIMS', 'token missing subject claim');
  const id = SpiffeId.tryParse(sub as string);
  if (!id || id.isRoot) return fail('ERR_TOKEN_CLAIMS', 'token has an invalid subject claim');
  const list = typeof aud === 'string' ? [aud] : aud;
  if (!Array.isArray(list) || list.length === 0 || list.some((a) => typeof a !== 'string')) fail('ERR_TOKEN_CLAIMS', 'token missing audience');
  return { t, id, aud: list as string[], times: timeClaims(t.claims, false, fail) };
}

/** The header and claims checks of JWT-SVID.md, without keys (no signature is trusted yet). */
export function checkJwtSvidStructure(token: string): { ok: true } | TokenFailure {
  try {
    structure(token, Infinity);
    return { ok: true };
  } catch (err) {
    return failure(err);
  }
}

/** Verifies a JWT-SVID. */
export function verifyJwtSvid(token: string, bundles: JwtBundleSource, rules: JwtSvidRules, nowMs: number): JwtSvidResult {
  try {
    const { t, id, aud, times } = structure(token, rules.maxBytes);
    checkTime(times, nowMs, rules, fail);
    if (!aud.some((a) => rules.audiences.has(a))) fail('ERR_TOKEN_AUDIENCE', 'expected audience not in the token');
    const authorities = bundles.jwtAuthorities(id.trustDomain);
    if (!authorities) fail('ERR_TRUST_DOMAIN_UNKNOWN', `no bundle for trust domain "${id.trustDomain.name}"`);
    const a = authorities!.get(t.kid);
    if (!a) fail('ERR_TOKEN_KEY_UNKNOWN', `no JWT authority "${t.kid.slice(0, 64)}" in trust domain "${id.trustDomain.name}"`);
    const what = `JWT authority "${t.kid.slice(0, 64)}"`;
    checkJwk(t, a!.jwk, what, fail);
    checkSignature(t, a!.key, what, fail);
    return { ok: true, id, claims: t.claims, aud };
  } catch (err) {
    return failure(err);
  }
}
