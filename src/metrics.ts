/**
 * Prometheus metrics (prom-client), one registry per server instance so tests stay isolated.
 *
 * With `serve --workers N` the primary's /metrics merges every worker's registry (src/cluster.ts),
 * and each metric says how, by what it means (prom-client's `aggregator`, applied per label set):
 * - counters and histograms count events each worker saw on its own: `sum`;
 * - a gauge of work in progress (checks in flight): `sum`;
 * - a gauge of state every worker holds for itself (the last reload, each trust domain's bundle)
 *   reports the worst worker, so that an alert on it fires while any worker is affected: `min`
 *   for "successful" and counts that should be there, `max` for "stale" and ages;
 * - process and Node.js runtime metrics belong to one process (its CPU, heap, event loop, file
 *   descriptors): they carry `worker="<id>"` (the primary's own: `worker="primary"`), each label
 *   set holds one process's value (`first`), and `sum without (worker)` in a query adds them up.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Aggregator } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly decisions: Counter<'result' | 'reason'>;
  readonly checkSeconds: Histogram<'result'>;
  readonly inFlight: Gauge;
  readonly errors: Counter<'reason'>;
  readonly reloads: Counter<'result'>;
  readonly lastSuccess: Gauge;
}

/**
 * Registers prom-client's process and Node.js metrics (`zonegate_process_*`, `zonegate_nodejs_*`).
 * `worker` (serve --workers N) labels them with the process they describe, so merging the
 * workers' registries keeps one series per process instead of adding up, say, event-loop lags.
 */
export function registerProcessMetrics(registry: Registry, worker?: string): void {
  const before = new Set(registry.getMetricsAsArray());
  collectDefaultMetrics({ register: registry, prefix: 'zonegate_', ...(worker !== undefined ? { labels: { worker } } : {}) });
  if (worker === undefined) return;
  // one process per label set: whatever the metric, the merge keeps that process's value
  for (const m of registry.getMetricsAsArray()) if (!before.has(m)) (m as { aggregator: Aggregator }).aggregator = 'first';
}

/**
 * Creates the registry and the metrics zonegate exports. `worker`: the id of a worker of
 * `serve --workers N`, for its process metrics' label.
 */
export function createMetrics(withDefaults = true, worker?: string): Metrics {
  const registry = new Registry();
  if (withDefaults) registerProcessMetrics(registry, worker);
  const metrics: Metrics = {
    registry,
    decisions: new Counter({
      name: 'zonegate_decisions_total',
      help: 'Check decisions by result (allow, deny) and reason code (empty for allow)',
      labelNames: ['result', 'reason'],
      registers: [registry],
      aggregator: 'sum',
    }),
    checkSeconds: new Histogram({
      name: 'zonegate_check_duration_seconds',
      help: 'Time spent deciding one Check, from request decoded to response handed to gRPC',
      labelNames: ['result'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers: [registry],
      aggregator: 'sum',
    }),
    inFlight: new Gauge({
      name: 'zonegate_checks_in_flight',
      help: 'Check calls being decided right now',
      registers: [registry],
      // every worker's calls are in flight at once: the server's total
      aggregator: 'sum',
    }),
    errors: new Counter({
      name: 'zonegate_check_errors_total',
      help: 'Check calls answered with an error status (never an allow) by reason code',
      labelNames: ['reason'],
      registers: [registry],
      aggregator: 'sum',
    }),
    reloads: new Counter({
      name: 'zonegate_config_reload_total',
      help: 'Config reloads by result (ok: swapped in; error: refused, the running config kept); with serve --workers N each worker reloads, and counts, on its own',
      labelNames: ['result'],
      registers: [registry],
      aggregator: 'sum',
    }),
    lastSuccess: new Gauge({
      name: 'zonegate_config_last_reload_successful',
      help: '1 when the last config reload succeeded (or none was tried), 0 when it was refused (serve --workers N: by any worker)',
      registers: [registry],
      // 0 while any worker runs a config it was refused, not N minus the number of workers that failed
      aggregator: 'min',
    }),
  };
  metrics.lastSuccess.set(1);
  return metrics;
}
