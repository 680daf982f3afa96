/**
 * The Istio guide (docs/integrations/istio.md) under real Envoy, on every pinned Envoy: the orders
 * workload's sidecar carries the filters istiod generates for the guide's `zonegate` extension
 * provider (istiod-values.yaml) and CUSTOM AuthorizationPolicy (authorization-policy.yaml), as
 * reproduced in test/helpers/istio.ts from Istio's pilot/pkg/security/authz/builder, with the
 * guide's EnvoyFilters applied (envoy-filter.yaml merged into the generated ext_authz filter,
 * envoy-filter-egress.yaml inserted on the outbound chain), on an inbound listener shaped like
 * Istio's (mTLS from the SDS secrets `default` and `ROOTCA`, client certificate required), and
 * zonegate runs the guide's own zonegate.yaml with only paths and addresses rewritten. Names are
 * Istio's SPIFFE IDs (spiffe://cluster.local/ns/<ns>/sa/<sa>) and the guide's zone B; every
 * certificate is generated here.
 *
 * Not exercised: istiod itself (the generation is reproduced, and checked against Istio's own
 * builder test data below), xDS delivery, Istio's CA and pilot-agent's SDS server (file-based SDS
 * stands in), Istio's proxy-only filters (metadata exchange, istio_authn, stats), Kubernetes, and
 * the mTLS hop to zone B's gateway (the two-zones suite covers Envoy-to-Envoy mTLS).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { INTEGRATIONS, yamlDocs } from '../guides/docs.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { envoyMatrix, envoyStat, startEnvoy, type RunningEnvoy } from '../helpers/envoy.js';
import { address, cluster, sdsSecret } from '../helpers/envoy-zones.js';
import { customFilters, inboundTail, inboundTls, mergePatch, outboundCluster, type AuthorizationPolicy, type GrpcProvider } from '../helpers/istio.js';
import { startWith, type Started } from '../helpers/zonegate.js';
import { call, echoApp, freePort, type EchoApp } from '../helpers/http.js';
import { until, sleep } from '../helpers/wait.js';

const matrix = envoyMatrix();
const docs = yamlDocs(join(INTEGRATIONS, 'istio'));
const doc = (file: string, kind?: string) => docs.get(file)!.find((d) => !kind || d.kind === kind)!;
const providers = doc('istiod-values.yaml').meshConfig.extensionProviders as { name: string; envoyExtAuthzGrpc: GrpcProvider }[];
const provider = providers.find((p) => p.name === 'zonegate')!.envoyExtAuthzGrpc;
const policy = doc('authorization-policy.yaml', 'AuthorizationPolicy') as AuthorizationPolicy;
const peerCertPatch = doc('envoy-filter.yaml', 'EnvoyFilter').spec.configPatches[0];
const egressPatches = doc('envoy-filter-egress.yaml', 'EnvoyFilter').spec.configPatches as Record<string, any>[];
const guideZg = parse(doc('zonegate-config.yaml', 'ConfigMap').data['zonegate.yaml']) as Record<string, any>;

const mesh = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const ORDERS = mesh('shop', 'orders');
const FRONTEND = mesh('shop', 'frontend');
const ZONE_B_TD = 'zone-b.example';
const BILLING = guideZg.trust[1].source.https_spiffe.endpointSpiffeId as string;
const decisions = (zg: Started) => zg.logs.filter((l) => l.msg === 'decision').length;

/**
 * The provider as the tests run it: the guide's values, with the 0.5 s timeout lengthened (the
 * machines running the tests are shared) and the service renamed when a second one is needed.
 */
function testProvider(service = provider.service): GrpcProvider {
  expect(provider).toMatchObject({ timeout: '0.5s', failOpen: false, statusOnError: '503' });
  return { ...provider, service, timeout: '5s' };
}

