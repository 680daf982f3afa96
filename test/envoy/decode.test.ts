/**
 * The direct CheckRequest decoder (src/envoy/decode.ts) against proto-loader's: for generated
 * requests, with every field of the message set at random (the ones zonegate reads and the ones
 * it skips), both decodings give the same AuthRequest. The protobuf rules proto-loader does not
 * follow (merging a repeated message) and malformed input are checked by hand-built bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCheckRequest } from '../../src/envoy/decode.js';
import { checkMethod } from '../../src/envoy/proto.js';
import { toAuthRequest } from '../../src/envoy/request.js';
import type { AuthRequest } from '../../src/request/types.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
const method = checkMethod();
const limits = { maxHeaders: 1000, maxHeaderBytes: 1 << 20 };
const encode = (req: object) => method.requestSerialize(req);

/** An AuthRequest as plain data (Maps and Sets as sorted entries), the made-up id removed. */
function plain(r: AuthRequest): unknown {
  return {
    ...r,
    id: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(r.id) ? '(random)' : r.id,
    headers: [...r.headers],
    nonUtf8Headers: [...r.nonUtf8Headers].sort(),
    duplicateHeaders: [...r.duplicateHeaders].sort(),
    contextExtensions: [...r.contextExtensions],
  };
}
const viaProtobufjs = (buf: Buffer) => plain(toAuthRequest(method.requestDeserialize(buf), limits));
const viaDirect = (buf: Buffer) => plain(toAuthRequest(decodeCheckRequest(buf), limits));

// strings of any code units, lone surrogates included (both decoders see the same UTF-8 bytes)
const str = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('', 'constructor', 'toString', 'x-request-id'));
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const dict = fc.dictionary(str, str, { maxKeys: 6 });
const bytes = fc.uint8Array({ maxLength: 24 }).map((u) => Buffer.from(u));
const socketAddress = fc.record(
  { protocol: opt(fc.constantFrom('TCP', 'UDP')), address: opt(str), port_value: opt(fc.integer({ min: 0, max: 0xffffffff })), named_port: opt(str), resolver_name: opt(str), ipv4_compat: opt(fc.boolean()) },
  { requiredKeys: [] },
).map((s) => (s.port_value !== undefined ? { ...s, named_port: undefined } : s)); // a oneof: one of the two
const address = fc.oneof(
  fc.record({ socket_address: socketAddress }),
  fc.record({ pipe: fc.record({ path: str, mode: fc.integer({ min: 0, max: 511 }) }) }),
);
const peer = fc.record(
  { address: opt(address), service: opt(str), labels: opt(dict), principal: opt(str), certificate: opt(fc.oneof(str, fc.string({ maxLength: 3000 }))) },
  { requiredKeys: [] },
);
const headerValue = fc.record({ key: opt(str), value: opt(str), raw_value: opt(bytes) }, { requiredKeys: [] });
const http = fc.record(
  {
    id: opt(str),
    method: opt(str),
    headers: opt(dict),
    header_map: opt(fc.record({ headers: fc.array(headerValue, { maxLength: 6 }) })),
    path: opt(str),
    host: opt(str),
    scheme: opt(str),
    query: opt(str),
    fragment: opt(str),
    size: opt(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String)),
    protocol: opt(str),
    body: opt(str),
    raw_body: opt(bytes),
  },
  { requiredKeys: [] },
);
const metadata = fc.record({
  filter_metadata: fc.dictionary(str, fc.record({ fields: fc.dictionary(str, fc.oneof(fc.record({ stringValue: str }), fc.record({ numberValue: fc.double({ noNaN: true }) })), { maxKeys: 3 }) }), { maxKeys: 2 }),
});
const checkRequest = fc.record(
  {
    attributes: opt(
      fc.record(
        {
          source: opt(peer),
          destination: opt(peer),
          request: opt(fc.record({ time: opt(fc.record({ seconds: fc.integer({ min: 0, max: 2 ** 31 }).map(String), nanos: fc.integer({ min: 0, max: 999_999_999 }) })), http: opt(http) }, { requiredKeys: [] })),
          context_extensions: opt(dict),
          metadata_context: opt(metadata),
          route_metadata_context: opt(metadata),
          tls_session: opt(fc.record({ sni: str })),
        },
        { requiredKeys: [] },
      ),
    ),
  },
  { requiredKeys: [] },
);

/** Protobuf wire bits, for hand-built messages. */
const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
const ld = (field: number, body: Buffer | string): Buffer => {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(b.length)]), b]);
};
/** CheckRequest { attributes { request { http { <fields> } } } } */
const inHttp = (...fields: Buffer[]) => ld(1, ld(4, ld(2, Buffer.concat(fields))));

