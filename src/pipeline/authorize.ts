/**
 * authorize(AuthRequest) → Outcome: the four phases in order, in one readable place.
 *   1 peer identity     who is on the other end of the mTLS connection
 *   2 carried identity  on whose behalf (common identity / JWT-SVID): not configured yet
 *   3 policy            the compiled rule set
 *   4 rewrite           what the upstream receives
 * Synchronous, no I/O: everything it needs was loaded or compiled before the request came.
 */
import type { Config } from '../config/schema.js';
import type { ReasonCode } from '../errors.js';
import type { PeerResult } from '../peer/phase.js';
import type { Policy } from '../policy/rules.js';
import type { AuthRequest, HeaderToSet, Outcome, PeerIdentity, Step } from './types.js';

export interface PipelineDeps {
  readonly config: Config;
  readonly policy: Policy;
  readonly peer: (req: AuthRequest) => PeerResult;
}

export interface Pipeline {
  /** Decides one request. With `explain`, the outcome lists what each phase saw and decided. */
  authorize(req: AuthRequest, explain?: boolean): Outcome;
}

const NO_STEPS: readonly Step[] = Object.freeze([]);

/** Builds the pipeline; everything derivable from the config is computed here, once. */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const { config, policy } = deps;
  const names = config.upstream.headers;
  const identityHeaders = [names.principal, names.trustDomain, names.decisionId].filter((h) => h !== '');
  const guarded = [...new Set([...identityHeaders, ...config.upstream.guard])];

  function rewrite(req: AuthRequest, peer: PeerIdentity): { set: HeaderToSet[]; remove: string[] } {
    const set: HeaderToSet[] = [];
    if (names.principal) set.push({ name: names.principal, value: peer.principal });
    if (names.trustDomain && peer.trustDomain) set.push({ name: names.trustDomain, value: peer.trustDomain });
    if (names.decisionId) set.push({ name: names.decisionId, value: req.id });
    // Envoy applies headers_to_remove after the sets: never remove what we set.
    const remove = guarded.filter((h) => !set.some((s) => s.name === h));
    return { set, remove };
  }

  return {
    authorize(req, explain = false) {
      const steps: Step[] | undefined = explain ? [] : undefined;
      const deny = (reason: ReasonCode, message: string, phase: Step['phase'], peer?: PeerIdentity, rule?: string): Outcome => {
        steps?.push({ phase, result: 'deny', detail: message, reason, ...(rule ? { rule } : {}) });
        return {
          allowed: false,
          id: req.id,
          reason,
          message,
          ...(rule ? { rule } : {}),
          ...(peer ? { peer } : {}),
          steps: steps ?? NO_STEPS,
        };
      };

      if (req.malformed) return deny(req.malformed.code, req.malformed.message, 'request');
      steps?.push({ phase: 'request', result: 'ok', detail: `${req.method} ${req.host}${req.path}` });

      const p = deps.peer(req);
      if (!p.ok) return deny(p.code, p.message, 'peer');
      steps?.push({ phase: 'peer', result: 'ok', detail: p.detail });

      steps?.push({ phase: 'carried', result: 'skip', detail: 'no carried identity is configured' });

      const decision = policy.evaluate({
        principal: p.peer.principal,
        trustDomain: p.peer.trustDomain,
        method: req.method,
        path: req.path,
        context: req.contextExtensions,
      });
      if (!decision.allowed) return deny(decision.reason, decision.message, 'policy', p.peer, decision.rule);
      steps?.push({ phase: 'policy', result: 'ok', detail: `allow rule "${decision.rule}" matched`, rule: decision.rule });

      const { set, remove } = rewrite(req, p.peer);
      steps?.push({
        phase: 'rewrite',
        result: 'ok',
        detail: `set ${set.map((h) => h.name).join(', ') || 'nothing'}; remove ${remove.join(', ') || 'nothing'}`,
      });
      return {
        allowed: true,
        id: req.id,
        peer: p.peer,
        rule: decision.rule,
        headersToSet: set,
        headersToRemove: remove,
        steps: steps ?? NO_STEPS,
      };
    },
  };
}
