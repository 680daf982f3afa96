/**
 * Egress user credentials: the user behind `authorization` on an outgoing request — an OIDC
 * bearer JWT verified against the issuer's keys, or Basic against the user store. A credential
 * zonegate cannot verify is refused, never replaced by the workload's own identity.
 */
import type { IdentityConfig as Config } from './schema.js';
import { fetchLimits } from '../federation/schema.js';
import { authCredentials } from '../request/headers.js';
import type { AuthRequest } from '../request/types.js';
import { BasicUserStore, type BasicCheck } from './basic.js';
import type { CarriedResult, CommonIdentityConfig } from './carried.js';
import { NOT_BEARER_TYPS, verifyJwt, type JwtRules } from './jwt.js';
import { OidcKeys } from './oidc.js';

/** The user an outgoing request acts for, with the claims that go into the minted token. */
export type User = { readonly actor: string; readonly extra: Record<string, unknown> };

export interface UserCredentials {
  /** Basic: the password check on the thread pool, for the user() of the same request. */
  prepare(req: AuthRequest): Promise<void> | undefined;
  /** The user behind `authorization`; undefined when there is no credential. */
  user(req: AuthRequest, now: number): User | { error: CarriedResult } | undefined;
  /** OIDC keys: loaded before serving, refreshed until stop(). */
  start(): Promise<void>;
  stop(): void;
}

type OidcConfig = NonNullable<CommonIdentityConfig['egress']['oidc']>;

function oidcKeys(config: Config, o: OidcConfig, onError: (message: string) => void): OidcKeys {
  const { issuer, jwksUri, ca, refreshSeconds, minRefetchSeconds, keysMaxAgeSeconds, keysMaxStaleSeconds } = o;
  return new OidcKeys({ issuer, jwksUri, ca, refreshSeconds, minRefetchSeconds, keysMaxAgeSeconds, keysMaxStaleSeconds }, fetchLimits(config), onError);
}

/** An OIDC bearer token's user, with the configured claims copied. */
function oidcUser(token: string, keys: OidcKeys, rules: JwtRules, claims: readonly string[], now: number): User | { error: CarriedResult } {
  if (keys.state(now) === 'expired')
    return { error: { ok: false, code: 'ERR_OIDC_KEYS_STALE', message: `carried: the OIDC issuer's keys were fetched ${keys.ageSeconds(now)} s ago, past their maximum age and stale limit` } };
  const r = verifyJwt(token, (kid) => keys.key(kid), rules, now);
  if (!r.ok) return { error: r };
  return { actor: r.claims.sub, extra: Object.fromEntries(claims.filter((c) => Object.hasOwn(r.claims, c)).map((c) => [c, r.claims[c]])) };
}

/** The user credentials the configuration enables (commonIdentity.egress.basic, .oidc). */
export function createUserCredentials(config: Config, ci: CommonIdentityConfig, onError: (message: string) => void): UserCredentials {
  const basicCfg = ci.egress.basic;
  const basic = basicCfg ? new BasicUserStore(basicCfg.usersFile, { maxConcurrent: basicCfg.maxConcurrent, maxQueued: basicCfg.maxQueued }) : undefined;
  /** Basic checks done by prepare() on the thread pool, for the user() of the same request. */
  const basicChecked = new WeakMap<AuthRequest, BasicCheck>();
  const oidcCfg = ci.egress.oidc;
  const oidc = oidcCfg && {
    keys: oidcKeys(config, oidcCfg, onError),
    claims: oidcCfg.claims,
    rules: {
      algorithms: new Set(oidcCfg.algorithms),
      maxBytes: ci.maxTokenBytes,
      skewSeconds: ci.clockSkewSeconds,
      issuers: new Set([oidcCfg.issuer]),
      audiences: new Set(oidcCfg.audiences),
      refusedTyps: NOT_BEARER_TYPS,
    } satisfies JwtRules,
  };
  return {
    prepare(req) {
      const auth = req.headers.get('authorization');
      if (!basic || !auth || req.duplicateHeaders.has('authorization') || authCredentials(auth)?.scheme !== 'basic') return undefined;
      return basic.check(auth).then((r) => void basicChecked.set(req, r));
    },
    user(req, now) {
      const auth = req.headers.get('authorization');
      if (!auth) return undefined;
      if (req.duplicateHeaders.has('authorization')) return { error: { ok: false, code: 'ERR_USER_CREDENTIAL', message: 'carried: more than one authorization header' } };
      const c = authCredentials(auth);
      if (!c) return { error: { ok: false, code: 'ERR_USER_CREDENTIAL', message: 'carried: authorization is not an auth-scheme, spaces and a token68 (RFC 9110 §11.4)' } };
      const scheme = c.scheme;
      if (scheme === 'bearer' && oidc) return oidcUser(c.token, oidc.keys, oidc.rules, oidc.claims, now);
      if (scheme === 'basic' && basic) {
        // checked by prepare() off the event loop; on the calling thread only where nothing prepared it
        const r = basicChecked.get(req) ?? basic.verifySync(auth);
        if (!r.ok) return { error: r };
        return { actor: r.user.name, extra: r.user.roles.length > 0 ? { roles: r.user.roles } : {} };
      }
      // A credential we cannot verify is refused, never silently replaced by the workload's identity.
      return { error: { ok: false, code: 'ERR_USER_CREDENTIAL', message: `carried: no verifier is configured for "${scheme.slice(0, 32)}" credentials` } };
    },
    start: async () => oidc?.keys.start(),
    stop: () => oidc?.keys.stop(),
  };
}
