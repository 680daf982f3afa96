/** Prometheus metrics (prom-client), one registry per server instance so tests stay isolated. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly decisions: Counter<'result' | 'reason'>;
  readonly checkSeconds: Histogram<'result'>;
  readonly inFlight: Gauge;
  readonly errors: Counter<'reason'>;
  readonly reloads: Counter<'result'>;
  readonly lastSuccess: Gauge;
}

/** Creates the registry and the metrics zonegate exports. */
export function createMetrics(withDefaults = true): Metrics {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'zonegate_' });
  const metrics: Metrics = {
    registry,
    decisions: new Counter({
      name: 'zonegate_decisions_total',
      help: 'Check decisions by result (allow, deny) and reason code (empty for allow)',
      labelNames: ['result', 'reason'],
      registers: [registry],
    }),
    checkSeconds: new Histogram({
      name: 'zonegate_check_duration_seconds',
      help: 'Time spent deciding one Check, from request decoded to response handed to gRPC',
      labelNames: ['result'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'zonegate_checks_in_flight',
      help: 'Check calls being decided right now',
      registers: [registry],
    }),
    errors: new Counter({
      name: 'zonegate_check_errors_total',
      help: 'Check calls answered with an error status (never an allow) by reason code',
      labelNames: ['reason'],
      registers: [registry],
    }),
    reloads: new Counter({
      name: 'zonegate_config_reload_total',
      help: 'Config reloads by result (ok: swapped in; error: refused, the running config kept)',
      labelNames: ['result'],
      registers: [registry],
    }),
    lastSuccess: new Gauge({
      name: 'zonegate_config_last_reload_successful',
      help: '1 when the last config reload succeeded (or none was tried), 0 when it was refused',
      registers: [registry],
    }),
  };
  metrics.lastSuccess.set(1);
  return metrics;
}
