/** Bounded fetches against real HTTPS servers on loopback: profiles, identity, limits, redirects. */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { boundedGet, FetchError } from '../../src/net/fetch.js';
import { createSource, SourceError } from '../../src/federation/sources.js';
import { SourceSchema, type SourceConfig } from '../../src/federation/schema.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import 'reflect-metadata';
import { KeyUsageFlags } from '@peculiar/x509';
import { MemoryCA } from '../../src/demo/pki.js';
import { testServer, type TestServer } from '../helpers/http.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLE_LIMITS } from '../helpers/limits.js';

const limits = { connectTimeoutMs: 1000, totalTimeoutMs: 1500, maxBytes: 4096, ...BUNDLE_LIMITS };
const dir = mkdtempSync(join(tmpdir(), 'zg-fetch-'));
const servers: TestServer[] = [];
let web: MemoryCA;
let zone: MemoryCA;
let spiffeServer: TestServer;
let otherIdServer: TestServer;
const ENDPOINT_ID = 'spiffe://zone-b.test/bundle-endpoint';

beforeAll(async () => {
  web = await MemoryCA.create('web.test');
  zone = await MemoryCA.create('zone-b.test');
  writeFileSync(join(dir, 'web-ca.pem'), web.certPem);
  writeFileSync(join(dir, 'bootstrap.pem'), zone.certPem);
  const bundleDoc = JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'EC', crv: 'P-256', x5c: [zone.cert.raw.toString('base64')] }], spiffe_sequence: 7 });
  const spiffeCert = await zone.server(ENDPOINT_ID);
  spiffeServer = await testServer({ cert: spiffeCert.chainPem, key: spiffeCert.keyPem }, (_q, res) => res.end(bundleDoc));
  const otherCert = await zone.server('spiffe://zone-b.test/impostor');
  otherIdServer = await testServer({ cert: otherCert.chainPem, key: otherCert.keyPem }, (_q, res) => res.end(bundleDoc));
  servers.push(spiffeServer, otherIdServer);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function webServer(handler: Parameters<typeof testServer>[1]): Promise<TestServer> {
  const c = await web.server();
  const s = await testServer({ cert: c.chainPem, key: c.keyPem }, handler);
  servers.push(s);
  return s;
}
const webProfile = () => ({ kind: 'https_web' as const, ca: [web.certPem] });
const kind = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof FetchError || e instanceof SourceError ? e.kind : String(e)));

describe('boundedGet', () => {
  it('https_web with a configured CA; fails against the system roots', async () => {
    const s = await webServer((_q, res) => res.end('hello'));
    const r = await boundedGet(s.url, webProfile(), limits);
    expect([r.status, r.body.toString()]).toEqual([200, 'hello']);
    expect(await kind(boundedGet(s.url, { kind: 'https_web' }, limits))).toBe('tls');
  });

  it('refuses a plain http URL for an https profile', async () => {
    expect(await kind(boundedGet('http://127.0.0.1:1/x', webProfile(), limits))).toBe('tls');
  });

  it('bounds the size: declared and streamed', async () => {
    const declared = await webServer((_q, res) => res.writeHead(200, { 'content-length': '100000' }).end('x'.repeat(100_000)));
    expect(await kind(boundedGet(declared.url, webProfile(), limits))).toBe('too_large');
    const chunked = await webServer((_q, res) => {
      res.writeHead(200);
      for (let i = 0; i < 10; i++) res.write('y'.repeat(1000));
      res.end();
    });
    expect(await kind(boundedGet(chunked.url, webProfile(), limits))).toBe('too_large');
  });

  it('bounds the time: no response, and a body that never ends', async () => {
    const silent = await webServer(() => undefined);
    const t0 = Date.now();
    expect(await kind(boundedGet(silent.url, webProfile(), limits))).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(3000);
    const trickle = await webServer((_q, res) => {
      res.writeHead(200);
      const t = setInterval(() => res.write('.'), 100);
      res.on('close', () => clearInterval(t));
    });
    expect(await kind(boundedGet(trickle.url, webProfile(), limits))).toBe('timeout');
  });

  it('https_spiffe: accepts only the configured SPIFFE ID, chained to the given roots, whatever the host name', async () => {
    const profile = (id: string, roots = [zone.certPem]) => ({ kind: 'https_spiffe' as const, endpointId: id, roots: () => roots });
    expect((await boundedGet(spiffeServer.url, profile(ENDPOINT_ID), limits)).status).toBe(200);
    expect(await kind(boundedGet(otherIdServer.url, profile(ENDPOINT_ID), limits))).toBe('identity');
    expect(await kind(boundedGet(spiffeServer.url, profile(ENDPOINT_ID, [web.certPem]), limits))).toBe('tls');
  });
});

