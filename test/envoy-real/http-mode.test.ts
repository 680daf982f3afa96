/**
 * zonegate's HTTP authorization mode (server.http) behind Envoy's ext_authz `http_service`, on
 * every Envoy in the matrix. What Envoy really sends (measured here, see envoy/README.md): the
 * original method, and path_prefix + the original path and query, with no body; of the client's
 * headers only host, content-length and those in `authorization_request.allowed_headers`; plus
 * `headers_to_add`, whose values take substitution formatters and replace a client's copy — so
 * `%DOWNSTREAM_PEER_CERT%` (URL-encoded PEM) is the certificate header. On an allow, the response
 * headers matching `allowed_upstream_headers` overwrite the client's copies, and the names in the
 * response header `x-envoy-auth-headers-to-remove` are removed from the upstream request.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { loadX509Svid } from '../../src/svid/local.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { envoyMatrix, startEnvoy, type RunningEnvoy } from '../helpers/envoy.js';
import { cluster, controlledHeaders, downstreamTls, extAuthzFilter, httpListener, loopbackServerCert, send, writePem } from '../helpers/envoy-authz.js';
import { startWith, type Started } from '../helpers/zonegate.js';
import { echoApp, valuesOf, type EchoApp, type Reply } from '../helpers/http.js';
import { EGRESS_TTL_SECONDS } from '../helpers/identity.js';

const matrix = envoyMatrix();
const A = 'zone-a.test';
const B = 'zone-b.test';
const WEB = `spiffe://${A}/ns/shop/sa/web`;

const zonegateConfig = {
  // behind Envoy's http_service: the request line is the check request's own (server.http.proxy)
  server: { http: { address: '127.0.0.1', port: 0, proxy: 'envoy' } },
  identity: { cert: 'zonegate.pem', key: 'zonegate.key' },
  trust: [
    { trustDomain: A, bundle: 'a.pem' },
    { trustDomain: B, bundle: 'b.pem' },
  ],
  commonIdentity: { required: false },
  rules: [
    { name: 'no-admin', action: 'deny', to: { paths: [{ prefix: '/admin/' }] } },
    { name: 'web-reads-api', action: 'allow', from: { principals: [WEB] }, to: { methods: ['GET'], paths: [{ prefix: '/api/' }] } },
  ],
  upstream: { guard: ['x-internal-admin'] },
};

interface Material {
  dir: string;
  roots: string;
  web: Issued;
  other: Issued;
  forged: Issued;
  envoyTls: { cert: string; key: string; ca: string };
}

let m: Material;

async function material(): Promise<Material> {
  const dir = mkdtempSync(join(tmpdir(), 'zg-envoy-http-'));
  const caA = await MemoryCA.create(A);
  const caB = await MemoryCA.create(B);
  const zg = await caA.issue(`spiffe://${A}/zonegate`);
  const envoyCert = await loopbackServerCert(caA);
  writePem(dir, 'a.pem', caA.certPem);
  writePem(dir, 'b.pem', caB.certPem);
  writePem(dir, 'zonegate.pem', zg.chainPem);
  writePem(dir, 'zonegate.key', zg.keyPem);
  return {
    dir,
    roots: caA.certPem,
    web: await caA.issue(WEB),
    other: await caA.issue(`spiffe://${A}/ns/shop/sa/other`),
    forged: await caB.issue(WEB),
    envoyTls: {
      cert: writePem(dir, 'envoy.pem', envoyCert.chainPem),
      key: writePem(dir, 'envoy.key', envoyCert.keyPem),
      ca: writePem(dir, 'roots.pem', caA.certPem + caB.certPem),
    },
  };
}

/** ext_authz with http_service, configured for zonegate's HTTP mode. */
function httpService(port: number, controlled: readonly string[], carried: string) {
  return {
    http_service: {
      server_uri: { uri: `http://127.0.0.1:${port}`, cluster: 'zonegate_http', timeout: '2s' },
      // no path_prefix: Envoy appends the original path to it, and zonegate reads the path as sent
      authorization_request: {
        // the carried token only; Envoy drops every other client header (X-Forwarded-*, X-Original-*)
        allowed_headers: { patterns: [{ exact: carried }] },
        // the certificate Envoy verified, overwriting any client copy of the header
        headers_to_add: [{ key: 'x-ssl-client-cert', value: '%DOWNSTREAM_PEER_CERT%' }],
      },
      authorization_response: {
        // zonegate's identity headers overwrite the client's copies; x-envoy-auth-headers-to-remove does the rest
        allowed_upstream_headers: { patterns: controlled.filter((h) => h !== carried).map((exact) => ({ exact })) },
      },
    },
  };
}

function expectDeny(r: Reply, status: number, reason: string) {
  expect({ status: r.status, reason: r.reason, reached: r.seen !== undefined }).toEqual({ status, reason, reached: false });
  expect((JSON.parse(r.body) as { reason: string }).reason).toBe(reason);
}

