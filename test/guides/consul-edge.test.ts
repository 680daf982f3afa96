/**
 * The zone A edge of the Consul guide (docs/integrations/consul.md, "From zone A to billing";
 * consul/edge-*): the edge Envoy parses strictly as a Bootstrap and asks zonegate twice
 * (ingress, then egress) fail-closed; its SDS files parse strictly and name the files the rest of
 * the setup writes; the Consul HCL parses and agrees with the Envoy and zonegate configs; and —
 * on loopback, with a Consul CA roots API, zone A's bundle endpoint and both zonegates running —
 * a zone A call is verified and re-signed by the edge and accepted by billing's zonegate, while
 * each shortcut around the edge is refused.
 */
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { decodeJwt } from 'jose';
import { BIN, zonegate } from '../helpers/cli.js';
import { connectionManagers, envoyRegistry, extAuthzProblems, field, parseBootstrap, parseStrict, parseYaml, routesOf } from '../helpers/envoy-config.js';
import { parseHcl } from '../helpers/hcl.js';
import { probe, requireTool } from '../helpers/tools.js';
import { checkRequest, startWith, type CheckResult, type Started } from '../helpers/zonegate.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { testServer, type TestServer } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import { INTEGRATIONS } from './docs.js';

const DIR = join(INTEGRATIONS, 'consul');
const read = (name: string) => readFileSync(join(DIR, name), 'utf8');
const yamlOf = (name: string) => parse(read(name), { uniqueKeys: true }) as Record<string, any>;

const envoy = parseYaml(read('edge-envoy.yaml')) as Record<string, any>;
const edgeZg = yamlOf('edge-zonegate.yaml');
const billingZg = yamlOf('zonegate.yaml');
const CONSUL_TD = edgeZg.trust[0].trustDomain as string;
const EDGE = `spiffe://${CONSUL_TD}/ns/default/dc/dc1/svc/zone-a-edge`;
const BILLING = `spiffe://${CONSUL_TD}/ns/default/dc/dc1/svc/billing`;
const FRONTEND = 'spiffe://zone-a.example/ns/shop/sa/frontend';
const INGRESS_FILTER = 'envoy.filters.http.ext_authz';
const EGRESS_FILTER = 'zonegate.egress';

// ---- Consul's HCL, strictly: the fields of the service definition and consul-template references
// developer.hashicorp.com/consul/docs/reference/service, /consul-template config
const Check = z.strictObject({ id: z.string(), name: z.string(), http: z.string().url(), interval: z.string().regex(/^\d+[sm]$/), timeout: z.string().regex(/^\d+[sm]$/) }).partial();
const Upstream = z.strictObject({ destination_name: z.string().min(1), local_bind_port: z.number().int().min(1).max(65535), destination_namespace: z.string().optional(), datacenter: z.string().optional(), local_bind_address: z.string().optional() });
const one = <T extends z.ZodTypeAny>(t: T) => z.array(t).length(1);
const ServiceFile = z.strictObject({
  service: one(
    z.strictObject({
      name: z.string().min(1),
      id: z.string().optional(),
      port: z.number().int(),
      tags: z.array(z.string()).optional(),
      meta: z.record(z.string(), z.string()).optional(),
      connect: one(z.strictObject({ sidecar_service: one(z.strictObject({ proxy: one(z.strictObject({ upstreams: z.array(Upstream).min(1) })).optional() })) })).optional(),
      check: z.array(Check).optional(),
    }),
  ),
});
const TemplateFile = z.strictObject({
  consul: one(z.strictObject({ address: z.string(), token: z.string().optional() })),
  template: z.array(z.strictObject({ contents: z.string(), destination: z.string().startsWith('/'), perms: z.number().int().optional() })).min(1),
});
type Service = z.infer<typeof ServiceFile>['service'][0];
const HCL_FILES = ['edge-service.hcl', 'billing-service.hcl', 'edge-leaf.hcl', 'zonegate-leaf.hcl'];
const hcl = Object.fromEntries(await Promise.all(HCL_FILES.map(async (f) => [f, await parseHcl(read(f), f)] as const)));
const service = (name: string): Service => ServiceFile.parse(hcl[name]).service[0]!;

