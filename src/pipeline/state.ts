/**
 * The decision state: everything a decision needs, built from a validated config and the live
 * trust material, and swapped as a whole on reload. Entry points read their request into an
 * AuthRequest with state.limits (src/envoy/request.ts, src/http/authz.ts), decide it here, and
 * answer a deny with state.response.
 */
import type { Config } from '../config/schema.js';
import type { RequestLimits } from '../request/headers.js';
import type { LocalIdentity } from '../svid/local-identity.js';
import type { TrustManager } from '../federation/manager.js';
import type { CarriedPhase } from '../identity/phase.js';
import { createPeerPhase, type PeerResult } from '../peer/phase.js';
import { compilePolicy, type PolicyOptions } from '../policy/rules.js';
import type { AuthRequest, Outcome } from '../request/types.js';
import { createRewriter } from '../rewrite/index.js';
import type { KeyRing } from '../rewrite/keys.js';
import type { DenyConfig } from '../rewrite/schema.js';
import { X509SvidVerifier } from '../svid/verifier.js';
import { createPipeline, type Pipeline } from './authorize.js';

/** What a Check needs; swapped as a whole on reload so one call never sees half a config. */
export interface DecisionState {
  readonly pipeline: Pipeline;
  /**
   * Work for a request that can run off the event loop before the synchronous pipeline (a new
   * token's signature check on the thread pool); undefined when there is none.
   */
  readonly prepare?: (req: AuthRequest) => Promise<void> | undefined;
  /** How much of a request's headers is read (limits.maxHeaders, limits.maxHeaderBytes). */
  readonly limits: RequestLimits;
  /** What a denied client receives (the `deny` config). */
  readonly response: DenyConfig;
}

/** Builds everything a decision needs from a validated config and the live trust material. */
export function buildDecisionState(
  config: Config,
  trust: TrustManager,
  identity?: LocalIdentity,
  carried?: CarriedPhase,
  deps: { readonly keys?: KeyRing; readonly onDryRun?: PolicyOptions['onDryRun'] } = {},
): DecisionState {
  const verifier = new X509SvidVerifier(trust.bundles, {
    skewSeconds: config.peer.clockSkewSeconds,
    maxChainLength: config.limits.maxChainLength,
    maxBytes: config.limits.maxChainBytes,
    maxCertificateBytes: config.limits.maxCertificateBytes,
    cacheSize: config.cache.svids,
    certificateCacheSize: config.cache.certificates,
    maxSignatureChecks: config.limits.maxSignatureChecks,
  });
  const verifyPeer = createPeerPhase(config.peer.source, verifier);
  // prepare() verifies the peer before the token; the pipeline then reuses that result for the
  // same request instead of hashing and looking up its certificate again.
  const prepared = new WeakMap<AuthRequest, PeerResult>();
  const peer = (req: AuthRequest): PeerResult => prepared.get(req) ?? verifyPeer(req);
  const { keys, onDryRun } = deps;
  return {
    pipeline: createPipeline({
      config,
      policy: compilePolicy(config.rules, { dryRun: config.policy.dryRun, maxPatternCharacters: config.limits.maxPatternCharacters, ...(onDryRun ? { onDryRun } : {}) }),
      peer,
      carried,
      self: () => identity?.current.id,
      rewriter: createRewriter(config, { carriedHeader: carried?.header, ...(keys ? { keys } : {}) }),
    }),
    limits: { maxHeaders: config.limits.maxHeaders, maxHeaderBytes: config.limits.maxHeaderBytes },
    response: config.deny,
    // Off the event loop first: a new peer chain's signatures, then (guards first, as in the
    // pipeline: nothing of a token is looked at for a peer that fails) a new token's signatures,
    // or at egress the user's password hash.
    prepare: (req) => {
      if (req.contextExtensions.get('direction') === 'egress') return carried?.prepare?.(req, undefined, Date.now());
      const next = () => {
        const p = verifyPeer(req);
        prepared.set(req, p);
        return p.ok ? carried?.prepare?.(req, p.peer, Date.now()) : undefined;
      };
      const chain = verifyPeer.prepare(req);
      return chain ? chain.then(next) : next();
    },
  };
}

/** Decides one request on the event loop: what the preparation did not verify is verified now, synchronously. */
export function decide(state: DecisionState, req: AuthRequest, explain = false): Outcome {
  return state.pipeline.authorize(req, explain);
}

/**
 * decide(), with a new chain's or token's signatures and a password hash checked off the event
 * loop first, as the gRPC Check does (which runs the same two steps without a promise when there
 * is nothing to prepare). A failed preparation leaves the caches cold: decide() then reports it.
 */
export async function decidePrepared(state: DecisionState, req: AuthRequest, explain = false): Promise<Outcome> {
  await state.prepare?.(req)?.catch(() => undefined);
  return state.pipeline.authorize(req, explain);
}
