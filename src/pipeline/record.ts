/**
 * What every entry point records for one check, the same way: the gRPC Check (src/envoy/service.ts),
 * the HTTP mode (src/http/authz.ts) and POST /explain (src/main.ts). A verdict counts in zonegate_decisions_total and writes
 * one decision line at info; a check zonegate could not decide counts in
 * zonegate_check_errors_total (an error outcome is also logged as a warning); every check, either
 * way, is timed in zonegate_check_duration_seconds from the moment it came in.
 */
import { REASONS, type ReasonCode } from '../errors.js';
import { decisionLogger, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Outcome } from '../request/types.js';

export interface CheckRecorder {
  /** A decided outcome; `started` is process.hrtime.bigint() when the check came in. */
  outcome(outcome: Outcome, started: bigint): void;
  /** A check answered without an outcome: not ready, shed, or an internal failure. */
  refused(reason: ReasonCode, started: bigint): void;
}

/** `bindings` are added to every line (the HTTP mode's `mode: "http"`, POST /explain's `mode: "explain"`). */
export function checkRecorder(metrics: Metrics, log: Logger, bindings?: Record<string, string>): CheckRecorder {
  const warnings = bindings ? log.child(bindings) : log;
  const decisions = decisionLogger(warnings);
  // Labelled children looked up once, not by label object on every check.
  const seconds = { allow: metrics.checkSeconds.labels('allow'), deny: metrics.checkSeconds.labels('deny'), error: metrics.checkSeconds.labels('error') };
  const counted = new Map<string, { inc(): void }>();
  const countDecision = (result: string, reason: string) => {
    const key = `${result} ${reason}`;
    let c = counted.get(key);
    if (!c) counted.set(key, (c = metrics.decisions.labels(result, reason)));
    c.inc();
  };
  return {
    outcome(outcome, started) {
      const ns = Number(process.hrtime.bigint() - started);
      if (!outcome.allowed && REASONS[outcome.reason].kind === 'error') {
        metrics.errors.inc({ reason: outcome.reason });
        seconds.error.observe(ns / 1e9);
        warnings.warn({ decisionId: outcome.id, reason: outcome.reason, msg: outcome.message }, 'check failed');
        return;
      }
      const result = outcome.allowed ? 'allow' : 'deny';
      countDecision(result, outcome.allowed ? '' : outcome.reason);
      seconds[result].observe(ns / 1e9);
      if (decisions.isLevelEnabled('info'))
        decisions.info(
          {
            decisionId: outcome.id,
            result,
            reason: outcome.allowed ? null : outcome.reason,
            peer: outcome.peer?.principal ?? null,
            rule: outcome.rule ?? null,
            latencyUs: Math.round(ns / 1000),
          },
          'decision',
        );
    },
    refused(reason, started) {
      metrics.errors.inc({ reason });
      seconds.error.observe(Number(process.hrtime.bigint() - started) / 1e9);
    },
  };
}
