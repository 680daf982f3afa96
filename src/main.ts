/**
 * Wiring only: config → trust material → pipeline → servers; signals. Everything here runs at
 * startup (or reload); the request path only sees the DecisionState built here.
 */
import type { LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { Readiness } from './readiness.js';
import { startGrpcServer, type GrpcServer } from './envoy/server.js';
import { buildDecisionState, type DecisionState } from './pipeline/state.js';
import { startOpsServer, type OpsServer } from './http/ops.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { dryRunObserver } from './policy/metrics.js';
import { TrustManager } from './federation/manager.js';
import { registerTrustMetrics } from './federation/metrics.js';
import { LocalIdentity } from './federation/identity.js';
import { startBundleEndpoint, type BundleEndpoint } from './federation/endpoint.js';
import { startHttpAuthz, type HttpAuthzServer } from './http/authz.js';
import { TrustDomain } from './spiffe/id.js';
import type { CarriedPhase } from './identity/phase.js';
import { createKeyRing } from './rewrite/index.js';
import { buildRuntime, retireRuntime, stopRuntime, type Runtime } from './runtime.js';
import { ConfigReloader, type ReloadResult } from './config/reload.js';
import { explainCheck, identityHeaders, redactHeaders } from './envoy/explain.js';
import { statusReport } from './http/status.js';
import { REASONS } from './errors.js';

export interface Zonegate {
  readonly grpc: GrpcServer;
  readonly ops: OpsServer;
  readonly readiness: Readiness;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly trust: TrustManager;
  readonly identity?: LocalIdentity;
  readonly bundleEndpoint?: BundleEndpoint;
  readonly httpAuthz?: HttpAuthzServer;
  /**
   * Reloads the config file given in StartOptions.configFile (what SIGHUP and a file change do):
   * validated in full and swapped in atomically, or refused with the running config kept.
   */
  reload(): Promise<ReloadResult>;
  /**
   * Reports NOT_SERVING, keeps answering for `drainDelayMs` (default: none), then stops accepting
   * calls, waits for in-flight ones up to the configured grace, and closes both servers.
   */
  stop(drainDelayMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly log?: Logger;
  /** Install SIGTERM/SIGINT handlers that drain and exit (the CLI does; tests do not). */
  readonly handleSignals?: boolean;
  /** The config file to reload on SIGHUP (with handleSignals) and when it changes. */
  readonly configFile?: string;
  /**
   * A worker of `serve --workers N` (src/cluster.ts): no ops server of its own (the primary
   * serves /readyz and the aggregated /metrics) and a "worker started" line instead of
   * "zonegate started".
   */
  readonly worker?: boolean;
}

/** A worker's stand-in for the ops server it does not run. */
const NO_OPS: OpsServer = { port: 0, close: () => Promise.resolve() };

/** Starts zonegate: ops server first (so /readyz answers while loading), then gRPC, then ready. */
export async function startZonegate(loaded: LoadedConfig, opts: StartOptions = {}): Promise<Zonegate> {
  const { config } = loaded;
  const log = opts.log ?? createLogger(config.log.level, undefined, config.commonIdentity ? [config.commonIdentity.header] : []);
  const metrics = createMetrics();
  const readiness = new Readiness();
  for (const w of loaded.warnings) log.warn(w);

  // Re-issue keys live as long as the process (not the config): reloads keep what upstreams cached.
  const keys = createKeyRing(config);
  let runtime: Runtime | undefined;
  let state: DecisionState | undefined;
  const live: { reloader?: ConfigReloader | undefined } = {};
  /** POST /explain: a decision with its steps on the live state, counted like any, no secret in the answer. */
  const explain = async (request: Parameters<typeof explainCheck>[1]) => {
    if (!state || !runtime) throw new Error(`not ready: ${readiness.reason}`);
    const { outcome, result } = await explainCheck(state, request);
    if (!outcome.allowed && REASONS[outcome.reason].kind === 'error') metrics.errors.inc({ reason: outcome.reason });
    else metrics.decisions.inc({ result: outcome.allowed ? 'allow' : 'deny', reason: outcome.allowed ? '' : outcome.reason });
    log.info({ decisionId: outcome.id, result: outcome.allowed ? 'allow' : 'deny', reason: outcome.allowed ? null : outcome.reason }, 'explain');
    return { ...result, checkResponse: redactHeaders(result.checkResponse, identityHeaders(runtime!.config)) };
  };
  const ops = opts.worker
    ? NO_OPS
    : await startOpsServer(config.server.ops.address, config.server.ops.port, {
        readiness, metrics, keys,
        status: () => statusReport({ origin: loaded.origin, readiness, trust: runtime?.trust.status() ?? [], reload: live.reloader }),
        ...(config.server.ops.explain ? { explain } : {}),
      });
  let grpc: GrpcServer;
  try {
    grpc = await startGrpcServer(config.server.grpc, {
      state: () => state,
      readiness,
      metrics,
      log,
    });
  } catch (err) {
    await ops.close();
    throw err;
  }
  const trustOptions = {
    onRefresh: (trustDomain: string, result: 'ok' | 'unchanged' | 'error', detail: string) =>
      result === 'error' ? log.warn({ trustDomain, detail }, 'bundle refresh failed') : log.info({ trustDomain, result, detail }, 'bundle refresh'),
  };
  registerTrustMetrics(metrics.registry, { status: () => runtime?.trust.status() ?? [] });
  const onDryRun = dryRunObserver(metrics.registry, log);
  // startup and every reload build the decision state with the process's key ring and dry-run counter
  const build = (c: Config, t: TrustManager, i?: LocalIdentity, cr?: CarriedPhase) => buildDecisionState(c, t, i, cr, keys, onDryRun);
  let stopping = false;
  const updateReadiness = () => {
    const trust = runtime?.trust;
    if (stopping || !trust) return;
    if (trust.ready) readiness.set('SERVING', 'configuration and trust material loaded');
    else readiness.set('NOT_SERVING', `waiting for trust domains: ${trust.waitingFor.join(', ')}`);
  };
  let bundleEndpoint: BundleEndpoint | undefined;
  let httpAuthz: HttpAuthzServer | undefined;
  try {
    // the same function builds the pipeline at startup and on every reload
    runtime = await buildRuntime(config, { log, build, trustOptions });
    const { trust, identity } = runtime;
    state = runtime.state;
    if (config.server.http) {
      httpAuthz = await startHttpAuthz(config.server.http, {
        state: () => state,
        reasonHeader: config.deny.reasonHeader,
        limits: { maxHeaders: config.limits.maxHeaders, maxHeaderBytes: config.limits.maxHeaderBytes },
        metrics,
        log,
      });
    }
    const ep = config.federation.endpoint;
    if (ep) {
      bundleEndpoint = await startBundleEndpoint({
        trustDomain: TrustDomain.parse(ep.trustDomain),
        address: ep.address,
        port: ep.port,
        bundles: () => runtime?.trust.bundles ?? trust.bundles,
        // spiffe_refresh_hint is whole seconds
        refreshHintSeconds: Math.max(1, Math.round(config.federation.refresh.defaultSeconds)),
        tls: ep.profile === 'https_web' ? { profile: 'https_web', cert: ep.cert!, key: ep.key! } : { profile: 'https_spiffe', identity: identity! },
      });
      log.info({ port: bundleEndpoint.port, profile: ep.profile, trustDomain: ep.trustDomain }, 'bundle endpoint listening');
    }
  } catch (err) {
    if (runtime) stopRuntime(runtime);
    await Promise.all([grpc.shutdown(0), ops.close(), httpAuthz?.close()]);
    throw err;
  }
  runtime.trust.on('change', updateReadiness);
  updateReadiness();
  let current: Runtime = runtime;

  /** Builds the next runtime beside the running one; swaps it in only when complete. */
  const apply = async (next: LoadedConfig) => {
    if (stopping) throw new Error('shutting down');
    const built = await buildRuntime(next.config, { log, build, trustOptions, previous: current });
    if (stopping) {
      retireRuntime(built, current); // shut down while building: stop what was built for nothing
      throw new Error('shutting down');
    }
    const old = current;
    current = runtime = built;
    state = built.state;
    // other SVID files: the https_spiffe bundle endpoint serves the new identity (the old one's
    // watcher stops below)
    if (built.identity && built.identity !== old.identity) bundleEndpoint?.useIdentity(built.identity);
    log.level = next.config.log.level;
    if (built.trust !== old.trust) {
      old.trust.off('change', updateReadiness);
      built.trust.on('change', updateReadiness);
    }
    retireRuntime(old, built);
    updateReadiness();
  };
  const reloader = opts.configFile
    ? new ConfigReloader({ file: opts.configFile, log, metrics, current: () => current.config, apply })
    : undefined;
  live.reloader = reloader;
  reloader?.watch();
  const reload = (): Promise<ReloadResult> =>
    reloader ? reloader.reload('requested') : Promise.resolve({ result: 'error', problems: ['no config file to reload (started without --config)'] });
  log.info(
    {
      config: loaded.origin,
      grpcPort: grpc.port,
      unixSocket: grpc.unixSocket ?? null,
      opsPort: ops.port,
      bundleEndpointPort: bundleEndpoint?.port ?? null,
      httpAuthzPort: httpAuthz?.port ?? null,
      rules: config.rules.length,
      peerSource: config.peer.source,
      ready: readiness.ready,
    },
    opts.worker ? 'worker started' : 'zonegate started',
  );

  let stopped: Promise<void> | undefined;
  const stop = (drainDelayMs = 0) =>
    (stopped ??= (async () => {
      stopping = true;
      readiness.set('NOT_SERVING', 'shutting down');
      if (drainDelayMs > 0) await new Promise((r) => setTimeout(r, drainDelayMs));
      reloader?.stop();
      await grpc.shutdown(current.config.server.shutdownGraceSeconds * 1000);
      stopRuntime(current);
      await Promise.all([ops.close(), bundleEndpoint?.close(), httpAuthz?.close()]);
      log.info('zonegate stopped');
    })());

  if (opts.handleSignals) {
    const onSignal = (signal: NodeJS.Signals) => {
      // SIGTERM is the orchestrator's "stop": drain. SIGINT is a person at a terminal: no delay.
      const delay = signal === 'SIGTERM' ? current.config.server.drainDelaySeconds * 1000 : 0;
      log.info({ signal, drainDelayMs: delay }, 'draining in-flight calls');
      void stop(delay).then(() => process.exit(0));
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    // SIGHUP would end the process by default: reload instead (nothing to reload on the embedded default)
    process.on('SIGHUP', () => (reloader ? void reloader.reload('SIGHUP') : log.warn('SIGHUP: started without --config, nothing to reload')));
  }
  return {
    grpc, ops, readiness, metrics, log,
    get trust() { return current.trust; },
    get identity() { return current.identity; },
    ...(bundleEndpoint ? { bundleEndpoint } : {}), ...(httpAuthz ? { httpAuthz } : {}), stop, reload,
  };
}
