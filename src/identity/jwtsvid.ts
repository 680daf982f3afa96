/**
 * JWT-SVIDs (JWT-SVID.md) as a carried identity: `authorization: Bearer <JWT-SVID>` verified
 * against the JWT authorities of the bundle of the trust domain of its `sub`, and only those.
 * Structure first (header: alg from RFC 7518 §3.3–3.5, typ JWT or JOSE when present, kid;
 * claims: sub a SPIFFE ID, aud non-empty, exp a number), then time, audience, key and signature.
 */
import type { JwtBundleSource } from '../bundle/set.js';
import type { ReasonCode } from '../errors.js';
import { SpiffeId } from '../spiffe/id.js';
import { b64urlDecode, decodeJsonPart, keyFits, verifySignature, JWT_SVID_ALGORITHMS, type Algorithm } from './jws.js';
import { keyWeakness } from '../cert/strength.js';

export interface JwtSvidRules {
  readonly audiences: ReadonlySet<string>;
  readonly skewSeconds: number;
  readonly maxBytes: number;
}

export type JwtSvidResult =
  | { readonly ok: true; readonly id: SpiffeId; readonly claims: Record<string, unknown>; readonly aud: readonly string[] }
  | { readonly ok: false; readonly code: ReasonCode; readonly message: string };

interface Structure {
  readonly alg: Algorithm;
  readonly kid: string;
  readonly id: SpiffeId;
  readonly aud: readonly string[];
  readonly exp: number;
  readonly claims: Record<string, unknown>;
  readonly input: string;
  readonly sig: Buffer;
}

const no = (code: ReasonCode, message: string) => ({ ok: false as const, code, message: `jwtsvid: ${message}` });
const ALGS = new Set<string>(JWT_SVID_ALGORITHMS);


/** The header and claims checks of JWT-SVID.md, without keys (no signature is trusted yet). */
export function checkJwtSvidStructure(token: string): { ok: true; s: Structure } | { ok: false; code: ReasonCode; message: string } {
  const parts = token.split('.');
  if (parts.length !== 3) return no('ERR_TOKEN_MALFORMED', 'not a JWS compact serialization');
  const header = decodeJsonPart(parts[0]);
  const claims = decodeJsonPart(parts[1]);
  const sig = b64urlDecode(parts[2]!);
  if (!header || !claims || !sig) return no('ERR_TOKEN_MALFORMED', 'parts are not base64url JSON');
  if (!ALGS.has(String(header.alg))) return no('ERR_TOKEN_ALG', `alg "${String(header.alg).slice(0, 20)}" is not a JWT-SVID algorithm`);
  if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') return no('ERR_TOKEN_TYPE', 'typ must be JWT or JOSE');
  if ('jku' in header || 'x5u' in header || 'jwk' in header) return no('ERR_TOKEN_KEY_URL', 'jku, x5u and jwk are never followed');
  if ('crit' in header) return no('ERR_TOKEN_CRIT', 'unknown crit extension');
  // kid is OPTIONAL in the spec, but without it no authority can be chosen (as go- and rust-spiffe)
  if (typeof header.kid !== 'string' || header.kid === '') return no('ERR_TOKEN_KEY_UNKNOWN', 'token header missing key id');
  if (typeof claims.sub !== 'string') return no('ERR_TOKEN_CLAIMS', 'token missing subject claim');
  const id = SpiffeId.tryParse(claims.sub);
  if (!id || id.isRoot) return no('ERR_TOKEN_CLAIMS', 'token has an invalid subject claim');
  const aud = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
  if (!Array.isArray(aud) || aud.length === 0 || aud.some((a) => typeof a !== 'string')) return no('ERR_TOKEN_CLAIMS', 'token missing audience');
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) return no('ERR_TOKEN_CLAIMS', 'token missing exp claim');
  return { ok: true, s: { alg: header.alg as Algorithm, kid: header.kid, id, aud: aud as string[], exp: claims.exp, claims, input: `${parts[0]}.${parts[1]}`, sig } };
}

/** Verifies a JWT-SVID. */
export function verifyJwtSvid(token: string, bundles: JwtBundleSource, rules: JwtSvidRules, nowMs: number): JwtSvidResult {
  if (token.length > rules.maxBytes) return no('ERR_TOKEN_TOO_LARGE', `${token.length} bytes`);
  const st = checkJwtSvidStructure(token);
  if (!st.ok) return st;
  const s = st.s;
  if (nowMs / 1000 - rules.skewSeconds >= s.exp) return no('ERR_TOKEN_EXPIRED', 'token has expired');
  if (!s.aud.some((a) => rules.audiences.has(a))) return no('ERR_TOKEN_AUDIENCE', 'expected audience not in the token');
  const authorities = bundles.jwtAuthorities(s.id.trustDomain);
  if (!authorities) return no('ERR_TRUST_DOMAIN_UNKNOWN', `no bundle for trust domain "${s.id.trustDomain.name}"`);
  const a = authorities.get(s.kid);
  if (!a) return no('ERR_TOKEN_KEY_UNKNOWN', `no JWT authority "${s.kid.slice(0, 64)}" in trust domain "${s.id.trustDomain.name}"`);
  const weak = keyWeakness(a.key);
  if (weak) return no('ERR_KEY_TOO_WEAK', `JWT authority "${s.kid.slice(0, 64)}" is refused: ${weak}`);
  if (!keyFits(s.alg, a.key)) return no('ERR_TOKEN_ALG', `alg ${s.alg} does not fit authority "${s.kid}"`);
  if (!verifySignature(s.alg, a.key, s.input, s.sig)) return no('ERR_TOKEN_SIGNATURE', 'signature does not verify');
  return { ok: true, id: s.id, claims: s.claims, aud: s.aud };
}
