/**
 * authorize(AuthRequest) → Outcome: the four phases in order, in one readable place.
 *   1 peer identity     who is on the other end of the mTLS connection (ingress only: at egress
 *                       the caller is our own workload)
 *   2 carried identity  on whose behalf: verify the common identity (ingress) or establish the
 *                       actor and mint one (egress)
 *   3 policy            the compiled rule set
 *   4 rewrite           what the upstream receives
 * The direction comes from the route's context_extensions (direction: egress); ingress otherwise.
 * Synchronous, no I/O: everything it needs was loaded or compiled before the request came.
 */
import type { Config } from '../config/schema.js';
import type { ReasonCode } from '../errors.js';
import type { CarriedPhase } from '../identity/phase.js';
import type { PeerResult } from '../peer/phase.js';
import type { Policy } from '../policy/rules.js';
import { compileNaming } from '../policy/naming.js';
import type { SpiffeId } from '../spiffe/id.js';
import { createRewriter, type Rewriter } from '../rewrite/index.js';
import { normalizeHost } from '../request/host.js';
import { normalizePath, type PathOptions } from '../request/path.js';
import type { AuthRequest, CarriedIdentity, HeaderToSet, Outcome, PeerIdentity, Step } from '../request/types.js';

export interface PipelineDeps {
  readonly config: Config;
  readonly policy: Policy;
  readonly peer: (req: AuthRequest) => PeerResult;
  readonly carried?: CarriedPhase | undefined;
  /** Our own SPIFFE ID (the caller at egress), when identity is configured. */
  readonly self?: () => SpiffeId | undefined;
  readonly now?: () => number;
  /** Phase 4 (src/rewrite); built from the config when not given. */
  readonly rewriter?: Rewriter;
}

export interface Pipeline {
  /** Decides one request. With `explain`, the outcome lists what each phase saw and decided. */
  authorize(req: AuthRequest, explain?: boolean): Outcome;
}

const NO_STEPS: readonly Step[] = Object.freeze([]);

