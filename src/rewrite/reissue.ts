/**
 * Mode jwt: the verified identity re-issued as a short-lived JWT signed by a local key, for
 * upstreams that verify a token rather than trust headers (Authorino's wristband, Pomerium's
 * assertion header). The upstream verifies it against the JWKS on the ops server.
 *
 * Signing costs more than the rest of a decision, so a token is reused for the same identity and
 * destination while at least (1 - reuseFraction) of its lifetime remains — and never across a
 * key rotation. A reused token carries the same jti: jti names an issuance, not a request.
 */
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { signCompact } from '../identity/jws.js';
import type { KeyRing } from './keys.js';

export interface ReissueOptions {
  readonly issuer: string;
  readonly ttlSeconds: number;
  readonly reuseFraction: number;
  readonly cacheSize: number;
}

interface Cached {
  readonly token: string;
  readonly kid: string;
  readonly reuseUntil: number;
}

export class Reissuer {
  private readonly cache: LRUCache<string, Cached>;

  constructor(
    readonly keys: KeyRing,
    private readonly o: ReissueOptions,
  ) {
    this.cache = new LRUCache({ max: o.cacheSize });
  }

  /** A token for `identity` (claims from src/rewrite/identity.ts) addressed to `aud`. */
  token(identity: Record<string, unknown>, aud: string, now: number): string {
    const key = this.keys.current(now);
    const cacheKey = `${aud}\n${JSON.stringify(identity)}`;
    const hit = this.o.reuseFraction > 0 ? this.cache.get(cacheKey) : undefined;
    if (hit && hit.kid === key.kid && now < hit.reuseUntil) return hit.token;
    const iat = Math.floor(now / 1000);
    const exp = iat + this.o.ttlSeconds;
    const claims = { ...identity, iss: this.o.issuer, aud, iat, exp, jti: randomUUID() };
    const token = signCompact({ alg: key.alg, typ: 'JWT', kid: key.kid }, claims, key.alg, key.key);
    if (this.o.reuseFraction > 0)
      this.cache.set(cacheKey, { token, kid: key.kid, reuseUntil: exp * 1000 - this.o.ttlSeconds * 1000 * (1 - this.o.reuseFraction) });
    return token;
  }
}
