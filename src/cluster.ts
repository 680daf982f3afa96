/**
 * `zonegate serve --workers N`: N worker processes (node:cluster) share the gRPC listener (and,
 * when configured, the HTTP authorization and bundle endpoint listeners); the kernel-side accept
 * is the primary's, which hands connections to workers round-robin. The primary decides nothing:
 * it runs the ops server (/healthz, /readyz over every worker, /metrics merged from every
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
import { AggregatorRegistry, Registry } from 'prom-client';
import type { LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { Readiness } from './readiness.js';
import { startOpsServer } from './http/ops.js';
import { createKeyRing } from './rewrite/index.js';
import { reissuesJwt } from './rewrite/schema.js';
import { createLogger, type Logger } from './log.js';
import { startZonegate } from './main.js';
import { registerProcessMetrics } from './metrics.js';
import { drain, handleSignals, logStarted, type Stop, type StopCause } from './lifecycle.js';

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
type Started = { type: 'zonegate:started'; grpcPort: number; httpAuthzPort: number | null; bundleEndpointPort: number | null; ready: boolean; reason: string };
type ToPrimary =
  | Started
  | { type: 'zonegate:readiness'; ready: boolean; reason: string }
  | { type: 'zonegate:metrics'; id: number; metrics: MetricsJson };
type ToWorker =
  | { type: 'zonegate:stop'; signal: StopCause }
  | { type: 'zonegate:signal'; signal: NodeJS.Signals }
  | { type: 'zonegate:metrics'; id: number };

const isMessage = (m: unknown): m is { type: string } =>
  typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('zonegate:');

/** Restarts allowed in RESTART_WINDOW_MS before the primary gives up (a crash loop is an outage to report, not hide). */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
/** A worker that has not answered a metrics request by then fails the scrape (as prom-client's own cluster metrics do). */
const METRICS_TIMEOUT_MS = 5000;

/**
 * Runs the primary: forks `workers` processes of this same command and serves ops. Resolves once
 * all are started. `loaded` has passed validateConfig with the same worker count (config/preflight.ts).
 */
export async function runPrimary(loaded: LoadedConfig, workers: number): Promise<void> {
  const { config } = loaded;
  const log = createLogger(config.log.level);
  for (const w of loaded.warnings) log.warn(w);
  const readiness = new Readiness();
  const metrics = new ClusterMetrics();
  const ops = await startOpsServer(config.server.ops.address, config.server.ops.port, {
    readiness,
    metrics: { registry: metrics },
    // re-issued JWTs: the primary publishes the JWKS of the key file every worker signs with
    ...(reissuesJwt(config.upstream) ? { keys: createKeyRing(config) } : {}),
  });
  // One stale socket file is removed here, once: a worker removing it would unlink the listener
  // another worker already shares.
  if (config.server.grpc.unixSocket) rmSync(config.server.grpc.unixSocket, { force: true });

  const pool = new Workers(workers, readiness, log, metrics);
  const stop = handleSignals({
    log,
    config: () => config,
    // each worker drains for its own delay (src/lifecycle.ts); the primary waits for them all
    stop: (_delayMs, cause) => drain({ readiness, log, delayMs: 0, calls: () => pool.stop(cause, config), rest: () => ops.close() }),
    // passed on, so each worker reloads its config; the primary holds no config state of its own
    reload: () => pool.send({ type: 'zonegate:signal', signal: 'SIGHUP' }),
    fields: () => ({ workers: pool.alive().length }),
  });
  let s: Started;
  try {
    s = await pool.start(stop);
  } catch (err) {
    pool.kill();
    await ops.close();
    throw err;
  }
  logStarted(log, 'zonegate started', loaded, { workers, grpcPort: s.grpcPort, opsPort: ops.port, bundleEndpointPort: s.bundleEndpointPort, httpAuthzPort: s.httpAuthzPort, ready: readiness.ready });
}

/** The worker processes: forked, followed (readiness), replaced when they die, stopped together. */
class Workers {
  private readonly state = new Map<number, { ready: boolean; reason: string }>();
  private readonly restarts: number[] = [];
  private stopping = false;
  /** Every worker has started once. */
  private up = false;

  constructor(
    private readonly count: number,
    private readonly readiness: Readiness,
    private readonly log: Logger,
    private readonly metrics: ClusterMetrics,
  ) {}

  /** Forks them all; resolves with the first start report once every one has started, rejects when one exits before. */
  start(stop: Stop): Promise<Started> {
    return new Promise<Started>((resolve, reject) => {
      cluster.on('exit', (w, code, signal) => {
        this.state.delete(w.id);
        if (this.stopping) return;
        this.update();
        if (!this.up) reject(new Error(`worker ${w.id} exited (${signal ?? code}) before it started`));
        else this.replace(w, code, signal, stop);
      });
      const started = (s: Started) => {
        if (this.up || this.state.size < this.count) return;
        this.up = true;
        resolve(s);
      };
      for (let i = 0; i < this.count; i++) this.fork(started);
    });
  }

  private fork(started?: (s: Started) => void): Worker {
    const w = cluster.fork();
    w.on('message', (m: unknown) => {
      if (!isMessage(m)) return;
      const msg = m as ToPrimary;
      if (msg.type === 'zonegate:metrics') return this.metrics.answered(w, msg.id, msg.metrics);
      this.state.set(w.id, { ready: msg.ready, reason: msg.reason });
      this.update();
      if (msg.type === 'zonegate:started') started?.(msg);
    });
    return w;
  }

