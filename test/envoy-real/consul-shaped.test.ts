/**
 * The Consul guide (docs/integrations/consul.md) under real Envoy, on every pinned Envoy: billing's
 * sidecar carries the two ext_authz filters Consul's `builtin/ext-authz` extension generates
 * from docs/integrations/consul/service-defaults-billing.json, and zonegate runs the guide's own
 * zonegate.yaml (paths, ports and Consul's address rewritten in memory).
 *
 * The filter and its cluster are reproduced from hashicorp/consul,
 * agent/envoyextensions/builtin/ext-authz/structs.go: extAuthzConfig.toEnvoyHttpFilter (name
 * "envoy.filters.http.ext_authz", stat_prefix default "response", failure_mode_allow = !Required,
 * include_peer_certificate and status_on_error only when set, no context_extensions anywhere),
 * envoyGrpcService (envoy_grpc to "local_ext_authz", timeout from Target.Timeout), envoyHttpService
 * (server_uri {uri and cluster "local_ext_authz", timeout}, authorization_request.allowed_headers,
 * authorization_response.allowed_upstream_headers as ListStringMatcher patterns) and toEnvoyCluster
 * (STATIC "local_ext_authz", connect_timeout = the target's timeout, HTTP/2 only for gRPC). The
 * inbound one sits on the sidecar's public mTLS listener (Consul's CA, client certificate
 * required), the outbound one on an upstream listener. Not exercised: Consul's servers, xDS,
 * intentions enforced by Consul's RBAC filter, and the sidecar-to-sidecar hop.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { importConsul } from '../../src/policy/import/consul.js';
import { INTEGRATIONS } from '../guides/docs.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { envoyMatrix, startEnvoy, type RunningEnvoy } from '../helpers/envoy.js';
import { cluster, httpListener, routerFilter } from '../helpers/envoy-zones.js';
import { startWith, type Started } from '../helpers/zonegate.js';
import { call, echoApp, testServer, type EchoApp, type TestServer } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

const matrix = envoyMatrix();
const DIR = join(INTEGRATIONS, 'consul');
const guideZg = parse(readFileSync(join(DIR, 'zonegate.yaml'), 'utf8')) as Record<string, any>;
const entry = JSON.parse(readFileSync(join(DIR, 'service-defaults-billing.json'), 'utf8')) as Record<string, any>;
const TD = guideZg.trust[0].trustDomain as string;
const svc = (name: string) => `spiffe://${TD}/ns/default/dc/dc1/svc/${name}`;
const STATUS: Record<number, string> = { 403: 'Forbidden', 503: 'ServiceUnavailable' };

type Matcher = Record<string, string | boolean>;
const matcher = (m: Matcher) => {
  const [kind, value] = Object.entries(m).find(([k]) => k !== 'IgnoreCase')!;
  const key = { Exact: 'exact', Prefix: 'prefix', Suffix: 'suffix', Contains: 'contains', SafeRegex: 'safe_regex' }[kind]!;
  return { [key]: key === 'safe_regex' ? { regex: value } : value, ...(m.IgnoreCase ? { ignore_case: true } : {}) };
};
const patterns = (l?: Matcher[]) => (l && l.length > 0 ? { patterns: l.map(matcher) } : undefined);
const seconds = (t = '1s') => `${t.endsWith('ms') ? Number(t.slice(0, -2)) / 1000 : Number(t.slice(0, -1))}s`;

/** The ext_authz HTTP filter and the local cluster Consul generates for one extension. */
function consulExtAuthz(ext: any, zonegatePort: number) {
  const c = ext.Arguments.Config;
  const target = (c.GrpcService ?? c.HttpService).Target;
  // The guide's 0.5 s, lengthened here only: the machines running the tests are shared.
  const timeout = seconds('5s');
  expect(seconds(target.Timeout)).toBe('0.5s');
  const ar = c.HttpService?.AuthorizationRequest;
  const as = c.HttpService?.AuthorizationResponse;
  const filter = {
    name: 'envoy.filters.http.ext_authz',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
      stat_prefix: c.StatPrefix ?? 'response',
      transport_api_version: 'V3',
      failure_mode_allow: !ext.Required,
      ...(c.GrpcService
        ? { grpc_service: { envoy_grpc: { cluster_name: 'local_ext_authz' }, timeout } }
        : {
            http_service: {
              server_uri: { uri: 'local_ext_authz', cluster: 'local_ext_authz', timeout },
              ...(c.HttpService.PathPrefix ? { path_prefix: c.HttpService.PathPrefix } : {}),
              ...(ar && (ar.AllowedHeaders?.length || ar.HeadersToAdd?.length) ? { authorization_request: { allowed_headers: patterns(ar.AllowedHeaders) } } : {}),
              ...(as ? { authorization_response: { allowed_upstream_headers: patterns(as.AllowedUpstreamHeaders) } } : {}),
            },
          }),
      ...(c.IncludePeerCertificate !== undefined ? { include_peer_certificate: c.IncludePeerCertificate } : {}),
      ...(c.StatusOnError !== undefined ? { status_on_error: { code: STATUS[c.StatusOnError] } } : {}),
    },
  };
  const local = { ...cluster('local_ext_authz', zonegatePort, { h2: Boolean(c.GrpcService) }), connect_timeout: timeout };
  if (!c.GrpcService) delete (local as Record<string, unknown>).typed_extension_protocol_options;
  return { filter, cluster: local };
}

