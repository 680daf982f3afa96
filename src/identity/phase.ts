/**
 * Phase 2, the carried identity: on whose behalf the call is made.
 * (Egress user credentials: OIDC bearer JWTs and Basic against a user store.)
 * - ingress: the common identity token in the configured header is verified (and bound to the
 *   mTLS peer); a request without one is denied unless its route allows anonymous callers
 *   (context_extensions carried_identity: optional).
 * - egress: the actor is established from the local request — a verified common identity the
 *   app forwards (we call on behalf of our caller: its hops go into act), else a user credential
 *   in `authorization` (an OIDC bearer JWT, or Basic against the user store), else the workload
 *   itself — and a token is minted with the local SVID for the destination. A credential that
 *   cannot be verified is refused, never replaced by the workload's own identity.
 */
import type { Config } from '../config/schema.js';
import type { AuthRequest, PeerIdentity } from '../pipeline/types.js';
import type { LocalIdentity } from '../federation/identity.js';
import type { JwtBundleSource, X509BundleSource } from '../bundle/set.js';
import { verifyJwtSvid } from './jwtsvid.js';
import { mintWirePact, verifyWirePact, WIREPACT_HEADER } from './wirepact.js';
import { readToken as readTokenIn, tokenRules, verifierOptions, wirepactRules as wirepactRulesFor, type CarriedResult } from './carried.js';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseCertificates } from '../svid/parse.js';
import { SpiffeId } from '../spiffe/id.js';
import { CommonIdentityVerifier, type Act, type TokenMemo } from './verify.js';
import { mintCommonIdentity, RESERVED } from './mint.js';
import { BasicUserStore, type BasicCheck } from './basic.js';
import { ZonegateError } from '../errors.js';
import { OidcKeys } from './oidc.js';
import { NOT_BEARER_TYPS, verifyJwt, type JwtRules } from './jwt.js';

export type { CarriedResult } from './carried.js';

export interface CarriedPhase {
  ingress(req: AuthRequest, peer: PeerIdentity | undefined, now: number): CarriedResult;
  egress(req: AuthRequest, now: number): CarriedResult;
  readonly header: string;
  /**
   * Ingress: verifies a new common identity's signature on the thread pool and caches the result,
   * so the ingress() that follows is a cache hit. Undefined when there is nothing to prepare.
   */
  prepare?(req: AuthRequest, peer: PeerIdentity | undefined, now: number): Promise<void> | undefined;
  /** Background key material (OIDC JWKS): loaded before serving, refreshed until stop(). */
  start(): Promise<void>;
  stop(): void;
}

/**
 * Per request: prepare() and ingress() of one request hash its token once. Keyed by the request
 * object, so an entry goes when the request does.
 */
const memos = new WeakMap<AuthRequest, TokenMemo>();
function memoOf(req: AuthRequest): TokenMemo {
  let m = memos.get(req);
  if (!m) memos.set(req, (m = {}));
  return m;
}