/** The per-route context_extensions of the edge's one route, for one of its ext_authz filters. */
function contextOf(filter: string): Record<string, string> {
  const [site] = connectionManagers(envoy);
  const [route] = routesOf(site!.hcm, filter);
  return (route!.perRoute as any).check_settings.context_extensions as Record<string, string>;
}

function clusterAddress(name: string): string {
  const c = (field(field(envoy, 'static_resources'), 'clusters') as any[]).find((x) => x.name === name);
  const sa = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  return `${sa.address}:${sa.port_value}`;
}

const tls = () => (connectionManagers(envoy)[0]!.chain as any).transport_socket.typed_config as Record<string, any>;

beforeAll(() => {
  envoyRegistry();
}, 60_000);

describe('the edge Envoy (edge-envoy.yaml)', () => {
  it('parses strictly as envoy.config.bootstrap.v3.Bootstrap', () => {
    expect(() => parseBootstrap(envoy as never)).not.toThrow();
  });

  it('asks zonegate twice, fail-closed, with V3, the peer certificate, an explicit timeout, 503 and validate_mutations', () => {
    expect(extAuthzProblems(envoy)).toEqual([]);
    const [site] = connectionManagers(envoy);
    const filters = (site!.hcm.http_filters as any[]).map((f) => f.name);
    expect(filters).toEqual([INGRESS_FILTER, EGRESS_FILTER, 'envoy.filters.http.router']);
    for (const f of (site!.hcm.http_filters as any[]).slice(0, 2)) {
      expect(f.typed_config).toMatchObject({
        transport_api_version: 'V3',
        include_peer_certificate: true,
        failure_mode_allow: false,
        status_on_error: { code: 'ServiceUnavailable' },
        validate_mutations: true,
        grpc_service: { envoy_grpc: { cluster_name: 'zonegate' }, timeout: '0.5s' },
      });
    }
    expect(contextOf(INGRESS_FILTER)).toEqual({ direction: 'ingress', destination: 'billing' });
    expect(contextOf(EGRESS_FILTER)).toEqual({ direction: 'egress', destination: 'billing' });
    expect(site!.hcm.forward_client_cert_details).toBe('SANITIZE');
  });

  it.each([
    ['the egress check fails open', (d: any) => (d.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1].typed_config.failure_mode_allow = true), /filter zonegate\.egress: failure_mode_allow/],
    ['the egress check drops validate_mutations', (d: any) => delete d.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1].typed_config.validate_mutations, /filter zonegate\.egress: validate_mutations/],
    ['the route has no egress context', (d: any) => delete d.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].typed_per_filter_config[EGRESS_FILTER], /filter zonegate\.egress, virtual host billing.*no ext_authz per-route config/],
  ])('a check that can fail: a config where %s is flagged', (_what, mutate, problem) => {
    const bad = structuredClone(envoy);
    mutate(bad);
    expect(extAuthzProblems(bad).join('\n')).toMatch(problem);
  });

  it('requires a client certificate with a zone A SPIFFE ID, chaining to zone A\'s roots delivered by SDS', () => {
    const t = tls();
    expect(t.require_client_certificate).toBe(true);
    const v = t.common_tls_context.combined_validation_context;
    expect(v.default_validation_context.match_typed_subject_alt_names).toEqual([{ san_type: 'URI', matcher: { prefix: 'spiffe://zone-a.example/' } }]);
    expect(v.validation_context_sds_secret_config.name).toBe('zone_a_roots');
    expect(t.common_tls_context.tls_certificate_sds_secret_configs.map((s: any) => s.name)).toEqual(['edge_leaf']);
  });

  it('sends what zonegate allowed to the edge\'s sidecar upstream, and asks the edge\'s zonegate', () => {
    const upstream = service('edge-service.hcl').connect![0]!.sidecar_service[0]!.proxy![0]!.upstreams;
    expect(upstream).toEqual([{ destination_name: 'billing', local_bind_port: 9191 }]);
    expect(clusterAddress('billing_via_sidecar')).toBe('127.0.0.1:9191');
    expect(clusterAddress('zonegate')).toBe(`${edgeZg.server.grpc.address}:${edgeZg.server.grpc.port}`);
    // the edge's Envoy admin port must not collide with its sidecar's (Consul's default 19000)
    expect(envoy.admin.address.socket_address.port_value).not.toBe(19000);
  });
});

