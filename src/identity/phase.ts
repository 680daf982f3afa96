/**
 * Phase 2, the carried identity: on whose behalf the call is made. The phase puts together
 * - ingress.ts: the identity a request carries in (common identity bound to the mTLS peer,
 *   JWT-SVID, WirePact), verified;
 * - egress.ts: the actor of an outgoing call (a forwarded common identity, a user credential, or
 *   the workload) and the common identity minted for it;
 * - users.ts: the user credentials egress reads (OIDC bearer JWTs, Basic against the user store),
 *   whose keys are kept in the background.
 * A credential that cannot be verified is refused, never replaced by the workload's own identity.
 */
import { identitySlice, type IdentityConfig } from './schema.js';
import type { AuthRequest, PeerIdentity } from '../request/types.js';
import type { LocalIdentity } from '../svid/local-identity.js';
import type { JwtBundleSource, X509BundleSource } from '../bundle/set.js';
import type { CarriedResult } from './carried.js';
import { createEgress } from './egress.js';
import { createIngress } from './ingress.js';
import { createUserCredentials } from './users.js';

export type { CarriedResult } from './carried.js';

export interface CarriedPhase {
  ingress(req: AuthRequest, peer: PeerIdentity | undefined, now: number): CarriedResult;
  egress(req: AuthRequest, now: number): CarriedResult;
  readonly header: string;
  /**
   * Verifies on the thread pool what the ingress() or egress() of the same request will need (a
   * new common identity's signatures, a Basic password) and caches it. Undefined when there is
   * nothing to prepare.
   */
  prepare?(req: AuthRequest, peer: PeerIdentity | undefined, now: number): Promise<void> | undefined;
  /** Background key material (OIDC JWKS): loaded before serving, refreshed until stop(). */
  start(): Promise<void>;
  stop(): void;
}

/**
 * Builds the carried-identity phase; undefined when common identity is not configured. It sees
 * only identitySlice(config), the part a reload compares before keeping a running phase.
 */
export function createCarriedPhase(
  full: IdentityConfig,
  bundles: X509BundleSource & JwtBundleSource,
  identity: LocalIdentity | undefined,
  onError: (message: string) => void = () => undefined,
): CarriedPhase | undefined {
  const config = identitySlice(full);
  const ci = config.commonIdentity;
  if (!ci) return undefined;
  const ingress = createIngress(config, ci, bundles, identity?.current.id);
  const users = createUserCredentials(config, ci, onError);
  const egress = createEgress(config, ci, bundles, identity, users);
  return {
    header: ci.header,
    prepare: (req, peer, now) => (req.contextExtensions.get('direction') === 'egress' ? egress.prepare(req, now) : ingress.prepare(req, peer, now)),
    ingress: ingress.verify,
    egress: egress.mint,
    start: () => users.start(),
    stop: () => users.stop(),
  };
}