describe('sources', () => {
  const td = TrustDomain.parse('zone-b.test');
  const src = (cfg: Parameters<typeof createSource>[0]) => createSource(cfg, td, limits, { current: () => undefined });

  it('every source the schema accepts builds a source of its kind; the type createSource takes is the schema\'s', () => {
    // Checked by the type checker: a hand-written copy of the source type would drift from the schema.
    expectTypeOf<Parameters<typeof createSource>[0]>().toEqualTypeOf<SourceConfig>();
    const configured = [
      { file: join(dir, 'bootstrap.pem') },
      { istio: { rootCert: join(dir, 'bootstrap.pem') } },
      { https_web: { url: 'https://127.0.0.1:1/bundle', ca: join(dir, 'web-ca.pem') } },
      { https_spiffe: { url: 'https://127.0.0.1:1/bundle', endpointSpiffeId: ENDPOINT_ID, bootstrap: join(dir, 'bootstrap.pem') } },
      { consul: { url: 'https://127.0.0.1:1', datacenter: 'dc1' } },
    ];
    const kinds = configured.map((c) => src(SourceSchema.parse(c)).kind);
    expect(kinds).toEqual(configured.map((c) => Object.keys(c)[0]));
    expect(SourceSchema.safeParse({ file: join(dir, 'bootstrap.pem'), istio: { rootCert: 'x' } }).success).toBe(false);
  });

  it('https_spiffe with a bootstrap bundle fetches and parses the bundle', async () => {
    const b = await src({ https_spiffe: { url: spiffeServer.url, endpointSpiffeId: ENDPOINT_ID, bootstrap: join(dir, 'bootstrap.pem') } }).fetch();
    expect([b.x509Authorities.length, b.sequence]).toEqual([1, 7]);
  });

  it('https_spiffe: a wrong endpoint SPIFFE ID is refused', async () => {
    const s = src({ https_spiffe: { url: otherIdServer.url, endpointSpiffeId: ENDPOINT_ID, bootstrap: join(dir, 'bootstrap.pem') } });
    expect(await kind(s.fetch())).toBe('identity');
  });

  it('https_spiffe: a redirect to a server with another SPIFFE ID is refused; one to the same ID is followed', async () => {
    const c = await zone.server(ENDPOINT_ID);
    const toOther = await testServer({ cert: c.chainPem, key: c.keyPem }, (_q, res) => res.writeHead(302, { location: otherIdServer.url }).end());
    const toSame = await testServer({ cert: c.chainPem, key: c.keyPem }, (_q, res) => res.writeHead(307, { location: spiffeServer.url }).end());
    servers.push(toOther, toSame);
    const boot = join(dir, 'bootstrap.pem');
    expect(await kind(src({ https_spiffe: { url: toOther.url, endpointSpiffeId: ENDPOINT_ID, bootstrap: boot } }).fetch())).toBe('identity');
    expect(await kind(src({ https_spiffe: { url: toSame.url, endpointSpiffeId: ENDPOINT_ID, bootstrap: boot } }).fetch())).toBe('ok');
  });

  it('consul: the ACL token goes to the configured origin only, never along a redirect to another one', async () => {
    const roots = JSON.stringify({ TrustDomain: 'x.consul', Roots: [{ RootCert: zone.certPem }] });
    const seen: Record<string, string | undefined> = {};
    const record = (name: string): Parameters<typeof testServer>[1] => (q, res) => {
      seen[name] = q.headers['x-consul-token'] as string | undefined;
      res.end(roots);
    };
    const elsewhere = await testServer(undefined, record('elsewhere'));
    const consul = await testServer(undefined, (q, res) => {
      if (q.url?.startsWith('/v1/connect/ca/roots')) return void res.writeHead(302, { location: q.url.includes('dc=other') ? `${elsewhere.url.replace('/bundle', '')}/steal` : '/same-origin' }).end();
      record('same')(q, res);
    });
    servers.push(elsewhere, consul);
    writeFileSync(join(dir, 'acl-token'), 'secret-acl-token\n');
    const base = consul.url.replace('/bundle', '');
    const consulTd = TrustDomain.parse('x.consul');
    const source = (datacenter?: string) =>
      createSource({ consul: { url: base, tokenFile: join(dir, 'acl-token'), ...(datacenter ? { datacenter } : {}) } }, consulTd, limits, { current: () => undefined });
    expect((await source().fetch()).x509Authorities).toHaveLength(1);
    expect(seen.same).toBe('secret-acl-token');
    expect((await source('other').fetch()).x509Authorities).toHaveLength(1);
    expect(seen).toHaveProperty('elsewhere', undefined);
  });

  it('a source URL with credentials in it is refused when the source is created', () => {
    expect(() => src({ https_web: { url: 'https://user:secret@127.0.0.1:1/bundle' } })).toThrow(/carries credentials/);
    expect(() => src({ consul: { url: 'http://acl:secret@127.0.0.1:8500' } })).toThrow(/carries credentials/);
    expect(() => src({ consul: { url: 'http://127.0.0.1:8500' } })).not.toThrow();
  });

  it('https_spiffe: an endpoint certificate that breaks the X509-SVID leaf rules is refused', async () => {
    const signer = await zone.issue(ENDPOINT_ID, { dns: ['localhost'], ips: ['127.0.0.1'], keyUsage: KeyUsageFlags.digitalSignature | KeyUsageFlags.keyCertSign });
    const s = await testServer({ cert: signer.chainPem, key: signer.keyPem }, (_q, res) => res.end('{}'));
    servers.push(s);
    const r = src({ https_spiffe: { url: s.url, endpointSpiffeId: ENDPOINT_ID, bootstrap: join(dir, 'bootstrap.pem') } }).fetch();
    await expect(r).rejects.toMatchObject({ kind: 'identity', message: expect.stringMatching(/not an X509-SVID leaf.*keyCertSign/) });
  });

  it('https_spiffe: an endpoint whose certificate or intermediate has a 1024-bit RSA key is refused (ERR_KEY_TOO_WEAK)', async () => {
    const tls = { dns: ['localhost'], ips: ['127.0.0.1'], keyUsage: KeyUsageFlags.digitalSignature };
    const weakLeaf = await zone.issue(ENDPOINT_ID, { ...tls, keyType: 'RSA-1024' });
    const viaWeak = await (await zone.intermediate({ keyType: 'RSA-1024' })).issue(ENDPOINT_ID, { ...tls, keyType: 'P-256' });
    const strong = await zone.issue(ENDPOINT_ID, { ...tls, keyType: 'RSA' });
    const boot = join(dir, 'bootstrap.pem');
    const fetchFrom = async (c: { chainPem: string; keyPem: string }) => {
      // the endpoint is misconfigured on purpose: security level 0 lets its TLS stack load and
      // send a 1024-bit key (Node 24 refuses to at its default level)
      const s = await testServer({ cert: c.chainPem, key: c.keyPem, ciphers: 'DEFAULT:@SECLEVEL=0' }, (_q, res) => res.end(JSON.stringify({ keys: [] })));
      servers.push(s);
      return src({ https_spiffe: { url: s.url, endpointSpiffeId: ENDPOINT_ID, bootstrap: boot } }).fetch();
    };
    // Node 20's OpenSSL lets the handshake reach zonegate's own key check; Node 24's refuses the
    // key itself (security level 2): the same refusal, the same reason
    await expect(fetchFrom(weakLeaf)).rejects.toMatchObject({ kind: 'identity', code: 'ERR_KEY_TOO_WEAK', message: expect.stringMatching(/endpoint certificate refused: .*RSA key of 1024 bits|endpoint certificate refused by TLS: EE certificate key too weak/) });
    await expect(fetchFrom(viaWeak)).rejects.toMatchObject({ kind: 'identity', code: 'ERR_KEY_TOO_WEAK', message: expect.stringMatching(/chain certificate 1 refused: .*RSA key of 1024 bits|chain certificate refused by TLS: CA certificate key too weak/) });
    expect(await kind(fetchFrom(strong))).toBe('ok');
  });

  it('https_web: non-200 and non-bundle bodies are errors with their kind', async () => {
    const s404 = await webServer((_q, res) => res.writeHead(404).end());
    const junk = await webServer((_q, res) => res.end('{"not":"a bundle"}'));
    expect(await kind(src({ https_web: { url: s404.url, ca: join(dir, 'web-ca.pem') } }).fetch())).toBe('status');
    expect(await kind(src({ https_web: { url: junk.url, ca: join(dir, 'web-ca.pem') } }).fetch())).toBe('parse');
  });
});
