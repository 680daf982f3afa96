/**
 * The CheckResponse writer (src/envoy/response.ts on wire.ts) against independent encoders: for
 * every outcome, its bytes are exactly what protobufjs (proto-loader) writes for the response
 * this file expects, and @bufbuild/protobuf reads them as that response. The expectation below is
 * the specification, written here and nowhere else in the tests: which fields an allow and a deny
 * carry, headers that overwrite, and the dynamic_metadata keys in their order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkResponseBinaryToJson } from '../../src/envoy/json.js';
import { checkMethod } from '../../src/envoy/proto.js';
import { toCheckResponse } from '../../src/envoy/response.js';
import { REASONS, type ReasonCode } from '../../src/errors.js';
import type { Outcome } from '../../src/request/types.js';
import { DenySchema, type DenyConfig } from '../../src/rewrite/schema.js';

const denyOptions = (reasonHeader: string) => DenySchema.parse({ reasonHeader });
const m = checkMethod();

type Value = { stringValue: string } | { boolValue: boolean };
const sv = (s: string): Value => ({ stringValue: s });
const overwrite = (key: string, value: string) => ({ header: { key, value }, append: { value: false } });

/** The CheckResponse an outcome must produce, in proto-loader's keepCase shape. */
function expected(o: Outcome, opts: DenyConfig): Record<string, unknown> {
  const fields: Record<string, Value> = { decision_id: sv(o.id), result: sv(o.allowed ? 'allow' : 'deny') };
  if (o.peer) {
    fields.peer = sv(o.peer.principal);
    if (o.peer.trustDomain) fields.peer_trust_domain = sv(o.peer.trustDomain);
    fields.peer_verified = { boolValue: o.peer.verified };
    if (o.peer.canonical) {
      fields.zone = sv(o.peer.canonical.zone);
      if (o.peer.canonical.namespace) fields.namespace = sv(o.peer.canonical.namespace);
      if (o.peer.canonical.service) fields.service = sv(o.peer.canonical.service);
    }
  }
  if (o.rule) fields.rule = sv(o.rule);
  fields.direction = sv(o.direction);
  if (o.carried) fields.actor = sv(o.carried.actor);
  if (o.allowed) {
    if (o.destination) fields.destination = sv(o.destination);
    if (o.rewrite) fields.rewrite = sv(o.rewrite);
    if (o.dryRun) {
      fields.dry_run_reason = sv(o.dryRun.reason);
      if (o.dryRun.rule) fields.dry_run_rule = sv(o.dryRun.rule);
    }
    return {
      status: { code: 0 },
      ok_response: { headers: o.headersToSet.map((h) => overwrite(h.name, h.value)), headers_to_remove: o.headersToRemove },
      dynamic_metadata: { fields },
    };
  }
  fields.reason = sv(o.reason);
  // what rewrite/deny.ts documents: the status by kind of reason, the reason header, the JSON body
  const status = REASONS[o.reason].http === 401 ? opts.status.unauthenticated : opts.status.forbidden;
  const body = opts.body ? JSON.stringify(opts.message ? { reason: o.reason, message: REASONS[o.reason].summary, decisionId: o.id } : { reason: o.reason, decisionId: o.id }) : '';
  const headers = [...(body ? [overwrite('content-type', 'application/json')] : []), ...(opts.reasonHeader ? [overwrite(opts.reasonHeader, o.reason)] : [])];
  return {
    status: { code: REASONS[o.reason].grpc, message: o.reason },
    denied_response: { status: { code: status }, headers, body },
    dynamic_metadata: { fields },
  };
}

/** The writer's bytes are protobufjs' bytes for the expected response. */
function same(o: Outcome, opts: DenyConfig): Buffer {
  const bytes = toCheckResponse(o, opts);
  const want = m.responseSerialize(expected(o, opts));
  if (!bytes.equals(want)) expect(m.responseDeserialize(bytes)).toEqual(m.responseDeserialize(want)); // shows the difference
  expect(bytes.equals(want)).toBe(true);
  return bytes;
}

/** @bufbuild/protobuf's reading of the bytes, as proto3 JSON (what `zonegate check` prints). */
const asJson = (bytes: Buffer) => checkResponseBinaryToJson(bytes) as Record<string, any>;

const peer = { principal: 'spiffe://zone-a.test/ns/shop/sa/frontend', trustDomain: 'zone-a.test', verified: true, source: 'certificate' as const };

