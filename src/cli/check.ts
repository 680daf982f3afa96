/**
 * `zonegate check`: decides one CheckRequest given in proto3 JSON, exactly as the gRPC server
 * would, and prints {"allowed", "reason", "checkResponse"[, "steps"]}.
 */
import { readFileSync } from 'node:fs';
import type { JsonValue } from '@bufbuild/protobuf';
import { validateConfig } from '../config/preflight.js';
import { buildDecisionState } from '../pipeline/state.js';
import { TrustManager } from '../federation/manager.js';
import { LocalIdentity } from '../svid/local-identity.js';
import { createCarriedPhase } from '../identity/phase.js';
import { UsageError } from './errors.js';
import { explainCheck } from '../envoy/explain.js';
import { ZonegateError } from '../errors.js';

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
  // Remote trust sources are fetched once, as the server would at startup.
  const trust = new TrustManager(loaded.config);
  await trust.start();
  trust.stop();
  const identity = loaded.config.identity ? new LocalIdentity(loaded.config.identity.cert, loaded.config.identity.key) : undefined;
  const carried = createCarriedPhase(loaded.config, trust.bundles, identity);
  await carried?.start();
  carried?.stop();
  const state = buildDecisionState(loaded.config, trust, identity, carried);
  let decided: Awaited<ReturnType<typeof explainCheck>>;
  try {
    decided = await explainCheck(state, json, opts.explain === true);
  } catch (err) {
    if (err instanceof ZonegateError && err.code === 'ERR_REQUEST_MALFORMED') throw new UsageError(`check: ${err.message}`);
    throw err;
  }
  const { outcome, result } = decided;
  out(JSON.stringify(result, null, 2));
  return outcome.allowed ? 0 : 1;
}
