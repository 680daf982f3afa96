/**
 * The Consul guide's zone A edge (docs/integrations/consul/edge-envoy.yaml and its SDS files,
 * read from the real files and rewritten in memory: loopback, port 0, certificate paths pointed
 * at generated material, the two clusters at the test's processes) carries traffic under real
 * Envoy, on every pinned Envoy: a zone A frontend with its SVID and common identity is verified
 * by the first ext_authz filter and re-signed by the second (`zonegate.egress`), and what the
 * edge's sidecar would receive is the edge's token on behalf of zone A's frontend. The loopback
 * flow without Envoy, billing's side included, is test/guides/consul-edge.test.ts.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { INTEGRATIONS } from '../guides/docs.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { zonegate } from '../helpers/cli.js';
import { envoyMatrix, startEnvoy, type RunningEnvoy } from '../helpers/envoy.js';
import { startWith, type Started } from '../helpers/zonegate.js';
import { call, echoApp, testServer, type EchoApp, type TestServer } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

const matrix = envoyMatrix();
const DIR = join(INTEGRATIONS, 'consul');
const read = (f: string) => readFileSync(join(DIR, f), 'utf8');
const edgeZg = parse(read('edge-zonegate.yaml')) as Record<string, any>;
const TD = edgeZg.trust[0].trustDomain as string;
const EDGE = `spiffe://${TD}/ns/default/dc/dc1/svc/zone-a-edge`;
const BILLING = `spiffe://${TD}/ns/default/dc/dc1/svc/billing`;
const FRONTEND = 'spiffe://zone-a.example/ns/shop/sa/frontend';

/** edge-envoy.yaml with its addresses, clusters and SDS files moved to `dir`. */
function edgeEnvoy(dir: string, ports: { sidecar: number; zonegate: number }): Record<string, any> {
  const cfg = parse(read('edge-envoy.yaml')) as Record<string, any>;
  delete cfg.admin;
  const sr = cfg.static_resources;
  sr.listeners[0].address.socket_address = { address: '127.0.0.1', port_value: 0 };
  const at = (name: string, port: number) => {
    const c = sr.clusters.find((x: any) => x.name === name);
    c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address = { address: '127.0.0.1', port_value: port };
    return c;
  };
  at('billing_via_sidecar', ports.sidecar);
  at('zonegate', ports.zonegate).connect_timeout = '1s';
  const hcm = sr.listeners[0].filter_chains[0].filters[0].typed_config;
  // The guide's 0.5 s, lengthened here only: the machines running the tests are shared.
  for (const f of hcm.http_filters.slice(0, 2)) f.typed_config.grpc_service.timeout = '5s';
  // SDS: the real secrets, their file names moved into dir
  const ctx = sr.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context;
  for (const ref of [ctx.tls_certificate_sds_secret_configs[0], ctx.combined_validation_context.validation_context_sds_secret_config]) {
    const file = ref.sds_config.path_config_source.path.split('/').pop();
    const doc = read(file).replaceAll('/etc/zonegate/edge', dir);
    ref.sds_config.path_config_source.path = join(dir, file);
    writeFileSync(join(dir, file), doc);
  }
  return cfg;
}

