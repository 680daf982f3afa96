/**
 * Property-based checks of the decision core (fast-check, fixed seed, bounded runs): random and
 * mutated CheckRequests — structure, headers, URL-encoded certificates, tokens, XFCC — always get
 * a verdict (never an exception), nothing unverified is ever allowed, and the same input gets
 * the same verdict.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { decide as decideRequest, type DecisionState } from '../../src/pipeline/state.js';
import { toAuthRequest } from '../../src/envoy/request.js';
import { TrustManager } from '../../src/federation/manager.js';
import { buildDecisionState } from '../../src/pipeline/state.js';
import { EXAMPLES_DIR } from '../../src/paths.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
// bounded in the test suite; `npm run fuzz` runs many more (FUZZ_RUNS, FUZZ_SEED to reproduce)
const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);
const pem = (n: string) => readFileSync(join(EXAMPLES_DIR, 'certs', `${n}.svid.pem`), 'utf8');
const VALID = ['frontend', 'billing'].map((n) => encodeURIComponent(pem(n)));
/** A decoded CheckRequest, read as the gRPC handler reads it, then decided. */
const decide = (st: DecisionState, request: unknown) => decideRequest(st, toAuthRequest(request, st.limits));
let state: DecisionState;
let xfccState: DecisionState;

beforeAll(async () => {
  const { config } = parseConfig(
    readFileSync(join(EXAMPLES_DIR, 'zonegate.yaml'), 'utf8') + '\ncommonIdentity: { audiences: ["spiffe://zone-a.example"], required: false }\n',
    'fuzz',
    EXAMPLES_DIR,
  );
  const trust = new TrustManager(config);
  await trust.start();
  trust.stop();
  state = buildDecisionState(config, trust);
  const xfcc = parseConfig(readFileSync(join(EXAMPLES_DIR, 'zonegate.yaml'), 'utf8').replace('source: certificate', 'source: xfcc'), 'fuzz-xfcc', EXAMPLES_DIR).config;
  xfccState = buildDecisionState(xfcc, trust);
});

const text = fc.string({ maxLength: 64 });
const headerName = fc.oneof(fc.constantFrom('x-common-identity', 'x-forwarded-client-cert', 'authorization', 'x-zonegate-peer', 'host'), fc.stringMatching(/^[a-z-]{1,20}$/));
/** A certificate string: valid, mutated at one position, truncated, or junk. */
const certificate = fc.oneof(
  { arbitrary: fc.constantFrom(...VALID), weight: 6 },
  fc.tuple(fc.constantFrom(...VALID), fc.nat(), fc.string({ minLength: 1, maxLength: 1 })).map(([c, i, ch]) => c.slice(0, i % c.length) + ch + c.slice((i % c.length) + 1)),
  fc.tuple(fc.constantFrom(...VALID), fc.nat()).map(([c, i]) => c.slice(0, i % c.length)),
  text,
  fc.constant(''),
);
const checkRequest = fc.record(
  {
    attributes: fc.record(
      {
        source: fc.record({ principal: fc.oneof(text, fc.constant('spiffe://zone-a.example/ns/shop/sa/frontend')), certificate }, { requiredKeys: [] }),
        request: fc.record({
          http: fc.record(
            {
              method: fc.constantFrom('GET', 'GET', 'POST', 'DELETE', 'get', ''),
              path: fc.oneof({ arbitrary: fc.constantFrom('/api/items', '/api/orders/1', '/admin/x', '/'), weight: 4 }, text),
              headers: fc.dictionary(headerName, fc.oneof(text, fc.constantFrom('a.b.c', 'Bearer x', 'Cert="%%"'))),
            },
            { requiredKeys: [] },
          ),
        }),
        context_extensions: fc.dictionary(fc.constantFrom('direction', 'carried_identity', 'x'), fc.constantFrom('ingress', 'egress', 'optional', '')),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);

describe('decision core under random input', () => {
  it('always decides, never allows an unverified peer, and is deterministic', () => {
    let allows = 0;
    fc.assert(
      fc.property(checkRequest, (req) => {
        const a = decide(state, req);
        const b = decide(state, structuredClone(req));
        expect({ allowed: b.allowed, reason: b.allowed ? null : b.reason }).toEqual({ allowed: a.allowed, reason: a.allowed ? null : a.reason });
        if (a.allowed) {
          // the example config verifies certificates: an allow needs one of the genuine SVIDs
          expect(VALID).toContain(req.attributes?.source?.certificate);
          expect(a.peer?.verified).toBe(true);
          allows++;
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // the property is not vacuous: genuine certificates on allowed routes do get through
    expect(allows).toBeGreaterThan(RUNS / 150);
  });

  it('anything at all (not even a CheckRequest shape) gets a deny with a reason', () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 4 }), (junk) => {
        const o = decide(state, junk);
        expect(o.allowed).toBe(false);
        if (!o.allowed) expect(o.reason).toMatch(/^ERR_[A-Z_]+$/);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('XFCC as the peer source: random and mutated headers always get a verdict; only a genuine Cert is allowed', () => {
    const element = fc
      .record(
        {
          By: fc.constantFrom('spiffe://zone-a.example/ns/shop/sa/api', 'x'),
          Hash: fc.stringMatching(/^[0-9a-f]{0,8}$/),
          Cert: certificate.map((c) => `"${c}"`),
          Chain: fc.oneof(certificate, fc.constant('')),
          URI: fc.constantFrom('spiffe://zone-a.example/ns/shop/sa/frontend', 'spiffe://zone-b.example/x', ''),
          Subject: fc.constantFrom('"CN=x"', '"O=a,CN=b"'),
        },
        { requiredKeys: [] },
      )
      .map((e) => Object.entries(e).map(([k, v]) => `${k}=${v}`).join(';'));
    const header = fc.oneof(
      { arbitrary: fc.array(element, { minLength: 1, maxLength: 3 }).map((es) => es.join(',')), weight: 5 },
      fc.array(element, { minLength: 1, maxLength: 2 }).chain((es) =>
        fc.tuple(fc.nat(), fc.constantFrom('"', ';', ',', '=', '\\', '%', ' ')).map(([i, ch]) => {
          const h = es.join(',');
          const at = h.length ? i % h.length : 0;
          return h.slice(0, at) + ch + h.slice(at);
        }),
      ),
      text,
    );
    let allows = 0;
    fc.assert(
      fc.property(header, fc.boolean(), (xfcc, twice) => {
        const req = { attributes: { request: { http: { method: 'GET', path: '/api/items', headers: { 'x-forwarded-client-cert': xfcc } } } } };
        const a = decide(xfccState, req);
        const b = decide(xfccState, structuredClone(req));
        expect(b.allowed ? null : b.reason).toBe(a.allowed ? null : a.reason);
        if (twice) expect(decide(xfccState, { attributes: { request: { http: { method: 'GET', path: '/api/items', header_map: { headers: [{ key: 'x-forwarded-client-cert', value: xfcc }, { key: 'x-forwarded-client-cert', value: xfcc }] } } } } }).allowed).toBe(false);
        if (a.allowed) {
          // only a genuine SVID (however its Cert was quoted or spaced) verifies; nothing else is allowed
          expect(a.peer?.verified).toBe(true);
          expect(['spiffe://zone-a.example/ns/shop/sa/frontend', 'spiffe://zone-b.example/ns/default/dc/dc1/svc/billing']).toContain(a.peer?.principal);
          allows++;
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(allows).toBeGreaterThan(RUNS / 150);
  });
});