describe('the edge\'s SDS files', () => {
  const sds = () => {
    const t = tls().common_tls_context;
    return [
      [t.tls_certificate_sds_secret_configs[0], 'edge-sds-leaf.yaml'],
      [t.combined_validation_context.validation_context_sds_secret_config, 'edge-sds-zone-a-roots.yaml'],
    ] as const;
  };

  it.each([0, 1])('secret %i: parses strictly as a DiscoveryResponse of one tls.v3.Secret of the name Envoy asks for', (i) => {
    const [ref, file] = sds()[i]!;
    expect(ref.sds_config).toMatchObject({ resource_api_version: 'V3' });
    // installed under its own name beside edge-envoy.yaml
    expect(ref.sds_config.path_config_source.path).toBe(`/etc/envoy/edge/${file}`);
    const doc = parseYaml(read(file)) as any;
    expect(() => parseStrict('envoy.service.discovery.v3.DiscoveryResponse', doc)).not.toThrow();
    expect(doc.resources).toHaveLength(1); // Envoy refuses a file SDS response of more than one secret
    expect(doc.resources[0].name).toBe(ref.name);
  });

  it('a check that can fail: a misspelled field in a secret is refused', () => {
    const doc = parseYaml(read('edge-sds-leaf.yaml')) as any;
    doc.resources[0].tls_certificate.certificate_chains = doc.resources[0].tls_certificate.certificate_chain;
    expect(() => parseStrict('envoy.service.discovery.v3.DiscoveryResponse', doc)).toThrow(/certificate_chains/);
  });

  it('the leaf is the one consul-template writes and the edge zonegate signs with; the roots file is the script\'s', () => {
    const leaf = (parseYaml(read('edge-sds-leaf.yaml')) as any).resources[0].tls_certificate;
    const tpl = TemplateFile.parse(hcl['edge-leaf.hcl']);
    expect(tpl.template.map((t) => t.destination)).toEqual([leaf.certificate_chain.filename, leaf.private_key.filename]);
    expect(tpl.template.map((t) => t.contents)).toEqual(['{{ with caLeaf "zone-a-edge" }}{{ .CertPEM }}{{ end }}', '{{ with caLeaf "zone-a-edge" }}{{ .PrivateKeyPEM }}{{ end }}']);
    // written 0644 and 0600: octal to consul-template (HCL 1), the digits to HCL 2's parser
    expect(tpl.template.map((t) => t.perms)).toEqual([644, 600]);
    expect(read('edge-leaf.hcl')).toMatch(/perms\s*=\s*0644[\s\S]*perms\s*=\s*0600/);
    expect(edgeZg.identity).toEqual({ cert: leaf.certificate_chain.filename, key: leaf.private_key.filename });
    expect(leaf.watched_directory.path).toBe('/etc/zonegate/edge/leaf');
    const roots = (parseYaml(read('edge-sds-zone-a-roots.yaml')) as any).resources[0].validation_context;
    expect(read('edge-zone-a-roots.sh')).toContain(`out=\${1:-${roots.trusted_ca.filename}}`);
    expect(roots.watched_directory.path).toBe('/etc/zonegate/edge/zone-a');
  });
});

