/**
 * The Consul integration (docs/integrations/consul.md and consul/*): the service-defaults config
 * entry has exactly the fields of Consul's builtin/ext-authz reference (a misspelling fails) and
 * the safe values; what Consul builds from it is parsed strictly as Envoy's ExtAuthz; the zonegate
 * config is valid, agrees with the entry, and — run on loopback against a Consul CA roots API —
 * federates Consul's roots, verifies in-datacenter peers and answers the outbound HTTP check
 * with a minted common identity.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { decodeJwt } from 'jose';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { zonegate } from '../helpers/cli.js';
import { envoyRegistry, extAuthzProblems, parseStrict } from '../helpers/envoy-config.js';
import { parseHcl } from '../helpers/hcl.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { testServer, type TestServer } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import { INTEGRATIONS, fences, namedFiles } from './docs.js';

const DIR = join(INTEGRATIONS, 'consul');
const entry = JSON.parse(readFileSync(join(DIR, 'service-defaults-billing.json'), 'utf8')) as Record<string, any>;
const zgText = readFileSync(join(DIR, 'zonegate.yaml'), 'utf8');
const zg = parse(zgText, { uniqueKeys: true }) as Record<string, any>;
const CONSUL_TD = zg.trust[0].trustDomain as string;
const BILLING = `spiffe://${CONSUL_TD}/ns/default/dc/dc1/svc/billing`;

// developer.hashicorp.com/consul/docs/reference/proxy/extensions/ext-authz
const Matcher = z.strictObject({ Contains: z.string(), Exact: z.string(), IgnoreCase: z.boolean(), Prefix: z.string(), SafeRegex: z.string(), Suffix: z.string() }).partial();
const Target = z.strictObject({
  Service: z.strictObject({ Name: z.string(), Namespace: z.string().optional(), Partition: z.string().optional() }).optional(),
  URI: z.string().regex(/^(localhost|127\.0\.0\.1|::1):\d+$/, 'a local address (localhost:PORT or 127.0.0.1:PORT)').optional(),
  Timeout: z.string().regex(/^\d+(\.\d+)?(ms|s)$/).optional(),
});
const ExtAuthzConfig = z.strictObject({
  BootstrapMetadataLabelsKey: z.string().optional(),
  ClearRouteCache: z.boolean().optional(),
  GrpcService: z.strictObject({ Target, Authority: z.string().optional(), InitialMetadata: z.array(z.strictObject({ Key: z.string(), Value: z.string() })).optional() }).optional(),
  HttpService: z.strictObject({
    Target,
    PathPrefix: z.string().optional(),
    AuthorizationRequest: z.strictObject({ AllowedHeaders: z.array(Matcher).optional(), HeadersToAdd: z.array(z.strictObject({ Key: z.string(), Value: z.string() })).optional() }).optional(),
    AuthorizationResponse: z.strictObject({
      AllowedUpstreamHeaders: z.array(Matcher).optional(),
      AllowedUpstreamHeadersToAppend: z.array(Matcher).optional(),
      AllowedClientHeaders: z.array(Matcher).optional(),
      AllowedClientHeadersOnSuccess: z.array(Matcher).optional(),
      DynamicMetadataFromHeaders: z.array(Matcher).optional(),
    }).optional(),
  }).optional(),
  IncludePeerCertificate: z.boolean().optional(),
  MetadataContextNamespaces: z.array(z.string()).optional(),
  StatusOnError: z.number().int().optional(),
  StatPrefix: z.string().optional(),
  TransportApiVersion: z.string().optional(),
  WithRequestBody: z.strictObject({ MaxRequestBytes: z.number(), AllowPartialMessage: z.boolean(), PackAsBytes: z.boolean() }).partial().optional(),
});
const Extension = z.strictObject({
  Name: z.literal('builtin/ext-authz'),
  Required: z.boolean().optional(),
  Arguments: z.strictObject({
    ProxyType: z.literal('connect-proxy'),
    ListenerType: z.enum(['inbound', 'outbound']),
    InsertOptions: z.strictObject({ Location: z.string(), FilterName: z.string().optional() }).optional(),
    Config: ExtAuthzConfig,
  }),
});
const ServiceDefaults = z.strictObject({
  Kind: z.literal('service-defaults'),
  Name: z.string().min(1),
  Protocol: z.enum(['http', 'http2', 'grpc', 'tcp']),
  EnvoyExtensions: z.array(Extension).min(1),
});
type Ext = z.infer<typeof Extension>;

/** Envoy's StatusCode enum names by number (envoy/type/v3/http_status.proto). */
function statusName(code: number): string | undefined {
  return envoyRegistry().getEnum('envoy.type.v3.StatusCode')?.values.find((v) => v.number === code)?.name;
}

