/**
 * `zonegate check`: decides one CheckRequest given in proto3 JSON, exactly as the gRPC server
 * would, and prints {"allowed", "reason", "checkResponse"[, "steps"]}.
 */
import { readFileSync } from 'node:fs';
import type { JsonValue } from '@bufbuild/protobuf';
import { validateConfig } from '../config/preflight.js';
import { checkMethod } from '../envoy/proto.js';
import { checkRequestJsonToBinary, checkResponseBinaryToJson } from '../envoy/json.js';
import { decide } from '../envoy/service.js';
import { toCheckResponse } from '../envoy/response.js';
import { REASONS } from '../errors.js';
import { buildDecisionState } from '../main.js';
import { TrustManager } from '../federation/manager.js';
import { LocalIdentity } from '../federation/identity.js';
import { createCarriedPhase } from '../identity/phase.js';
import { UsageError } from './errors.js';

export interface CheckOptions {
  config?: string;
  request: string;
  explain?: boolean;
}

function readRequest(source: string): JsonValue {
  let text: string;
  try {
    text = readFileSync(source === '-' ? 0 : source, 'utf8');
  } catch (err) {
    throw new UsageError(`check: cannot read request ${source}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new UsageError(`check: request ${source} is not JSON: ${(err as Error).message}`);
  }
}

/** Runs the check and returns the exit code (0 allowed, 1 denied). */
export async function runCheck(opts: CheckOptions, out: (s: string) => void): Promise<number> {
  const loaded = await validateConfig(opts.config);
  const json = readRequest(opts.request);
  let bytes: Uint8Array;
  try {
    bytes = checkRequestJsonToBinary(json);
  } catch (err) {
    throw new UsageError(`check: request is not a valid CheckRequest: ${(err as Error).message}`);
  }
  const method = checkMethod();
  // Remote trust sources are fetched once, as the server would at startup.
  const trust = new TrustManager(loaded.config);
  await trust.start();
  trust.stop();
  const identity = loaded.config.identity ? new LocalIdentity(loaded.config.identity.cert, loaded.config.identity.key) : undefined;
  const carried = createCarriedPhase(loaded.config, trust.bundles, identity);
  await carried?.start();
  carried?.stop();
  const state = buildDecisionState(loaded.config, trust, identity, carried);
  const outcome = decide(state, method.requestDeserialize(Buffer.from(bytes)), opts.explain);
  const error = !outcome.allowed && REASONS[outcome.reason].kind === 'error';
  const result: Record<string, unknown> = {
    allowed: outcome.allowed,
    reason: outcome.allowed ? null : outcome.reason,
    // An error is not a verdict: the server answers it with a gRPC error status, not a CheckResponse.
    checkResponse: error
      ? null
      : checkResponseBinaryToJson(method.responseSerialize(toCheckResponse(outcome, state.response))),
  };
  if (error) result.error = { grpcCode: REASONS[outcome.reason].grpc, message: outcome.message };
  if (opts.explain) result.steps = outcome.steps;
  out(JSON.stringify(result, null, 2));
  return outcome.allowed ? 0 : 1;
}
