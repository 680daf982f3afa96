/**
 * The Istio integration (docs/integrations/istio.md and istio/*.yaml): every manifest parses,
 * the Istio resources zonegate depends on have exactly the known fields (a misspelling fails),
 * the ext_authz settings are the safe ones, the Envoy parts of the EnvoyFilters parse strictly
 * against Envoy's protos, the embedded zonegate config is valid, and the guide names every file.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYamlText, parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { zonegate } from '../helpers/cli.js';
import { envoyRegistry, extAuthzProblems, parseStrict, seconds } from '../helpers/envoy-config.js';
import { INTEGRATIONS, fences, namedFiles, yamlDocs } from './docs.js';

const DIR = join(INTEGRATIONS, 'istio');
const docs = yamlDocs(DIR);
const all = [...docs.values()].flat();
const ofKind = (kind: string) => all.filter((d) => d.kind === kind);
const one = (kind: string, name: string) => {
  const found = ofKind(kind).filter((d) => d.metadata?.name === name);
  expect(found, `${kind} ${name}`).toHaveLength(1);
  return found[0]!;
};

// MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationGrpcProvider (istio.mesh.v1alpha1).
const duration = z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)$/);
const GrpcProvider = z.strictObject({
  service: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  timeout: duration.optional(),
  failOpen: z.boolean().optional(),
  statusOnError: z.string().optional(),
  includeRequestBodyInCheck: z.strictObject({ maxRequestBytes: z.number().optional(), allowPartialMessage: z.boolean().optional(), packAsBytes: z.boolean().optional() }).optional(),
});
const ExtensionProvider = z.strictObject({ name: z.string().min(1), envoyExtAuthzGrpc: GrpcProvider });
const MeshConfig = z.strictObject({
  extensionProviders: z.array(ExtensionProvider).min(1),
  // Istio's MeshConfig.ProxyPathNormalization
  pathNormalization: z.strictObject({ normalization: z.enum(['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES']) }).optional(),
  caCertificates: z.array(z.strictObject({ pem: z.string().optional(), spiffeBundleUrl: z.string().optional(), certSigners: z.array(z.string()).optional(), trustDomains: z.array(z.string()).optional() })).optional(),
});
const Selector = z.strictObject({ matchLabels: z.record(z.string(), z.string()) });
const AuthorizationPolicySpec = z.strictObject({
  selector: Selector.optional(),
  action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']),
  provider: z.strictObject({ name: z.string() }).optional(),
  rules: z.array(z.record(z.string(), z.unknown())).optional(),
});
const ServiceEntrySpec = z.strictObject({
  hosts: z.array(z.string()).min(1),
  addresses: z.array(z.string()).optional(),
  exportTo: z.array(z.string()).optional(),
  location: z.enum(['MESH_EXTERNAL', 'MESH_INTERNAL']).optional(),
  resolution: z.enum(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN']),
  ports: z.array(z.strictObject({ number: z.number().int(), name: z.string(), protocol: z.string(), targetPort: z.number().int().optional() })),
  endpoints: z.array(z.strictObject({ address: z.string(), ports: z.record(z.string(), z.number()).optional(), labels: z.record(z.string(), z.string()).optional() })).optional(),
  subjectAltNames: z.array(z.string()).optional(),
});
const DestinationRuleSpec = z.strictObject({
  host: z.string(),
  trafficPolicy: z.strictObject({ tls: z.strictObject({ mode: z.enum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']), sni: z.string().optional(), subjectAltNames: z.array(z.string()).optional() }) }),
});
const EnvoyFilterSpec = z.strictObject({
  workloadSelector: z.strictObject({ labels: z.record(z.string(), z.string()) }),
  configPatches: z.array(z.strictObject({
    applyTo: z.enum(['HTTP_FILTER', 'HTTP_ROUTE', 'LISTENER', 'FILTER_CHAIN', 'NETWORK_FILTER', 'CLUSTER', 'VIRTUAL_HOST', 'ROUTE_CONFIGURATION']),
    match: z.strictObject({
      context: z.enum(['ANY', 'SIDECAR_INBOUND', 'SIDECAR_OUTBOUND', 'GATEWAY']),
      listener: z.strictObject({ portNumber: z.number().optional(), filterChain: z.strictObject({ filter: z.strictObject({ name: z.string(), subFilter: z.strictObject({ name: z.string() }).optional() }) }) }).optional(),
      routeConfiguration: z.strictObject({ vhost: z.strictObject({ name: z.string() }) }).optional(),
    }),
    patch: z.strictObject({ operation: z.enum(['MERGE', 'ADD', 'REMOVE', 'INSERT_BEFORE', 'INSERT_AFTER', 'INSERT_FIRST', 'REPLACE']), value: z.record(z.string(), z.unknown()) }),
  })).min(1),
});

const meshFromHelm = () => docs.get('istiod-values.yaml')![0]!.meshConfig;

beforeAll(() => {
  envoyRegistry();
}, 60_000);

describe('Istio: the extension providers', () => {
  it('the helm values and the IstioOperator carry the same meshConfig, with only known fields', () => {
    expect(ofKind('IstioOperator')).toHaveLength(1);
    expect(ofKind('IstioOperator')[0]!.spec.meshConfig).toEqual(meshFromHelm());
    expect(() => MeshConfig.parse(meshFromHelm())).not.toThrow();
    // sidecars normalize paths as zonegate-config.yaml declares (policy.paths.proxyNormalizes)
    expect(meshFromHelm().pathNormalization).toEqual({ normalization: 'DECODE_AND_MERGE_SLASHES' });
  });

  it('a misspelled provider field is refused by the check', () => {
    const bad = structuredClone(meshFromHelm());
    bad.extensionProviders[0].envoyExtAuthzGrpc.failopen = false;
    expect(() => MeshConfig.parse(bad)).toThrow(/failopen/);
  });

  it.each(['zonegate', 'zonegate-node'])('%s: explicit short timeout (Istio\'s default is 600 s), fails closed, 503 on error', (name) => {
    const p = (meshFromHelm().extensionProviders as z.infer<typeof ExtensionProvider>[]).find((x) => x.name === name)!.envoyExtAuthzGrpc;
    const t = p.timeout!.endsWith('ms') ? Number(p.timeout!.slice(0, -2)) / 1000 : seconds(p.timeout);
    expect(t).toBeGreaterThan(0);
    expect(t).toBeLessThanOrEqual(5);
    expect(p.failOpen).toBe(false);
    expect(p.statusOnError).toBeDefined();
    expect(p.statusOnError).not.toBe('403');
    expect(p.port).toBe(50051);
  });
});

describe('Istio: the workload side', () => {
  it('AuthorizationPolicy: CUSTOM with the zonegate provider, on the orders workload, every request', () => {
    const ap = one('AuthorizationPolicy', 'zonegate');
    const spec = AuthorizationPolicySpec.parse(ap.spec);
    expect(spec).toEqual({ selector: { matchLabels: { app: 'orders' } }, action: 'CUSTOM', provider: { name: 'zonegate' }, rules: [{}] });
    expect((meshFromHelm().extensionProviders as { name: string }[]).map((p) => p.name)).toContain(spec.provider!.name);
  });

  it('zonegate.local resolves to the sidecar\'s loopback where zonegate listens', () => {
    const se = ServiceEntrySpec.parse(one('ServiceEntry', 'zonegate-local').spec);
    expect(se).toMatchObject({ hosts: ['zonegate.local'], resolution: 'STATIC', endpoints: [{ address: '127.0.0.1' }], ports: [{ number: 50051, protocol: 'GRPC' }] });
    const provider = (meshFromHelm().extensionProviders as z.infer<typeof ExtensionProvider>[]).find((p) => p.name === 'zonegate')!.envoyExtAuthzGrpc;
    expect([provider.service, provider.port]).toEqual(['zonegate.local', 50051]);
  });

  it('EnvoyFilter (inbound): include_peer_certificate on Istio\'s ext_authz filter, strictly an Envoy HttpFilter', () => {
    const ef = EnvoyFilterSpec.parse(one('EnvoyFilter', 'zonegate-peer-certificate').spec);
    expect(ef.workloadSelector.labels).toEqual({ app: 'orders' });
    const [p] = ef.configPatches;
    expect(p).toMatchObject({ applyTo: 'HTTP_FILTER', match: { context: 'SIDECAR_INBOUND', listener: { filterChain: { filter: { subFilter: { name: 'envoy.filters.http.ext_authz' } } } } }, patch: { operation: 'MERGE' } });
    // MERGE: a fragment of the filter Istio generates, so unknown fields fail but nothing is required
    parseStrict('envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter', p!.patch.value as never, { partial: true });
    expect(p!.patch.value).toMatchObject({ typed_config: { include_peer_certificate: true } });
  });

  it('EnvoyFilter (egress): a fail-closed ext_authz, off except on the route to zone B, where it mints', () => {
    const ef = EnvoyFilterSpec.parse(one('EnvoyFilter', 'zonegate-egress').spec);
    const [filter, route] = ef.configPatches;
    expect(filter).toMatchObject({ applyTo: 'HTTP_FILTER', match: { context: 'SIDECAR_OUTBOUND' }, patch: { operation: 'INSERT_BEFORE', value: { disabled: true } } });
    parseStrict('envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter', filter!.patch.value as never);
    expect(route).toMatchObject({ applyTo: 'HTTP_ROUTE', match: { context: 'SIDECAR_OUTBOUND', routeConfiguration: { vhost: { name: 'billing.zone-b.example:80' } } } });
    parseStrict('envoy.config.route.v3.Route', route!.patch.value as never, { partial: true });
    // The same semantic checks as a standalone bootstrap: wrap the two patches into one listener.
    const bootstrap = {
      static_resources: {
        listeners: [{ name: 'outbound', filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: {
          route_config: { virtual_hosts: [{ name: 'billing.zone-b.example:80', routes: [{ match: { prefix: '/' }, ...(route!.patch.value as object), typed_per_filter_config: { 'envoy.filters.http.ext_authz': (route!.patch.value as any).typed_per_filter_config['envoy.filters.http.ext_authz'].config } }] }] },
          http_filters: [filter!.patch.value, { name: 'envoy.filters.http.router' }],
        } }] }] }],
        clusters: [{ name: 'outbound|50051||zonegate.local', typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { explicit_http_config: { http2_protocol_options: {} } } } }],
      },
    };
    expect(extAuthzProblems(bootstrap)).toEqual([]);
    const ctx = (route!.patch.value as any).typed_per_filter_config['envoy.filters.http.ext_authz'];
    expect(ctx).toMatchObject({ disabled: false, config: { check_settings: { context_extensions: { direction: 'egress', audience: 'spiffe://zone-b.example' } } } });
  });

  it('the sidecar writes the workload SVID where zonegate reads it; Istio\'s root comes from its ConfigMap', () => {
    const dep = one('Deployment', 'orders');
    const pod = dep.spec.template;
    const out = /OUTPUT_CERTS: (\S+)/.exec(pod.metadata.annotations['proxy.istio.io/config'])![1];
    const userMounts = JSON.parse(pod.metadata.annotations['sidecar.istio.io/userVolumeMount']) as { name: string; mountPath: string }[];
    expect(userMounts).toEqual([{ name: 'istio-output-certs', mountPath: out }]);
    const zg = pod.spec.containers.find((c: { name: string }) => c.name === 'zonegate');
    expect(pod.spec.containers.map((c: { name: string }) => c.name)).toEqual(['app', 'zonegate']);
    // a sidecar runs one process (serve's default is a worker per host core)
    expect(zg.args).toEqual(['serve', '--config', '/etc/zonegate/zonegate.yaml', '--workers', '1']);
    const mounts = Object.fromEntries(zg.volumeMounts.map((m: { name: string; mountPath: string }) => [m.name, m.mountPath]));
    expect(mounts['istio-output-certs']).toBe(out);
    const volumes = Object.fromEntries(pod.spec.volumes.map((v: Record<string, any>) => [v.name, v]));
    expect(volumes['istio-output-certs'].emptyDir).toEqual({ medium: 'Memory' });
    expect(volumes['istio-root'].configMap.name).toBe('istio-ca-root-cert');
    expect(volumes['zonegate-config'].configMap.name).toBe('zonegate-orders');

    const cfg = yamlOfConfigMap();
    expect(cfg.identity).toEqual({ cert: `${out}/cert-chain.pem`, key: `${out}/key.pem` });
    expect(cfg.trust[0]).toEqual({ trustDomain: 'cluster.local', source: { istio: { rootCert: `${mounts['istio-root']}/root-cert.pem` } } });
    expect(cfg.server.grpc).toEqual({ address: '127.0.0.1', port: 50051 });
    // the egress route's context (envoy-filter-egress.yaml) is allowed for this workload itself
    const sa = dep.spec.template.spec.serviceAccountName;
    const egress = cfg.rules.find((r: { to?: { context?: Record<string, string> } }) => r.to?.context?.direction === 'egress');
    expect(egress).toMatchObject({ action: 'allow', from: { principals: [`spiffe://cluster.local/ns/${dep.metadata.namespace}/sa/${sa}`] }, to: { context: { audience: 'spiffe://zone-b.example' } } });
    expect(zg.readinessProbe.httpGet).toEqual({ path: '/readyz', port: cfg.server.ops.port });
  });

  it('the embedded zonegate config passes `zonegate config validate`', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'zg-istio-')), 'zonegate.yaml');
    writeFileSync(file, one('ConfigMap', 'zonegate-orders').data['zonegate.yaml']);
    expect(zonegate(['config', 'validate', '--no-files', file])).toMatchObject({ code: 0 });
  });

  it('per node: a DaemonSet behind a node-local Service named by the zonegate-node provider', () => {
    const svc = one('Service', 'zonegate');
    expect(svc.spec.internalTrafficPolicy).toBe('Local');
    const p = (meshFromHelm().extensionProviders as z.infer<typeof ExtensionProvider>[]).find((x) => x.name === 'zonegate-node')!.envoyExtAuthzGrpc;
    expect(p.service).toBe(`${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`);
    expect(svc.spec.ports[0].port).toBe(p.port);
    const ds = one('DaemonSet', 'zonegate');
    expect(ds.spec.template.metadata.labels).toEqual(svc.spec.selector);
  });

  it('towards a foreign mesh\'s gateway: MESH_EXTERNAL, zone B\'s SPIFFE ID required, mTLS with the workload\'s SVID', () => {
    const se = ServiceEntrySpec.parse(one('ServiceEntry', 'zone-b-billing').spec);
    expect(se).toMatchObject({ hosts: ['billing.zone-b.example'], location: 'MESH_EXTERNAL', subjectAltNames: ['spiffe://zone-b.example/ns/default/dc/dc1/svc/billing'] });
    const dr = DestinationRuleSpec.parse(one('DestinationRule', 'zone-b-billing').spec);
    expect(dr).toMatchObject({ host: 'billing.zone-b.example', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } });
    expect(meshFromHelm().caCertificates).toEqual([expect.objectContaining({ trustDomains: ['zone-b.example'] })]);
  });
});

/** The zonegate config file inside the ConfigMap. */
function yamlOfConfigMap(): Record<string, any> {
  return parseYamlText(one('ConfigMap', 'zonegate-orders').data['zonegate.yaml'] as string, { uniqueKeys: true }) as Record<string, any>;
}