/** Builds the carried-identity phase; undefined when common identity is not configured. */
export function createCarriedPhase(
  config: Config,
  bundles: X509BundleSource & JwtBundleSource,
  identity: LocalIdentity | undefined,
  onError: (message: string) => void = () => undefined,
): CarriedPhase | undefined {
  const ci = config.commonIdentity;
  if (!ci) return undefined;
  const ownId = identity?.current.id;
  const rules = tokenRules(config, ci, ownId);
  const verifier = new CommonIdentityVerifier(bundles, rules, verifierOptions(config, ci.replayCacheSize));
  // At egress the forwarded token was minted for us by our caller: its signer is not our peer.
  // Its hop binding (peer, cnf) was checked when it came in; what is checked again here is that
  // it is genuine, current and addressed to us.
  const forwardVerifier = new CommonIdentityVerifier(bundles, { ...rules, bindToPeer: false, requireCnf: false, ignoreCnf: true, maxActDepth: Math.max(0, ci.maxActDepth - 1) }, verifierOptions(config, 0));
  const header = ci.header;
  /** Reserved claims are never copied, whatever the list says. */
  const copyClaims = ci.egress.copyClaims.filter((c) => !RESERVED.has(c));
  const wp = ci.wirepact;
  const wirepactRules = wp && wirepactRulesFor(config, ci, parseCertificates(readFileSync(wp.ca)), wp.issuers);
  const wirepactSigner = wp?.emit && {
    key: createPrivateKey(readFileSync(wp.emit.key)),
    chain: parseCertificates(readFileSync(wp.emit.cert)),
    issuer: wp.emit.issuer,
  };
  const basicCfg = ci.egress.basic;
  const basic = basicCfg ? new BasicUserStore(basicCfg.usersFile, { maxConcurrent: basicCfg.maxConcurrent, maxQueued: basicCfg.maxQueued }) : undefined;
  /** Basic checks done by prepare() on the thread pool, for the egress() of the same request. */
  const basicChecked = new WeakMap<AuthRequest, BasicCheck>();
  const oidcCfg = ci.egress.oidc;
  const f = config.federation.fetch;
  const oidc = oidcCfg
    ? new OidcKeys(
        {
          issuer: oidcCfg.issuer,
          jwksUri: oidcCfg.jwksUri,
          ca: oidcCfg.ca,
          refreshSeconds: oidcCfg.refreshSeconds,
          minRefetchSeconds: oidcCfg.minRefetchSeconds,
          keysMaxAgeSeconds: oidcCfg.keysMaxAgeSeconds,
          keysMaxStaleSeconds: oidcCfg.keysMaxStaleSeconds,
        },
        { connectTimeoutMs: f.connectTimeoutMs, totalTimeoutMs: f.totalTimeoutMs, maxBytes: f.maxBytes, maxKeys: config.limits.maxBundleKeys },
        onError,
      )
    : undefined;
  const oidcRules: JwtRules | undefined = oidcCfg && {
    algorithms: new Set(oidcCfg.algorithms),
    maxBytes: ci.maxTokenBytes,
    skewSeconds: ci.clockSkewSeconds,
    issuers: new Set([oidcCfg.issuer]),
    audiences: new Set(oidcCfg.audiences),
    refusedTyps: NOT_BEARER_TYPS,
  };

  /** The user behind `authorization`, when the outgoing request carries a user credential. */
  const user = (req: AuthRequest, now: number): { actor: string; extra: Record<string, unknown> } | { error: CarriedResult } | undefined => {
    const auth = req.headers.get('authorization');
    if (!auth) return undefined;
    if (req.duplicateHeaders.has('authorization')) return { error: { ok: false, code: 'ERR_USER_CREDENTIAL', message: 'carried: more than one authorization header' } };
    const scheme = auth.slice(0, auth.indexOf(' ')).toLowerCase();
    if (scheme === 'bearer' && oidc && oidcRules) {
      if (oidc.state(now) === 'expired')
        return { error: { ok: false, code: 'ERR_OIDC_KEYS_STALE', message: `carried: the OIDC issuer's keys were fetched ${oidc.ageSeconds(now)} s ago, past their maximum age and stale limit` } };
      const r = verifyJwt(auth.slice(7).trim(), (kid) => oidc.key(kid), oidcRules, now);
      if (!r.ok) return { error: r };
      const extra = Object.fromEntries(oidcCfg!.claims.filter((c) => Object.hasOwn(r.claims, c)).map((c) => [c, r.claims[c]]));
      return { actor: r.claims.sub, extra };
    }
    if (scheme === 'basic' && basic) {
      // checked by prepare() off the event loop; on the calling thread only where nothing prepared it
      const r = basicChecked.get(req) ?? basic.verifySync(auth);
      if (!r.ok) return { error: r };
      return { actor: r.user.name, extra: r.user.roles.length > 0 ? { roles: r.user.roles } : {} };
    }
    // A credential we cannot verify is refused, never silently replaced by the workload's identity.
    return { error: { ok: false, code: 'ERR_USER_CREDENTIAL', message: `carried: no verifier is configured for "${scheme || 'unknown'}" credentials` } };
  };

  /** One token, or a reason: absent, repeated, or several joined by a proxy. */
  const readToken = (req: AuthRequest) => readTokenIn(req, header);

  return {
    header,
    prepare(req, peer, now) {
      if (req.contextExtensions.get('direction') === 'egress') {
        const { token } = readToken(req);
        if (token !== undefined && ci.egress.forward) return forwardVerifier.prepare(token, { now });
        const auth = req.headers.get('authorization');
        if (!basic || !auth || req.duplicateHeaders.has('authorization') || !/^basic /i.test(auth)) return undefined;
        return basic.check(auth).then((r) => void basicChecked.set(req, r));
      }
      const { token } = readToken(req);
      return token === undefined
        ? undefined
        : verifier.prepare(token, {
            now,
            ...(peer?.spiffeId ? { peerId: peer.spiffeId.value } : {}),
            ...(peer?.thumbprint ? { peerThumbprint: peer.thumbprint } : {}),
            memo: memoOf(req),
          });
    },
    start: async () => oidc?.start(),
    stop: () => oidc?.stop(),
    ingress(req, peer, now) {
      const { token, error } = readToken(req);
      if (error) return error;
      // Every credential header zonegate reads is verified or the request is denied: a second
      // credential beside the one verified would reach the upstream unverified.
      const authorization = ci.jwtSvid ? req.headers.get('authorization') : undefined;
      const bearerHeader = authorization !== undefined && /^bearer(\s|$)/i.test(authorization.trim());
      const legacyHeader = wirepactRules !== undefined && (req.headers.get(WIREPACT_HEADER) ?? '') !== '';
      const presented = [token !== undefined && header, bearerHeader && 'authorization (Bearer JWT-SVID)', legacyHeader && WIREPACT_HEADER].filter(Boolean);
      if (presented.length > 1)
        return { ok: false, code: 'ERR_TOKEN_MULTIPLE', message: `carried: more than one identity credential (${presented.join(', ')}); only one is verified, so none is accepted` };
      const bearer = bearerHeader ? /^Bearer\s+(\S+)$/i.exec(authorization!.trim())?.[1] ?? '' : undefined;
      if (bearer !== undefined) {
        if (req.duplicateHeaders.has('authorization')) return { ok: false, code: 'ERR_TOKEN_MULTIPLE', message: 'carried: more than one authorization header' };
        const r = verifyJwtSvid(bearer, bundles, { audiences: rules.audiences, skewSeconds: rules.skewSeconds, maxBytes: rules.maxBytes }, now);
        if (!r.ok) return r;
        // A JWT-SVID is a bearer token by design (JWT-SVID.md §1): it is not bound to the peer.
        return { ok: true, carried: { actor: r.id.value, actors: [], issuer: r.id.value }, detail: `JWT-SVID of ${r.id.value}`, remove: ['authorization'] };
      }
      const legacy = wirepactRules && token === undefined ? req.headers.get(WIREPACT_HEADER) : undefined;
      if (legacy) {
        if (req.duplicateHeaders.has(WIREPACT_HEADER) || legacy.includes(','))
          return { ok: false, code: 'ERR_TOKEN_MULTIPLE', message: `carried: more than one ${WIREPACT_HEADER}` };
        const r = verifyWirePact(legacy.trim(), wirepactRules!, now);
        if (!r.ok) return r;
        return { ok: true, carried: { actor: r.sub, actors: [] }, detail: `WirePact identity of "${r.sub}" (not bound to the peer)`, remove: [WIREPACT_HEADER] };
      }
      if (token === undefined) {
        if (!ci.required || req.contextExtensions.get('carried_identity') === 'optional')
          return { ok: true, detail: `no ${header}; the route allows anonymous callers` };
        return { ok: false, code: 'ERR_NO_CARRIED_IDENTITY', message: `carried: no ${header} token` };
      }
      const r = verifier.verify(token, {
        now,
        ...(peer?.spiffeId ? { peerId: peer.spiffeId.value } : {}),
        ...(peer?.thumbprint ? { peerThumbprint: peer.thumbprint } : {}),
        memo: memoOf(req),
      });
      if (!r.ok) return r;
      return {
        ok: true,
        carried: { actor: r.claims.sub, actors: r.actors, issuer: r.claims.iss, claims: r.claims },
        detail: `common identity of "${r.claims.sub}" signed by ${r.claims.iss}${r.actors.length ? ` via ${r.actors.join(' ← ')}` : ''}`,
      };
    },
    egress(req, now) {
      if (!identity) return { ok: false, code: 'ERR_INTERNAL', message: 'carried: egress needs identity (the local SVID) to mint' };
      const svid = identity.current;
      const aud = req.contextExtensions.get('audience') ?? ci.egress.defaultAudience;
      if (!aud) return { ok: false, code: 'ERR_REQUEST_MALFORMED', message: 'carried: no audience (route context_extensions audience or commonIdentity.egress.defaultAudience)' };
      const { token, error } = readToken(req);
      if (error) return error;
      let actor: string;
      let onBehalfOf: { iss: string; act?: Act; copied?: Record<string, unknown> } | undefined;
      let actors: string[] = [];
      let extra: Record<string, unknown> = {};
      // A forwarded token, when forwarding is on, is the identity; otherwise it is not used, and
      // a user credential beside it is verified as if the token were absent (never skipped).
      const forwarded = token !== undefined && ci.egress.forward;
      const u = forwarded ? undefined : user(req, now);
      if (u && 'error' in u) return u.error;
      if (token !== undefined && ci.egress.forward) {
        const r = forwardVerifier.verify(token, { now });
        if (!r.ok) return r;
        actor = r.claims.sub;
        // Only the configured claims: the caller's signer asserted them, not us. Its hop in act
        // names them, so the next hop can tell who asserted what.
        extra = Object.fromEntries(copyClaims.filter((c) => Object.hasOwn(r.claims, c)).map((c) => [c, r.claims[c]]));
        onBehalfOf = { iss: r.claims.iss, ...(r.claims.act ? { act: r.claims.act } : {}), copied: extra };
        actors = [r.claims.iss, ...r.actors];
      } else if (u) {
        actor = u.actor;
        extra = u.extra;
      } else if (ci.egress.workload) {
        actor = svid.id.value;
      } else {
        return { ok: false, code: 'ERR_NO_CARRIED_IDENTITY', message: 'carried: no actor could be established for the outgoing call' };
      }
      if (!SpiffeId.tryParse(svid.id.value)) return { ok: false, code: 'ERR_INTERNAL', message: 'carried: local SVID has no SPIFFE ID' };
      let minted: string;
      try {
        minted = mintCommonIdentity(svid, {
          sub: actor,
          aud,
          ttlSeconds: ci.egress.ttlSeconds,
          now,
          extra,
          ...(onBehalfOf ? { onBehalfOf } : {}),
          ...(ci.egress.bindCnf ? { cnfCertDer: svid.chain[0]!.raw } : {}),
          limits: { maxClaimDepth: ci.maxClaimDepth, maxClaimBytes: ci.maxClaimBytes },
        });
      } catch (err) {
        if (err instanceof ZonegateError) return { ok: false, code: err.code, message: err.message };
        throw err;
      }
      return {
        ok: true,
        carried: { actor, actors, issuer: svid.id.value },
        detail: `minted a common identity of "${actor}" for ${aud}${actors.length ? ` on behalf of ${actors.join(' ← ')}` : ''}`,
        set: [
          { name: header, value: minted },
          ...(wirepactSigner ? [{ name: WIREPACT_HEADER, value: mintWirePact({ ...wirepactSigner, sub: actor, ttlSeconds: ci.egress.ttlSeconds, now }) }] : []),
        ],
        remove: ci.egress.keepAuthorization ? [] : ['authorization'],
      };
    },
  };
}
