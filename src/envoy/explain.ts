/**
 * One decision with its steps, as `zonegate check --explain` prints it and as the ops server's
 * POST /explain answers it (zonegate explain): {"allowed", "reason", "checkResponse", "steps"}.
 * The ops endpoint decides with the live trust material, and what it returns never carries a
 * secret: header values other than the identity headers (minted and re-issued tokens, Basic
 * credentials, HMAC proofs) are replaced by a SHA-256 prefix.
 */
import type { JsonValue } from '@bufbuild/protobuf';
import type { Config } from '../config/schema.js';
import { checkRequestJsonToBinary, checkResponseBinaryToJson } from './json.js';
import { decodeCheckRequest } from './decode.js';
import { toAuthRequest } from './request.js';
import { toCheckResponse } from './response.js';
import { decidePrepared, type DecisionState } from '../pipeline/state.js';
import { REASONS, ZonegateError } from '../errors.js';
import { sha256 } from '../hash.js';
import type { Outcome } from '../request/types.js';

/**
 * Decides one CheckRequest in proto3 JSON; the result as `check` prints it. A request that is not
 * a CheckRequest rejects with ZonegateError ERR_REQUEST_MALFORMED (POST /explain: 400).
 */
export async function explainCheck(state: DecisionState, json: JsonValue, explain = true): Promise<{ outcome: Outcome; result: Record<string, unknown> }> {
  let bytes: Uint8Array;
  try {
    bytes = checkRequestJsonToBinary(json);
  } catch (err) {
    throw new ZonegateError('ERR_REQUEST_MALFORMED', `request is not a valid CheckRequest: ${(err as Error).message}`, { cause: err });
  }
  // the server's own decoder and encoder, so what is shown is what the server would send
  // (prepared as Check prepares: on a serving process no signature or password hash is checked on the event loop)
  const outcome = await decidePrepared(state, toAuthRequest(decodeCheckRequest(Buffer.from(bytes)), state.limits), explain);
  const error = !outcome.allowed && REASONS[outcome.reason].kind === 'error';
  const result: Record<string, unknown> = {
    allowed: outcome.allowed,
    reason: outcome.allowed ? null : outcome.reason,
    // An error is not a verdict: the server answers it with a gRPC error status, not a CheckResponse.
    checkResponse: error ? null : checkResponseBinaryToJson(toCheckResponse(outcome, state.response)),
  };
  if (error) result.error = { grpcCode: REASONS[outcome.reason].grpc, message: outcome.message };
  if (explain) result.steps = outcome.steps;
  return { outcome, result };
}

/** The headers whose values are identities, not secrets: everything else is redacted. */
export function identityHeaders(c: Config): Set<string> {
  const h = c.upstream.headers as Record<string, string>;
  return new Set([...Object.values(h), c.deny.reasonHeader].filter((n) => n !== '').map((n) => n.toLowerCase()));
}

/** Replaces every header value not in `keep` (at any depth of a proto3 JSON CheckResponse) by its hash prefix. */
export function redactHeaders(value: unknown, keep: ReadonlySet<string>): unknown {
  if (Array.isArray(value)) return value.map((v) => redactHeaders(v, keep));
  if (value === null || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  if (typeof o.key === 'string' && ('value' in o || 'rawValue' in o)) {
    if (keep.has(o.key.toLowerCase())) return o;
    const raw = typeof o.value === 'string' ? o.value : typeof o.rawValue === 'string' ? Buffer.from(o.rawValue, 'base64').toString('latin1') : '';
    const { rawValue: _dropped, ...rest } = o;
    return { ...rest, value: `<redacted sha256:${sha256(raw, 'hex').slice(0, 16)}>` };
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, redactHeaders(v, keep)]));
}
