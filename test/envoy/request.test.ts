import { describe, expect, it } from 'vitest';
import { toAuthRequest } from '../../src/envoy/request.js';

const limits = { maxHeaders: 10, maxHeaderBytes: 1000 };

describe('toAuthRequest', () => {
  it('reads method, path, query, host, peers and context extensions', () => {
    const r = toAuthRequest(
      {
        attributes: {
          source: {
            principal: 'spiffe://a.test/x',
            certificate: 'abc',
            address: { socket_address: { address: '10.1.2.3', port_value: 4444 } },
          },
          destination: { principal: 'spiffe://b.test/y' },
          request: { http: { id: 'r1', method: 'get', path: '/p/q?x=1#frag', host: 'h', headers: { 'X-A': 'v' } } },
          context_extensions: { direction: 'ingress' },
        },
      },
      limits,
    );
    expect(r).toMatchObject({
      id: 'r1',
      method: 'GET',
      path: '/p/q',
      query: 'x=1',
      host: 'h',
      source: { principal: 'spiffe://a.test/x', certificate: 'abc', address: '10.1.2.3', port: 4444 },
      destination: { principal: 'spiffe://b.test/y' },
    });
    expect(r.headers.get('x-a')).toBe('v');
    expect(r.contextExtensions.get('direction')).toBe('ingress');
    expect(r.malformed).toBeUndefined();
  });

  it('reads header_map (encode_raw_headers) with raw bytes, joins repeats and flags them', () => {
    const r = toAuthRequest(
      {
        attributes: {
          request: {
            http: {
              method: 'GET',
              path: '/',
              header_map: {
                headers: [
                  { key: 'x-one', raw_value: Buffer.from('1') },
                  { key: 'X-One', raw_value: Buffer.from('2') },
                  { key: 'x-bad', raw_value: Buffer.from([0xff, 0xfe]) },
                  { key: 'x-plain', value: 'p' },
                ],
              },
            },
          },
        },
      },
      limits,
    );
    expect(r.headers.get('x-one')).toBe('1,2');
    expect(r.duplicateHeaders.has('x-one')).toBe(true);
    expect(r.nonUtf8Headers.has('x-bad')).toBe(true);
    expect(r.nonUtf8Headers.has('x-one')).toBe(false);
    expect(r.headers.get('x-plain')).toBe('p');
  });

  it('flags missing attributes and missing http as malformed, never throws', () => {
    for (const wire of [undefined, null, 42, 'x', {}, { attributes: {} }, { attributes: { request: {} } }]) {
      const r = toAuthRequest(wire, limits);
      expect(r.malformed?.code).toBe('ERR_REQUEST_MALFORMED');
    }
  });

  it('tolerates wrong types in every field', () => {
    const r = toAuthRequest(
      {
        attributes: {
          source: { principal: 5, address: { socket_address: { port_value: 'x' } } },
          request: { http: { method: {}, path: [], headers: 'nope', header_map: { headers: 'nope' } } },
          context_extensions: 7,
        },
      },
      limits,
    );
    expect(r.source.principal).toBe('');
    expect(r.source.port).toBe(0);
    expect(r.method).toBe('');
    expect(r.headers.size).toBe(0);
  });

  it('flags too many headers and too many header bytes', () => {
    const many = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`h${i}`, 'v']));
    expect(toAuthRequest({ attributes: { request: { http: { headers: many } } } }, limits).malformed?.code).toBe(
      'ERR_HEADERS_TOO_LARGE',
    );
    const big = { 'x-big': 'a'.repeat(1001) };
    expect(toAuthRequest({ attributes: { request: { http: { headers: big } } } }, limits).malformed?.code).toBe(
      'ERR_HEADERS_TOO_LARGE',
    );
    const fits = { 'x-big': 'a'.repeat(900) };
    expect(toAuthRequest({ attributes: { request: { http: { headers: fits } } } }, limits).malformed).toBeUndefined();
  });

  it('falls back to x-request-id, then a fresh id', () => {
    const a = toAuthRequest({ attributes: { request: { http: { headers: { 'x-request-id': 'rid' } } } } }, limits);
    expect(a.id).toBe('rid');
    const b = toAuthRequest({ attributes: { request: { http: {} } } }, limits);
    expect(b.id).toMatch(/^[0-9a-f-]{36}$/);
  });
});