const ext = (listener: 'inbound' | 'outbound') => entry.EnvoyExtensions.find((e: any) => e.Arguments.ListenerType === listener);

/** The guide's zonegate.yaml on loopback: certificates, Consul's address and zone A's bundle rewritten. */
function guideConfig(consulPort: number, rules?: unknown[]) {
  const z = structuredClone(guideZg);
  z.server = { http: { ...z.server.http, address: '127.0.0.1', port: 0 } };
  z.identity = { cert: 'billing.pem', key: 'billing.key' };
  z.trust[0].source.consul = { url: `http://127.0.0.1:${consulPort}`, tokenFile: 'consul-token' };
  z.trust[1] = { trustDomain: z.trust[1].trustDomain, bundle: 'zone-a-root.pem' };
  z.federation.endpoint = { ...z.federation.endpoint, address: '127.0.0.1', port: 0 };
  if (rules) z.rules = rules;
  return z;
}

describe.skipIf(matrix.length === 0).each(matrix)('the Consul guide on envoy $version', (bin) => {
  let dir: string;
  let consulCa: MemoryCA;
  let web: Issued;
  let other: Issued;
  let consul: TestServer;
  let zg: Started;
  let imported: Started;
  let billingApp: EchoApp;
  let zoneA: EchoApp;
  let envoy: RunningEnvoy;
  const as = (who: Issued) => ({ cert: who.chainPem, key: who.keyPem });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'zg-consul-'));
    consulCa = await MemoryCA.create(TD);
    const zoneACa = await MemoryCA.create('zone-a.example');
    const billing = await consulCa.issue(svc('billing'));
    [web, other] = await Promise.all([consulCa.issue(svc('web')), consulCa.issue(svc('batch'))]);
    writeFileSync(join(dir, 'billing.pem'), billing.chainPem);
    writeFileSync(join(dir, 'billing.key'), billing.keyPem);
    writeFileSync(join(dir, 'consul-roots.pem'), consulCa.certPem);
    writeFileSync(join(dir, 'zone-a-root.pem'), zoneACa.certPem);
    writeFileSync(join(dir, 'consul-token'), 'test-token\n');
    // Consul's CA roots API, the part zonegate reads
    consul = await testServer(undefined, (req, res) => {
      if (req.url !== '/v1/connect/ca/roots' || req.headers['x-consul-token'] !== 'test-token') return void res.writeHead(403).end();
      res.end(JSON.stringify({ ActiveRootID: 'r1', TrustDomain: TD, Roots: [{ ID: 'r1', RootCert: consulCa.certPem, Active: true }] }));
    });
    const consulPort = consul.port;

    [billingApp, zoneA] = await Promise.all([echoApp('billing'), echoApp('zone-a')]);
    zg = await startWith(guideConfig(consulPort), dir);
    // the same config with the rules `zonegate policy import consul` writes from the intentions
    const intentions = importConsul(readFileSync(join(DIR, 'service-intentions-billing.json'), 'utf8'), 'service-intentions-billing.json', {
      zone: '7f3c8e2a-0b1d-4c5e-9f6a-2d8b4e1c3a5f.consul', // the guide's --zone: the datacenter's trust domain
    });
    imported = await startWith(guideConfig(consulPort, intentions.rules), dir);
    for (const z of [zg, imported]) await until(() => z.zg.readiness.ready, 15_000, 'zonegate ready');

    const inbound = consulExtAuthz(ext('inbound'), zg.zg.grpc.port);
    const inboundImported = consulExtAuthz(ext('inbound'), imported.zg.grpc.port);
    const outbound = consulExtAuthz(ext('outbound'), zg.zg.httpAuthz!.port);
    // Consul names both local clusters "local_ext_authz"; one Envoy here holds both, so the
    // outbound one is renamed (in the filter and the cluster alike).
    const su = (outbound.filter.typed_config as any).http_service.server_uri;
    su.uri = su.cluster = 'local_ext_authz_http';
    // Consul's public listener: its leaf, client certificates of Consul's CA required
    const publicTls = {
      require_client_certificate: true,
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { filename: join(dir, 'billing.pem') }, private_key: { filename: join(dir, 'billing.key') } }],
        validation_context: { trusted_ca: { filename: join(dir, 'consul-roots.pem') } },
      },
    };
    const rename = (c: any, name: string) => ({ ...c, name, load_assignment: { ...c.load_assignment, cluster_name: name } });
    envoy = await startEnvoy(bin, {
      static_resources: {
        listeners: [
          httpListener({ name: 'public_listener', at: 0, downstreamTls: publicTls, route: { cluster: 'local_app' }, filters: [inbound.filter, routerFilter] }),
          // a second public listener whose zonegate runs the imported intentions (its own local cluster)
          httpListener({
            name: 'public_imported',
            at: 0,
            downstreamTls: publicTls,
            route: { cluster: 'local_app' },
            filters: [{ ...inbound.filter, typed_config: { ...inbound.filter.typed_config, grpc_service: { envoy_grpc: { cluster_name: 'local_ext_authz_imported' }, timeout: '5s' } } }, routerFilter],
          }),
          httpListener({ name: 'upstream_zone_a', at: 0, route: { cluster: 'zone_a' }, filters: [outbound.filter, routerFilter] }),
        ],
        clusters: [
          cluster('local_app', billingApp.port),
          cluster('zone_a', zoneA.port),
          inbound.cluster,
          rename(inboundImported.cluster, 'local_ext_authz_imported'),
          rename(outbound.cluster, 'local_ext_authz_http'),
        ].map((c) => c),
      },
    });
  }, 60_000);

  afterAll(async () => {
    await envoy?.stop();
    await Promise.allSettled([zg?.close(), imported?.close(), billingApp?.close(), zoneA?.close(), consul?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('web reads invoices with its Consul leaf alone (no common identity): allowed by `web-reads-invoices`', async () => {
    const r = await call({ to: envoy.ports.public_listener!, path: '/api/invoices/7', tls: as(web) });
    expect(r.status, r.body).toBe(200);
    expect(r.headers['x-echo']).toBe('billing');
    expect(r.json.headers['x-zonegate-peer']).toBe(svc('web'));
  });

  it('web writing invoices, and a service no rule names: 403 ERR_POLICY_NO_MATCH', async () => {
    const post = await call({ to: envoy.ports.public_listener!, method: 'POST', path: '/api/invoices', tls: as(web) });
    expect(post.status).toBe(403);
    expect(post.headers['x-zonegate-reason']).toBe('ERR_POLICY_NO_MATCH');
    const batch = await call({ to: envoy.ports.public_listener!, path: '/api/invoices/7', tls: as(other) });
    expect(batch.headers['x-zonegate-reason']).toBe('ERR_POLICY_NO_MATCH');
  });

  it('the rules `zonegate policy import consul` writes from the intentions match what Consul\'s inbound filter sends', async () => {
    const r = await call({ to: envoy.ports.public_imported!, path: '/anything', tls: as(web) });
    expect(r.status, r.body).toBe(200);
    const batch = await call({ to: envoy.ports.public_imported!, path: '/anything', tls: as(other) });
    expect(batch.headers['x-zonegate-reason']).toBe('ERR_POLICY_NO_MATCH');
  });

  it('outbound: billing\'s call to zone A leaves with a common identity minted for zone A, signed by billing', async () => {
    const r = await call({ to: envoy.ports.upstream_zone_a!, path: '/api/orders/1' });
    expect(r.status, r.body).toBe(200);
    expect(r.headers['x-echo']).toBe('zone-a');
    const token = r.json.headers['x-common-identity'] as string;
    expect(decodeJwt(token)).toMatchObject({ iss: svc('billing'), sub: svc('billing'), aud: 'spiffe://zone-a.example' });
  });
});
