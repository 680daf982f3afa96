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
import type { Decision as PolicyDecision, Policy } from '../policy/rules.js';
import { compileNaming } from '../policy/naming.js';
import type { SpiffeId } from '../spiffe/id.js';
import { createRewriter, type Rewriter } from '../rewrite/index.js';
import { normalizeHost, type Host } from '../request/host.js';
import { normalizePath, type PathOptions } from '../request/path.js';
import type { AuthRequest, CarriedIdentity, Denied, HeaderToSet, Outcome, PeerIdentity, Step } from '../request/types.js';

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
/* Placeholders until a phase sets the real value: shared, so a request allocates none. */
const NO_HOST: Host = Object.freeze({ name: '' });
const NO_POLICY: PolicyDecision & { readonly allowed: true } = Object.freeze({ allowed: true });

/** What authorize() uses, computed from the deps once. */
interface Compiled {
  readonly deps: PipelineDeps;
  readonly now: () => number;
  readonly rewriter: Rewriter;
  readonly paths: Config['policy']['paths'];
  readonly pathOptions: PathOptions;
  /** The peer with its canonical names, when the naming template of its trust domain matches. */
  readonly named: (p: PeerIdentity) => PeerIdentity;
}

/**
 * One request on its way through the phases: what each one established for the next. A phase
 * returns the Denied outcome that ends the request, or undefined to go on.
 */
class Decision {
  path = '';
  host: Host = NO_HOST;
  peer: PeerIdentity | undefined = undefined;
  carried: CarriedIdentity | undefined = undefined;
  /** Headers the carried phase asks the rewrite to set and remove (minted token, consumed credentials). */
  set: readonly HeaderToSet[] | undefined = undefined;
  remove: readonly string[] | undefined = undefined;
  policy: PolicyDecision & { readonly allowed: true } = NO_POLICY;

  constructor(
    readonly req: AuthRequest,
    readonly direction: 'ingress' | 'egress',
    /** With explain: what each phase saw and decided. */
    readonly steps: Step[] | undefined,
  ) {}

  deny(reason: ReasonCode, message: string, phase: Step['phase'], rule?: string): Denied {
    const { peer, carried } = this;
    this.steps?.push({ phase, result: 'deny', detail: message, reason, ...(rule ? { rule } : {}) });
    return {
      allowed: false,
      id: this.req.id,
      direction: this.direction,
      reason,
      message,
      ...(rule ? { rule } : {}),
      ...(peer ? { peer } : {}),
      ...(carried ? { carried } : {}),
      steps: this.steps ?? NO_STEPS,
    };
  }
}

/** Builds the pipeline; everything derivable from the config is computed here, once. */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const { config } = deps;
  const canonicalOf = compileNaming(config.trust);
  const paths = config.policy.paths;
  const c: Compiled = {
    deps,
    now: deps.now ?? Date.now,
    rewriter: deps.rewriter ?? createRewriter(config, { carriedHeader: deps.carried?.header }),
    paths,
    pathOptions: { level: paths.normalization, semicolons: paths.semicolons, maxLength: paths.maxLength },
    named: (p) => {
      const canonical = p.spiffeId ? canonicalOf(p.spiffeId) : undefined;
      return canonical ? { ...p, canonical } : p;
    },
  };
  return {
    authorize(req, explain = false) {
      const d = new Decision(req, req.contextExtensions.get('direction') === 'egress' ? 'egress' : 'ingress', explain ? [] : undefined);
      return readRequest(c, d) ?? peerPhase(c, d) ?? carriedPhase(c, d) ?? policyPhase(c, d) ?? rewritePhase(c, d);
    },
  };
}

/** What the upstream will act on, read once for every entry point: rules never see raw bytes. */
function readRequest(c: Compiled, d: Decision): Denied | undefined {
  const { req, direction } = d;
  if (req.malformed) return d.deny(req.malformed.code, req.malformed.message, 'request');
  const path = normalizePath(req.path, c.pathOptions);
  if (!path.ok) return d.deny(path.code, path.message, 'request');
  if (path.changed && !c.paths.proxyNormalizes)
    return d.deny('ERR_PATH_NOT_NORMALIZED', `path: "${clip(req.path)}" is "${clip(path.path)}" once normalized (${c.paths.normalization}); send the normalized path, or set policy.paths.proxyNormalizes when the proxy in front normalizes`, 'request');
  const host = normalizeHost(req.host);
  if (!host.ok) return d.deny(host.code, `${host.message}: "${clip(req.host)}"`, 'request');
  d.path = path.path;
  d.host = host;
  d.steps?.push({
    phase: 'request',
    result: 'ok',
    direction,
    detail: `${direction} ${req.method} ${req.host}${req.path}${path.changed ? ` (normalized: ${path.path})` : ''}`,
  });
  return undefined;
}

