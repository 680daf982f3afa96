/**
 * `zonegate serve --workers N`: N worker processes (node:cluster) share the gRPC listener (and,
 * when configured, the HTTP authorization and bundle endpoint listeners); the kernel-side accept
 * is the primary's, which hands connections to workers round-robin. The primary decides nothing:
 * it runs the ops server (/healthz, /readyz over every worker, /metrics aggregated from every
 * worker's registry), restarts a worker that dies, and drains them all on SIGTERM.
 *
 * Trust material is loaded and refreshed by each worker on its own, not fetched once and shared:
 * verified X509Certificate and KeyObject values cannot cross a process boundary without being
 * parsed again, a shared copy would add IPC and a second failure mode to the path every bundle
 * change takes, and each worker fails closed on its own. The cost is bounded and small: N fetches
 * per trust domain per refresh interval (minutes, jittered), N ≤ cores.
 */
import cluster, { type Worker } from 'node:cluster';
import { rmSync } from 'node:fs';
import { AggregatorRegistry } from 'prom-client';
import { ConfigError, type LoadedConfig } from './config/load.js';
import { Readiness } from './readiness.js';
import { startOpsServer } from './http/ops.js';
import { createKeyRing } from './rewrite/index.js';
import { createLogger } from './log.js';
import { startZonegate } from './main.js';

type ToPrimary =
  | { type: 'zonegate:started'; grpcPort: number; httpAuthzPort: number | null; bundleEndpointPort: number | null; ready: boolean; reason: string }
  | { type: 'zonegate:readiness'; ready: boolean; reason: string };
type ToWorker = { type: 'zonegate:stop'; signal: NodeJS.Signals } | { type: 'zonegate:signal'; signal: NodeJS.Signals };

const isMessage = (m: unknown): m is { type: string } =>
  typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('zonegate:');

/** Restarts allowed in RESTART_WINDOW_MS before the primary gives up (a crash loop is an outage to report, not hide). */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

/** Runs the primary: forks `workers` processes of this same command and serves ops. Resolves once all are started. */
export async function runPrimary(loaded: LoadedConfig, workers: number): Promise<void> {
  const { config } = loaded;
  const log = createLogger(config.log.level);
  for (const w of loaded.warnings) log.warn(w);
  // Re-issued JWTs: the primary's ops server publishes the JWKS, so every worker must sign with
  // the one key it publishes. Keys generated per process could not be: a fixed key file is needed.
  const u = config.upstream;
  const usesJwt = [u.default, ...Object.values(u.destinations)].some((d) => d.mode === 'jwt');
  if (usesJwt && !u.jwt.keyFile)
    throw new ConfigError(['upstream.jwt.keyFile: serve --workers N (N > 1) with re-issued JWTs needs a key file all workers share (or --workers 1)']);
  const readiness = new Readiness();
  const aggregator = new AggregatorRegistry();
  const ops = await startOpsServer(config.server.ops.address, config.server.ops.port, {
    readiness,
    metrics: { registry: { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType } },
    ...(usesJwt ? { keys: createKeyRing(config) } : {}),
  });
  // One stale socket file is removed here, once: a worker removing it would unlink the listener
  // another worker already shares.
  if (config.server.grpc.unixSocket) rmSync(config.server.grpc.unixSocket, { force: true });

  const state = new Map<number, { ready: boolean; reason: string }>();
  let stopping = false;
  const restarts: number[] = [];
  const update = () => {
    if (stopping) return;
    const notReady = [...state.entries()].filter(([, s]) => !s.ready);
    if (state.size === workers && notReady.length === 0) readiness.set('SERVING', `${workers} workers serving`);
    else readiness.set('NOT_SERVING', notReady.length ? `worker ${notReady[0]![0]}: ${notReady[0]![1].reason}` : 'starting workers');
  };

  let up = false; // every worker has started once
  let started: (p: ToPrimary & { type: 'zonegate:started' }) => void;
  let failed: (err: Error) => void;
  const first = new Promise<ToPrimary & { type: 'zonegate:started' }>((resolve, reject) => {
    started = (p) => ((up = true), resolve(p));
    failed = reject;
  });
  const fork = (): Worker => {
    const w = cluster.fork();
    w.on('message', (m: unknown) => {
      if (!isMessage(m)) return;
      const msg = m as ToPrimary;
      state.set(w.id, { ready: msg.ready, reason: msg.reason });
      update();
      if (msg.type === 'zonegate:started' && !up && state.size === workers) started(msg);
    });
    return w;
  };
  cluster.on('exit', (w, code, signal) => {
    state.delete(w.id);
    if (stopping) return;
    update();
    if (!up) {
      failed(new Error(`worker ${w.id} exited (${signal ?? code}) before it started`));
      return;
    }
    const now = Date.now();
    restarts.push(now);
    while (restarts.length && restarts[0]! < now - RESTART_WINDOW_MS) restarts.shift();
    if (restarts.length > MAX_RESTARTS) {
      log.fatal({ restarts: restarts.length }, 'workers keep dying: giving up');
      void stopAll('SIGTERM', 1);
      return;
    }
    log.error({ worker: w.id, code, signal }, 'worker died: starting another');
    fork();
  });

  const send = (m: ToWorker) => {
    for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send(m);
  };
  let stopped: Promise<void> | undefined;
  const stopAll = (signal: NodeJS.Signals, exitCode = 0) =>
    (stopped ??= (async () => {
      stopping = true;
      readiness.set('NOT_SERVING', 'shutting down');
      log.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, 'draining in-flight calls');
      const exited = Promise.all(
        Object.values(cluster.workers ?? {}).map((w) => new Promise<void>((r) => (w!.isDead() ? r() : w!.once('exit', () => r())))),
      );
      send({ type: 'zonegate:stop', signal });
      // A worker drains for at most the drain delay plus the grace; past that (and a margin) it is killed.
      const limit = (config.server.drainDelaySeconds + config.server.shutdownGraceSeconds + 5) * 1000;
      const timer = setTimeout(() => Object.values(cluster.workers ?? {}).forEach((w) => w?.process.kill('SIGKILL')), limit);
      await exited;
      clearTimeout(timer);
      await ops.close();
      log.info('zonegate stopped');
      process.exit(exitCode);
    })());
  process.on('SIGTERM', () => void stopAll('SIGTERM'));
  process.on('SIGINT', () => void stopAll('SIGINT'));
  // Passed on, so a handler a worker installs (e.g. a reload) runs there; the primary holds no config state of its own.
  process.on('SIGHUP', () => send({ type: 'zonegate:signal', signal: 'SIGHUP' }));

  for (let i = 0; i < workers; i++) fork();
  let s: ToPrimary & { type: 'zonegate:started' };
  try {
    s = await first;
  } catch (err) {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    await ops.close();
    throw err;
  }
  log.info(
    {
      config: loaded.origin,
      workers,
      grpcPort: s.grpcPort,
      unixSocket: config.server.grpc.unixSocket ?? null,
      opsPort: ops.port,
      bundleEndpointPort: s.bundleEndpointPort,
      httpAuthzPort: s.httpAuthzPort,
      rules: config.rules.length,
      peerSource: config.peer.source,
      ready: readiness.ready,
    },
    'zonegate started',
  );
}

