/**
 * envoy.service.auth.v3.Authorization/Check: CheckRequest → AuthRequest → pipeline → CheckResponse.
 * A verdict (allow or deny) is an OK gRPC call carrying a CheckResponse. When zonegate cannot
 * decide, the call fails with an error status, which Envoy with `failure_mode_allow: false` turns
 * into a deny (with `status_on_error`): an internal failure is never an allow.
 */
import * as grpc from '@grpc/grpc-js';
import { REASONS, type ReasonCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { checkRecorder } from '../pipeline/record.js';
import type { DecisionState } from '../pipeline/state.js';
import type { AuthRequest } from '../request/types.js';
import { toAuthRequest } from './request.js';
import { toCheckResponse } from './response.js';
import type { Readiness } from '../readiness.js';

export interface CheckDeps {
  /** undefined until configuration and trust material are loaded. */
  readonly state: () => DecisionState | undefined;
  readonly readiness: Readiness;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Most checks in flight at once (server.grpc.maxInFlight); default: no bound. */
  readonly maxInFlight?: number;
}

function errorStatus(code: ReasonCode, message: string): grpc.ServiceError {
  const err = new Error(`${code}: ${message}`) as grpc.ServiceError;
  err.code = REASONS[code].grpc as unknown as grpc.status;
  err.details = `${code}: ${message}`;
  err.metadata = new grpc.Metadata();
  err.metadata.set('x-zonegate-reason', code);
  return err;
}

/** The Authorization service implementation. */
export function checkHandlers(deps: CheckDeps): grpc.UntypedServiceImplementation {
  const { metrics, log, readiness } = deps;
  const maxInFlight = deps.maxInFlight ?? Infinity;
  let inFlight = 0;
  /**
   * Load shedding, before any work: past maxInFlight waiting checks (new tokens' signature checks
   * queue on the thread pool) a check is answered UNAVAILABLE at once, and a call whose deadline
   * has already passed (it waited in the connection's queue) is not decided at all: its answer
   * would reach an Envoy that has stopped waiting. Both are errors, so Envoy with
   * failure_mode_allow: false answers status_on_error; never an allow.
   */
  const shed = (call: grpc.ServerUnaryCall<unknown, unknown>): ReasonCode | undefined => {
    if (inFlight >= maxInFlight) return 'ERR_OVERLOADED';
    const deadline = call.getDeadline();
    if (deadline !== Infinity && +deadline <= Date.now()) return 'ERR_DEADLINE_EXCEEDED';
    return undefined;
  };
  const record = checkRecorder(metrics, log);
  return {
    Check(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const started = process.hrtime.bigint();
      const refused = shed(call);
      if (refused) {
        record.refused(refused, started);
        callback(errorStatus(refused, refused === 'ERR_OVERLOADED' ? `${inFlight} checks in flight (server.grpc.maxInFlight)` : 'deadline passed before the check started'));
        return;
      }
      inFlight += 1;
      metrics.inFlight.inc();
      // Not readiness: while draining, health says NOT_SERVING but calls are still answered.
      // Read once: a call decided after an await still uses the state it started with.
      const state = deps.state();
      let req: AuthRequest | undefined;
      let pending: Promise<void> | undefined;
      if (state) {
        try {
          req = toAuthRequest(call.request, state.limits);
          pending = state.prepare?.(req);
        } catch {
          pending = undefined; // the synchronous path below decides (and reports) it
        }
      }
      const answer = () => {
        try {
          if (!state) {
            record.refused('ERR_NOT_READY', started);
            callback(errorStatus('ERR_NOT_READY', readiness.reason));
            return;
          }
          const outcome = state.pipeline.authorize(req ?? toAuthRequest(call.request, state.limits));
          if (!outcome.allowed && REASONS[outcome.reason].kind === 'error') callback(errorStatus(outcome.reason, outcome.message));
          // bytes written straight from the outcome; grpc-js sends them as they are (server.ts)
          else callback(null, toCheckResponse(outcome, state.response));
          record.outcome(outcome, started);
        } catch (err) {
          log.error({ err }, 'check: internal failure');
          record.refused('ERR_INTERNAL', started);
          callback(errorStatus('ERR_INTERNAL', 'internal failure'));
        } finally {
          inFlight -= 1;
          metrics.inFlight.dec();
        }
      };
      // A failed preparation leaves the cache cold: the pipeline then verifies synchronously.
      if (pending) pending.then(answer, answer);
      else answer();
    },
  };
}
