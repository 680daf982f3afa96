/**
 * Canonical names (filled by the naming templates) in every place the rewrite puts identity:
 * headers, re-issued JWT claims, the HMAC proof and dynamic_metadata — on allow and on deny.
 * The pipeline gets a peer phase that reports a peer with canonical names, as the naming phase
 * would.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { checkMethod } from '../../src/envoy/proto.js';
import { toCheckResponse } from '../../src/envoy/response.js';
import { compilePolicy } from '../../src/policy/rules.js';
import { createPipeline } from '../../src/pipeline/authorize.js';
import { createKeyRing, createRewriter } from '../../src/rewrite/index.js';
import { verifyProof } from '../../src/rewrite/verify.js';
import { SpiffeId } from '../../src/spiffe/id.js';
import type { AuthRequest, PeerIdentity } from '../../src/request/types.js';

const ID = 'spiffe://consul-dc1.test/ns/payments/dc/dc1/svc/ledger';
const PEER: PeerIdentity = {
  principal: ID,
  spiffeId: SpiffeId.parse(ID),
  trustDomain: 'consul-dc1.test',
  verified: true,
  source: 'certificate',
  canonical: { zone: 'eu-consul', namespace: 'payments', service: 'ledger', vars: { namespace: 'payments', dc: 'dc1', service: 'ledger' } },
};
const NOW = Date.UTC(2026, 10, 23, 9, 0, 0);
const SECRET = 'another-shared-secret-of-32-bytes-or-more';

function setup(extra: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'zg-canonical-'));
  writeFileSync(join(dir, 'secret'), SECRET);
  const { config } = parseConfig(
    stringify({
      peer: { source: 'principal' },
      rules: [
        { name: 'no-deletes', action: 'deny', to: { methods: ['DELETE'] } },
        { name: 'payments', action: 'allow', from: { trustDomains: ['consul-dc1.test'] } },
      ],
      upstream: { destinations: { jwt: { mode: 'jwt' }, hmac: { mode: 'hmac' } }, hmac: { secretFile: 'secret', keyId: 'p1' } },
      ...extra,
    }),
    'canonical-test',
    dir,
  );
  const rewriter = createRewriter(config, { keys: createKeyRing(config, NOW) });
  const pipeline = createPipeline({ config, policy: compilePolicy(config.rules), peer: () => ({ ok: true, peer: PEER, detail: 'test peer' }), rewriter, now: () => NOW });
  return { config, rewriter, pipeline };
}

function request(destination: string | undefined, method = 'GET'): AuthRequest {
  return {
    id: 'decision-7',
    method,
    path: '/ledger/entries',
    query: '',
    host: 'ledger.test',
    scheme: 'https',
    protocol: 'HTTP/2',
    headers: new Map(),
    nonUtf8Headers: new Set(),
    duplicateHeaders: new Set(),
    source: { principal: ID, certificate: '', address: '10.0.0.1', port: 1 },
    destination: { principal: '', certificate: '', address: '', port: 0 },
    contextExtensions: new Map(destination ? [['destination', destination]] : []),
  };
}

type Fields = Record<string, { stringValue?: string; boolValue?: boolean }>;

describe('canonical names for the upstream', () => {
  it('headers: zone, namespace and service of the peer', () => {
    const { pipeline } = setup();
    const o = pipeline.authorize(request(undefined));
    expect(o.allowed).toBe(true);
    if (!o.allowed) return;
    expect(Object.fromEntries(o.headersToSet.map((h) => [h.name, h.value]))).toMatchObject({
      'x-zonegate-zone': 'eu-consul',
      'x-zonegate-namespace': 'payments',
      'x-zonegate-service': 'ledger',
    });
    expect(o.headersToRemove).not.toContain('x-zonegate-zone');
  });

  it('jwt: the canonical names are claims of the re-issued token', async () => {
    const { pipeline, rewriter } = setup();
    const o = pipeline.authorize(request('jwt'));
    if (!o.allowed) throw new Error(o.reason);
    const token = o.headersToSet.find((h) => h.name === 'x-zonegate-jwt')!.value;
    const { payload } = await jwtVerify(token, createLocalJWKSet(rewriter.keys.jwks(NOW)), { issuer: 'zonegate', audience: 'jwt', currentDate: new Date(NOW) });
    expect(payload).toMatchObject({ sub: ID, peer: ID, trust_domain: 'consul-dc1.test', zone: 'eu-consul', namespace: 'payments', service: 'ledger' });
  });

  it('hmac: the proof covers them', () => {
    const { pipeline } = setup();
    const o = pipeline.authorize(request('hmac'));
    if (!o.allowed) throw new Error(o.reason);
    const headers = Object.fromEntries(o.headersToSet.map((h) => [h.name, h.value]));
    const opts = { method: 'GET', path: '/ledger/entries', secrets: { p1: SECRET }, now: NOW, required: ['x-zonegate-zone', 'x-zonegate-service'] };
    expect(verifyProof({ ...opts, headers })).toMatchObject({ ok: true, headers: { 'x-zonegate-zone': 'eu-consul', 'x-zonegate-service': 'ledger' } });
    expect(verifyProof({ ...opts, headers: { ...headers, 'x-zonegate-namespace': 'default' } })).toEqual({ ok: false, reason: 'signature' });
  });

  it('dynamic_metadata carries them on allow and on deny', () => {
    const { pipeline, config } = setup();
    const decoded = (o: Parameters<typeof toCheckResponse>[0]) => checkMethod().responseDeserialize(toCheckResponse(o, config.deny)) as { dynamic_metadata: { fields: Fields } };
    const allow = decoded(pipeline.authorize(request('hmac')));
    expect(allow.dynamic_metadata.fields).toMatchObject({
      decision_id: { stringValue: 'decision-7' },
      result: { stringValue: 'allow' },
      peer: { stringValue: ID },
      zone: { stringValue: 'eu-consul' },
      namespace: { stringValue: 'payments' },
      service: { stringValue: 'ledger' },
      destination: { stringValue: 'hmac' },
      rewrite: { stringValue: 'hmac' },
    });
    const deny = decoded(pipeline.authorize(request(undefined, 'DELETE')));
    expect(deny.dynamic_metadata.fields).toMatchObject({
      decision_id: { stringValue: 'decision-7' },
      result: { stringValue: 'deny' },
      reason: { stringValue: 'ERR_POLICY_DENIED' },
      rule: { stringValue: 'no-deletes' },
      peer: { stringValue: ID },
      zone: { stringValue: 'eu-consul' },
      service: { stringValue: 'ledger' },
    });
  });

  it('a header name set to "" leaves that fact out everywhere, including the proof', () => {
    const { pipeline } = setup({ upstream: { headers: { zone: '' }, destinations: { hmac: { mode: 'hmac' } }, hmac: { secretFile: 'secret', keyId: 'p1' } } });
    const o = pipeline.authorize(request('hmac'));
    if (!o.allowed) throw new Error(o.reason);
    const names = o.headersToSet.map((h) => h.name);
    expect(names).not.toContain('x-zonegate-zone');
    expect(names).toContain('x-zonegate-service');
    expect(o.headersToSet.find((h) => h.name === 'x-zonegate-proof')!.value).not.toContain('x-zonegate-zone');
  });
});
