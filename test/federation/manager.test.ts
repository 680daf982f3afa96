/**
 * The refresh loop against what a partner may publish: authorities zonegate cannot carry in a
 * SPIFFE bundle are left out with a note, never a crash; timers stay within what Node can arm.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePemBundle, parseSpiffeBundle, serializeSpiffeBundle } from '../../src/bundle/bundle.js';
import { parseConfig } from '../../src/config/load.js';
import { TrustManager } from '../../src/federation/manager.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { testServer, type TestServer } from '../helpers/http.js';
import { sleep } from '../helpers/wait.js';
import { BUNDLE_LIMITS } from '../helpers/limits.js';

const P = 'partner.test';
const td = TrustDomain.parse(P);
const DAY = 86_400_000;
let good: MemoryCA;
let pss: X509Certificate;
let brainpool: X509Certificate;

/** A CA certificate carrying `spki` (a key WebCrypto cannot make), signed by `issuer`. */
async function caWithKey(issuer: MemoryCA, spki: Buffer, name: string): Promise<X509Certificate> {
  const c = await x509.X509CertificateGenerator.create({
    subject: `CN=${name}`,
    issuer: issuer.cert.subject,
    publicKey: spki,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as never,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return new X509Certificate(Buffer.from(c.rawData));
}
const spki = (type: 'rsa-pss' | 'ec', o: object): Buffer =>
  generateKeyPairSync(type as 'ec', { ...o, publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } } as never).publicKey as unknown as Buffer;
const element = (c: X509Certificate, kty: string) => ({ use: 'x509-svid', kty, x5c: [c.raw.toString('base64')] });

beforeAll(async () => {
  good = await MemoryCA.create(P);
  pss = await caWithKey(good, spki('rsa-pss', { modulusLength: 2048 }), 'pss root');
  brainpool = await caWithKey(good, spki('ec', { namedCurve: 'brainpoolP256r1' }), 'brainpool root');
});

describe('authorities without a JWK form', () => {
  it('are left out of a SPIFFE bundle and a PEM bundle with a note; the rest serializes', () => {
    const doc = JSON.stringify({ keys: [element(good.cert, 'EC'), element(pss, 'RSA'), element(brainpool, 'EC')] });
    const b = parseSpiffeBundle(doc, td, BUNDLE_LIMITS);
    expect(b.x509Authorities.map((c) => c.fingerprint256)).toEqual([good.cert.fingerprint256]);
    expect(b.ignored).toEqual([expect.stringMatching(/^keys\[1\]: .*rsa-pss/), expect.stringMatching(/^keys\[2\]: .*ec key/)]);
    expect(() => serializeSpiffeBundle(b)).not.toThrow();
    const pem = parsePemBundle([good.certPem, pss.toString(), brainpool.toString()].join(''), td, BUNDLE_LIMITS);
    expect(pem.x509Authorities).toHaveLength(1);
    expect(pem.ignored).toHaveLength(2);
  });
});

describe('TrustManager refresh', () => {
  let server: TestServer;
  let body: string;
  const dir = mkdtempSync(join(tmpdir(), 'zg-mgr-'));
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    const ca = await MemoryCA.create('localhost.test');
    const srv = await ca.issue(undefined, { dns: ['localhost'], subject: 'CN=localhost' });
    server = await testServer({ cert: srv.certPem, key: srv.keyPem }, (_q, res) => res.writeHead(200).end(body));
    writeFileSync(join(dir, 'server-ca.pem'), ca.certPem);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await server.close();
  });

  it('a fetched bundle with an RSA-PSS root is taken without it, and the refresh settles', async () => {
    body = JSON.stringify({ keys: [element(good.cert, 'EC')], spiffe_sequence: 1 });
    const url = server.url.replace('127.0.0.1', 'localhost');
    const { config } = parseConfig(`trust:\n  - trustDomain: ${P}\n    source: {https_web: {url: "${url}", ca: server-ca.pem}}\n`, 'x', dir);
    const notes: string[] = [];
    const m = new TrustManager(config, { onRefresh: (_td, result, detail) => notes.push(`${result} ${detail}`) });
    try {
      await m.start();
      expect(m.ready).toBe(true);
      body = JSON.stringify({ keys: [element(good.cert, 'EC'), element(pss, 'RSA')], spiffe_sequence: 2 });
      await expect(m.refresh(P)).resolves.toBeUndefined();
      const st = m.status()[0]!;
      expect(st).toMatchObject({ lastResult: 'ok', sequence: 2, x509Authorities: 1 });
      expect(notes.at(-1)).toMatch(/^ok .*keys\[1\]: X\.509 authority ignored: its rsa-pss key has no JWK form/);
      // the same content again is "unchanged": the comparison works on what was received
      await m.refresh(P);
      expect(notes.at(-1)).toMatch(/^unchanged/);
      expect(unhandled).toEqual([]);
    } finally {
      m.stop();
    }
  });
});