describe('Istio: filling in zone B\'s root (scripts/fill-pem.mjs)', () => {
  const withRoot = ['istiod-values.yaml', 'istio-operator.yaml', 'zonegate-config.yaml', 'daemonset.yaml'];

  it('the placeholder is in exactly the manifests the guide fills', () => {
    expect([...docs.keys()].filter((f) => readFileSync(join(DIR, f), 'utf8').includes('REPLACE-WITH-ZONE-B-ROOT')).sort()).toEqual([...withRoot].sort());
  });

  it.each(withRoot)('%s: the filled manifest holds the root, exactly, and its zonegate configs stay valid', async (name) => {
    const root = (await MemoryCA.create('zone-b.example')).certPem.trim();
    const pemFile = join(mkdtempSync(join(tmpdir(), 'zg-fill-')), 'zone-b-root.pem');
    writeFileSync(pemFile, `${root}\n`);
    const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'scripts/fill-pem.mjs'), join(DIR, name), pemFile], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('REPLACE-WITH');
    const filled = parseAllDocuments(r.stdout, { uniqueKeys: true }).map((d) => d.toJS() as Record<string, any>);
    const pems = filled.flatMap((d) => [
      ...((d.meshConfig ?? d.spec?.meshConfig)?.caCertificates ?? []).map((c: { pem: string }) => c.pem),
      ...(d.data?.['zone-b-bootstrap.pem'] ? [d.data['zone-b-bootstrap.pem']] : []),
    ]);
    expect(pems.map((p: string) => p.trim())).toEqual([root]);
    for (const cm of filled.filter((d) => d.kind === 'ConfigMap')) {
      const file = join(mkdtempSync(join(tmpdir(), 'zg-istio-')), 'zonegate.yaml');
      writeFileSync(file, cm.data['zonegate.yaml']);
      expect(zonegate(['config', 'validate', '--no-files', file])).toMatchObject({ code: 0 });
    }
  });

  it('refuses a file that is not a certificate, and a manifest without the placeholder', () => {
    const junk = join(mkdtempSync(join(tmpdir(), 'zg-fill-')), 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    const fill = (manifest: string, pem: string) => spawnSync(process.execPath, [join(PACKAGE_ROOT, 'scripts/fill-pem.mjs'), manifest, pem], { encoding: 'utf8' });
    expect(fill(join(DIR, 'istiod-values.yaml'), junk).status).toBe(2);
    expect(fill(join(DIR, 'authorization-policy.yaml'), join(PACKAGE_ROOT, 'examples/certs/zone-b.root.pem')).status).toBe(1);
  });
});