describe('toCheckResponse', () => {
  const str = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.constant(''));
  const denyReasons = (Object.keys(REASONS) as ReasonCode[]).filter((r) => REASONS[r].kind !== 'error');
  const peerArb = fc.record(
    {
      principal: str,
      trustDomain: fc.option(str, { nil: undefined }),
      verified: fc.boolean(),
      source: fc.constant('certificate' as const),
      canonical: fc.option(fc.record({ zone: str, namespace: fc.option(str, { nil: undefined }), service: fc.option(str, { nil: undefined }), vars: fc.constant({}) }), { nil: undefined }),
    },
    { requiredKeys: ['principal', 'verified', 'source'] },
  );
  const common = {
    id: str,
    direction: fc.constantFrom('ingress', 'egress'),
    peer: fc.option(peerArb, { nil: undefined }),
    carried: fc.option(fc.record({ actor: str, actors: fc.constant([]) }), { nil: undefined }),
    rule: fc.option(str, { nil: undefined }),
    steps: fc.constant([]),
  };
  const allow = fc.record(
    {
      ...common,
      allowed: fc.constant(true),
      headersToSet: fc.array(fc.record({ name: str, value: str }), { maxLength: 12 }),
      headersToRemove: fc.array(str, { maxLength: 4 }),
      destination: fc.option(str, { nil: undefined }),
      rewrite: fc.option(fc.constantFrom('headers', 'jwt', 'hmac', 'basic', 'passthrough'), { nil: undefined }),
      dryRun: fc.option(fc.record({ reason: fc.constantFrom(...denyReasons), rule: fc.option(str, { nil: undefined }) }, { requiredKeys: ['reason'] }), { nil: undefined }),
    },
    { requiredKeys: ['id', 'direction', 'allowed', 'headersToSet', 'headersToRemove', 'steps'] },
  );
  const deny = fc.record(
    { ...common, allowed: fc.constant(false), reason: fc.constantFrom(...denyReasons), message: str },
    { requiredKeys: ['id', 'direction', 'allowed', 'reason', 'message', 'steps'] },
  );
  const options = fc.record({
    reasonHeader: fc.constantFrom('', 'x-zonegate-reason'),
    body: fc.boolean(),
    message: fc.boolean(),
    unauthenticated: fc.constantFrom(401, 403, 429),
  }).map(({ reasonHeader, body, message, unauthenticated }) => DenySchema.parse({ reasonHeader, body, message, status: { unauthenticated } }));

  it('writes, byte for byte, what protobufjs writes for the expected response', () => {
    fc.assert(
      fc.property(fc.oneof(allow, deny), options, (o, opts) => {
        same(o as unknown as Outcome, opts);
      }),
      { seed: 11, numRuns: 1000 },
    );
  });

  it('every deny reason, with and without a peer; @bufbuild/protobuf reads an overwrite and the metadata', () => {
    for (const reason of Object.keys(REASONS) as ReasonCode[]) {
      if (REASONS[reason].kind === 'error') continue;
      const d = { allowed: false, id: 'req-2', direction: 'egress', reason, message: 'no', steps: [] } as unknown as Outcome;
      same(d, denyOptions('x-zonegate-reason'));
      const json = asJson(same({ ...d, peer } as unknown as Outcome, denyOptions('')));
      expect(json.status).toEqual({ code: REASONS[reason].grpc, message: reason });
      expect(json.dynamicMetadata).toMatchObject({ reason, peer: peer.principal, peer_verified: true, result: 'deny' });
    }
    const a = {
      allowed: true, id: 'req-1', direction: 'ingress', peer, rule: 'frontend-calls-api', steps: [],
      carried: { actor: 'alice', actors: ['spiffe://zone-b.test/x'], issuer: peer.principal },
      headersToSet: [{ name: 'x-zonegate-peer', value: peer.principal }, { name: 'x-zonegate-decision-id', value: 'ü-'.repeat(100) }],
      headersToRemove: ['x-zonegate-actor', ''],
    } as unknown as Outcome;
    const json = asJson(same(a, denyOptions('x-zonegate-reason')));
    expect(json.okResponse.headers[0]).toEqual({ header: { key: 'x-zonegate-peer', value: peer.principal }, append: false });
    expect(json.okResponse.headersToRemove).toEqual(['x-zonegate-actor', '']);
    expect(json.dynamicMetadata).toEqual({ decision_id: 'req-1', result: 'allow', peer: peer.principal, peer_trust_domain: 'zone-a.test', peer_verified: true, rule: 'frontend-calls-api', direction: 'ingress', actor: 'alice' });
  });

  it('a response larger than the shared buffer is written whole into a larger one, and the next fits the shared one again', () => {
    for (const size of [70_000, 300_000, 1_200_000]) {
      const o = { allowed: true, id: 'r', direction: 'ingress', headersToSet: [{ name: 'x', value: 'v'.repeat(size) }], headersToRemove: [], steps: [] } as unknown as Outcome;
      expect(same(o, denyOptions('')).length).toBeGreaterThan(size);
    }
    same({ allowed: true, id: 'r', direction: 'ingress', headersToSet: [], headersToRemove: [], steps: [] } as unknown as Outcome, denyOptions(''));
  });

  it('the 64 KiB edge: responses just under, at and over it, ending in short, long, ASCII and non-ASCII strings', () => {
    const allowWith = (headersToSet: { name: string; value: string }[], id = 'r') =>
      ({ allowed: true, id, direction: 'ingress', headersToSet, headersToRemove: [], steps: [] }) as unknown as Outcome;
    const padded = (pad: number, tail: string) => allowWith([{ name: 'x', value: 'v'.repeat(pad) }], tail);
    // a padding header brings the response to the edge; the decision id then straddles it or not
    for (const tail of ['', 'é', 'aé', 'ü'.repeat(30), 'a'.repeat(63), 'é'.repeat(65), 'a'.repeat(200)]) {
      const near = 65_536 - toCheckResponse(padded(60_000, tail), denyOptions('')).length + 60_000;
      const sizes = new Set<number>();
      for (let d = -8; d <= 8; d++) sizes.add(same(padded(near + d, tail), denyOptions('')).length);
      expect([...sizes].sort((x, y) => x - y)).toEqual(Array.from({ length: 17 }, (_, i) => 65_528 + i));
    }
    // many short strings past the edge, each written in JS rather than by buf.write
    const many = Array.from({ length: 4_000 }, (_, i) => ({ name: `x-h${i}`, value: i % 3 ? `v${i}` : `é${i}` }));
    expect(same(allowWith(many), denyOptions('')).length).toBeGreaterThan(65_536);
  });
});