describe('direct CheckRequest decoder', () => {
  // One difference by design: proto-loader's maps are plain objects, where a key `__proto__` sets
  // the prototype and the entry is lost; the decoder's are Maps. Checked on its own below.
  it('gives the AuthRequest proto-loader gives, for generated requests with every field', () => {
    fc.assert(
      fc.property(checkRequest, (req) => {
        const buf = encode(req);
        expect(viaDirect(buf)).toEqual(viaProtobufjs(buf));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('reads a request as Envoy sends it, field by field', () => {
    const req = {
      attributes: {
        source: { principal: 'spiffe://a.test/x', certificate: '-----BEGIN%20CERT', address: { socket_address: { address: '10.0.0.1', port_value: 443 } } },
        destination: { principal: 'spiffe://b.test/y', address: { socket_address: { address: '10.0.0.2', port_value: 8080 } } },
        request: { http: { id: 'r1', method: 'POST', path: '/a?b=c', host: 'h', scheme: 'https', protocol: 'HTTP/2', headers: { 'x-a': '1', ['__proto__']: 'p' } } },
        context_extensions: { direction: 'egress' },
      },
    };
    const decoded = decodeCheckRequest(encode(req)) as { attributes: { request: { http: { headers: Map<string, string> } }; context_extensions: Map<string, string> } };
    expect(decoded.attributes.request.http.headers).toEqual(new Map([['x-a', '1'], ['__proto__', 'p']]));
    const r = toAuthRequest(decoded, limits);
    expect(r).toMatchObject({ id: 'r1', method: 'POST', path: '/a', query: 'b=c', host: 'h', scheme: 'https', protocol: 'HTTP/2' });
    expect(r.source).toEqual({ principal: 'spiffe://a.test/x', certificate: '-----BEGIN%20CERT', address: '10.0.0.1', port: 443 });
    expect(r.destination.port).toBe(8080);
    expect(r.headers.get('__proto__')).toBe('p');
    expect(r.contextExtensions.get('direction')).toBe('egress');
  });

  it('merges a repeated message, lets the last scalar and the last map entry win (protobuf encoding rules)', () => {
    const first = encode({ attributes: { source: { principal: 'spiffe://a.test/1' }, request: { http: { method: 'GET', headers: { a: '1', k: 'old' } } } } });
    const second = encode({ attributes: { destination: { principal: 'spiffe://b.test/2' }, request: { http: { method: 'PUT', headers: { b: '2', k: 'new' } } } } });
    const r = toAuthRequest(decodeCheckRequest(Buffer.concat([first, second])), limits);
    expect(r.source.principal).toBe('spiffe://a.test/1');
    expect(r.destination.principal).toBe('spiffe://b.test/2');
    expect(r.method).toBe('PUT');
    expect([...r.headers]).toEqual([['a', '1'], ['k', 'new'], ['b', '2']]);
    expect(r.duplicateHeaders.size).toBe(0);
  });

  it('skips unknown fields of every wire type and a known field sent with another wire type', () => {
    const unknown = Buffer.from([
      ...varint((99 << 3) | 0), ...varint(300), // varint
      ...varint((98 << 3) | 1), 1, 2, 3, 4, 5, 6, 7, 8, // fixed64
      ...varint((97 << 3) | 5), 1, 2, 3, 4, // fixed32
      ...varint((96 << 3) | 3), ...varint((1 << 3) | 0), 7, ...varint((95 << 3) | 3), ...varint((95 << 3) | 4), ...varint((96 << 3) | 4), // nested groups
      ...varint((2 << 3) | 0), 5, // method (a string) as a varint: skipped
    ]);
    const r = toAuthRequest(decodeCheckRequest(inHttp(unknown, ld(4, '/p'), ld(2, 'GET'))), limits);
    expect(r).toMatchObject({ method: 'GET', path: '/p' });
  });

  it('refuses malformed input: truncation, an overlong varint, wire types 6 and 7, unbalanced or too deep groups, field 0', () => {
    const good = encode({ attributes: { request: { http: { method: 'GET', path: '/p' } } } });
    for (let cut = 1; cut < good.length; cut++) expect(() => decodeCheckRequest(good.subarray(0, cut)), `cut at ${cut}`).toThrow(/CheckRequest/);
    const bad = [
      Buffer.from([(1 << 3) | 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      Buffer.from([(5 << 3) | 6]),
      Buffer.from([(5 << 3) | 7]),
      Buffer.from([(5 << 3) | 3, (6 << 3) | 4]),
      Buffer.from([(5 << 3) | 4]),
      Buffer.concat([Buffer.from(Array(101).fill((5 << 3) | 3)), Buffer.from(Array(101).fill((5 << 3) | 4))]),
      Buffer.from([0 | 2, 0]),
    ];
    for (const b of bad) expect(() => decodeCheckRequest(b), b.toString('hex')).toThrow(/CheckRequest/);
    // 100 nested groups are still read
    const deep = Buffer.concat([Buffer.from(Array(100).fill((5 << 3) | 3)), Buffer.from(Array(100).fill((5 << 3) | 4)), good]);
    expect(toAuthRequest(decodeCheckRequest(deep), limits).path).toBe('/p');
  });

  it('an empty message is an empty request, which the pipeline then denies as malformed', () => {
    expect(decodeCheckRequest(Buffer.alloc(0))).toEqual({});
    expect(toAuthRequest(decodeCheckRequest(Buffer.alloc(0)), limits).malformed?.code).toBe('ERR_REQUEST_MALFORMED');
  });

  it('mutated requests: it either refuses them or reads them without throwing later', () => {
    const base = encode({
      attributes: {
        source: { certificate: 'c'.repeat(40), address: { socket_address: { address: '10.0.0.1', port_value: 1 } } },
        request: { http: { method: 'GET', headers: { a: 'b', 'x-common-identity': 'eyJ' } } },
        context_extensions: { direction: 'ingress' },
      },
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (edits) => {
        const b = Buffer.from(base);
        for (const [i, v] of edits) b[i % b.length] = v;
        let decoded: unknown;
        try {
          decoded = decodeCheckRequest(b);
        } catch (err) {
          expect((err as Error).message).toMatch(/^CheckRequest: /);
          return;
        }
        const r = toAuthRequest(decoded, limits);
        expect(typeof r.method).toBe('string');
        for (const [k, v] of r.headers) expect([typeof k, typeof v]).toEqual(['string', 'string']);
        for (const [k, v] of r.contextExtensions) expect([typeof k, typeof v]).toEqual(['string', 'string']);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