/** The ext_authz HTTP filter Consul builds from one extension (as its structs.go does). */
function consulToEnvoy(ext: Ext): Record<string, unknown> {
  const c = ext.Arguments.Config;
  const target = (c.GrpcService ?? c.HttpService)!.Target;
  const timeout = target.Timeout ? `${target.Timeout.endsWith('ms') ? Number(target.Timeout.slice(0, -2)) / 1000 : Number(target.Timeout.slice(0, -1))}s` : undefined;
  const service = c.GrpcService
    ? { grpc_service: { envoy_grpc: { cluster_name: 'local_ext_authz' }, ...(timeout ? { timeout } : {}) } }
    : { http_service: { server_uri: { uri: 'local_ext_authz', cluster: 'local_ext_authz', ...(timeout ? { timeout } : {}) } } };
  return {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
    stat_prefix: c.StatPrefix ?? 'response',
    transport_api_version: 'V3',
    failure_mode_allow: !ext.Required, // Consul: the filter fails open unless Required
    ...service,
    ...(c.IncludePeerCertificate !== undefined ? { include_peer_certificate: c.IncludePeerCertificate } : {}),
    ...(c.StatusOnError !== undefined ? { status_on_error: { code: statusName(c.StatusOnError) ?? `unknown ${c.StatusOnError}` } } : {}),
  };
}

beforeAll(() => {
  envoyRegistry();
}, 60_000);

