/** The gRPC client allowlist's two pure parts: reading URI SANs as Node reports them, and matching. */
import { describe, expect, it } from 'vitest';
import { clientAllowlist, uriSans } from '../../src/envoy/client-identity.js';

describe('uriSans', () => {
  it.each<[string | undefined, string[]]>([
    [undefined, []],
    ['DNS:envoy.test', []],
    ['URI:spiffe://a.test/envoy', ['spiffe://a.test/envoy']],
    ['DNS:x.test, URI:spiffe://a.test/envoy, IP Address:127.0.0.1', ['spiffe://a.test/envoy']],
    ['URI:spiffe://a.test/envoy, URI:spiffe://a.test/other', ['spiffe://a.test/envoy', 'spiffe://a.test/other']],
    // Node quotes an entry holding a comma: it must not split into an allowed ID and a rest
    ['URI:"spiffe://a.test/envoy, URI:spiffe://a.test/x"', ['spiffe://a.test/envoy, URI:spiffe://a.test/x']],
  ])('%j → %j', (san, ids) => {
    expect(uriSans(san)).toEqual(ids);
  });
});

describe('clientAllowlist', () => {
  const allowed = clientAllowlist(['spiffe://a.test/envoy', { prefix: 'spiffe://a.test/gateway/' }]);
  it.each([
    ['spiffe://a.test/envoy', true],
    ['spiffe://a.test/envoy/x', false],
    ['spiffe://a.test/envoyx', false],
    ['spiffe://a.test/gateway/east', true],
    ['spiffe://a.test/gateway', false],
    ['spiffe://b.test/envoy', false],
  ])('%s → %s', (id, ok) => {
    expect(allowed(id)).toBe(ok);
  });
});
