/**
 * Every limit, breached: a deny (or a refused document) with its own reason code, never a crash,
 * and the server keeps deciding afterwards. Limits are set low here so the inputs stay small.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bundle, parseBundle, parseJwtBundle, parseSpiffeBundle } from '../../src/bundle/bundle.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { TrustManager } from '../../src/federation/manager.js';
import { consulRootsToBundle } from '../../src/federation/sources.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { BUNDLE_LIMITS } from '../helpers/limits.js';

const A = 'zone-a.test';
const TD = TrustDomain.parse(A);
let ca: MemoryCA;
let leaf: Issued;
let s: Started;
let dir: string;

beforeAll(async () => {
  ca = await MemoryCA.create(A);
  leaf = await ca.issue(`spiffe://${A}/ns/web/sa/frontend`);
  dir = mkdtempSync(join(tmpdir(), 'zg-limits-'));
  writeFileSync(join(dir, 'root.pem'), ca.certPem);
  s = await startWith(
    {
      limits: { maxHeaders: 20, maxHeaderBytes: 4096, maxChainLength: 3, maxChainBytes: 8192, maxCertificateBytes: 2048 },
      server: { grpc: { maxMessageBytes: 64 * 1024 } },
      trust: [{ trustDomain: A, bundle: 'root.pem' }],
      commonIdentity: { audiences: [`spiffe://${A}`], required: false, maxTokenBytes: 1024 },
      rules: [{ name: 'verified', action: 'allow', from: { trustDomains: [A] } }],
    },
    dir,
  );
});
afterAll(async () => {
  await s?.close();
});

async function reason(req: unknown): Promise<string> {
  const r = await s.check(req);
  if (!r.ok) return `error ${r.error.code}`;
  const st = r.response.status as { code: number; message?: string };
  return st.code === 0 ? 'allow' : String(st.message);
}
const withCert = (pem: string, headers: Record<string, string> = {}) => checkRequest({ certificate: encodeURIComponent(pem), headers });
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const token = (x5c: string[]) => `${b64({ alg: 'ES256', typ: 'ci+jwt', x5c })}.${b64({ iss: leaf.spiffeId, sub: 'a' })}.c2ln`;
const der = () => leaf.cert.raw.toString('base64');

describe('request limits through the gRPC server', () => {
  it('within every limit: allowed (so each deny below is the limit)', async () => {
    expect(await reason(withCert(leaf.chainPem))).toBe('allow');
  });

  it.each([
    ['more headers than limits.maxHeaders → ERR_HEADERS_TOO_LARGE', () => withCert(leaf.chainPem, Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`x-h${i}`, 'v']))), 'ERR_HEADERS_TOO_LARGE'],
    ['more header bytes than limits.maxHeaderBytes → ERR_HEADERS_TOO_LARGE', () => withCert(leaf.chainPem, { 'x-big': 'v'.repeat(5000) }), 'ERR_HEADERS_TOO_LARGE'],
    ['a peer chain longer than limits.maxChainLength → ERR_SVID_TOO_LARGE', () => withCert(leaf.certPem.repeat(4)), 'ERR_SVID_TOO_LARGE'],
    ['a peer chain larger than limits.maxChainBytes → ERR_SVID_TOO_LARGE', () => withCert(leaf.certPem + '\n'.repeat(9000)), 'ERR_SVID_TOO_LARGE'],
    [
      'a certificate larger than limits.maxCertificateBytes → ERR_SVID_TOO_LARGE',
      () => withCert(`-----BEGIN CERTIFICATE-----\n${Buffer.alloc(3000, 0x30).toString('base64')}\n-----END CERTIFICATE-----\n`),
      'ERR_SVID_TOO_LARGE',
    ],
    ['a token larger than commonIdentity.maxTokenBytes → ERR_TOKEN_TOO_LARGE', () => withCert(leaf.chainPem, { 'x-common-identity': token([der()]) + 'A'.repeat(1500) }), 'ERR_TOKEN_TOO_LARGE'],
  ])('%s', async (_name, make, code) => {
    expect(await reason(make())).toBe(code);
  });

  it('a token x5c longer than limits.maxChainLength or larger than limits.maxChainBytes → ERR_TOKEN_X5C_TOO_LARGE', async () => {
    const big = await startWith(
      {
        limits: { maxChainLength: 3, maxChainBytes: 1024 },
        trust: [{ trustDomain: A, bundle: 'root.pem' }],
        commonIdentity: { audiences: [`spiffe://${A}`], required: false },
        rules: [{ name: 'verified', action: 'allow', from: { trustDomains: [A] } }],
      },
      dir,
    );
    try {
      const code = async (x5c: string[]) => {
        const r = await big.check(checkRequest({ certificate: encodeURIComponent(leaf.certPem), headers: { 'x-common-identity': token(x5c) } }));
        return r.ok && (r.response.status as { message?: string }).message;
      };
      expect(await code(['AAAA', 'AAAA', 'AAAA', 'AAAA'])).toBe('ERR_TOKEN_X5C_TOO_LARGE');
      expect(await code([der(), der()])).toBe('ERR_TOKEN_X5C_TOO_LARGE');
      expect(await code([der()])).not.toBe('ERR_TOKEN_X5C_TOO_LARGE');
    } finally {
      await big.close();
    }
  });

  it('a CheckRequest larger than server.grpc.maxMessageBytes → RESOURCE_EXHAUSTED, and the server keeps deciding', async () => {
    expect(await reason(withCert(leaf.chainPem, { 'x-big': 'v'.repeat(70 * 1024) }))).toBe('error 8');
    expect(await reason(withCert(leaf.chainPem))).toBe('allow');
  });
});

describe('bundle limits', () => {
  const keys = (n: number) => ({ keys: Array.from({ length: n }, (_, i) => ({ kty: 'EC', use: 'jwt-svid', kid: `k${i}` })) });

  it('a SPIFFE bundle, a JWKS, a PEM bundle or Consul roots with more keys than limits.maxBundleKeys → ERR_BUNDLE_TOO_LARGE, before any key is parsed', () => {
    const code = (f: () => unknown) => {
      try {
        f();
        return 'parsed';
      } catch (err) {
        return (err as { code?: string }).code;
      }
    };
    expect(code(() => parseSpiffeBundle(JSON.stringify(keys(11)), TD, { maxKeys: 10 }))).toBe('ERR_BUNDLE_TOO_LARGE');
    expect(code(() => parseJwtBundle(JSON.stringify(keys(11)), TD, { maxKeys: 10 }))).toBe('ERR_BUNDLE_TOO_LARGE');
    expect(code(() => parseBundle(ca.certPem.repeat(11), TD, { maxKeys: 10 }))).toBe('ERR_BUNDLE_TOO_LARGE');
    expect(code(() => parseBundle(ca.certPem.repeat(10), TD, { maxKeys: 10 }))).toBe('parsed');
    const roots = { TrustDomain: A, Roots: Array.from({ length: 11 }, () => ({ RootCert: ca.certPem })) };
    expect(code(() => consulRootsToBundle(JSON.stringify(roots), TD, 10))).toBe('ERR_BUNDLE_TOO_LARGE');
    // the default applies without options
    expect(code(() => parseSpiffeBundle(JSON.stringify(keys(1001)), TD, BUNDLE_LIMITS))).toBe('ERR_BUNDLE_TOO_LARGE');
  });

  it('a bundle file that grows past federation.fetch.maxBytes is refused with its reason; the last good bundle stays', async () => {
    const d = mkdtempSync(join(tmpdir(), 'zg-bigbundle-'));
    const file = join(d, 'root.pem');
    writeFileSync(file, ca.certPem);
    const { config } = parseConfig(`federation: { fetch: { maxBytes: 4096 } }\ntrust: [{ trustDomain: ${A}, bundle: root.pem }]\n`, 't', d);
    const trust = new TrustManager(config);
    await trust.start();
    try {
      expect(trust.bundles.get(TD)).toBeInstanceOf(Bundle);
      writeFileSync(file, ca.certPem + ' '.repeat(5000));
      await trust.refresh(A);
      const st = trust.status()[0]!;
      expect(st.lastError).toMatch(/ERR_BUNDLE_TOO_LARGE: .*5\d{3} bytes \(limit 4096\)/);
      expect(st.x509Authorities).toBe(1);
      expect(trust.ready).toBe(true);
    } finally {
      trust.stop();
    }
  });
});

describe('policy size', () => {
  it('more rules than limits.maxRules: the config is refused, naming the limit', () => {
    const rules = Array.from({ length: 3 }, (_, i) => `  - { name: r${i}, action: allow }`).join('\n');
    expect(() => parseConfig(`limits: { maxRules: 2 }\nrules:\n${rules}\n`, 'c.yaml', '.')).toThrow(ConfigError);
    expect(() => parseConfig(`limits: { maxRules: 2 }\nrules:\n${rules}\n`, 'c.yaml', '.')).toThrow(/c\.yaml:2: rules: 3 rules \(limit limits\.maxRules = 2\)/);
  });
});
