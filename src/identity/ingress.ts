/**
 * Ingress of the carried-identity phase: the identity a request carries in, verified. One of
 * - the common identity token in the configured header, bound to the mTLS peer;
 * - with commonIdentity.jwtSvid, a JWT-SVID in `authorization: Bearer` (a bearer token by
 *   design, not bound to the peer);
 * - with commonIdentity.wirepact, a WirePact token in x-wirepact-identity (migration only).
 * Every credential header read is verified or the request is denied: two of them are
 * ERR_TOKEN_MULTIPLE, since the one not verified would reach the upstream unverified. A request
 * with none is denied unless its route allows anonymous callers (context_extensions
 * carried_identity: optional).
 */
import { readFileSync } from 'node:fs';
import type { IdentityConfig as Config } from './schema.js';
import type { JwtBundleSource, X509BundleSource } from '../bundle/set.js';
import type { SpiffeId } from '../spiffe/id.js';
import { parseCertificates } from '../cert/parse.js';
import { authCredentials } from '../request/headers.js';
import type { AuthRequest, PeerIdentity } from '../request/types.js';
import { readToken, tokenRules, verifierOptions, wirepactRules, type CarriedResult, type CommonIdentityConfig } from './carried.js';
import { verifyJwtSvid, type JwtSvidRules } from './jwtsvid.js';
import { CommonIdentityVerifier, type RequestContext, type TokenMemo } from './verify.js';
import { verifyWirePact, WIREPACT_HEADER, type WirePactRules } from './wirepact.js';

export interface Ingress {
  /** Verifies a new common identity's signatures on the thread pool (see CommonIdentityVerifier.prepare). */
  prepare(req: AuthRequest, peer: PeerIdentity | undefined, now: number): Promise<void> | undefined;
  verify(req: AuthRequest, peer: PeerIdentity | undefined, now: number): CarriedResult;
}

/**
 * Per request: prepare() and verify() of one request hash its token once. Keyed by the request
 * object, so an entry goes when the request does.
 */
const memos = new WeakMap<AuthRequest, TokenMemo>();
function memoOf(req: AuthRequest): TokenMemo {
  let m = memos.get(req);
  if (!m) memos.set(req, (m = {}));
  return m;
}

const context = (req: AuthRequest, peer: PeerIdentity | undefined, now: number): RequestContext => ({
  now,
  ...(peer?.spiffeId ? { peerId: peer.spiffeId.value } : {}),
  ...(peer?.thumbprint ? { peerThumbprint: peer.thumbprint } : {}),
  memo: memoOf(req),
});

/** Which credential headers a request presents, for the one-credential rule. */
function presented(req: AuthRequest, header: string, token: string | undefined, jwtSvid: boolean, wirepact: boolean) {
  const authorization = jwtSvid ? req.headers.get('authorization') : undefined;
  // a Bearer presentation is recognised leniently (so a malformed one is refused, not ignored),
  // but its token is read only per RFC 9110 (authCredentials): spaces, then a token68
  const bearer = authorization !== undefined && /^bearer(\s|$)/i.test(authorization.trim());
  const legacy = wirepact && (req.headers.get(WIREPACT_HEADER) ?? '') !== '';
  const names = [token !== undefined && header, bearer && 'authorization (Bearer JWT-SVID)', legacy && WIREPACT_HEADER].filter(Boolean);
  const credentials = bearer ? authCredentials(authorization!) : undefined;
  return { bearer: bearer ? (credentials?.scheme === 'bearer' ? credentials.token : '') : undefined, names };
}

function jwtSvidIdentity(req: AuthRequest, bearer: string, bundles: JwtBundleSource, rules: JwtSvidRules, now: number): CarriedResult {
  if (req.duplicateHeaders.has('authorization')) return { ok: false, code: 'ERR_TOKEN_MULTIPLE', message: 'carried: more than one authorization header' };
  const r = verifyJwtSvid(bearer, bundles, rules, now);
  if (!r.ok) return r;
  // A JWT-SVID is a bearer token by design (JWT-SVID.md §1): it is not bound to the peer.
  return { ok: true, carried: { actor: r.id.value, actors: [], issuer: r.id.value }, detail: `JWT-SVID of ${r.id.value}`, remove: ['authorization'] };
}

function wirepactIdentity(req: AuthRequest, legacy: string, rules: WirePactRules, now: number): CarriedResult {
  if (req.duplicateHeaders.has(WIREPACT_HEADER) || legacy.includes(','))
    return { ok: false, code: 'ERR_TOKEN_MULTIPLE', message: `carried: more than one ${WIREPACT_HEADER}` };
  const r = verifyWirePact(legacy.trim(), rules, now);
  if (!r.ok) return r;
  return { ok: true, carried: { actor: r.sub, actors: [] }, detail: `WirePact identity of "${r.sub}" (not bound to the peer)`, remove: [WIREPACT_HEADER] };
}

/** The ingress half of the phase. `ownId`: the default audiences when none are configured. */
export function createIngress(config: Config, ci: CommonIdentityConfig, bundles: X509BundleSource & JwtBundleSource, ownId: SpiffeId | undefined): Ingress {
  const rules = tokenRules(config, ci, ownId);
  const verifier = new CommonIdentityVerifier(bundles, rules, verifierOptions(config, ci.replayCacheSize));
  const jwtSvidRules: JwtSvidRules = { audiences: rules.audiences, skewSeconds: rules.skewSeconds, maxBytes: rules.maxBytes };
  const wp = ci.wirepact;
  const wirepact = wp && wirepactRules(config, ci, parseCertificates(readFileSync(wp.ca)), wp.issuers);
  const header = ci.header;
  return {
    prepare(req, peer, now) {
      const { token } = readToken(req, header);
      return token === undefined ? undefined : verifier.prepare(token, context(req, peer, now));
    },
    verify(req, peer, now) {
      const { token, error } = readToken(req, header);
      if (error) return error;
      const { bearer, names } = presented(req, header, token, ci.jwtSvid, wirepact !== undefined);
      if (names.length > 1)
        return { ok: false, code: 'ERR_TOKEN_MULTIPLE', message: `carried: more than one identity credential (${names.join(', ')}); only one is verified, so none is accepted` };
      if (bearer !== undefined) return jwtSvidIdentity(req, bearer, bundles, jwtSvidRules, now);
      const legacy = wirepact && token === undefined ? req.headers.get(WIREPACT_HEADER) : undefined;
      if (legacy) return wirepactIdentity(req, legacy, wirepact!, now);
      if (token === undefined) {
        if (!ci.required || req.contextExtensions.get('carried_identity') === 'optional') return { ok: true, detail: `no ${header}; the route allows anonymous callers` };
        return { ok: false, code: 'ERR_NO_CARRIED_IDENTITY', message: `carried: no ${header} token` };
      }
      const r = verifier.verify(token, context(req, peer, now));
      if (!r.ok) return r;
      return {
        ok: true,
        carried: { actor: r.claims.sub, actors: r.actors, issuer: r.claims.iss, claims: r.claims },
        detail: `common identity of "${r.claims.sub}" signed by ${r.claims.iss}${r.actors.length ? ` via ${r.actors.join(' ← ')}` : ''}`,
      };
    },
  };
}