describe('timers beyond what Node can arm', () => {
  const DAYS_30 = 30 * 86_400;

  it('the schema refuses a staleness or refresh interval longer than 2^31 − 1 ms', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-timer-'));
    writeFileSync(join(dir, 'p.pem'), good.certPem);
    const cfg = (fed: string) => parseConfig(`trust:\n  - {trustDomain: ${P}, bundle: p.pem}\nfederation: ${fed}\n`, 'x', dir);
    expect(() => cfg(`{maxStalenessSeconds: ${DAYS_30}}`)).toThrow(/maxStalenessSeconds/);
    expect(() => cfg(`{refresh: {maxSeconds: ${DAYS_30}}}`)).toThrow(/maxSeconds/);
    expect(() => cfg(`{maxStalenessSeconds: 2147483, refresh: {defaultSeconds: 2147483, minSeconds: 2147483, maxSeconds: 2147483}}`)).not.toThrow();
  });

  it('a configuration built in code with longer delays neither fails closed at once nor refreshes in a loop', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-timer-'));
    writeFileSync(join(dir, 'p.json'), JSON.stringify({ keys: [element(good.cert, 'EC')], spiffe_refresh_hint: DAYS_30 }));
    const { config } = parseConfig(`trust:\n  - {trustDomain: ${P}, bundle: p.json}\n`, 'x', dir);
    const long = { ...config, federation: { ...config.federation, maxStalenessSeconds: DAYS_30, refresh: { ...config.federation.refresh, maxSeconds: DAYS_30, jitter: 0 } } };
    let refreshes = 0;
    const m = new TrustManager(long, { onRefresh: () => refreshes++ });
    try {
      await m.start();
      await sleep(300);
      expect(m.bundles.isStale(td)).toBe(false);
      expect(m.ready).toBe(true);
      expect(refreshes).toBe(1);
    } finally {
      m.stop();
    }
  });
});

describe('spiffe_sequence', () => {
  let server: TestServer;
  let body: string;
  const dir = mkdtempSync(join(tmpdir(), 'zg-seq-'));
  let other: MemoryCA;

  beforeAll(async () => {
    other = await MemoryCA.create(P);
    const ca = await MemoryCA.create('localhost.test');
    const srv = await ca.issue(undefined, { dns: ['localhost'], subject: 'CN=localhost' });
    server = await testServer({ cert: srv.certPem, key: srv.keyPem }, (_q, res) => res.writeHead(200).end(body));
    writeFileSync(join(dir, 'server-ca.pem'), ca.certPem);
  });
  afterAll(() => server.close());

  it('a bundle that drops its sequence, or changes content under the same one, is refused; the current stays', async () => {
    body = JSON.stringify({ keys: [element(good.cert, 'EC')], spiffe_sequence: 5 });
    const url = server.url.replace('127.0.0.1', 'localhost');
    const { config } = parseConfig(`trust:\n  - trustDomain: ${P}\n    source: {https_web: {url: "${url}", ca: server-ca.pem}}\n`, 'x', dir);
    const m = new TrustManager(config);
    try {
      await m.start();
      const held = () => m.bundles.get(td)!.x509Authorities.map((c) => c.fingerprint256);
      body = JSON.stringify({ keys: [element(other.cert, 'EC')] });
      await m.refresh(P);
      expect(m.status()[0]).toMatchObject({ lastResult: 'error', lastError: expect.stringMatching(/^sequence dropped/) });
      body = JSON.stringify({ keys: [element(other.cert, 'EC')], spiffe_sequence: 5 });
      await m.refresh(P);
      expect(m.status()[0]).toMatchObject({ lastResult: 'error', lastError: expect.stringMatching(/^sequence not incremented/) });
      expect(held()).toEqual([good.cert.fingerprint256]);
      body = JSON.stringify({ keys: [element(good.cert, 'EC')], spiffe_sequence: 5 }); // the same content again is fine
      await m.refresh(P);
      expect(m.status()[0]).toMatchObject({ lastResult: 'ok' });
      body = JSON.stringify({ keys: [element(other.cert, 'EC')], spiffe_sequence: 6 });
      await m.refresh(P);
      expect(m.status()[0]).toMatchObject({ lastResult: 'ok', sequence: 6 });
      expect(held()).toEqual([other.cert.fingerprint256]);
    } finally {
      m.stop();
    }
  });
});
