/** Hostile and broken CheckRequests get a deny or an error status with a reason: never a crash, never an allow. */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMethod } from '../../src/envoy/proto.js';
import { checkRequest, startWith, type CheckResult, type Started } from '../helpers/zonegate.js';

let s: Started;
beforeAll(async () => {
  s = await startWith({
    server: { grpc: { maxMessageBytes: 64 * 1024 } },
    limits: { maxHeaders: 50, maxHeaderBytes: 8 * 1024 },
    peer: { source: 'principal' },
    rules: [{ name: 'any-spiffe', action: 'allow', from: { principals: [{ prefix: 'spiffe://' }] } }],
  });
});
afterAll(async () => {
  await s?.close();
});

/** Minimal protobuf writer for crafting bytes by hand. */
const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
};
const field = (num: number, bytes: Uint8Array | number[]) => Buffer.from([...varint((num << 3) | 2), ...varint(bytes.length), ...bytes]);
const str = (s: string) => [...Buffer.from(s)];

function denied(r: CheckResult): { code: number; reason: string } {
  if (!r.ok) throw new Error(`expected a verdict, got ${r.error.code} ${r.error.details}`);
  const st = r.response.status as { code: number; message: string };
  expect(r.response.ok_response).toBeUndefined();
  expect(st.code).not.toBe(0);
  return { code: st.code, reason: st.message };
}

describe('bad input', () => {
  it('the allow path works (so the denials below are about the input)', async () => {
    const r = await s.check(checkRequest({ principal: 'spiffe://a.test/x' }));
    expect(r.ok && (r.response.status as { code: number }).code).toBe(0);
  });

  it('empty request → deny ERR_REQUEST_MALFORMED', async () => {
    expect(denied(await s.check({}))).toEqual({ code: 7, reason: 'ERR_REQUEST_MALFORMED' });
    expect(denied(await s.checkBytes(Buffer.alloc(0)))).toEqual({ code: 7, reason: 'ERR_REQUEST_MALFORMED' });
  });

  it('attributes without request.http → deny ERR_REQUEST_MALFORMED', async () => {
    const r = await s.check({ attributes: { source: { principal: 'spiffe://a.test/x' } } });
    expect(denied(r)).toEqual({ code: 7, reason: 'ERR_REQUEST_MALFORMED' });
  });

  it('no principal → deny 401 ERR_NO_IDENTITY', async () => {
    expect(denied(await s.check(checkRequest({})))).toEqual({ code: 16, reason: 'ERR_NO_IDENTITY' });
  });

  it('a principal that claims SPIFFE but is not a valid ID → ERR_PEER_PRINCIPAL_INVALID', async () => {
    const r = await s.check(checkRequest({ principal: 'spiffe://UPPER..test/x?q=1' }));
    expect(denied(r)).toEqual({ code: 16, reason: 'ERR_PEER_PRINCIPAL_INVALID' });
  });

  it('too many headers and oversized headers → ERR_HEADERS_TOO_LARGE', async () => {
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`x-h${i}`, 'v']));
    expect(denied(await s.check(checkRequest({ principal: 'spiffe://a.test/x', headers: many })))).toEqual({
      code: 7,
      reason: 'ERR_HEADERS_TOO_LARGE',
    });
    const big = { 'x-big': 'a'.repeat(9000) };
    expect(denied(await s.check(checkRequest({ principal: 'spiffe://a.test/x', headers: big })))).toEqual({
      code: 7,
      reason: 'ERR_HEADERS_TOO_LARGE',
    });
  });

  it('a request larger than the message bound → RESOURCE_EXHAUSTED, and the server keeps serving', async () => {
    const r = await s.check(checkRequest({ principal: 'spiffe://a.test/x', headers: { 'x-huge': 'a'.repeat(70 * 1024) } }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const again = await s.check(checkRequest({ principal: 'spiffe://a.test/x' }));
    expect(again.ok).toBe(true);
  });

  it('unknown fields are skipped, the known ones decide', async () => {
    const valid = checkMethod().requestSerialize(checkRequest({ principal: 'spiffe://a.test/x' }));
    const withUnknown = Buffer.concat([valid, field(99, str('future field')), Buffer.from([...varint((98 << 3) | 0), 1])]);
    const r = await s.checkBytes(withUnknown);
    expect(r.ok && (r.response.status as { code: number }).code).toBe(0);
    const unknownOnly = Buffer.concat([field(99, str('x'))]);
    expect(denied(await s.checkBytes(unknownOnly))).toEqual({ code: 7, reason: 'ERR_REQUEST_MALFORMED' });
  });

  it('non-UTF-8 bytes in a string field never become an allow for a different principal', async () => {
    // CheckRequest{attributes{source{principal: "spiffe://a.test/\xff"}, request{http{method: GET, path: /}}}}
    const principal = field(4, [...str('spiffe://a.test/'), 0xff, 0xfe]);
    const source = field(1, principal);
    const http = field(2, [...field(2, str('GET')), ...field(4, str('/'))]);
    const request = field(4, http);
    const r = await s.checkBytes(field(1, Buffer.concat([source, request])));
    // The replacement character makes the ID invalid: a deny with a reason, not a crash.
    expect(denied(r)).toEqual({ code: 16, reason: 'ERR_PEER_PRINCIPAL_INVALID' });
  });

  it('truncated and garbage protobuf → an error status, never an allow', async () => {
    for (const bytes of [Buffer.from([0x0a, 0xff, 0xff]), Buffer.from('\xff\xff\xff\xff garbage', 'latin1')]) {
      const r = await s.checkBytes(bytes);
      if (r.ok) expect((r.response.status as { code: number }).code).not.toBe(0);
      else expect([grpc.status.INTERNAL, grpc.status.INVALID_ARGUMENT, grpc.status.UNKNOWN]).toContain(r.error.code);
    }
    const after = await s.check(checkRequest({ principal: 'spiffe://a.test/x' }));
    expect(after.ok).toBe(true);
  });

  it('wrong-typed values via raw header_map bytes are read, not trusted', async () => {
    const r = await s.check({
      attributes: {
        source: { principal: 'spiffe://a.test/x' },
        request: { http: { method: 'GET', path: '/', header_map: { headers: [{ key: 'x-a', raw_value: Buffer.from([0xc3, 0x28]) }] } } },
      },
    });
    expect(r.ok && (r.response.status as { code: number }).code).toBe(0);
  });
});