/** The guide's zonegate.yaml with its file paths and zone B's bundle endpoint moved here. */
function guideConfig(dir: string, zoneBEndpoint: string) {
  const z = structuredClone(guideZg);
  expect(Object.keys(z.trust[0].source)).toEqual(['istio']);
  expect(Object.keys(z.trust[1].source)).toEqual(['https_spiffe']);
  z.identity = { cert: join(dir, 'cert-chain.pem'), key: join(dir, 'key.pem') };
  z.trust[0].source.istio.rootCert = join(dir, 'root-cert.pem');
  z.trust[1].source.https_spiffe = { ...z.trust[1].source.https_spiffe, url: zoneBEndpoint, bootstrap: join(dir, 'zone-b-bootstrap.pem') };
  return z;
}

const HCM = 'envoy.filters.network.http_connection_manager';
const hcmType = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/**
 * A sidecar inbound listener for port 8080 (listener_inbound.go `buildSidecarInboundHTTPOpts`,
 * httproute.go `buildSidecarInboundHTTPRouteConfig`): Istio's client-certificate headers
 * (APPEND_FORWARD), normalized paths, one route to `inbound|8080||`.
 */
function inboundListener(name: string, tls: Record<string, unknown>, filters: readonly unknown[]) {
  return {
    name,
    address: address(0),
    filter_chains: [
      {
        name: '0.0.0.0_8080',
        transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', ...tls } },
        filters: [
          {
            name: HCM,
            typed_config: {
              '@type': hcmType,
              stat_prefix: name,
              use_remote_address: false,
              forward_client_cert_details: 'APPEND_FORWARD',
              set_current_client_cert_details: { subject: true, dns: true, uri: true },
              normalize_path: true,
              path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
              upgrade_configs: [{ upgrade_type: 'websocket' }],
              stream_idle_timeout: '0s',
              route_config: {
                name: 'inbound|8080||',
                validate_clusters: false,
                virtual_hosts: [
                  {
                    name: 'inbound|http|8080',
                    domains: ['*'],
                    routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: 'inbound|8080||', timeout: '0s' }, decorator: { operation: 'orders.shop.svc.cluster.local:8080/*' } }],
                  },
                ],
              },
              http_filters: filters,
            },
          },
        ],
      },
    ],
  };
}

/**
 * The sidecar's outbound HTTP listener for port 80 with envoy-filter-egress.yaml applied: its
 * ext_authz filter inserted before the router, switched on only in the virtual host of
 * billing.zone-b.example:80; another host on the same port for contrast.
 */
