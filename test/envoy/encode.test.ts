/**
 * The direct CheckResponse encoder against protobufjs: every response zonegate builds decodes to
 * the same message from both encodings, and anything the encoder does not know makes it step
 * aside (undefined) instead of dropping a field.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkMethod } from '../../src/envoy/proto.js';
import { encodeCheckResponse, encodeOutcome } from '../../src/envoy/encode.js';
import { toCheckResponse } from '../../src/envoy/response.js';
import { REASONS, type ReasonCode } from '../../src/errors.js';
import type { Outcome } from '../../src/pipeline/types.js';
import { DenySchema } from '../../src/rewrite/schema.js';

const denyOptions = (reasonHeader: string) => DenySchema.parse({ reasonHeader });

const m = checkMethod();
const same = (r: object) => {
  const fast = encodeCheckResponse(r);
  expect(fast).toBeInstanceOf(Buffer);
  expect(m.responseDeserialize(fast!)).toEqual(m.responseDeserialize(m.responseSerialize(r)));
  expect(fast!.length).toBe(m.responseSerialize(r).length);
};

const peer = { principal: 'spiffe://zone-a.test/ns/shop/sa/frontend', trustDomain: 'zone-a.test', verified: true, source: 'certificate' as const };

describe('encodeCheckResponse', () => {
  it('allow and deny responses as response.ts builds them', () => {
    const allow = {
      allowed: true,
      id: 'req-1',
      direction: 'ingress',
      peer,
      carried: { actor: 'alice', actors: ['spiffe://zone-b.test/x'], issuer: peer.principal },
      rule: 'frontend-calls-api',
      headersToSet: [{ name: 'x-zonegate-peer', value: peer.principal }, { name: 'x-zonegate-decision-id', value: 'ü-'.repeat(100) }],
      headersToRemove: ['x-zonegate-actor', ''],
      steps: [],
    } as unknown as Outcome;
    same(toCheckResponse(allow, denyOptions('x-zonegate-reason')));
    same(toCheckResponse({ ...allow, headersToSet: [], headersToRemove: [] } as unknown as Outcome, denyOptions('')));
    for (const reason of Object.keys(REASONS) as ReasonCode[]) {
      if (REASONS[reason].kind === 'error') continue;
      const deny = { allowed: false, id: 'req-2', direction: 'egress', reason, message: 'no', steps: [] } as unknown as Outcome;
      same(toCheckResponse(deny, denyOptions('x-zonegate-reason')));
      same(toCheckResponse({ ...deny, peer } as unknown as Outcome, denyOptions('')));
    }
  });

  it('arbitrary strings, lengths past one-byte prefixes, numbers and booleans in metadata', () => {
    const str = fc.string({ unit: 'binary', maxLength: 300 });
    fc.assert(
      fc.property(
        fc.array(fc.record({ key: str, value: str }), { maxLength: 30 }),
        fc.array(str, { maxLength: 5 }),
        fc.dictionary(fc.string({ maxLength: 20 }), fc.oneof(str.map((s) => ({ stringValue: s })), fc.boolean().map((b) => ({ boolValue: b })), fc.double({ noNaN: true }).map((n) => ({ numberValue: n })))),
        fc.integer({ min: 0, max: 16 }),
        (headers, remove, fields, code) =>
          same({
            status: { code, message: 'm' },
            ok_response: { headers: headers.map((header) => ({ header, append: { value: false } })), headers_to_remove: remove },
            dynamic_metadata: { fields },
          }),
      ),
      { seed: 7, numRuns: 300 },
    );
  });

  it('steps aside for anything it does not know', () => {
    const ok = { status: { code: 0 }, ok_response: {} };
    expect(encodeCheckResponse(ok)).toBeInstanceOf(Buffer);
    expect(encodeCheckResponse({ ...ok, error_response: {} })).toBeUndefined();
    expect(encodeCheckResponse({ status: { code: 0 }, ok_response: { query_parameters_to_remove: ['a'] } })).toBeUndefined();
    expect(encodeCheckResponse({ status: { code: 0 }, ok_response: { headers: [{ header: { key: 'a', value: 'b' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }] } })).toBeUndefined();
    expect(encodeCheckResponse({ status: { code: 0 }, denied_response: { status: { code: 'Forbidden' } } })).toBeUndefined();
    expect(encodeCheckResponse({ status: { code: 0 }, dynamic_metadata: { fields: { a: { structValue: { fields: {} } } } } })).toBeUndefined();
    expect(encodeCheckResponse({ status: { code: 0 }, dynamic_metadata: { fields: { a: { stringValue: 'x', boolValue: true } } } })).toBeUndefined();
    expect(encodeCheckResponse({ status: { code: 0 }, ok_response: { headers_to_remove: ['x'.repeat(70_000)] } })).toBeUndefined();
    expect(encodeCheckResponse(null)).toBeUndefined();
  });
});

describe('encodeOutcome', () => {
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

  it('writes, byte for byte, what encodeCheckResponse(toCheckResponse(outcome)) writes', () => {
    fc.assert(
      fc.property(fc.oneof(allow, deny), options, (o, opts) => {
        const outcome = o as unknown as Outcome;
        const direct = encodeOutcome(outcome, opts);
        expect(direct).toBeInstanceOf(Buffer);
        expect(direct!.equals(encodeCheckResponse(toCheckResponse(outcome, opts))!)).toBe(true);
      }),
      { seed: 11, numRuns: 1000 },
    );
  });

  it('steps aside when the response does not fit its buffer', () => {
    const o = { allowed: true, id: 'r', direction: 'ingress', headersToSet: [{ name: 'x', value: 'v'.repeat(70_000) }], headersToRemove: [], steps: [] } as unknown as Outcome;
    expect(encodeOutcome(o, denyOptions(''))).toBeUndefined();
    expect(m.responseDeserialize(m.responseSerialize(toCheckResponse(o, denyOptions(''))))).toMatchObject({ status: { code: 0 } });
  });
});