describe.skipIf(matrix.length === 0)('HTTP authorization mode behind Envoy http_service', () => {
  beforeAll(async () => {
    m = await material();
  }, 60_000);
  afterAll(() => rmSync(m?.dir ?? '/nonexistent', { recursive: true, force: true }));

  for (const bin of matrix) {
    describe(`envoy ${bin.version}`, () => {
      let zg: Started;
      let envoy: RunningEnvoy;
      let app: EchoApp;
      let controlled: string[];
      const carried = 'x-common-identity';
      const get = (client: Issued, o: { path?: string; method?: string; headers?: Record<string, string | string[]> } = {}) =>
        send(envoy.ports.http!, { client, ca: m.roots, ...o });

      beforeAll(async () => {
        [zg, app] = await Promise.all([startWith(zonegateConfig, m.dir), echoApp()]);
        controlled = controlledHeaders(parseConfig(stringify(zonegateConfig), 'zonegate.yaml', m.dir).config);
        envoy = await startEnvoy(bin, {
          static_resources: {
            listeners: [httpListener('http', { tls: downstreamTls(m.envoyTls), filters: [extAuthzFilter(httpService(zg.zg.httpAuthz!.port, controlled, carried), { include_peer_certificate: undefined })], cluster: 'app' })],
            clusters: [cluster('zonegate_http', zg.zg.httpAuthz!.port), cluster('app', app.port)],
          },
        });
      }, 60_000);
      afterAll(async () => {
        await envoy?.stop();
        await zg?.close();
        await app?.close();
      });

      it('allow: the upstream receives the verified identity from the certificate Envoy verified', async () => {
        const r = await get(m.web);
        expect(r.status).toBe(200);
        expect(valuesOf(r.seen!, 'x-zonegate-peer')).toEqual([WEB]);
        expect(valuesOf(r.seen!, 'x-zonegate-peer-trust-domain')).toEqual([A]);
      });

      it('zonegate decides on the original method and path as Envoy sends them', async () => {
        expectDeny(await get(m.web, { method: 'POST' }), 403, 'ERR_POLICY_NO_MATCH'); // the rule allows GET only
        expectDeny(await get(m.web, { path: '/admin/users' }), 403, 'ERR_POLICY_DENIED');
        expectDeny(await get(m.web, { path: '/other?x=/api/' }), 403, 'ERR_POLICY_NO_MATCH');
      });

      it('client-sent X-Forwarded-* / X-Original-* never choose the request zonegate decides on', async () => {
        const spoof = { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/items', 'x-original-method': 'GET', 'x-original-uri': '/api/items', 'x-forwarded-host': 'api.test' };
        expectDeny(await get(m.web, { path: '/admin/users', headers: spoof }), 403, 'ERR_POLICY_DENIED');
        expectDeny(await get(m.web, { method: 'DELETE', headers: spoof }), 403, 'ERR_POLICY_NO_MATCH');
        const hide = { 'x-forwarded-uri': '/admin/users', 'x-original-uri': '/admin/users', 'x-forwarded-method': 'DELETE' };
        expect((await get(m.web, { headers: hide })).status).toBe(200);
      });

      it("a client's own certificate header is replaced by the one Envoy verified", async () => {
        const claimed = { 'x-ssl-client-cert': encodeURIComponent(m.web.certPem) };
        expectDeny(await get(m.other, { headers: claimed }), 403, 'ERR_POLICY_NO_MATCH');
      });

      it("a certificate forged by the other zone's CA passes Envoy's TLS and is denied 401 ERR_SVID_UNTRUSTED", async () => {
        expectDeny(await get(m.forged), 401, 'ERR_SVID_UNTRUSTED');
      });

      it('a tampered common identity → 401 ERR_TOKEN_SIGNATURE; a valid one sets the actor and is not forwarded', async () => {
        const token = mintCommonIdentity(loadX509Svid(Buffer.from(m.web.chainPem), Buffer.from(m.web.keyPem)), { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'alice', aud: `spiffe://${A}` });
        const [h, p] = token.split('.');
        expectDeny(await get(m.web, { headers: { [carried]: `${h}.${p}.AAAA` } }), 401, 'ERR_TOKEN_SIGNATURE');
        const ok = await get(m.web, { headers: { [carried]: token } });
        expect(ok.status).toBe(200);
        expect(valuesOf(ok.seen!, 'x-zonegate-actor')).toEqual(['alice']);
        expect(valuesOf(ok.seen!, carried)).toEqual([]);
      });

      it('no client copy of any header zonegate sets or guards reaches the upstream', async () => {
        expect(controlled).toEqual(expect.arrayContaining(['x-zonegate-peer', 'x-zonegate-actor', 'x-internal-admin', carried]));
        const headers: Record<string, string | string[]> = { 'x-other': ['o1', 'o2'] };
        for (const n of controlled) if (n !== carried) headers[n] = [`client-1-${n}`, `client-2-${n}`];
        const r = await get(m.web, { headers });
        expect(r.status).toBe(200);
        expect(valuesOf(r.seen!, 'x-other')).toEqual(['o1', 'o2']);
        for (const n of controlled) {
          const got = valuesOf(r.seen!, n);
          expect({ header: n, atMostOne: got.length <= 1, client: got.some((v) => v.includes('client-')) }).toEqual({ header: n, atMostOne: true, client: false });
        }
        expect(valuesOf(r.seen!, 'x-zonegate-peer')).toEqual([WEB]);
      });

      it('zonegate stopped → 503 status_on_error, never an allow', async () => {
        await zg.close();
        const before = app.seen.length;
        const r = await get(m.web);
        expect({ status: r.status, reached: r.seen !== undefined }).toEqual({ status: 503, reached: false });
        expect(app.seen.length).toBe(before);
      });
    });
  }
});