/** 1 peer: the verified mTLS peer at ingress; at egress, our own workload. */
function peerPhase(c: Compiled, d: Decision): Denied | undefined {
  if (d.direction === 'ingress') {
    const p = c.deps.peer(d.req);
    if (!p.ok) return d.deny(p.code, p.message, 'peer');
    d.peer = c.named(p.peer);
    d.steps?.push({ phase: 'peer', result: 'ok', detail: p.detail + describeCanonical(d.peer) });
    return undefined;
  }
  const self = c.deps.self?.();
  if (!self) return d.deny('ERR_INTERNAL', 'peer: egress needs identity (the local SVID)', 'peer');
  d.peer = c.named({ principal: self.value, spiffeId: self, trustDomain: self.trustDomain.name, verified: true, source: 'local' });
  d.steps?.push({ phase: 'peer', result: 'ok', detail: `egress: the caller is our own workload ${self.value}${describeCanonical(d.peer)}` });
  return undefined;
}

/** 2 carried: verify the common identity (ingress) or establish the actor and mint one (egress). */
function carriedPhase(c: Compiled, d: Decision): Denied | undefined {
  const phase = c.deps.carried;
  if (!phase) {
    d.steps?.push({ phase: 'carried', result: 'skip', detail: 'no carried identity is configured' });
    return undefined;
  }
  const r = d.direction === 'ingress' ? phase.ingress(d.req, d.peer!, c.now()) : phase.egress(d.req, c.now());
  if (!r.ok) return d.deny(r.code, r.message, 'carried');
  d.carried = r.carried;
  d.set = r.set;
  d.remove = r.remove;
  d.steps?.push({ phase: 'carried', result: 'ok', detail: r.detail });
  return undefined;
}

/** 3 policy: the compiled rule set, on the normalized request and the identities. */
function policyPhase(c: Compiled, d: Decision): Denied | undefined {
  const { req, peer, carried, host } = d;
  const decision = c.deps.policy.evaluate({
    principal: peer!.principal,
    trustDomain: peer!.trustDomain,
    method: req.method,
    path: d.path,
    context: req.contextExtensions,
    actor: carried?.actor,
    canonical: peer!.canonical,
    host: host.name,
    hostPort: host.port,
    port: req.destination.port,
    headers: req.headers,
    claims: carried?.claims,
    requestId: req.id,
  });
  if (!decision.allowed) return d.deny(decision.reason, decision.message, 'policy', decision.rule);
  d.policy = decision;
  if (d.steps) {
    const by = decision.rule !== undefined ? `allow rule "${decision.rule}" matched` : 'no allow rule matched';
    const dry = decision.dryRun
      ? `; dry run: ${decision.dryRun.rule !== undefined ? `deny rule "${decision.dryRun.rule}"` : 'the default deny'} would have denied (${decision.dryRun.reason}), allowed`
      : '';
    d.steps.push({ phase: 'policy', result: 'ok', detail: by + dry, ...(decision.rule !== undefined ? { rule: decision.rule } : {}) });
  }
  return undefined;
}

/** 4 rewrite: what the upstream receives; the allowed outcome. */
function rewritePhase(c: Compiled, d: Decision): Outcome {
  const { req, direction, peer, carried, policy } = d;
  const r = c.rewriter.apply({ req, direction, peer: peer!, carried, set: d.set, remove: d.remove, now: c.now() });
  if (!r.ok) return d.deny(r.code, r.message, 'rewrite', policy.rule);
  const { set, remove } = r;
  d.steps?.push({
    phase: 'rewrite',
    result: 'ok',
    detail: `${r.mode}${r.destination ? ` for destination "${r.destination}"` : ''}: set ${set.map((h) => h.name).join(', ') || 'nothing'}; remove ${remove.join(', ') || 'nothing'}`,
  });
  return {
    allowed: true,
    id: req.id,
    direction,
    peer: peer!,
    ...(carried ? { carried } : {}),
    rule: policy.rule,
    headersToSet: set,
    headersToRemove: remove,
    ...(r.destination ? { destination: r.destination } : {}),
    rewrite: r.mode,
    ...(policy.dryRun ? { dryRun: { reason: policy.dryRun.reason, ...(policy.dryRun.rule !== undefined ? { rule: policy.dryRun.rule } : {}) } } : {}),
    steps: d.steps ?? NO_STEPS,
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
