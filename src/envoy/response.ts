/**
 * Outcome → CheckResponse, in the keepCase plain-object shape grpc-js serializes.
 *
 * Header fields are chosen so an identity header always overwrites a client's copy on every
 * Envoy from 1.26 on: `append` is set explicitly to false and `append_action` is left unset.
 * Envoy through 1.36 reads only `append` (false → setCopy, i.e. overwrite); Envoy 1.37 briefly
 * honoured `append_action` with an unset `append` meaning "append" (envoyproxy/envoy #43310,
 * reverted in #43442): an explicit `append: false` overwrites there too, and setting both fields
 * would be rejected as a conflict. Envoy applies `headers_to_remove` after the sets, so the
 * pipeline never lists a header it sets there.
 */
import { REASONS } from '../errors.js';
import type { Denied, HeaderToSet, Outcome } from '../pipeline/types.js';
import { denyResponse, type DenyOptions } from '../rewrite/deny.js';

/** The `deny` config: status, reason header, JSON body. */
export type ResponseOptions = DenyOptions;

// protobufjs defines the well-known types with camelCase field names even under keepCase.
type Value = { stringValue: string } | { boolValue: boolean };
const sv = (s: string): Value => ({ stringValue: s });

const overwrite = (name: string, value: string) => ({ header: { key: name, value }, append: { value: false } });

/**
 * dynamic_metadata (a google.protobuf.Struct) for Envoy's access log and rate limiting, on allow
 * and deny: `%DYNAMIC_METADATA(envoy.filters.http.ext_authz:zone)%`. Flat keys, so a rate limit
 * descriptor or a log format can name each one directly.
 */
function metadata(outcome: Outcome): { fields: Record<string, Value> } {
  const fields: Record<string, Value> = {
    decision_id: sv(outcome.id),
    result: sv(outcome.allowed ? 'allow' : 'deny'),
  };
  if (outcome.peer) {
    fields.peer = sv(outcome.peer.principal);
    if (outcome.peer.trustDomain) fields.peer_trust_domain = sv(outcome.peer.trustDomain);
    fields.peer_verified = { boolValue: outcome.peer.verified };
    const c = outcome.peer.canonical;
    if (c) {
      fields.zone = sv(c.zone);
      if (c.namespace) fields.namespace = sv(c.namespace);
      if (c.service) fields.service = sv(c.service);
    }
  }
  if (outcome.rule) fields.rule = sv(outcome.rule);
  fields.direction = sv(outcome.direction);
  if (outcome.carried) fields.actor = sv(outcome.carried.actor);
  if (outcome.allowed && outcome.destination) fields.destination = sv(outcome.destination);
  if (outcome.allowed && outcome.rewrite) fields.rewrite = sv(outcome.rewrite);
  if (outcome.allowed && outcome.dryRun) {
    fields.dry_run_reason = sv(outcome.dryRun.reason);
    if (outcome.dryRun.rule) fields.dry_run_rule = sv(outcome.dryRun.rule);
  }
  if (!outcome.allowed) fields.reason = sv(outcome.reason);
  return { fields };
}

function denied(outcome: Denied, opts: ResponseOptions) {
  const info = REASONS[outcome.reason];
  const r = denyResponse(outcome.reason, outcome.id, opts);
  return {
    status: { code: info.grpc, message: outcome.reason },
    denied_response: {
      status: { code: r.status },
      headers: r.headers.map(([name, value]) => overwrite(name, value)),
      body: r.body,
    },
    dynamic_metadata: metadata(outcome),
  };
}

/** Builds the CheckResponse for an outcome. Only for verdicts: errors never reach here. */
export function toCheckResponse(outcome: Outcome, opts: ResponseOptions): object {
  if (!outcome.allowed) return denied(outcome, opts);
  return {
    status: { code: 0 },
    ok_response: {
      headers: outcome.headersToSet.map((h: HeaderToSet) => overwrite(h.name, h.value)),
      headers_to_remove: outcome.headersToRemove,
    },
    dynamic_metadata: metadata(outcome),
  };
}
