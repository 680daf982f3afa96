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

/**
 * How a transport answers one Check (the grpc-js handler below, the node:http2 transport in
 * h2.ts). `ctx` is the transport's own per-call value, passed back as it came.
 */
export interface CheckReplies<C> {
  /** A verdict: the CheckResponse bytes written by response.ts, sent as they are. */
  verdict(ctx: C, response: Buffer): void;
  /** No verdict: an error status, REASONS[code].grpc, carrying the reason code (x-zonegate-reason). */
  error(ctx: C, code: ReasonCode, message: string): void;
}

/** One Check, decoded: `deadline` in ms since the epoch (Infinity: none). */
export type Check<C> = (request: unknown, deadline: number, ctx: C) => void;

/**
 * Admission: load shedding before any work. Past maxInFlight waiting checks (new tokens'
 * signature checks queue on the thread pool) a check is answered UNAVAILABLE at once, and a call
 * whose deadline has already passed (it waited in the connection's queue) is not decided at all:
 * its answer would reach an Envoy that has stopped waiting. Both are errors, so Envoy with
 * failure_mode_allow: false answers status_on_error; never an allow.
 */
function admission(metrics: Metrics, maxInFlight: number) {
  let inFlight = 0;
  return {
    /** The reason to refuse a check now, and its message; undefined to admit it. */
    refuse(deadline: number): [ReasonCode, string] | undefined {
      if (inFlight >= maxInFlight) return ['ERR_OVERLOADED', `${inFlight} checks in flight (server.grpc.maxInFlight)`];
      if (deadline !== Infinity && deadline <= Date.now()) return ['ERR_DEADLINE_EXCEEDED', 'deadline passed before the check started'];
      return undefined;
    },
    enter(): void {
      inFlight += 1;
      metrics.inFlight.inc();
    },
    leave(): void {
      inFlight -= 1;
      metrics.inFlight.dec();
    },
  };
}

/**
 * The transport-neutral Check: admission, preparation off the event loop, the decision, the
 * answer and its accounting. Both transports decode the request (decode.ts) and call the result.
 */
export function checker<C>(deps: CheckDeps, reply: CheckReplies<C>): Check<C> {
  const { log, readiness } = deps;
  const gate = admission(deps.metrics, deps.maxInFlight ?? Infinity);
  const record = checkRecorder(deps.metrics, log);

  /** The decision and its answer, once any preparation is done; releases the admission. */
  const answer = (ctx: C, request: unknown, state: DecisionState | undefined, req: AuthRequest | undefined, started: bigint) => {
    try {
      if (!state) {
        record.refused('ERR_NOT_READY', started);
        reply.error(ctx, 'ERR_NOT_READY', readiness.reason);
        return;
      }
      const outcome = state.pipeline.authorize(req ?? toAuthRequest(request, state.limits));
      if (!outcome.allowed && REASONS[outcome.reason].kind === 'error') reply.error(ctx, outcome.reason, outcome.message);
      else reply.verdict(ctx, toCheckResponse(outcome, state.response));
      record.outcome(outcome, started);
    } catch (err) {
      log.error({ err }, 'check: internal failure');
      record.refused('ERR_INTERNAL', started);
      reply.error(ctx, 'ERR_INTERNAL', 'internal failure');
    } finally {
      gate.leave();
    }
  };

  return (request, deadline, ctx) => {
    const started = process.hrtime.bigint();
    const refused = gate.refuse(deadline);
    if (refused) {
      record.refused(refused[0], started);
      reply.error(ctx, refused[0], refused[1]);
      return;
    }
    gate.enter();
    // Not readiness: while draining, health says NOT_SERVING but calls are still answered.
    // Read once: a call decided after an await still uses the state it started with.
    const state = deps.state();
    let req: AuthRequest | undefined;
    let pending: Promise<void> | undefined;
    if (state) {
      try {
        req = toAuthRequest(request, state.limits);
        pending = state.prepare?.(req);
      } catch {
        pending = undefined; // the synchronous path (answer) decides (and reports) it
      }
    }
    // A failed preparation leaves the cache cold: the pipeline then verifies synchronously.
    if (pending) {
      const go = () => answer(ctx, request, state, req, started);
      pending.then(go, go);
    } else answer(ctx, request, state, req, started);
  };
}

/** grpc-js's answers: a verdict's bytes go out as they are (server.ts's codec), an error as a status. */
const GRPC_JS_REPLIES: CheckReplies<grpc.sendUnaryData<unknown>> = {
  verdict: (callback, response) => callback(null, response),
  error: (callback, code, message) => callback(errorStatus(code, message)),
};

/** The Authorization service implementation for grpc-js. */
export function checkHandlers(deps: CheckDeps): grpc.UntypedServiceImplementation {
  const check = checker(deps, GRPC_JS_REPLIES);
  return {
    Check(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const deadline = call.getDeadline();
      check(call.request, deadline === Infinity ? Infinity : +deadline, callback);
    },
  };
}