describe.skipIf(matrix.length === 0).each(matrix)('the Consul edge on envoy $version', (bin) => {
  let dir: string;
  let frontend: Issued;
  let consul: TestServer;
  let zoneA: Started;
  let edge: Started;
  let sidecar: EchoApp;
  let envoy: RunningEnvoy;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'zg-edge-'));
    mkdirSync(join(dir, 'leaf'));
    mkdirSync(join(dir, 'zone-a'));
    const [consulCa, zoneACa] = await Promise.all([MemoryCA.create(TD), MemoryCA.create('zone-a.example')]);
    frontend = await zoneACa.issue(FRONTEND);
    const edgeLeaf = await consulCa.issue(EDGE);
    writeFileSync(join(dir, 'leaf', 'cert.pem'), edgeLeaf.chainPem);
    writeFileSync(join(dir, 'leaf', 'key.pem'), edgeLeaf.keyPem);
    writeFileSync(join(dir, 'zone-a', 'roots.pem'), zoneACa.certPem); // what edge-zone-a-roots.sh writes
    writeFileSync(join(dir, 'zone-a-bootstrap.pem'), zoneACa.certPem);
    writeFileSync(join(dir, 'frontend.pem'), frontend.chainPem);
    writeFileSync(join(dir, 'frontend.key'), frontend.keyPem);
    writeFileSync(join(dir, 'consul-token'), 'test-token\n');
    consul = await testServer(undefined, (req, res) => {
      if (req.url !== '/v1/connect/ca/roots' || req.headers['x-consul-token'] !== 'test-token') return void res.writeHead(403).end();
      res.end(JSON.stringify({ ActiveRootID: 'r1', TrustDomain: TD, Roots: [{ ID: 'r1', RootCert: consulCa.certPem, Active: true }] }));
    });
    // zone A's zonegate, reduced to its bundle endpoint
    zoneA = await startWith(
      {
        identity: { cert: 'frontend.pem', key: 'frontend.key' },
        trust: [{ trustDomain: 'zone-a.example', bundle: 'zone-a-bootstrap.pem' }],
        federation: { endpoint: { trustDomain: 'zone-a.example', address: '127.0.0.1', port: 0, profile: 'https_spiffe' } },
      },
      dir,
    );
    const e = structuredClone(edgeZg);
    delete e.server;
    e.identity = { cert: 'leaf/cert.pem', key: 'leaf/key.pem' };
    e.trust[0].source.consul = { url: `http://127.0.0.1:${consul.port}`, tokenFile: 'consul-token' };
    e.trust[1].source.https_spiffe = { ...e.trust[1].source.https_spiffe, url: `https://127.0.0.1:${zoneA.zg.bundleEndpoint!.port}/`, bootstrap: 'zone-a-bootstrap.pem' };
    edge = await startWith(e, dir);
    await until(() => edge.zg.readiness.ready, 15_000, 'the edge zonegate ready');
    sidecar = await echoApp('edge-sidecar');
    envoy = await startEnvoy(bin, stringify(edgeEnvoy(dir, { sidecar: sidecar.port, zonegate: edge.zg.grpc.port })));
  }, 60_000);

  afterAll(async () => {
    await envoy?.stop();
    await Promise.allSettled([edge?.close(), zoneA?.close(), sidecar?.close(), consul?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const mint = (aud: string) => {
    const r = zonegate(['token', 'mint', '--key', join(dir, 'frontend.key'), '--cert', join(dir, 'frontend.pem'), '--sub', FRONTEND, '--aud', aud]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  };
  const tls = () => ({ cert: frontend.chainPem, key: frontend.keyPem });

  it('zone A\'s frontend reads an invoice: both checks pass and the sidecar receives the edge\'s token for billing, on behalf of the frontend', async () => {
    const r = await call({ to: envoy.ports.from_zone_a!, path: '/api/invoices/7', tls: tls(), headers: { 'x-common-identity': mint(`spiffe://${TD}`) } });
    expect(r.status, `${r.headers['x-zonegate-reason']} ${r.body}`).toBe(200);
    expect(r.headers['x-echo']).toBe('edge-sidecar');
    expect(r.json.headers.host).toBe('billing');
    // the second filter saw the token the first kept on the request, and re-signed it
    expect(decodeJwt(r.json.headers['x-common-identity'])).toMatchObject({ iss: EDGE, sub: FRONTEND, aud: BILLING, act: { sub: FRONTEND } });
    expect(edge.logs.filter((l) => l.rule).map((l) => l.rule).slice(-2)).toEqual(['zone-a-frontend-reads-invoices', 'edge-forwards-to-billing']);
  });

  it('refused at the edge: a write (403 ERR_POLICY_NO_MATCH), a token for another audience, no client certificate (TLS)', async () => {
    const post = await call({ to: envoy.ports.from_zone_a!, method: 'POST', path: '/api/invoices', tls: tls(), headers: { 'x-common-identity': mint(`spiffe://${TD}`) } });
    expect([post.status, post.headers['x-zonegate-reason']]).toEqual([403, 'ERR_POLICY_NO_MATCH']);
    const aud = await call({ to: envoy.ports.from_zone_a!, path: '/api/invoices/7', tls: tls(), headers: { 'x-common-identity': mint('spiffe://zone-b.example') } });
    expect(aud.headers['x-zonegate-reason']).toBe('ERR_TOKEN_AUDIENCE');
    await expect(call({ to: envoy.ports.from_zone_a!, path: '/api/invoices/7', tls: { cert: '', key: '' } })).rejects.toThrow();
  });
});