function outboundListener() {
  const [insert, route] = egressPatches;
  expect(insert).toMatchObject({ applyTo: 'HTTP_FILTER', patch: { operation: 'INSERT_BEFORE' }, match: { listener: { portNumber: 80, filterChain: { filter: { subFilter: { name: 'envoy.filters.http.router' } } } } } });
  expect(route).toMatchObject({ applyTo: 'HTTP_ROUTE', patch: { operation: 'MERGE' } });
  const filter = structuredClone(insert!.patch.value);
  // the authority too: without it Envoy sends the cluster name, `outbound|50051||zonegate.local`,
  // as :authority and the check never reaches zonegate (every call to zone B answered 503)
  expect(filter.typed_config.grpc_service).toMatchObject({ envoy_grpc: { cluster_name: outboundCluster(provider.service, provider.port), authority: provider.service }, timeout: '0.5s' });
  filter.typed_config.grpc_service.timeout = '5s'; // as testProvider(): shared machines
  const vhost = route!.match.routeConfiguration.vhost.name as string;
  const host = vhost.replace(/:80$/, '');
  const [tail, router] = [inboundTail.slice(0, -1), inboundTail.at(-1)!];
  return {
    host,
    listener: {
      name: 'outbound_80',
      address: address(0),
      filter_chains: [
        {
          filters: [
            {
              name: HCM,
              typed_config: {
                '@type': hcmType,
                stat_prefix: 'outbound_0.0.0.0_80',
                route_config: {
                  name: '80',
                  virtual_hosts: [
                    { name: vhost, domains: [host, vhost], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|80||billing.zone-b.example' }, ...route!.patch.value }] },
                    { name: 'catalog.shop.svc.cluster.local:80', domains: ['catalog.shop.svc.cluster.local'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|80||catalog.shop.svc.cluster.local' } }] },
                  ],
                },
                http_filters: [...tail, filter, router],
              },
            },
          ],
        },
      ],
    },
  };
}

describe('the filters reproduced from istiod', () => {
  // pilot/pkg/security/authz/builder/testdata/http/custom-simple-http-in.yaml with
  // builder_test.go's meshConfigGRPCNoNamespace, and the two filters Istio's test expects
  // (custom-grpc-provider-no-namespace-out1.yaml and -out2.yaml, keys in snake_case)
  const istioPolicy = (name: string, path: string): AuthorizationPolicy => ({
    metadata: { name, namespace: 'foo' },
    spec: { action: 'CUSTOM', provider: { name: 'default' }, rules: [{ to: [{ operation: { paths: [path] } }] }] },
  });
  const rule = (path: string) => ({
    permissions: [{ and_rules: { rules: [{ or_rules: { rules: [{ url_path: { path: { exact: path } } }] } }] } }],
    principals: [{ and_ids: { ids: [{ any: true }] } }],
  });

  it('match Istio\'s own builder test data for a gRPC provider and two CUSTOM policies', () => {
    const [rbac, extAuthz] = customFilters('default', { service: 'my-custom-ext-authz.foo.svc.cluster.local', port: 9000, failOpen: true, statusOnError: '403' }, [
      istioPolicy('httpbin-1', '/httpbin1'),
      istioPolicy('httpbin-2', '/httpbin2'),
    ]);
    expect(rbac).toEqual({
      name: 'envoy.filters.http.rbac',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
        shadow_rules: {
          action: 'DENY',
          policies: {
            'istio-ext-authz-default-ns[foo]-policy[httpbin-1]-rule[0]': rule('/httpbin1'),
            'istio-ext-authz-default-ns[foo]-policy[httpbin-2]-rule[0]': rule('/httpbin2'),
          },
        },
        shadow_rules_stat_prefix: 'istio_ext_authz_',
      },
    });
    expect(extAuthz).toEqual({
      name: 'envoy.filters.http.ext_authz',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
        failure_mode_allow: true,
        filter_enabled_metadata: {
          filter: 'envoy.filters.http.rbac',
          path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
          value: { string_match: { prefix: 'istio-ext-authz-default' } },
        },
        grpc_service: {
          envoy_grpc: { authority: 'my-custom-ext-authz.foo.svc.cluster.local', cluster_name: 'outbound|9000||my-custom-ext-authz.foo.svc.cluster.local' },
          timeout: '600s',
        },
        status_on_error: { code: 'Forbidden' },
        transport_api_version: 'V3',
      },
    });
  });

  it('for the guide: `rules: [{}]` selects every request; the provider\'s 503 and failOpen: false; no peer certificate until envoy-filter.yaml merges it in', () => {
    const [rbac, extAuthz] = customFilters('zonegate', provider, [policy]);
    expect(rbac.typed_config.shadow_rules.policies).toEqual({
      'istio-ext-authz-zonegate-ns[shop]-policy[zonegate]-rule[0]': { permissions: [{ and_rules: { rules: [{ any: true }] } }], principals: [{ and_ids: { ids: [{ any: true }] } }] },
    });
    // step 5's exemption: model.New puts notPaths under one not_rule (permissionNot(permissionOr))
    const [exempt] = customFilters('zonegate', provider, [{ ...policy, spec: { ...policy.spec, rules: [{ to: [{ operation: { notPaths: ['/healthz'] } }] }] } }]);
    expect(Object.values(exempt.typed_config.shadow_rules.policies)).toEqual([
      { permissions: [{ and_rules: { rules: [{ not_rule: { or_rules: { rules: [{ url_path: { path: { exact: '/healthz' } } }] } } }] } }], principals: [{ and_ids: { ids: [{ any: true }] } }] },
    ]);
    expect(extAuthz.typed_config).toMatchObject({ status_on_error: { code: 'ServiceUnavailable' }, grpc_service: { timeout: '0.5s', envoy_grpc: { cluster_name: 'outbound|50051||zonegate.local' } } });
    expect(extAuthz.typed_config).not.toHaveProperty('failure_mode_allow');
    expect(extAuthz.typed_config).not.toHaveProperty('include_peer_certificate');
    expect(peerCertPatch).toMatchObject({ applyTo: 'HTTP_FILTER', match: { context: 'SIDECAR_INBOUND' }, patch: { operation: 'MERGE', value: { name: 'envoy.filters.http.ext_authz' } } });
    expect(mergePatch(extAuthz, peerCertPatch.patch.value).typed_config).toMatchObject({ include_peer_certificate: true, filter_enabled_metadata: extAuthz.typed_config.filter_enabled_metadata });
  });
});

describe.skipIf(matrix.length === 0).each(matrix)('the Istio guide on envoy $version', (bin) => {
  let dir: string;
  let frontend: Issued;
  let billing: Issued;
  let batch: Issued;
  let forged: Issued;
  let stranger: Issued;
  let zg: Started;
  let zoneB: Started;
  let app: EchoApp;
  let zoneBGateway: EchoApp;
  let catalog: EchoApp;
  let envoy: RunningEnvoy;
  let zoneBHost: string;
  const as = (who: Issued) => ({ cert: who.chainPem, key: who.keyPem });
  const inbound = (listener: string, path: string, who: Issued, method = 'GET') =>
    call({ to: envoy.ports[listener]!, path, method, tls: as(who), headers: { host: 'orders.shop.svc.cluster.local:8080' } });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'zg-istio-'));
    const [meshCa, zoneBCa, otherCa] = await Promise.all([MemoryCA.create('cluster.local'), MemoryCA.create(ZONE_B_TD), MemoryCA.create('elsewhere.example')]);
    const orders = await meshCa.issue(ORDERS);
    [frontend, batch, billing, forged, stranger] = await Promise.all([
      meshCa.issue(FRONTEND),
      meshCa.issue(mesh('shop', 'batch')),
      zoneBCa.issue(BILLING),
      zoneBCa.issue(FRONTEND), // zone B's CA signing a name of this mesh
      otherCa.issue(FRONTEND),
    ]);
    // what the sidecar writes with OUTPUT_CERTS, the istio-ca-root-cert ConfigMap, zone B's root
    writeFileSync(join(dir, 'cert-chain.pem'), orders.chainPem);
    writeFileSync(join(dir, 'key.pem'), orders.keyPem);
    writeFileSync(join(dir, 'root-cert.pem'), meshCa.certPem);
    writeFileSync(join(dir, 'zone-b-bootstrap.pem'), zoneBCa.certPem);
    // zone B: a zonegate publishing its bundle on https_spiffe with billing's SVID
    writeFileSync(join(dir, 'zone-b-billing.pem'), billing.chainPem);
    writeFileSync(join(dir, 'zone-b-billing.key'), billing.keyPem);
    zoneB = await startWith(
      {
        identity: { cert: 'zone-b-billing.pem', key: 'zone-b-billing.key' },
        trust: [{ trustDomain: ZONE_B_TD, bundle: 'zone-b-bootstrap.pem' }],
        federation: { endpoint: { trustDomain: ZONE_B_TD, address: '127.0.0.1', port: 0, profile: 'https_spiffe' } },
        rules: [],
      },
      dir,
    );
    zg = await startWith(guideConfig(dir, `https://127.0.0.1:${zoneB.zg.bundleEndpoint!.port}/`), dir);
    await until(() => zg.zg.readiness.ready, 15_000, 'the guide\'s zonegate to hold both bundles');
    [app, zoneBGateway, catalog] = await Promise.all([echoApp('orders'), echoApp('zone-b-gateway'), echoApp('catalog')]);

    // Istio's SDS secrets, served from files here: the workload certificate and every mesh root
    const secretDefault = sdsSecret(join(dir, 'sds-default.yaml'), { name: 'default', tls_certificate: { certificate_chain: { filename: join(dir, 'cert-chain.pem') }, private_key: { filename: join(dir, 'key.pem') } } });
    const secretRoots = join(dir, 'rootca.pem');
    writeFileSync(secretRoots, meshCa.certPem + zoneBCa.certPem); // caCertificates adds zone B's root
    const rootCa = sdsSecret(join(dir, 'sds-rootca.yaml'), { name: 'ROOTCA', validation_context: { trusted_ca: { filename: secretRoots } } });
    const tls = inboundTls(secretDefault, rootCa);

    const generated = customFilters('zonegate', testProvider(), [policy]);
    const patched = [generated[0], mergePatch(generated[1], peerCertPatch.patch.value)];
    // the guide's policy with the exemption step 5 suggests
    const exempt = { ...policy, spec: { ...policy.spec, rules: [{ to: [{ operation: { notPaths: ['/healthz'] } }] }] } };
    const narrowed = customFilters('zonegate', testProvider(), [exempt]);
    const down = customFilters('zonegate', testProvider('zonegate-down.local'), [policy]);
    const outbound = outboundListener();
    zoneBHost = outbound.host;

    envoy = await startEnvoy(bin, {
      node: { id: 'sidecar~127.0.0.1~orders-5d8f7c9b4-x2x7q.shop~shop.svc.cluster.local', cluster: 'orders.shop' },
      static_resources: {
        listeners: [
          inboundListener('inbound', tls, [...patched, ...inboundTail]),
          inboundListener('inbound_as_generated', tls, [...generated, ...inboundTail]),
          inboundListener('inbound_exempt', tls, [narrowed[0], mergePatch(narrowed[1], peerCertPatch.patch.value), ...inboundTail]),
          inboundListener('inbound_zonegate_down', tls, [down[0], mergePatch(down[1], peerCertPatch.patch.value), ...inboundTail]),
          outbound.listener,
        ],
        clusters: [
          cluster('inbound|8080||', app.port),
          cluster(outboundCluster(provider.service, provider.port), zg.zg.grpc.port, { h2: true }),
          cluster(outboundCluster('zonegate-down.local', provider.port), await freePort(), { h2: true }),
          cluster('outbound|80||billing.zone-b.example', zoneBGateway.port),
          cluster('outbound|80||catalog.shop.svc.cluster.local', catalog.port),
        ],
      },
    });
  }, 60_000);

  afterAll(async () => {
    await envoy?.stop();
    await Promise.allSettled([zg?.close(), zoneB?.close(), app?.close(), zoneBGateway?.close(), catalog?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('frontend of this mesh calls /api/…: allowed (`frontend-in-this-mesh`), the app gets the verified peer', async () => {
    const r = await inbound('inbound', '/api/items/1', frontend);
    expect(r.status, r.body).toBe(200);
    expect(r.headers['x-echo']).toBe('orders');
    expect(r.json.headers['x-zonegate-peer']).toBe(FRONTEND);
  });

  it('zone B\'s billing reads orders with its own root\'s SVID: allowed (`billing-reads-orders`)', async () => {
    const r = await inbound('inbound', '/api/orders/7', billing);
    expect(r.status, r.body).toBe(200);
    expect(r.json.headers['x-zonegate-peer']).toBe(BILLING);
  });

  it('policy denies: billing writing orders, a mesh workload no rule names → 403 ERR_POLICY_NO_MATCH, the app never sees them', async () => {
    const before = app.seen.length;
    const post = await inbound('inbound', '/api/orders', billing, 'POST');
    expect(post.status).toBe(403);
    expect(post.headers['x-zonegate-reason']).toBe('ERR_POLICY_NO_MATCH');
    const other = await inbound('inbound', '/api/items/1', batch);
    expect(other.status).toBe(403);
    expect(other.headers['x-zonegate-reason']).toBe('ERR_POLICY_NO_MATCH');
    expect(app.seen.length).toBe(before);
  });

  it('a certificate zone B\'s CA issued for a name of this mesh passes Envoy\'s TLS (ROOTCA holds both roots) and zonegate refuses it: 401 ERR_SVID_UNTRUSTED', async () => {
    const before = app.seen.length;
    const r = await inbound('inbound', '/api/items/1', forged);
    expect(r.status).toBe(401);
    expect(r.headers['x-zonegate-reason']).toBe('ERR_SVID_UNTRUSTED');
    expect(app.seen.length).toBe(before);
  });

  it('a certificate of a CA the mesh does not trust never gets past the handshake', async () => {
    await expect(inbound('inbound', '/api/items/1', stranger)).rejects.toThrow();
  });

  it('`rules: [{}]` sends every request to zonegate, a path outside zonegate\'s rules included', async () => {
    const before = decisions(zg);
    const r = await inbound('inbound', '/healthz', frontend);
    expect(r.status).toBe(403);
    expect(r.headers['x-zonegate-reason']).toBe('ERR_POLICY_NO_MATCH');
    expect(decisions(zg)).toBe(before + 1);
  });

  it('a CUSTOM policy exempting /healthz (`notPaths`): /healthz never reaches zonegate (Istio\'s shadow-rules metadata), even from a caller zonegate would refuse', async () => {
    const stat = (name: string) => envoyStat(envoy, `http.inbound_exempt.rbac.istio_ext_authz_.${name}`);
    const [denied0, allowed0] = [(await stat('shadow_denied')) ?? 0, (await stat('shadow_allowed')) ?? 0];
    // inside the policy's rules: zonegate decides
    const api = await inbound('inbound_exempt', '/api/items/1', forged);
    expect(api.headers['x-zonegate-reason']).toBe('ERR_SVID_UNTRUSTED');
    expect(await stat('shadow_denied')).toBe(denied0 + 1); // a CUSTOM rule matched: ext_authz runs
    // outside: the app answers and zonegate is not asked
    const before = decisions(zg);
    const seen = app.seen.length;
    const r = await inbound('inbound_exempt', '/healthz', forged);
    expect(r.status, r.body).toBe(200);
    expect(app.seen.length).toBe(seen + 1);
    expect(app.seen.at(-1)!.path).toBe('/healthz');
    expect(r.json.headers['x-zonegate-peer']).toBeUndefined();
    expect(await stat('shadow_allowed')).toBe(allowed0 + 1); // no CUSTOM rule matched: no metadata
    await sleep(200);
    expect(decisions(zg)).toBe(before);
  });

  it('the filter exactly as istiod generates it, without envoy-filter.yaml: no peer certificate reaches zonegate, 401 ERR_NO_IDENTITY', async () => {
    const r = await inbound('inbound_as_generated', '/api/items/1', frontend);
    expect(r.status).toBe(401);
    expect(r.headers['x-zonegate-reason']).toBe('ERR_NO_IDENTITY');
    expect(r.headers['x-echo']).toBeUndefined(); // zonegate's deny, not the app
  });

  it('zonegate unreachable: 503 (statusOnError), never an allow', async () => {
    const before = app.seen.length;
    const r = await inbound('inbound_zonegate_down', '/api/items/1', frontend);
    expect(r.status).toBe(503);
    expect(app.seen.length).toBe(before);
  });

  it('"Check it": orders → billing.zone-b.example leaves with a common identity for zone B signed by orders; other outbound calls are untouched', async () => {
    const r = await call({ to: envoy.ports.outbound_80!, path: '/api/invoices', headers: { host: zoneBHost } });
    expect(r.status, r.body).toBe(200);
    expect(r.headers['x-echo']).toBe('zone-b-gateway');
    const token = r.json.headers['x-common-identity'] as string;
    expect(decodeJwt(token)).toMatchObject({ iss: ORDERS, sub: ORDERS, aud: `spiffe://${ZONE_B_TD}` });
    const before = decisions(zg);
    const other = await call({ to: envoy.ports.outbound_80!, path: '/api/items', headers: { host: 'catalog.shop.svc.cluster.local' } });
    expect(other.status).toBe(200);
    expect(other.headers['x-echo']).toBe('catalog');
    expect(other.json.headers['x-common-identity']).toBeUndefined();
    expect(decisions(zg)).toBe(before);
  });
});
