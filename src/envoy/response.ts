/**
 * Outcome → CheckResponse bytes: the one place that says what zonegate answers Envoy. The gRPC
 * handler sends these bytes as they are; `zonegate check` and POST /explain decode the same bytes
 * to proto3 JSON for printing, so what they show is what the server sends.
 *
 * Header fields are chosen so an identity header always overwrites a client's copy on every
 * Envoy from 1.26 on: `append` is set explicitly to false and `append_action` is left unset.
 * Envoy through 1.36 reads only `append` (false → setCopy, i.e. overwrite); Envoy 1.37 briefly
 * honoured `append_action` with an unset `append` meaning "append" (envoyproxy/envoy #43310,
 * reverted in #43442): an explicit `append: false` overwrites there too, and setting both fields
 * would be rejected as a conflict. Envoy applies `headers_to_remove` after the sets, so the
 * pipeline never lists a header it sets there.
 *
 * Field numbers (envoy/service/auth/v3/external_auth.proto and the types it uses):
 * CheckResponse { status 1 (google.rpc.Status { code 1, message 2 }), denied_response 2,
 * ok_response 3, dynamic_metadata 4 (google.protobuf.Struct) };
 * DeniedHttpResponse { status 1 (HttpStatus { code 1 }), headers 2, body 3 };
 * OkHttpResponse { headers 2, headers_to_remove 5 };
 * HeaderValueOption { header 1 (HeaderValue { key 1, value 2 }), append 2 (BoolValue { value 1 }) };
 * Struct { fields 1 (map entry { key 1, value 2 (Value { string_value 3, bool_value 4 }) }) }.
 */
import { REASONS } from '../errors.js';
import type { Outcome } from '../request/types.js';
import { denyResponse } from '../rewrite/deny.js';
import type { DenyConfig } from '../rewrite/schema.js';
import { begin, bool, end, string, tag, uint, written } from './wire.js';

/** HeaderValueOption { header { key, value }, append { value: false } }: overwrite a client's copy. */
function overwrite(field: number, name: string, value: string): void {
  tag(field, 2);
  const at = begin();
  tag(1, 2);
  const h = begin();
  string(1, name);
  string(2, value);
  end(h);
  tag(2, 2);
  const b = begin();
  bool(1, false);
  end(b);
  end(at);
}

/** One Struct field (a map entry) whose Value is a string (3) or a bool (4). */
function field(key: string, v: string | boolean): void {
  tag(1, 2);
  const entry = begin();
  string(1, key);
  tag(2, 2);
  const at = begin();
  if (typeof v === 'string') string(3, v);
  else bool(4, v);
  end(at);
  end(entry);
}

/**
 * dynamic_metadata (a google.protobuf.Struct) for Envoy's access log and rate limiting, on allow
 * and deny: `%DYNAMIC_METADATA(envoy.filters.http.ext_authz:zone)%`. Flat keys, so a rate limit
 * descriptor or a log format can name each one directly (docs/rewrite.md lists them).
 */
function metadata(o: Outcome): void {
  tag(4, 2);
  const at = begin();
  field('decision_id', o.id);
  field('result', o.allowed ? 'allow' : 'deny');
  const peer = o.peer;
  if (peer) {
    field('peer', peer.principal);
    if (peer.trustDomain) field('peer_trust_domain', peer.trustDomain);
    field('peer_verified', peer.verified);
    const c = peer.canonical;
    if (c) {
      field('zone', c.zone);
      if (c.namespace) field('namespace', c.namespace);
      if (c.service) field('service', c.service);
    }
  }
  if (o.rule) field('rule', o.rule);
  field('direction', o.direction);
  if (o.carried) field('actor', o.carried.actor);
  if (o.allowed && o.destination) field('destination', o.destination);
  if (o.allowed && o.rewrite) field('rewrite', o.rewrite);
  if (o.allowed && o.dryRun) {
    field('dry_run_reason', o.dryRun.reason);
    if (o.dryRun.rule) field('dry_run_rule', o.dryRun.rule);
  }
  if (!o.allowed) field('reason', o.reason);
  end(at);
}

function writeResponse(o: Outcome, opts: DenyConfig): void {
  if (o.allowed) {
    tag(1, 2); // status { code: 0 }
    const st = begin();
    uint(1, 0);
    end(st);
    tag(3, 2);
    const ok = begin();
    for (const h of o.headersToSet) overwrite(2, h.name, h.value);
    for (const name of o.headersToRemove) string(5, name);
    end(ok);
  } else {
    const r = denyResponse(o.reason, o.id, opts);
    tag(1, 2);
    const st = begin();
    uint(1, REASONS[o.reason].grpc);
    string(2, o.reason);
    end(st);
    tag(2, 2);
    const denied = begin();
    tag(1, 2);
    const hs = begin();
    uint(1, r.status);
    end(hs);
    for (const [name, value] of r.headers) overwrite(2, name, value);
    string(3, r.body);
    end(denied);
  }
  metadata(o);
}

/** The CheckResponse of a verdict, encoded. Only for verdicts: errors never reach here (they are gRPC error statuses). */
export function toCheckResponse(outcome: Outcome, opts: DenyConfig): Buffer {
  return written(writeResponse, outcome, opts);
}