describe('Istio: the guide', () => {
  it('names every manifest it ships, and every name it uses exists', () => {
    const named = namedFiles('istio.md');
    expect(named.filter((f) => !f.exists)).toEqual([]);
    const shipped = named.filter((f) => f.path.startsWith('docs/integrations/istio/')).map((f) => f.path.replace('docs/integrations/istio/', ''));
    expect(shipped.sort()).toEqual([...docs.keys()].sort());
    expect(named.map((f) => f.path)).toContain('scripts/fill-pem.mjs');
  });

  it('has the code blocks this suite checks: a diagram, the shell steps and one YAML excerpt', () => {
    const text = readFileSync(join(INTEGRATIONS, 'istio.md'), 'utf8');
    const blocks = fences('istio.md');
    expect(text.match(/^ *```/gm)).toHaveLength(2 * blocks.length); // no fence left unpaired
    expect(blocks.map((b) => b.lang)).toEqual(['', 'sh', 'yaml', ...Array<string>(9).fill('sh')]);
  });

  it('its YAML excerpt is the zonegate provider of the shipped mesh config, exactly', () => {
    const [yaml] = fences('istio.md').filter((b) => b.lang === 'yaml');
    const excerpt = parseYamlText(yaml!.text, { uniqueKeys: true }) as { extensionProviders: { name: string }[] };
    const shipped = (meshFromHelm().extensionProviders as { name: string }[]).find((p) => p.name === 'zonegate');
    expect(excerpt.extensionProviders).toEqual([shipped]);
  });
});
