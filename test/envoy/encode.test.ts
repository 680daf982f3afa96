/**
 * The direct CheckResponse encoder against protobufjs: every response zonegate builds decodes to
 * the same message from both encodings, and anything the encoder does not know makes it step
 * aside (undefined) instead of dropping a field.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkMethod } from '../../src/envoy/proto.js';
import { encodeCheckResponse } from '../../src/envoy/encode.js';
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