  /** A worker died after startup: another takes its place, unless they keep dying. */
  private replace(w: Worker, code: number | null, signal: string | null, stop: Stop): void {
    const now = Date.now();
    this.restarts.push(now);
    while (this.restarts.length && this.restarts[0]! < now - RESTART_WINDOW_MS) this.restarts.shift();
    if (this.restarts.length > MAX_RESTARTS) {
      this.log.fatal({ restarts: this.restarts.length }, 'workers keep dying: giving up');
      stop('SIGTERM', 1);
      return;
    }
    this.log.error({ worker: w.id, code, signal }, 'worker died: starting another');
    this.fork();
  }

  /** /readyz of the primary: SERVING only when every worker is. */
  private update(): void {
    if (this.stopping) return;
    const notReady = [...this.state.entries()].filter(([, s]) => !s.ready);
    if (this.state.size === this.count && notReady.length === 0) this.readiness.set('SERVING', `${this.count} workers serving`);
    else this.readiness.set('NOT_SERVING', notReady.length ? `worker ${notReady[0]![0]}: ${notReady[0]![1].reason}` : 'starting workers');
  }

  alive(): Worker[] {
    return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  }

  send(m: ToWorker): void {
    for (const w of this.alive()) if (w.isConnected()) w.send(m);
  }

  /**
   * Asks every worker to drain as `cause` asks (src/lifecycle.ts) and waits until all have exited.
   * A worker drains for at most the drain delay plus the grace; past that (and a margin) it is killed.
   */
  async stop(cause: StopCause, config: Config): Promise<void> {
    this.stopping = true;
    const exited = Promise.all(this.alive().map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r())))));
    this.send({ type: 'zonegate:stop', signal: cause });
    const limit = (config.server.drainDelaySeconds + config.server.shutdownGraceSeconds + 5) * 1000;
    const timer = setTimeout(() => this.kill(), limit);
    await exited;
    clearTimeout(timer);
  }

  /** Startup failed, or a drain took too long. */
  kill(): void {
    this.stopping = true;
    for (const w of this.alive()) w.process.kill('SIGKILL');
  }
}

/**
 * The primary's /metrics: every connected worker's registry and the primary's own process
 * metrics, merged metric by metric as each one's `aggregator` says (src/metrics.ts).
 */
class ClusterMetrics {
  private readonly own = new Registry();
  private readonly waiting = new Map<string, (metrics: MetricsJson) => void>();
  private asked = 0;
  readonly contentType = this.own.contentType;

  constructor() {
    registerProcessMetrics(this.own, 'primary');
  }

  async metrics(): Promise<string> {
    const id = this.asked++;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w?.isConnected() === true);
    const answers = await Promise.all(workers.map((w) => this.ask(w, id)));
    return AggregatorRegistry.aggregate([...answers, await this.own.getMetricsAsJSON()]).metrics();
  }

  /** A worker's answer, from its message handler. */
  answered(w: Worker, id: number, metrics: MetricsJson): void {
    this.waiting.get(`${w.id}:${id}`)?.(metrics);
  }

  private ask(w: Worker, id: number): Promise<MetricsJson> {
    const key = `${w.id}:${id}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error(`worker ${w.id} sent no metrics within ${METRICS_TIMEOUT_MS} ms`));
      }, METRICS_TIMEOUT_MS);
      this.waiting.set(key, (metrics) => {
        clearTimeout(timer);
        this.waiting.delete(key);
        resolve(metrics);
      });
      w.send({ type: 'zonegate:metrics', id } satisfies ToWorker);
    });
  }
}

/** Runs one worker: a full zonegate without an ops server, reporting readiness and metrics to the primary. */
export async function runWorker(loaded: LoadedConfig, reload: { configFile?: string } = {}): Promise<void> {
  const id = cluster.worker!.id;
  const log = createLogger(loaded.config.log.level).child({ worker: id });
  // each worker watches the config file and reloads on its own; SIGHUP reaches it from the primary
  const zg = await startZonegate(loaded, { worker: id, log, ...reload });
  const report = (type: 'zonegate:started' | 'zonegate:readiness') =>
    process.send?.({
      type,
      ready: zg.readiness.ready,
      reason: zg.readiness.reason,
      ...(type === 'zonegate:started'
        ? { grpcPort: zg.grpc.port, httpAuthzPort: zg.httpAuthz?.port ?? null, bundleEndpointPort: zg.bundleEndpoint?.port ?? null }
        : {}),
    });
  report('zonegate:started');
  zg.readiness.watch(() => report('zonegate:readiness'));

  // The primary asks by message; a signal to the whole process group arrives here too. Either way once.
  const stop = handleSignals({
    log,
    config: () => zg.config,
    stop: (delayMs) => zg.stop(delayMs),
    reload: reload.configFile ? () => void zg.reload('SIGHUP') : undefined,
  });
  process.on('disconnect', () => stop('disconnect')); // the primary is gone: nobody routes to us any more
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return;
    const msg = m as ToWorker;
    if (msg.type === 'zonegate:stop') stop(msg.signal);
    else if (msg.type === 'zonegate:signal') process.emit(msg.signal as 'SIGHUP', msg.signal);
    else if (msg.type === 'zonegate:metrics')
      void zg.metrics.registry.getMetricsAsJSON().then((metrics) => process.send?.({ type: 'zonegate:metrics', id: msg.id, metrics } satisfies ToPrimary));
  });
}

/** True in a process forked by runPrimary. */
export const isWorker = (): boolean => cluster.isWorker;
