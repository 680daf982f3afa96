/**
 * Wiring only: config → trust material → pipeline → servers. Everything here runs at startup (or
 * reload); the request path only sees the DecisionState the runtime builds (src/runtime.ts).
 * startZonegate runs its phases in order: the parts that live as long as the process, the
 * listeners that come first (ops, gRPC), the first runtime with the listeners that serve from it
 * (HTTP authorization, bundle endpoint), then the reload; stopping is the drain every zonegate
 * process shares (src/lifecycle.ts).
 */
import type { LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { Readiness } from './readiness.js';
import { startGrpcServer, type GrpcServer } from './envoy/server.js';
import { startOpsServer } from './http/ops.js';
import type { Listening } from './net/listen.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { dryRunObserver } from './policy/metrics.js';
import type { TrustManager } from './federation/manager.js';
import { registerTrustMetrics } from './federation/metrics.js';
import type { LocalIdentity } from './svid/local-identity.js';
import { startBundleEndpoint, type BundleEndpoint } from './federation/endpoint.js';
import { startHttpAuthz } from './http/authz.js';
import { TrustDomain } from './spiffe/id.js';
import { createKeyRing } from './rewrite/index.js';
import type { KeyRing } from './rewrite/keys.js';
import { buildRuntime, retireRuntime, stopRuntime, type Runtime, type RuntimeDeps } from './runtime.js';
import { ConfigReloader, type ReloadResult } from './config/reload.js';
import { explainCheck, identityHeaders, redactHeaders } from './envoy/explain.js';
import { statusReport } from './http/status.js';
import { checkRecorder } from './pipeline/record.js';
import { drain, handleSignals, logStarted } from './lifecycle.js';

export interface Zonegate {
  readonly grpc: GrpcServer;
  readonly ops: Listening;
  readonly readiness: Readiness;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** The config running now (the last one a reload swapped in). */
  readonly config: Config;
  readonly trust: TrustManager;
  readonly identity?: LocalIdentity;
  readonly bundleEndpoint?: BundleEndpoint;
  readonly httpAuthz?: Listening;
  /**
   * Reloads the config file given in StartOptions.configFile (what SIGHUP and a file change do):
   * validated in full and swapped in atomically, or refused with the running config kept.
   * `reason` is logged (default "requested").
   */
  reload(reason?: string): Promise<ReloadResult>;
  /**
   * Reports NOT_SERVING, keeps answering for `drainDelayMs` (default: none), then stops accepting
   * calls, waits for in-flight ones up to the configured grace, and closes both servers.
   */
  stop(drainDelayMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly log?: Logger;
  /** Install SIGTERM/SIGINT handlers that drain and exit, and SIGHUP to reload (the CLI does; tests do not). */
  readonly handleSignals?: boolean;
  /** The config file to reload on SIGHUP (with handleSignals) and when it changes. */
  readonly configFile?: string;
  /**
   * The id of a worker of `serve --workers N` (src/cluster.ts): no ops server of its own (the
   * primary serves /readyz and the aggregated /metrics, where this worker's process metrics carry
   * `worker="<id>"`) and a "worker started" line instead of "zonegate started".
   */
  readonly worker?: number;
}

/** What the phases of one process share. */
interface Core {
  readonly loaded: LoadedConfig;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly readiness: Readiness;
  /** Re-issue keys live as long as the process (not the config): reloads keep what upstreams cached. */
  readonly keys: KeyRing;
  /** What every runtime is built with, at startup and on each reload. */
  readonly deps: RuntimeDeps;
  /** Readiness follows the trust material: the listener on the running trust manager. */
  readonly onTrustChange: () => void;
  /** The runtime serving now; undefined until the first one is built. */
  runtime: Runtime | undefined;
  reloader: ConfigReloader | undefined;
  stopping: boolean;
}

interface Listeners {
  readonly ops: Listening;
  readonly grpc: GrpcServer;
  readonly httpAuthz?: Listening | undefined;
  readonly bundleEndpoint?: BundleEndpoint | undefined;
}

/** A worker's stand-in for the ops server it does not run. */
const NO_OPS: Listening = { port: 0, close: () => Promise.resolve() };

/** Starts zonegate: ops server first (so /readyz answers while loading), then gRPC, then ready. */
export async function startZonegate(loaded: LoadedConfig, opts: StartOptions = {}): Promise<Zonegate> {
  const core = createCore(loaded, opts);
  const listeners = await startWithRuntime(core, await startListeners(core, opts));
  const { log } = core;
  core.reloader = opts.configFile
    ? new ConfigReloader({ file: opts.configFile, log, metrics: core.metrics, current: () => running(core).config, apply: (next) => swapIn(core, listeners, next) })
    : undefined;
  core.reloader?.watch();
  const reload = (reason = 'requested'): Promise<ReloadResult> =>
    core.reloader ? core.reloader.reload(reason) : Promise.resolve({ result: 'error', problems: ['no config file to reload (started without --config)'] });
  const { grpc, ops, bundleEndpoint, httpAuthz } = listeners;
  logStarted(log, opts.worker ? 'worker started' : 'zonegate started', loaded, {
    grpcPort: grpc.port,
    opsPort: ops.port,
    bundleEndpointPort: bundleEndpoint?.port ?? null,
    httpAuthzPort: httpAuthz?.port ?? null,
    ready: core.readiness.ready,
  });
  const stop = stopper(core, listeners);
  if (opts.handleSignals)
    handleSignals({ log, config: () => running(core).config, stop, reload: core.reloader && (() => void reload('SIGHUP')) });
  return {
    grpc, ops, readiness: core.readiness, metrics: core.metrics, log,
    get config() { return running(core).config; },
    get trust() { return running(core).trust; },
    get identity() { return running(core).identity; },
    ...(bundleEndpoint ? { bundleEndpoint } : {}), ...(httpAuthz ? { httpAuthz } : {}), stop, reload,
  };
}

/** The runtime serving now (startZonegate returns only once there is one). */
const running = (core: Core): Runtime => core.runtime!;

/** The parts that live as long as the process: logger, metrics, readiness, re-issue keys. */
function createCore(loaded: LoadedConfig, opts: StartOptions): Core {
  const { config } = loaded;
  const log = opts.log ?? createLogger(config.log.level, undefined, config.commonIdentity ? [config.commonIdentity.header] : []);
  const metrics = createMetrics(true, opts.worker === undefined ? undefined : String(opts.worker));
  for (const w of loaded.warnings) log.warn(w);
  const keys = createKeyRing(config);
  const trustOptions = {
    onRefresh: (trustDomain: string, result: 'ok' | 'unchanged' | 'error', detail: string) =>
      result === 'error' ? log.warn({ trustDomain, detail }, 'bundle refresh failed') : log.info({ trustDomain, result, detail }, 'bundle refresh'),
  };
  const core: Core = {
    loaded, log, metrics, keys,
    readiness: new Readiness(),
    // startup and every reload build the decision state with the process's key ring and dry-run counter
    deps: { log, keys, trustOptions, onDryRun: dryRunObserver(metrics.registry, log) },
    onTrustChange: () => updateReadiness(core),
    runtime: undefined,
    reloader: undefined,
    stopping: false,
  };
  registerTrustMetrics(metrics.registry, { status: () => core.runtime?.trust.status() ?? [] });
  return core;
}

/** SERVING once every required trust domain has a bundle that is not stale; never again once stopping. */
function updateReadiness(core: Core): void {
  const trust = core.runtime?.trust;
  if (core.stopping || !trust) return;
  if (trust.ready) core.readiness.set('SERVING', 'configuration and trust material loaded');
  else core.readiness.set('NOT_SERVING', `waiting for trust domains: ${trust.waitingFor.join(', ')}`);
}

/** The ops server (not in a worker) and the gRPC server, NOT_SERVING until the first runtime is built. */
async function startListeners(core: Core, opts: StartOptions): Promise<Listeners> {
  const { loaded, readiness, metrics, keys, log } = core;
  const { config } = loaded;
  const ops = opts.worker
    ? NO_OPS
    : await startOpsServer(config.server.ops.address, config.server.ops.port, {
        readiness, metrics, keys,
        status: () => statusReport({ origin: loaded.origin, readiness, trust: core.runtime?.trust.status() ?? [], reload: core.reloader }),
        ...(config.server.ops.explain ? { explain: explainer(core) } : {}),
      });
  try {
    return { ops, grpc: await startGrpcServer(config.server.grpc, { state: () => core.runtime?.state, readiness, metrics, log }) };
  } catch (err) {
    await ops.close();
    throw err;
  }
}

/**
 * POST /explain: a decision with its steps on the live state, recorded as a gRPC Check is
 * (src/pipeline/record.ts, its decision line marked `mode: "explain"`), no secret in the answer.
 */
function explainer(core: Core) {
  const { readiness } = core;
  const record = checkRecorder(core.metrics, core.log, { mode: 'explain' });
  return async (request: Parameters<typeof explainCheck>[1]) => {
    const started = process.hrtime.bigint();
    const runtime = core.runtime;
    if (!runtime) throw new Error(`not ready: ${readiness.reason}`);
    const { outcome, result } = await explainCheck(runtime.state, request);
    record.outcome(outcome, started);
    return { ...result, checkResponse: redactHeaders(result.checkResponse, identityHeaders(runtime.config)) };
  };
}

/**
 * Builds the first runtime, then starts the listeners that serve from it (HTTP authorization,
 * bundle endpoint) and follows its trust material for readiness. On failure everything started,
 * the first listeners included, is stopped before the error is thrown.
 */
async function startWithRuntime(core: Core, first: Listeners): Promise<Listeners> {
  const { config } = core.loaded;
  let httpAuthz: Listening | undefined;
  let bundleEndpoint: BundleEndpoint | undefined;
  try {
    const runtime = (core.runtime = await buildRuntime(config, core.deps));
    if (config.server.http)
      httpAuthz = await startHttpAuthz(config.server.http, {
        state: () => core.runtime?.state,
        reasonHeader: config.deny.reasonHeader,
        limits: { maxHeaders: config.limits.maxHeaders, maxHeaderBytes: config.limits.maxHeaderBytes },
        metrics: core.metrics,
        log: core.log,
      });
    const ep = config.federation.endpoint;
    if (ep) {
      bundleEndpoint = await startBundleEndpoint({
        trustDomain: TrustDomain.parse(ep.trustDomain),
        address: ep.address,
        port: ep.port,
        bundles: () => running(core).trust.bundles,
        // spiffe_refresh_hint is whole seconds
        refreshHintSeconds: Math.max(1, Math.round(config.federation.refresh.defaultSeconds)),
        tls: ep.profile === 'https_web' ? { profile: 'https_web', cert: ep.cert!, key: ep.key! } : { profile: 'https_spiffe', identity: runtime.identity! },
      });
      core.log.info({ port: bundleEndpoint.port, profile: ep.profile, trustDomain: ep.trustDomain }, 'bundle endpoint listening');
    }
  } catch (err) {
    if (core.runtime) stopRuntime(core.runtime);
    await Promise.all([first.grpc.shutdown(0), first.ops.close(), httpAuthz?.close()]);
    throw err;
  }
  running(core).trust.on('change', core.onTrustChange);
  updateReadiness(core);
  return { ...first, httpAuthz, bundleEndpoint };
}

/** A reload: builds the next runtime beside the running one; swaps it in only when complete. */
async function swapIn(core: Core, listeners: Listeners, next: LoadedConfig): Promise<void> {
  if (core.stopping) throw new Error('shutting down');
  const old = running(core);
  const built = await buildRuntime(next.config, { ...core.deps, previous: old });
  if (core.stopping) {
    retireRuntime(built, old); // shut down while building: stop what was built for nothing
    throw new Error('shutting down');
  }
  core.runtime = built;
  // other SVID files: the https_spiffe bundle endpoint serves the new identity (the old one's
  // watcher stops below)
  if (built.identity && built.identity !== old.identity) listeners.bundleEndpoint?.useIdentity(built.identity);
  core.log.level = next.config.log.level;
  if (built.trust !== old.trust) {
    old.trust.off('change', core.onTrustChange);
    built.trust.on('change', core.onTrustChange);
  }
  retireRuntime(old, built);
  updateReadiness(core);
}

/** Zonegate.stop: the shared drain (src/lifecycle.ts), once. */
function stopper(core: Core, l: Listeners): (drainDelayMs?: number) => Promise<void> {
  let stopped: Promise<void> | undefined;
  return (delayMs = 0) => {
    core.stopping = true;
    return (stopped ??= drain({
      readiness: core.readiness,
      log: core.log,
      delayMs,
      calls: async () => {
        core.reloader?.stop();
        // both transports stop taking calls and give those in flight the same grace
        const graceMs = running(core).config.server.shutdownGraceSeconds * 1000;
        await Promise.all([l.grpc.shutdown(graceMs), l.httpAuthz?.close(graceMs)]);
        stopRuntime(running(core));
      },
      rest: () => Promise.all([l.ops.close(), l.bundleEndpoint?.close()]),
    }));
  };
}