describe('the Consul side: registrations, intentions, leaf templates', () => {
  it('edge-service.hcl and billing-service.hcl are service definitions; each checks its zonegate\'s /readyz', () => {
    const edge = service('edge-service.hcl');
    expect(edge).toMatchObject({ name: 'zone-a-edge', port: envoy.static_resources.listeners[0].address.socket_address.port_value });
    expect(edge.check![0]!.http).toBe(`http://127.0.0.1:${edgeZg.server.ops.port}/readyz`);
    const billing = service('billing-service.hcl');
    expect(billing.name).toBe('billing');
    expect(billing.check![0]!.http).toBe(`http://127.0.0.1:${billingZg.server.ops.port}/readyz`);
    expect(EDGE.endsWith(`/svc/${edge.name}`)).toBe(true);
  });

  it.each([
    ['a misspelled field', (t: string) => t.replace('destination_name', 'destination_nam'), /destination_nam/],
    ['a missing brace', (t: string) => t.replace(/\}\s*$/, ''), /Unclosed configuration block/],
    ['a missing =', (t: string) => t.replace('port = 10443', 'port 10443'), /edge-service\.hcl:\d+/],
    ['an attribute set twice', (t: string) => t.replace('port = 10443', 'port = 10443\n  port = 10444'), /redefined/i],
  ])('a check that can fail: %s is refused', async (_what, mutate, message) => {
    await expect(parseHcl(mutate(read('edge-service.hcl')), 'edge-service.hcl').then((b) => ServiceFile.parse(b))).rejects.toThrow(message);
  });

  it('both consul-template files parse', () => {
    for (const f of ['edge-leaf.hcl', 'zonegate-leaf.hcl']) expect(() => TemplateFile.parse(hcl[f])).not.toThrow();
  });

  it('the intentions admit web and the edge to billing, and import into zonegate\'s policy', () => {
    const entry = JSON.parse(read('service-intentions-billing.json')) as { Name: string; Sources: { Name: string }[] };
    expect(entry.Name).toBe('billing');
    expect(entry.Sources.map((s) => s.Name).sort()).toEqual(['web', 'zone-a-edge']);
    const r = zonegate(['policy', 'import', 'consul', join(DIR, 'service-intentions-billing.json'), '--zone', '7f3c8e2a-0b1d-4c5e-9f6a-2d8b4e1c3a5f.consul']);
    expect(r).toMatchObject({ code: 0 });
    const rules = (parse(r.stdout) as { rules: { from: { services: string[] } }[] }).rules;
    expect(rules.flatMap((x) => x.from.services).sort()).toEqual(['web', 'zone-a-edge']);
  });
});

describe('the edge zonegate and billing\'s', () => {
  it('`zonegate config validate` accepts edge-zonegate.yaml', () => {
    expect(zonegate(['config', 'validate', '--no-files', join(DIR, 'edge-zonegate.yaml')])).toMatchObject({ code: 0, stderr: '' });
  });

  it('the edge federates the same Consul trust domain as billing, and zone A; it forwards, never mints for itself', () => {
    expect(edgeZg.trust.map((t: any) => t.trustDomain)).toEqual([billingZg.trust[0].trustDomain, 'zone-a.example']);
    expect(edgeZg.trust[0].source.consul.url).toBe(billingZg.trust[0].source.consul.url);
    expect(edgeZg.commonIdentity.egress).toMatchObject({ forward: true, workload: false, defaultAudience: BILLING });
    expect(edgeZg.upstream.destinations.billing).toMatchObject({ mode: 'passthrough' });
    expect(edgeZg.federation).toBeUndefined(); // billing's zonegate publishes the datacenter's bundle
  });

  it('every rule the guide names is in the config it says', () => {
    const guide = readFileSync(join(INTEGRATIONS, 'consul.md'), 'utf8');
    const names = (cfg: Record<string, any>) => cfg.rules.map((r: { name: string }) => r.name);
    expect(names(edgeZg)).toEqual(['zone-a-frontend-reads-invoices', 'edge-forwards-to-billing']);
    expect(names(billingZg)).toContain('zone-a-frontend-via-edge');
    for (const n of [...names(edgeZg), 'zone-a-frontend-via-edge']) expect(guide).toContain(`\`${n}\``);
  });

  it('billing\'s zonegate admits zone A\'s frontend only through the edge', () => {
    const rule = billingZg.rules.find((r: any) => r.from.principals?.includes(EDGE));
    expect(rule).toMatchObject({ action: 'allow', from: { actors: [FRONTEND] } });
  });
});

// ---- running: zone A's bundle endpoint, a Consul CA roots API, the edge and billing zonegates --