/** Runs one worker: a full zonegate without an ops server, reporting readiness to the primary. */
export async function runWorker(loaded: LoadedConfig, reload: { configFile?: string } = {}): Promise<void> {
  const { config } = loaded;
  const log = createLogger(config.log.level).child({ worker: cluster.worker?.id });
  // each worker watches the config file and reloads on its own; SIGHUP reaches it from the primary
  const zg = await startZonegate(loaded, { worker: true, log, ...reload });
  process.on('SIGHUP', () => (reload.configFile ? void zg.reload() : log.warn('SIGHUP: started without --config, nothing to reload')));
  // prom-client answers the primary's AggregatorRegistry with these registries' contents; its
  // worker-side listener is installed by constructing an AggregatorRegistry.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([zg.metrics.registry]);
  const report = (type: ToPrimary['type']) =>
    process.send?.({
      type,
      ready: zg.readiness.ready,
      reason: zg.readiness.reason,
      ...(type === 'zonegate:started'
        ? { grpcPort: zg.grpc.port, httpAuthzPort: zg.httpAuthz?.port ?? null, bundleEndpointPort: zg.bundleEndpoint?.port ?? null }
        : {}),
    });
  report('zonegate:started');
  zg.readiness.on('change', () => report('zonegate:readiness'));

  // The primary asks by message; a signal to the whole process group arrives here too. Either way once.
  let stopping = false;
  const stop = (signal: NodeJS.Signals | 'disconnect') => {
    if (stopping) return;
    stopping = true;
    const delay = signal === 'SIGTERM' ? config.server.drainDelaySeconds * 1000 : 0;
    log.info({ signal, drainDelayMs: delay }, 'draining in-flight calls');
    void zg.stop(delay).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => undefined); // a terminal hangup is the primary's to handle
  process.on('disconnect', () => stop('disconnect')); // the primary is gone: nobody routes to us any more
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return;
    const msg = m as ToWorker;
    if (msg.type === 'zonegate:stop') stop(msg.signal);
    else if (msg.type === 'zonegate:signal') process.emit(msg.signal as 'SIGHUP', msg.signal);
  });
}

/** True in a process forked by runPrimary. */
export const isWorker = (): boolean => cluster.isWorker;