describe('Consul: the service-defaults config entry', () => {
  const exts = () => ServiceDefaults.parse(entry).EnvoyExtensions;

  it('has only fields of the builtin/ext-authz reference', () => {
    expect(() => ServiceDefaults.parse(entry)).not.toThrow();
  });

  it.each([
    ['a misspelled argument', (e: any) => (e.EnvoyExtensions[0].Arguments.Config.IncludePeerCertificates = true), /IncludePeerCertificates/],
    ['a remote target', (e: any) => (e.EnvoyExtensions[0].Arguments.Config.GrpcService.Target.URI = 'zonegate:50051'), /local address/],
    ['an unknown listener type', (e: any) => (e.EnvoyExtensions[1].Arguments.ListenerType = 'egress'), /ListenerType|inbound/],
  ])('a check that can fail: %s is refused', (_what, mutate, message) => {
    const bad = structuredClone(entry);
    mutate(bad);
    expect(() => ServiceDefaults.parse(bad)).toThrow(message);
  });

  it('both listener types, each Required (Consul fails open otherwise), 503 on error, explicit timeout', () => {
    expect(exts().map((e) => e.Arguments.ListenerType).sort()).toEqual(['inbound', 'outbound']);
    for (const e of exts()) {
      expect(e.Required).toBe(true);
      expect(e.Arguments.Config.StatusOnError).toBe(503);
      expect(statusName(503)).toBe('ServiceUnavailable');
      expect((e.Arguments.Config.GrpcService ?? e.Arguments.Config.HttpService)!.Target.Timeout).toMatch(/^0?\.\d+s$|^\d+ms$/);
    }
  });

  it('inbound: gRPC to zonegate on localhost with the peer certificate; outbound: zonegate\'s HTTP egress listener', () => {
    const inbound = exts().find((e) => e.Arguments.ListenerType === 'inbound')!.Arguments.Config;
    const outbound = exts().find((e) => e.Arguments.ListenerType === 'outbound')!.Arguments.Config;
    expect(inbound.IncludePeerCertificate).toBe(true);
    expect(inbound.GrpcService!.Target.URI).toBe(`127.0.0.1:${zg.server.grpc.port}`);
    expect(outbound.HttpService!.Target.URI).toBe(`127.0.0.1:${zg.server.http.port}`);
    expect(zg.server.http.context).toMatchObject({ direction: 'egress' });
    const header = zg.commonIdentity.header ?? 'x-common-identity';
    expect(outbound.HttpService!.AuthorizationResponse!.AllowedUpstreamHeaders).toContainEqual({ Exact: header });
    expect(outbound.HttpService!.AuthorizationRequest!.AllowedHeaders).toContainEqual({ Exact: header });
  });

  it('what Consul gives Envoy parses strictly as ExtAuthz and is fail-closed', () => {
    for (const e of exts()) {
      const filter = consulToEnvoy(e);
      parseStrict('google.protobuf.Any', filter as never); // the @type resolves to ExtAuthz, strictly
      expect(filter).toMatchObject({ failure_mode_allow: false, status_on_error: { code: 'ServiceUnavailable' } });
    }
    const inbound = consulToEnvoy(exts().find((e) => e.Arguments.ListenerType === 'inbound')!);
    const bootstrap = {
      static_resources: {
        listeners: [{ name: 'public_listener', filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: {
          route_config: { virtual_hosts: [{ name: 'billing', routes: [{ match: { prefix: '/' }, typed_per_filter_config: { 'envoy.filters.http.ext_authz': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute', check_settings: { context_extensions: { direction: 'ingress' } } } } }] }] },
          http_filters: [{ name: 'envoy.filters.http.ext_authz', typed_config: inbound }, { name: 'envoy.filters.http.router' }],
        } }] }] }],
        clusters: [{ name: 'local_ext_authz', typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { explicit_http_config: { http2_protocol_options: {} } } } }],
      },
    };
    // Consul's extension has no argument for validate_mutations; zonegate refuses to set an
    // invalid header value itself (ERR_UPSTREAM_HEADER_VALUE), so that one finding is expected.
    expect(extAuthzProblems(bootstrap)).toEqual(['listener public_listener: validate_mutations is not true (invalid header values would pass on)']);
    // and without Required, the same entry would fail open
    expect(consulToEnvoy({ ...exts()[0]!, Required: false })).toMatchObject({ failure_mode_allow: true });
  });
});

describe('Consul: zonegate beside the service', () => {
  it('`zonegate config validate` accepts docs/integrations/consul/zonegate.yaml', () => {
    expect(zonegate(['config', 'validate', '--no-files', join(DIR, 'zonegate.yaml')])).toMatchObject({ code: 0 });
  });

  it('its own trust domain comes from Consul\'s CA roots, and it publishes it for the other zone', () => {
    expect(CONSUL_TD).toMatch(/^[0-9a-f-]{36}\.consul$/);
    expect(zg.trust[0].source.consul.url).toBe('http://127.0.0.1:8500');
    expect(zg.federation.endpoint).toMatchObject({ trustDomain: CONSUL_TD, profile: 'https_spiffe' });
  });

  it('consul-template writes the leaf where zonegate reads its identity; the registration checks /readyz', async () => {
    // both read by HashiCorp's parser (test/helpers/hcl.ts)
    const tpl = (await parseHcl(readFileSync(join(DIR, 'zonegate-leaf.hcl'), 'utf8'), 'zonegate-leaf.hcl')) as { template: { contents: string; destination: string }[] };
    expect(tpl.template.map((t) => [t.contents, t.destination])).toEqual([
      ['{{ with caLeaf "billing" }}{{ .CertPEM }}{{ end }}', zg.identity.cert],
      ['{{ with caLeaf "billing" }}{{ .PrivateKeyPEM }}{{ end }}', zg.identity.key],
    ]);
    const reg = (await parseHcl(readFileSync(join(DIR, 'billing-service.hcl'), 'utf8'), 'billing-service.hcl')) as { service: { name: string; check: { http: string }[] }[] };
    expect(reg.service[0]!.name).toBe('billing');
    expect(reg.service[0]!.check.map((c) => c.http)).toEqual([`http://127.0.0.1:${zg.server.ops.port}/readyz`]);
  });

  describe('run on loopback against a Consul CA roots API', () => {
    let consul: TestServer;
    let started: Started;
    let ca: MemoryCA;
    let dir: string;

    beforeAll(async () => {
      ca = await MemoryCA.create(CONSUL_TD);
      const zoneA = await MemoryCA.create('zone-a.example');
      dir = mkdtempSync(join(tmpdir(), 'zg-consul-'));
      const leaf = await ca.server(BILLING);
      writeFileSync(join(dir, 'cert.pem'), leaf.chainPem);
      writeFileSync(join(dir, 'key.pem'), leaf.keyPem);
      writeFileSync(join(dir, 'consul-token'), 'test-token\n');
      writeFileSync(join(dir, 'zone-a.pem'), zoneA.certPem);
      let token = '';
      consul = await testServer(undefined, (req, res) => {
        token = String(req.headers['x-consul-token'] ?? '');
        if (req.url !== '/v1/connect/ca/roots' || token !== 'test-token') return void res.writeHead(403).end();
        res.end(JSON.stringify({ ActiveRootID: 'r1', TrustDomain: CONSUL_TD, Roots: [{ ID: 'r1', RootCert: ca.certPem, Active: true }] }));
      });
      // The shipped file, with loopback ports, files in a temp dir, and zone A from a file.
      const cfg = parse(zgText) as Record<string, any>;
      cfg.server = { http: { ...cfg.server.http, port: 0 } };
      cfg.identity = { cert: 'cert.pem', key: 'key.pem' };
      cfg.trust[0].source.consul = { url: `http://127.0.0.1:${consul.port}`, tokenFile: 'consul-token' };
      cfg.trust[1] = { trustDomain: 'zone-a.example', bundle: 'zone-a.pem' };
      cfg.federation.endpoint = { ...cfg.federation.endpoint, address: '127.0.0.1', port: 0 };
      started = await startWith(cfg, dir);
      await until(() => started.zg.readiness.ready, 10_000, 'zonegate ready with Consul\'s roots');
    });
    afterAll(async () => {
      await started?.close();
      await consul?.close();
    });

    it('inbound: a Consul peer with a common identity is allowed by the rules; a wrong path is not', async () => {
      const web = await ca.issue(`spiffe://${CONSUL_TD}/ns/default/dc/dc1/svc/web`);
      writeFileSync(join(dir, 'web.pem'), web.chainPem);
      writeFileSync(join(dir, 'web.key'), web.keyPem);
      const mint = zonegate(['token', 'mint', '--key', join(dir, 'web.key'), '--cert', join(dir, 'web.pem'), '--sub', `spiffe://${CONSUL_TD}/ns/default/dc/dc1/svc/web`, '--aud', `spiffe://${CONSUL_TD}`]);
      expect(mint.code).toBe(0);
      const ask = async (path: string) => {
        const r = await started.check(checkRequest({ certificate: encodeURIComponent(web.certPem), path, headers: { 'x-common-identity': mint.stdout.trim() } }));
        if (!r.ok) return `error ${r.error.code}`;
        const st = r.response.status as { code: number; message?: string };
        return st.code === 0 ? 'allow' : st.message;
      };
      expect(await ask('/api/invoices/7')).toBe('allow');
      expect(await ask('/api/orders')).toBe('ERR_POLICY_NO_MATCH');
    });

    it('outbound: the HTTP check answers 200 with a common identity for zone A, signed by billing\'s leaf', async () => {
      const port = started.zg.httpAuthz!.port;
      const res = await fetch(`http://127.0.0.1:${port}/api/orders`, { headers: { host: 'orders.zone-a.example' } });
      expect(res.status).toBe(200);
      const token = res.headers.get('x-common-identity');
      expect(token).toBeTruthy();
      expect(decodeJwt(token!)).toMatchObject({ iss: BILLING, sub: BILLING, aud: 'spiffe://zone-a.example' });
    });
  });
});

describe('Consul: the guide', () => {
  it('names every file it ships, and every name it uses exists', () => {
    const named = namedFiles('consul.md');
    expect(named.filter((f) => !f.exists)).toEqual([]);
    const shipped = named.filter((f) => f.path.startsWith('docs/integrations/consul/')).map((f) => f.path.replace('docs/integrations/consul/', ''));
    expect(shipped.sort()).toEqual(readdirSync(DIR).sort());
    expect(shipped).toEqual(expect.arrayContaining(['billing-service.hcl', 'edge-envoy.yaml', 'edge-zonegate.yaml', 'service-defaults-billing.json', 'zonegate-leaf.hcl', 'zonegate.yaml']));
  });

  // The guide's code blocks are two diagrams and the shell steps (the config files are shipped
  // beside it, not inlined): a block added, dropped or relabelled fails here until a check for it exists.
  const blocks = fences('consul.md');
  const sh = blocks.filter((b) => b.lang === 'sh').map((b) => b.text);

  it('has the code blocks this suite checks: two diagrams, then the shell steps of billing (4) and of the edge (5)', () => {
    const text = readFileSync(join(INTEGRATIONS, 'consul.md'), 'utf8');
    expect(text.match(/^ *```/gm)).toHaveLength(2 * blocks.length); // no fence left unpaired
    expect(blocks.map((b) => b.lang)).toEqual(['', 'sh', 'sh', 'sh', 'sh', '', 'sh', 'sh', 'sh', 'sh', 'sh']);
  });

  it('its shell steps parse (bash -n)', () => {
    expect(sh).toHaveLength(9);
    for (const [i, b] of sh.entries()) {
      const r = spawnSync('bash', ['-n'], { input: b, encoding: 'utf8' });
      expect({ block: i, status: r.status, stderr: r.stderr }).toEqual({ block: i, status: 0, stderr: '' });
    }
  });

  it('its sed replaces the trust domain the shipped configs actually use', () => {
    const seds = sh.flatMap((b) => [...b.matchAll(/sed "s\/([^/]+)\/\$TD\/g" (\S+)/g)]).map((m) => ({ from: m[1]!.replaceAll('\\.', '.'), file: m[2]! }));
    expect(seds.map((s) => s.file)).toEqual(['docs/integrations/consul/zonegate.yaml', 'docs/integrations/consul/edge-zonegate.yaml']);
    for (const { from, file } of seds) {
      const cfg = parse(readFileSync(join(PACKAGE_ROOT, file), 'utf8')) as Record<string, any>;
      expect({ file, from }).toEqual({ file, from: cfg.trust[0].trustDomain });
    }
  });

  it('every zonegate command of its shell steps exists with the options it passes', () => {
    const commands = sh.flatMap((b) => [...b.replaceAll('\\\n', ' ').matchAll(/npx zonegate ([^#&\n]+)/g)]).map((m) => m[1]!.trim().split(/\s+/));
    expect(commands.map((c) => c.slice(0, 2).join(' '))).toEqual([
      'config validate', 'serve --config', 'config validate', 'serve --config', 'bundle show',
    ]);
    for (const args of commands) {
      const end = args.findIndex((a) => !/^[a-z]+$/.test(a)); // the subcommand words, before the first option or path
      const words = end < 0 ? args : args.slice(0, end);
      const help = zonegate([...words, '--help']);
      expect(help.stdout.split('\n')[0]).toMatch(new RegExp(`^Usage: zonegate ${words.join(' ')} `));
      for (const option of args.filter((a) => a.startsWith('--'))) expect(help.stdout, `zonegate ${words.join(' ')} ${option}`).toMatch(new RegExp(`[ ,]${option}(?![\\w-])`));
    }
  });
});