/** Builds the pipeline; everything derivable from the config is computed here, once. */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const { config, policy, carried: carriedPhase } = deps;
  const now = deps.now ?? Date.now;
  const rewriter = deps.rewriter ?? createRewriter(config, { carriedHeader: carriedPhase?.header });
  const canonicalOf = compileNaming(config.trust);
  const paths = config.policy.paths;
  const pathOptions: PathOptions = { level: paths.normalization, semicolons: paths.semicolons, maxLength: paths.maxLength };
  const named = (p: PeerIdentity): PeerIdentity => {
    const canonical = p.spiffeId ? canonicalOf(p.spiffeId) : undefined;
    return canonical ? { ...p, canonical } : p;
  };

  return {
    authorize(req, explain = false) {
      const steps: Step[] | undefined = explain ? [] : undefined;
      const direction = req.contextExtensions.get('direction') === 'egress' ? 'egress' : 'ingress';
      let peer: PeerIdentity | undefined;
      let carried: CarriedIdentity | undefined;
      const deny = (reason: ReasonCode, message: string, phase: Step['phase'], rule?: string): Outcome => {
        steps?.push({ phase, result: 'deny', detail: message, reason, ...(rule ? { rule } : {}) });
        return {
          allowed: false,
          id: req.id,
          direction,
          reason,
          message,
          ...(rule ? { rule } : {}),
          ...(peer ? { peer } : {}),
          ...(carried ? { carried } : {}),
          steps: steps ?? NO_STEPS,
        };
      };

      if (req.malformed) return deny(req.malformed.code, req.malformed.message, 'request');
      // What the upstream will act on, read once for every entry point: rules never see raw bytes.
      const path = normalizePath(req.path, pathOptions);
      if (!path.ok) return deny(path.code, path.message, 'request');
      if (path.changed && !paths.proxyNormalizes)
        return deny('ERR_PATH_NOT_NORMALIZED', `path: "${clip(req.path)}" is "${clip(path.path)}" once normalized (${paths.normalization}); send the normalized path, or set policy.paths.proxyNormalizes when the proxy in front normalizes`, 'request');
      const host = normalizeHost(req.host);
      if (!host.ok) return deny(host.code, `${host.message}: "${clip(req.host)}"`, 'request');
      steps?.push({
        phase: 'request',
        result: 'ok',
        direction,
        detail: `${direction} ${req.method} ${req.host}${req.path}${path.changed ? ` (normalized: ${path.path})` : ''}`,
      });

      // 1 peer
      if (direction === 'ingress') {
        const p = deps.peer(req);
        if (!p.ok) return deny(p.code, p.message, 'peer');
        peer = named(p.peer);
        steps?.push({ phase: 'peer', result: 'ok', detail: p.detail + describeCanonical(peer) });
      } else {
        const self = deps.self?.();
        if (!self) return deny('ERR_INTERNAL', 'peer: egress needs identity (the local SVID)', 'peer');
        peer = named({ principal: self.value, spiffeId: self, trustDomain: self.trustDomain.name, verified: true, source: 'local' });
        steps?.push({ phase: 'peer', result: 'ok', detail: `egress: the caller is our own workload ${self.value}${describeCanonical(peer)}` });
      }

      // 2 carried
      let extra: { set?: readonly HeaderToSet[]; remove?: readonly string[] } = {};
      if (carriedPhase) {
        const c = direction === 'ingress' ? carriedPhase.ingress(req, peer, now()) : carriedPhase.egress(req, now());
        if (!c.ok) return deny(c.code, c.message, 'carried');
        carried = c.carried;
        extra = { ...(c.set ? { set: c.set } : {}), ...(c.remove ? { remove: c.remove } : {}) };
        steps?.push({ phase: 'carried', result: 'ok', detail: c.detail });
      } else steps?.push({ phase: 'carried', result: 'skip', detail: 'no carried identity is configured' });

      // 3 policy
      const decision = policy.evaluate({
        principal: peer.principal,
        trustDomain: peer.trustDomain,
        method: req.method,
        path: path.path,
        context: req.contextExtensions,
        actor: carried?.actor,
        canonical: peer.canonical,
        host: host.name,
        hostPort: host.port,
        port: req.destination.port,
        headers: req.headers,
        claims: carried?.claims,
        requestId: req.id,
      });
      if (!decision.allowed) return deny(decision.reason, decision.message, 'policy', decision.rule);
      if (steps) {
        const by = decision.rule !== undefined ? `allow rule "${decision.rule}" matched` : 'no allow rule matched';
        const dry = decision.dryRun
          ? `; dry run: ${decision.dryRun.rule !== undefined ? `deny rule "${decision.dryRun.rule}"` : 'the default deny'} would have denied (${decision.dryRun.reason}), allowed`
          : '';
        steps.push({ phase: 'policy', result: 'ok', detail: by + dry, ...(decision.rule !== undefined ? { rule: decision.rule } : {}) });
      }

      // 4 rewrite
      const r = rewriter.apply({ req, direction, peer, carried, set: extra.set, remove: extra.remove, now: now() });
      if (!r.ok) return deny(r.code, r.message, 'rewrite', decision.rule);
      const { set, remove } = r;
      steps?.push({
        phase: 'rewrite',
        result: 'ok',
        detail: `${r.mode}${r.destination ? ` for destination "${r.destination}"` : ''}: set ${set.map((h) => h.name).join(', ') || 'nothing'}; remove ${remove.join(', ') || 'nothing'}`,
      });
      return {
        allowed: true,
        id: req.id,
        direction,
        peer,
        ...(carried ? { carried } : {}),
        rule: decision.rule,
        headersToSet: set,
        headersToRemove: remove,
        ...(r.destination ? { destination: r.destination } : {}),
        rewrite: r.mode,
        ...(decision.dryRun
          ? { dryRun: { reason: decision.dryRun.reason, ...(decision.dryRun.rule !== undefined ? { rule: decision.dryRun.rule } : {}) } }
          : {}),
        steps: steps ?? NO_STEPS,
      };
    },
  };
}

/** A request's own text in a message: bounded, so a huge path does not make a huge log line. */
const clip = (s: string): string => (s.length > 200 ? `${s.slice(0, 200)}…` : s);

/** " as <zone>/<namespace>/<service>" for --explain, when the peer's naming template matched. */
function describeCanonical(p: PeerIdentity): string {
  const c = p.canonical;
  if (!c) return '';
  const vars = Object.entries(c.vars).map(([k, v]) => `${k}=${v}`).join(', ');
  return `; canonical: zone ${c.zone}${vars ? `, ${vars}` : ''}`;
}