type Headers = Record<string, string>;
const verdict = (r: CheckResult) => {
  if (!r.ok) return `error ${r.error.code}`;
  const st = r.response.status as { code: number; message?: string };
  return st.code === 0 ? 'allow' : String(st.message);
};
/** The request as Envoy passes it on after an allowed check: sets overwrite, then removals. */
function mutate(headers: Headers, r: CheckResult): Headers {
  const ok = (r as { response: { ok_response?: { headers?: { header: { key: string; value: string } }[]; headers_to_remove?: string[] } } }).response.ok_response ?? {};
  const out = { ...headers };
  for (const h of ok.headers ?? []) out[h.header.key] = h.header.value;
  for (const name of ok.headers_to_remove ?? []) delete out[name];
  return out;
}

// edge-zone-a-roots.sh needs jq; its output is checked with openssl as well
const scriptTools = requireTool(probe('jq', 'jq', ['--version'])) && requireTool(probe('openssl', 'openssl', ['version']));

describe('on loopback: zone A → edge → billing', () => {
  let dir: string;
  let consul: TestServer;
  let consulCa: MemoryCA;
  let zoneACa: MemoryCA;
  let zoneA: Started;
  let edge: Started;
  let billing: Started;
  let zoneAEndpoint: string;
  const cert = (name: string) => encodeURIComponent(readFileSync(join(dir, `${name}.pem`), 'utf8'));
  const write = async (name: string, ca: MemoryCA, id: string, server = false) => {
    const s = server ? await ca.server(id) : await ca.issue(id);
    writeFileSync(join(dir, `${name}.pem`), s.chainPem);
    writeFileSync(join(dir, `${name}.key`), s.keyPem);
  };
  const mint = (signer: string, sub: string, aud: string) => {
    const r = zonegate(['token', 'mint', '--key', join(dir, `${signer}.key`), '--cert', join(dir, `${signer}.pem`), '--sub', sub, '--aud', aud]);
    expect(r.code).toBe(0);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'zg-consul-edge-'));
    consulCa = await MemoryCA.create(CONSUL_TD);
    zoneACa = await MemoryCA.create('zone-a.example');
    writeFileSync(join(dir, 'zone-a-root.pem'), zoneACa.certPem);
    writeFileSync(join(dir, 'consul-token'), 'test-token\n');
    await write('frontend', zoneACa, FRONTEND, true);
    await write('other-a', zoneACa, 'spiffe://zone-a.example/ns/shop/sa/other');
    await write('forged', zoneACa, BILLING);
    await write('edge', consulCa, EDGE);
    await write('billing', consulCa, BILLING, true);
    await write('web', consulCa, `spiffe://${CONSUL_TD}/ns/default/dc/dc1/svc/web`);
    consul = await testServer(undefined, (req, res) => {
      if (req.url !== '/v1/connect/ca/roots' || req.headers['x-consul-token'] !== 'test-token') return void res.writeHead(403).end();
      res.end(JSON.stringify({ ActiveRootID: 'r1', TrustDomain: CONSUL_TD, Roots: [{ ID: 'r1', RootCert: consulCa.certPem, Active: true }] }));
    });
    const consulSource = { url: `http://127.0.0.1:${consul.port}`, tokenFile: 'consul-token' };

    // Zone A's zonegate, reduced to what the edge needs from it: its bundle endpoint.
    zoneA = await startWith(
      {
        identity: { cert: 'frontend.pem', key: 'frontend.key' },
        trust: [{ trustDomain: 'zone-a.example', bundle: 'zone-a-root.pem' }],
        federation: { endpoint: { trustDomain: 'zone-a.example', address: '127.0.0.1', port: 0, profile: 'https_spiffe' } },
      },
      dir,
    );
    zoneAEndpoint = `https://127.0.0.1:${zoneA.zg.bundleEndpoint!.port}/`;

    // The shipped edge config: loopback, files in the temp dir, zone A's endpoint on loopback.
    const e = structuredClone(edgeZg);
    delete e.server;
    e.identity = { cert: 'edge.pem', key: 'edge.key' };
    e.trust[0].source.consul = consulSource;
    e.trust[1].source.https_spiffe = { ...e.trust[1].source.https_spiffe, url: zoneAEndpoint, bootstrap: 'zone-a-root.pem' };
    edge = await startWith(e, dir);

    // The shipped billing config, as consul.test.ts runs it (zone A from a file here).
    const b = structuredClone(billingZg);
    b.server = { http: { ...b.server.http, port: 0 } };
    b.identity = { cert: 'billing.pem', key: 'billing.key' };
    b.trust[0].source.consul = consulSource;
    b.trust[1] = { trustDomain: 'zone-a.example', bundle: 'zone-a-root.pem' };
    b.federation.endpoint = { ...b.federation.endpoint, address: '127.0.0.1', port: 0 };
    billing = await startWith(b, dir);
    await until(() => edge.zg.readiness.ready && billing.zg.readiness.ready, 15_000, 'edge and billing ready');
  }, 60_000);
  afterAll(async () => {
    await billing?.close();
    await edge?.close();
    await zoneA?.close();
    await consul?.close();
  });

  /** One request through the edge as its Envoy makes it: the ingress check, then the egress check. */
  async function throughEdge(o: { from?: string; token?: string; method?: string; path?: string }) {
    const base = { certificate: cert(o.from ?? 'frontend'), method: o.method ?? 'GET', path: o.path ?? '/api/invoices/7' };
    const h0: Headers = { 'x-common-identity': o.token ?? mint('frontend', FRONTEND, `spiffe://${CONSUL_TD}`), 'x-zonegate-actor': 'spoofed' };
    const ingress = await edge.check(checkRequest({ ...base, headers: h0, context: contextOf(INGRESS_FILTER) }));
    if (verdict(ingress) !== 'allow') return { at: 'ingress', verdict: verdict(ingress) };
    const h1 = mutate(h0, ingress);
    const egress = await edge.check(checkRequest({ ...base, headers: h1, context: contextOf(EGRESS_FILTER) }));
    if (verdict(egress) !== 'allow') return { at: 'egress', verdict: verdict(egress), h1 };
    return { at: 'out', verdict: 'allow', h1, h2: mutate(h1, egress) };
  }

  /** billing's inbound check, as its sidecar asks it: the calling sidecar's leaf, no context. */
  const atBilling = (peer: string, headers: Headers, path = '/api/invoices/7') => billing.check(checkRequest({ certificate: cert(peer), path, headers }));

  it('the edge fetched zone A\'s bundle from its endpoint and Consul\'s roots', () => {
    expect(edge.zg.trust.status().every((s) => s.hasBundle)).toBe(true);
  });

  it('an allowed call: the edge verifies zone A\'s caller, re-signs its identity for billing, and billing accepts it from the edge\'s sidecar', async () => {
    const r = await throughEdge({});
    expect(r).toMatchObject({ at: 'out', verdict: 'allow' });
    // the ingress check keeps zone A's verified token for the egress check (passthrough)
    expect(decodeJwt(r.h1!['x-common-identity']!)).toMatchObject({ iss: FRONTEND, sub: FRONTEND });
    const forwarded = r.h2!['x-common-identity']!;
    expect(decodeJwt(forwarded)).toMatchObject({ iss: EDGE, sub: FRONTEND, aud: BILLING, act: { sub: FRONTEND } });
    const inbound = await atBilling('edge', r.h2!);
    expect(verdict(inbound)).toBe('allow');
    const seen = mutate(r.h2!, inbound);
    expect(seen).toMatchObject({ 'x-zonegate-peer': EDGE, 'x-zonegate-actor': FRONTEND, 'x-zonegate-act': FRONTEND });
    expect(seen['x-common-identity']).toBeUndefined();
  });

  it('the edge refuses: another zone A workload, a forged SVID, a stolen token, a path no rule allows', async () => {
    expect(await throughEdge({ from: 'other-a', token: mint('other-a', 'spiffe://zone-a.example/ns/shop/sa/other', `spiffe://${CONSUL_TD}`) })).toMatchObject({ at: 'ingress', verdict: 'ERR_POLICY_NO_MATCH' });
    expect(await throughEdge({ from: 'forged' })).toMatchObject({ at: 'ingress', verdict: 'ERR_SVID_UNTRUSTED' });
    expect(await throughEdge({ from: 'other-a' })).toMatchObject({ at: 'ingress', verdict: 'ERR_TOKEN_PEER_MISMATCH' });
    expect(await throughEdge({ token: mint('frontend', FRONTEND, 'spiffe://zone-b.example') })).toMatchObject({ at: 'ingress', verdict: 'ERR_TOKEN_AUDIENCE' });
    expect(await throughEdge({ method: 'POST' })).toMatchObject({ at: 'ingress', verdict: 'ERR_POLICY_NO_MATCH' });
  });

  it('the egress check never mints for the edge itself: without a forwarded identity it denies', async () => {
    const r = await edge.check(checkRequest({ path: '/api/invoices/7', context: contextOf(EGRESS_FILTER) }));
    expect(verdict(r)).toBe('ERR_NO_CARRIED_IDENTITY');
  });

  it('billing refuses every shortcut around the edge\'s re-signing', async () => {
    const r = await throughEdge({});
    // zone A's own token passed on unchanged: its signer is not the peer on the wire
    expect(verdict(await atBilling('edge', r.h1!))).toBe('ERR_TOKEN_PEER_MISMATCH');
    // the edge's token replayed by another workload of the datacenter
    expect(verdict(await atBilling('web', r.h2!))).toBe('ERR_TOKEN_PEER_MISMATCH');
    // the edge acting for itself, not for zone A's frontend
    expect(verdict(await atBilling('edge', { 'x-common-identity': mint('edge', EDGE, BILLING) }))).toBe('ERR_POLICY_NO_MATCH');
    // the edge's sidecar without any identity
    expect(verdict(await atBilling('edge', {}))).toBe('ERR_POLICY_NO_MATCH'); // billing's rule for the edge names zone A's actor
    // a path billing's rule does not allow
    expect(verdict(await atBilling('edge', r.h2!, '/api/orders'))).toBe('ERR_POLICY_NO_MATCH');
  });

  describe.runIf(scriptTools)('edge-zone-a-roots.sh against zone A\'s bundle endpoint', () => {
    const script = join(DIR, 'edge-zone-a-roots.sh');
    // Asynchronously: zone A's bundle endpoint answers from this process's event loop.
    const run = (out: string, env: Record<string, string> = {}) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const p = spawn(script, [out], {
          env: { ...process.env, ZONEGATE: `${process.execPath} ${BIN}`, ZONE_A_BUNDLE_URL: zoneAEndpoint, ZONE_A_ENDPOINT_ID: FRONTEND, ZONE_A_BOOTSTRAP: join(dir, 'zone-a-root.pem'), ...env },
          timeout: 30_000,
        });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d) => (stdout += d));
        p.stderr.on('data', (d) => (stderr += d));
        p.on('close', (status) => resolve({ status, stdout, stderr }));
      });

    it('writes zone A\'s roots as PEM that verifies zone A\'s SVIDs; rewrites nothing when unchanged', async () => {
      const out = join(dir, 'envoy-zone-a', 'roots.pem');
      const first = await run(out);
      expect(first.status, first.stderr).toBe(0);
      expect(first.stdout).toMatch(/wrote 1 root\(s\) of zone-a\.example/);
      const roots = readFileSync(out, 'utf8');
      expect(new X509Certificate(roots).fingerprint256).toBe(zoneACa.cert.fingerprint256);
      expect(new X509Certificate(readFileSync(join(dir, 'frontend.pem'))).verify(new X509Certificate(roots).publicKey)).toBe(true);
      const inode = statSync(out).ino;
      const again = await run(out); // authenticated with the roots written last time
      expect(again).toMatchObject({ status: 0, stdout: '' });
      expect(statSync(out).ino).toBe(inode);
      // as Envoy (BoringSSL) reads a trusted_ca file: PEM that an independent TLS library accepts
      expect(execFileSync('openssl', ['verify', '-CAfile', out, join(dir, 'frontend.pem')], { encoding: 'utf8' })).toMatch(/: OK/);
    });

    it('a check that can fail: an endpoint that is not zone A\'s leaves the file as it was', async () => {
      const out = join(dir, 'envoy-zone-a-2', 'roots.pem');
      const r = await run(out, { ZONE_A_ENDPOINT_ID: 'spiffe://zone-a.example/ns/shop/sa/impostor' });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/ERR_BUNDLE_ENDPOINT_IDENTITY/);
      expect(() => statSync(out)).toThrow();
    });
  });
});
