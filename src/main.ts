/**
 * Wiring only: config → trust material → pipeline → servers; signals. Everything here runs at
 * startup (or reload); the request path only sees the DecisionState built here.
 */
import type { LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { Readiness } from './envoy/health.js';
import { startGrpcServer, type GrpcServer } from './envoy/server.js';
import type { DecisionState } from './envoy/service.js';
import { startOpsServer, type OpsServer } from './http/ops.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createPeerPhase } from './peer/phase.js';
import { createPipeline } from './pipeline/authorize.js';
import { compilePolicy } from './policy/rules.js';
import { TrustManager } from './federation/manager.js';
import { X509SvidVerifier } from './svid/verifier.js';
import { registerTrustMetrics } from './federation/metrics.js';
import { LocalIdentity } from './federation/identity.js';
import { startBundleEndpoint, type BundleEndpoint } from './federation/endpoint.js';
import { startHttpAuthz, type HttpAuthzServer } from './http/authz.js';
import { TrustDomain } from './spiffe/id.js';
import { createCarriedPhase, type CarriedPhase } from './identity/phase.js';

/** Builds everything a decision needs from a validated config and the live trust material. */
export function buildDecisionState(config: Config, trust: TrustManager, identity?: LocalIdentity, carried?: CarriedPhase): DecisionState {
  const verifier = new X509SvidVerifier(trust.bundles, {
    skewSeconds: config.peer.clockSkewSeconds,
    maxChainLength: config.limits.maxChainLength,
    maxBytes: config.limits.maxCertificateBytes * config.limits.maxChainLength,
    cacheSize: config.cache.svids,
  });
  const peer = createPeerPhase(config.peer.source, verifier);
  return {
    pipeline: createPipeline({
      config,
      policy: compilePolicy(config.rules),
      peer,
      carried,
      self: () => identity?.current.id,
    }),
    limits: { maxHeaders: config.limits.maxHeaders, maxHeaderBytes: config.limits.maxHeaderBytes },
    response: { reasonHeader: config.deny.reasonHeader },
    // Guards first, as in the pipeline: nothing of a token is looked at for a peer that fails.
    ...(carried?.prepare ? { prepare: (req) => (peer(req).ok ? carried.prepare!(req, Date.now()) : undefined) } : {}),
  };
}

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
   * Reports NOT_SERVING, keeps answering for `drainDelayMs` (default: none), then stops accepting
   * calls, waits for in-flight ones up to the configured grace, and closes both servers.
   */
  stop(drainDelayMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly log?: Logger;
  /** Install SIGTERM/SIGINT handlers that drain and exit (the CLI does; tests do not). */
  readonly handleSignals?: boolean;
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
  const log = opts.log ?? createLogger(config.log.level);
  const metrics = createMetrics();
  const readiness = new Readiness();
  for (const w of loaded.warnings) log.warn(w);

  const ops = opts.worker ? NO_OPS : await startOpsServer(config.server.ops.address, config.server.ops.port, { readiness, metrics });
  let state: DecisionState | undefined;
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
  const trust = new TrustManager(config, {
    onRefresh: (trustDomain, result, detail) =>
      result === 'error' ? log.warn({ trustDomain, detail }, 'bundle refresh failed') : log.info({ trustDomain, result, detail }, 'bundle refresh'),
  });
  registerTrustMetrics(metrics.registry, trust);
  let stopping = false;
  const updateReadiness = () => {
    if (stopping) return;
    if (trust.ready) readiness.set('SERVING', 'configuration and trust material loaded');
    else readiness.set('NOT_SERVING', `waiting for trust domains: ${trust.waitingFor.join(', ')}`);
  };
  let identity: LocalIdentity | undefined;
  let carried: CarriedPhase | undefined;
  let bundleEndpoint: BundleEndpoint | undefined;
  let httpAuthz: HttpAuthzServer | undefined;
  try {
    if (config.identity) {
      identity = new LocalIdentity(config.identity.cert, config.identity.key, (message) =>
        log.warn({ detail: message }, 'local SVID not reloaded: keeping the current one'),
      );
      identity.on('change', (svid: { id: { value: string } }) => log.info({ spiffeId: svid.id.value }, 'local SVID rotated'));
      identity.watch();
      log.info({ spiffeId: identity.current.id.value }, 'local SVID loaded');
    }
    await trust.start();
    carried = createCarriedPhase(config, trust.bundles, identity, (message) => log.warn({ detail: message }, 'identity keys not refreshed'));
    await carried?.start();
    state = buildDecisionState(config, trust, identity, carried);
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
        bundles: trust.bundles,
        // spiffe_refresh_hint is whole seconds
        refreshHintSeconds: Math.max(1, Math.round(config.federation.refresh.defaultSeconds)),
        tls: ep.profile === 'https_web' ? { profile: 'https_web', cert: ep.cert!, key: ep.key! } : { profile: 'https_spiffe', identity: identity! },
      });
      log.info({ port: bundleEndpoint.port, profile: ep.profile, trustDomain: ep.trustDomain }, 'bundle endpoint listening');
    }
  } catch (err) {
    trust.stop();
    identity?.stop();
    carried?.stop();
    await Promise.all([grpc.shutdown(0), ops.close(), httpAuthz?.close()]);
    throw err;
  }
  trust.on('change', updateReadiness);
  updateReadiness();
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
      await grpc.shutdown(config.server.shutdownGraceSeconds * 1000);
      trust.stop();
      identity?.stop();
      carried?.stop();
      await Promise.all([ops.close(), bundleEndpoint?.close(), httpAuthz?.close()]);
      log.info('zonegate stopped');
    })());

  if (opts.handleSignals) {
    const onSignal = (signal: NodeJS.Signals) => {
      // SIGTERM is the orchestrator's "stop": drain. SIGINT is a person at a terminal: no delay.
      const delay = signal === 'SIGTERM' ? config.server.drainDelaySeconds * 1000 : 0;
      log.info({ signal, drainDelayMs: delay }, 'draining in-flight calls');
      void stop(delay).then(() => process.exit(0));
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  return { grpc, ops, readiness, metrics, log, trust, ...(identity ? { identity } : {}), ...(bundleEndpoint ? { bundleEndpoint } : {}), ...(httpAuthz ? { httpAuthz } : {}), stop };
}
