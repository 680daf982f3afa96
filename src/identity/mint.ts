/**
 * Minting common identity tokens at egress: signed with the local SVID's key, the SVID chain in
 * `x5c`, `iss` = our SPIFFE ID. When this workload calls on behalf of a caller whose token it
 * verified, the caller's hops move into `act` (RFC 8693), most recent first.
 */
import { randomUUID } from 'node:crypto';
import { sha256 } from '../hash.js';
import { ZonegateError } from '../errors.js';
import { mintClaimsProblem } from './claims.js';
import type { LocalSvid } from '../svid/local.js';
import { algorithmFor, signCompact, type Algorithm } from './jws.js';
import { COMMON_IDENTITY_TYP, type Act, type Claims } from './verify.js';

export interface MintOptions {
  /** The actor: a user id, or the calling workload's SPIFFE ID. */
  readonly sub: string;
  /** The destination: spiffe://<trust-domain> or a destination SPIFFE ID. */
  readonly aud: string | readonly string[];
  /** The token's lifetime: commonIdentity.egress.ttlSeconds, whose default the schema owns (or `token mint --ttl`). */
  readonly ttlSeconds: number;
  /**
   * A verified token's claims this call is made on behalf of: its hops become our `act`. The
   * claims of it copied into `extra` are named in its hop (`claims`), so the next hop can tell
   * that its signer asserted them, not us (RFC 8693 act: the chain of who acted and asserted).
   */
  readonly onBehalfOf?: Pick<Claims, 'iss' | 'act'> & { readonly copied?: Readonly<Record<string, unknown>> };
  /** Mapped claims from the original credential (roles, email, …). */
  readonly extra?: Readonly<Record<string, unknown>>;
  /** DER of the certificate used on the mTLS hop, bound with cnf x5t#S256 (RFC 8705). */
  readonly cnfCertDer?: Buffer;
  readonly alg?: Algorithm;
  readonly now?: number;
  readonly typ?: string;
  /** Refuse (ERR_CLAIMS_TOO_LARGE) claims nested deeper or larger as JSON than this, before signing. */
  readonly limits?: { readonly maxClaimDepth: number; readonly maxClaimBytes: number };
}

/** Claims the minting side sets itself: never taken from `extra` or copied from another token. */
export const RESERVED = new Set(['iss', 'sub', 'aud', 'iat', 'exp', 'nbf', 'jti', 'act', 'cnf']);

/** Signs a common identity token with the local SVID. */
export function mintCommonIdentity(svid: LocalSvid, o: MintOptions): string {
  if (!Number.isInteger(o.ttlSeconds) || o.ttlSeconds < 1) throw new RangeError(`mint: ttlSeconds must be a whole number of seconds ≥ 1, not ${String(o.ttlSeconds)}`);
  const iat = Math.floor((o.now ?? Date.now()) / 1000);
  const alg = algorithmFor(svid.key, o.alg ?? 'ES256');
  const copied = o.onBehalfOf?.copied && Object.keys(o.onBehalfOf.copied).length > 0 ? o.onBehalfOf.copied : undefined;
  const act: Act | undefined = o.onBehalfOf
    ? { sub: o.onBehalfOf.iss, ...(copied ? { claims: copied } : {}), ...(o.onBehalfOf.act ? { act: o.onBehalfOf.act } : {}) }
    : undefined;
  const extra = Object.fromEntries(Object.entries(o.extra ?? {}).filter(([k]) => !RESERVED.has(k)));
  const claims = {
    ...extra,
    iss: svid.id.value,
    sub: o.sub,
    aud: typeof o.aud === 'string' ? o.aud : [...o.aud],
    iat,
    exp: iat + o.ttlSeconds,
    jti: randomUUID(),
    ...(act ? { act } : {}),
    ...(o.cnfCertDer ? { cnf: { 'x5t#S256': sha256(o.cnfCertDer, 'base64url') } } : {}),
  };
  if (o.limits) {
    // JSON.stringify below would overflow the stack on a claim nested thousands deep
    const problem = mintClaimsProblem(claims, o.limits.maxClaimDepth, o.limits.maxClaimBytes);
    if (problem) throw new ZonegateError('ERR_CLAIMS_TOO_LARGE', `mint: ${problem}`);
  }
  const header = { alg, typ: o.typ ?? COMMON_IDENTITY_TYP, x5c: svid.chain.map((c) => c.raw.toString('base64')) };
  return signCompact(header, claims, alg, svid.key);
}
