/**
 * The two-zone setup under envoy/, checked as far as this machine can run it: the certificate
 * script's output verified with zonegate's own SVID verifier, both zonegate configs valid, the
 * compose file, the Envoy configs and the certificate layout consistent with each other, and
 * the two shipped zonegate configs run on loopback — federating each other's bundles and
 * deciding a cross-zone call (egress mint in zone A, ingress verify in zone B) exactly as the
 * Envoys of the compose setup would ask. Envoy itself runs in the containers suite
 * (test/containers/two-zones.test.ts, `npm run test:containers`).
 */
import { execFileSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { zonegate } from '../helpers/cli.js';
import { field, parseYaml, routesOf, connectionManagers } from '../helpers/envoy-config.js';
import { makeCerts, probe, requireTool } from '../helpers/tools.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { freePorts } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

const ENVOY_DIR = join(PACKAGE_ROOT, 'envoy');
const ZONES = {
  a: { td: 'zone-a.example', id: 'spiffe://zone-a.example/ns/shop/sa/frontend' },
  b: { td: 'zone-b.example', id: 'spiffe://zone-b.example/ns/default/dc/dc1/svc/billing' },
} as const;
type Z = keyof typeof ZONES;
const other = (z: Z): Z => (z === 'a' ? 'b' : 'a');

const run = requireTool(probe('openssl', 'openssl', ['version']));
let certs: string;

const read = (...p: string[]) => readFileSync(join(...p), 'utf8');
const uriSan = (pem: string) => new X509Certificate(pem).subjectAltName;
// merge: docker compose resolves YAML merge keys (<<: *anchor)
const yamlOf = (rel: string) => parse(read(ENVOY_DIR, rel), { uniqueKeys: true, merge: true }) as Record<string, any>;

function verify(cert: string, bundles: Record<string, string>): { valid: boolean; reason: string | null; spiffeId: string | null } {
  const args = ['svid', 'verify', cert, ...Object.entries(bundles).flatMap(([td, f]) => ['--bundle', `${td}=${f}`])];
  return JSON.parse(zonegate(args).stdout) as { valid: boolean; reason: string | null; spiffeId: string | null };
}

beforeAll(() => {
  if (!run) return;
  certs = join(mkdtempSync(join(tmpdir(), 'zg-two-zones-')), 'certs');
  makeCerts(certs);
});

describe.runIf(run)('examples/make-certs.sh: the two-zone material', () => {
  it.each(['a', 'b'] as const)('zone %s: its SVID verifies against its own bundle, with the right SPIFFE ID and key', (z) => {
    const dir = join(certs, `zone-${z}`);
    const r = verify(join(dir, 'svid.pem'), { [ZONES[z].td]: join(dir, 'bundle.pem') });
    expect(r).toMatchObject({ valid: true, reason: null, spiffeId: ZONES[z].id });
    const cert = new X509Certificate(read(dir, 'svid.pem'));
    expect(cert.publicKey.export({ type: 'spki', format: 'der' })).toEqual(createPublicKey(read(dir, 'svid.key')).export({ type: 'spki', format: 'der' }));
    // and it does not verify as the other zone's: the roots differ
    expect(verify(join(dir, 'svid.pem'), { [ZONES[z].td]: join(certs, `zone-${other(z)}`, 'bundle.pem') })).toMatchObject({ valid: false, reason: 'ERR_SVID_UNTRUSTED' });
  });

  it('each zone is handed the other zone\'s root as its bootstrap, and the roots differ', () => {
    expect(read(certs, 'zone-a/peer-bootstrap.pem')).toBe(read(certs, 'zone-b/bundle.pem'));
    expect(read(certs, 'zone-b/peer-bootstrap.pem')).toBe(read(certs, 'zone-a/bundle.pem'));
    expect(read(certs, 'zone-a/bundle.pem')).not.toBe(read(certs, 'zone-b/bundle.pem'));
    expect(uriSan(read(certs, 'zone-a/bundle.pem'))).toBe('URI:spiffe://zone-a.example');
    expect(uriSan(read(certs, 'zone-b/bundle.pem'))).toBe('URI:spiffe://zone-b.example');
  });

  it('the forged SVID (zone A\'s CA, zone B\'s ID) is refused with both bundles at hand', () => {
    const r = verify(join(certs, 'clients/forged.pem'), { 'zone-a.example': join(certs, 'zone-a/bundle.pem'), 'zone-b.example': join(certs, 'zone-b/bundle.pem') });
    expect(r).toMatchObject({ valid: false, reason: 'ERR_SVID_UNTRUSTED' });
    expect(uriSan(read(certs, 'clients/forged.pem'))).toBe(`URI:${ZONES.b.id}`);
  });

  it('the rotation material: the next root\'s SVID is refused by today\'s bundle, accepted once the root is added', () => {
    const next = join(certs, 'clients/next-frontend.pem');
    expect(verify(next, { 'zone-a.example': join(certs, 'zone-a/bundle.pem') })).toMatchObject({ valid: false, reason: 'ERR_SVID_UNTRUSTED' });
    const rotated = join(mkdtempSync(join(tmpdir(), 'zg-rotated-')), 'bundle.pem');
    execFileSync('sh', ['-c', `cat "$1" "$2" > "$3"`, 'sh', join(certs, 'zone-a/bundle.pem'), join(certs, 'clients/next-root.pem'), rotated]);
    expect(verify(next, { 'zone-a.example': rotated })).toMatchObject({ valid: true, spiffeId: ZONES.a.id });
  });

  it.each(['a', 'b'] as const)('zone %s: every certificate file its Envoy reads is written by the script', (z) => {
    const files = [...read(ENVOY_DIR, `zone-${z}/envoy.yaml`).matchAll(/filename: (\/etc\/envoy\/certs\/[^\s}]+)/g)].map((m) => m[1]!);
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) expect(existsSync(join(certs, `zone-${z}`, f.replace('/etc/envoy/certs/', '')))).toBe(true);
  });
});

describe('the zonegate configs of the two zones', () => {
  it.each(['a', 'b'] as const)('zone %s: `zonegate config validate` accepts it', (z) => {
    const r = zonegate(['config', 'validate', '--no-files', join(ENVOY_DIR, `zone-${z}/zonegate.yaml`)]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
  });

  it.each(['a', 'b'] as const)('zone %s: federates the other zone\'s bundle from the other zonegate and publishes its own', (z) => {
    const cfg = yamlOf(`zone-${z}/zonegate.yaml`);
    const o = other(z);
    expect(cfg.trust).toEqual([
      { trustDomain: ZONES[z].td, bundle: 'certs/bundle.pem' },
      {
        trustDomain: ZONES[o].td,
        source: { https_spiffe: { url: `https://zonegate-${o}:8443/`, endpointSpiffeId: ZONES[o].id, bootstrap: 'certs/peer-bootstrap.pem' } },
      },
    ]);
    expect(cfg.federation.endpoint).toMatchObject({ trustDomain: ZONES[z].td, port: 8443, profile: 'https_spiffe' });
    expect(cfg.identity).toEqual({ cert: 'certs/svid.pem', key: 'certs/svid.key' });
  });
});

describe('docker-compose.yaml against the configs it mounts', () => {
  const compose = yamlOf('docker-compose.yaml');
  const svc = compose.services as Record<string, any>;

  it('builds the project\'s Dockerfile and runs each zone\'s app, Envoy and zonegate', () => {
    expect(Object.keys(svc).sort()).toEqual(['app-a', 'app-b', 'envoy-a', 'envoy-b', 'zonegate-a', 'zonegate-b']);
    for (const z of ['a', 'b']) {
      expect(svc[`zonegate-${z}`].build).toEqual({ context: '..', dockerfile: 'Dockerfile' });
      expect(svc[`zonegate-${z}`].command).toEqual(['serve', '--config', '/etc/zonegate/zonegate.yaml']);
      expect(svc[`envoy-${z}`].image).toMatch(/envoyproxy\/envoy:/);
    }
    expect(existsSync(join(ENVOY_DIR, '..', 'Dockerfile'))).toBe(true);
  });

  it('mounts every file it names, each zone\'s certificates into that zone only', () => {
    for (const [name, s] of Object.entries(svc)) {
      for (const v of s.volumes as string[]) {
        const m = /^(.+):(\/[^:]+)(:ro)?$/.exec(v);
        expect(m, v).not.toBeNull();
        const [, host, target] = m as unknown as [string, string, string];
        const z = name.slice(-1);
        if (host.startsWith('${ZONEGATE_CERTS')) expect(host).toBe(`\${ZONEGATE_CERTS:-./certs}/zone-${z}`);
        else expect(existsSync(join(ENVOY_DIR, host))).toBe(true);
        if (target.startsWith('/etc/envoy/') || target.startsWith('/etc/zonegate/')) expect(host).toMatch(new RegExp(`zone-${z}`));
      }
    }
  });

  it('puts only the Envoys and the bundle endpoints between the zones', () => {
    const nets = (n: string) => [...(svc[n].networks as string[])].sort();
    expect(nets('app-a')).toEqual(['zone-a']);
    expect(nets('app-b')).toEqual(['zone-b']);
    for (const n of ['envoy-a', 'zonegate-a']) expect(nets(n)).toEqual(['interzone', 'zone-a']);
    for (const n of ['envoy-b', 'zonegate-b']) expect(nets(n)).toEqual(['interzone', 'zone-b']);
  });

  it.each(['a', 'b'] as const)('zone %s: Envoy reaches its own zonegate and app, and the other zone\'s Envoy with its audience', (z) => {
    const doc = parseYaml(read(ENVOY_DIR, `zone-${z}/envoy.yaml`));
    const o = other(z);
    const addr = (cluster: string) => {
      const c = (field(field(doc, 'static_resources'), 'clusters') as any[]).find((x) => x.name === cluster);
      const sa = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
      return `${sa.address}:${sa.port_value}`;
    };
    expect(addr('zonegate')).toBe(`zonegate-${z}:50051`);
    expect(addr('app')).toBe(`app-${z}:8080`);
    expect(addr(`zone_${o}`)).toBe(`envoy-${o}:10000`);
    const sites = connectionManagers(doc);
    const byName = Object.fromEntries(sites.map((s) => [s.listener, s]));
    const ext = (l: string) => routesOf(byName[l]!.hcm).map((r) => (r.perRoute as any).check_settings.context_extensions);
    expect(ext('ingress')).toEqual([{ direction: 'ingress', destination: `app-${z}` }]);
    expect(ext('egress')).toEqual([{ direction: 'egress', audience: `spiffe://${ZONES[o].td}`, destination: `zone-${o}` }]);
    expect(field(field(byName.ingress!.chain, 'transport_socket'), 'typed_config')).toMatchObject({ require_client_certificate: true });
  });
});

// ---- the shipped zonegate configs, running ------------------------------------------------

describe.runIf(run)('the two shipped zonegate configs on loopback', () => {
  const zg: Partial<Record<Z, Started>> = {};

  beforeAll(async () => {
    const [a, b] = await freePorts(2);
    const ports = { a: a!, b: b! };
    for (const z of ['a', 'b'] as const) {
      // The compose service names become loopback ports; everything else is the shipped file.
      const base = mkdtempSync(join(tmpdir(), `zg-zone-${z}-`));
      mkdirSync(base, { recursive: true });
      symlinkSync(join(certs, `zone-${z}`), join(base, 'certs'));
      const cfg = yamlOf(`zone-${z}/zonegate.yaml`);
      delete cfg.server;
      cfg.federation.endpoint = { ...cfg.federation.endpoint, address: '127.0.0.1', port: ports[z] };
      cfg.trust[1].source.https_spiffe.url = `https://127.0.0.1:${ports[other(z)]}/`;
      zg[z] = await startWith(cfg, base);
    }
  });
  afterAll(async () => {
    await zg.a?.close();
    await zg.b?.close();
  });

  const cert = (...p: string[]) => encodeURIComponent(read(certs, ...p));
  const status = (r: Awaited<ReturnType<Started['check']>>) => {
    if (!r.ok) return `error ${r.error.code}`;
    const st = r.response.status as { code: number; message?: string };
    return st.code === 0 ? 'allow' : String(st.message);
  };
  const headers = (r: Awaited<ReturnType<Started['check']>>) => {
    const ok = (r as { response: { ok_response?: { headers?: { header: { key: string; value: string } }[] } } }).response.ok_response;
    return Object.fromEntries((ok?.headers ?? []).map((h) => [h.header.key, h.header.value]));
  };

  it('both become ready: each has fetched the other zone\'s bundle from its endpoint', async () => {
    await until(() => zg.a!.zg.readiness.ready && zg.b!.zg.readiness.ready, 15_000, 'both zones ready');
    for (const z of ['a', 'b'] as const) expect(zg[z]!.zg.trust.status().every((s) => s.hasBundle)).toBe(true);
  });

  it('a cross-zone call: zone A\'s egress mints, zone B\'s ingress verifies peer and token and allows', async () => {
    const out = await zg.a!.check(checkRequest({ path: '/api/orders', context: { direction: 'egress', audience: 'spiffe://zone-b.example', destination: 'zone-b' } }));
    expect(status(out)).toBe('allow');
    const token = headers(out)['x-common-identity'];
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const inbound = await zg.b!.check(checkRequest({
      certificate: cert('zone-a/svid.pem'),
      path: '/api/orders',
      headers: { 'x-common-identity': token! },
      context: { direction: 'ingress', destination: 'app-b' },
    }));
    expect(status(inbound)).toBe('allow');
    expect(headers(inbound)).toMatchObject({ 'x-zonegate-peer': ZONES.a.id, 'x-zonegate-actor': ZONES.a.id, 'x-zonegate-peer-trust-domain': 'zone-a.example' });
  });

  it('zone B denies: the forged SVID, a call without a common identity, the admin API, a write', async () => {
    const ingress = { direction: 'ingress', destination: 'app-b' };
    expect(status(await zg.b!.check(checkRequest({ certificate: cert('clients/forged.pem'), path: '/api/orders', context: ingress })))).toBe('ERR_SVID_UNTRUSTED');
    expect(status(await zg.b!.check(checkRequest({ certificate: cert('zone-a/svid.pem'), path: '/api/orders', context: ingress })))).toBe('ERR_NO_CARRIED_IDENTITY');
    const mint = async (path: string, method = 'GET') => headers(await zg.a!.check(checkRequest({ method, path, context: { direction: 'egress', audience: 'spiffe://zone-b.example' } })))['x-common-identity']!;
    const withToken = async (path: string, method = 'GET') =>
      status(await zg.b!.check(checkRequest({ method, certificate: cert('zone-a/svid.pem'), path, headers: { 'x-common-identity': await mint(path, method) }, context: ingress })));
    expect(await withToken('/admin/users')).toBe('ERR_POLICY_DENIED');
    expect(await withToken('/api/orders', 'POST')).toBe('ERR_POLICY_NO_MATCH');
  });
});

// ---- the single-zone envoy.yaml with envoy/zonegate.yaml, as the README's recipe builds it ----

describe.runIf(run)('the single-zone setup (envoy.yaml, zonegate.yaml)', () => {
  let zg: Started;
  const readme = () => read(ENVOY_DIR, 'README.md');

  beforeAll(async () => {
    const base = mkdtempSync(join(tmpdir(), 'zg-single-'));
    symlinkSync(certs, join(base, 'certs'));
    const cfg = yamlOf('zonegate.yaml');
    delete cfg.server;
    zg = await startWith(cfg, base);
  });
  afterAll(async () => {
    await zg?.close();
  });

  it('`zonegate config validate` accepts it, and it listens where envoy.yaml asks', () => {
    expect(zonegate(['config', 'validate', '--no-files', join(ENVOY_DIR, 'zonegate.yaml')])).toMatchObject({ code: 0, stderr: '' });
    const cluster = (field(field(parseYaml(read(ENVOY_DIR, 'envoy.yaml')), 'static_resources'), 'clusters') as any[]).find((c) => c.name === 'zonegate');
    const sa = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    expect(`${sa.address}:${sa.port_value}`).toBe(`${yamlOf('zonegate.yaml').server.grpc.address}:${yamlOf('zonegate.yaml').server.grpc.port}`);
  });

  it('the README\'s recipe writes every certificate file envoy.yaml reads', () => {
    const files = [...read(ENVOY_DIR, 'envoy.yaml').matchAll(/filename: (\/etc\/envoy\/certs\/[^\s}]+)/g)].map((m) => m[1]!);
    expect(files.sort()).toEqual(['/etc/envoy/certs/federated-roots.pem', '/etc/envoy/certs/svid.key', '/etc/envoy/certs/svid.pem']);
    expect(readme()).toContain('sudo cp envoy/certs/zone-b/svid.pem envoy/certs/zone-b/svid.key /etc/envoy/certs/');
    expect(readme()).toContain('cat envoy/certs/zone-a/bundle.pem envoy/certs/zone-b/bundle.pem | sudo tee /etc/envoy/certs/federated-roots.pem');
  });

  it('decides as the README says: zone A\'s frontend allowed, the forged SVID refused (route context from envoy.yaml)', async () => {
    const [site] = connectionManagers(parseYaml(read(ENVOY_DIR, 'envoy.yaml')));
    const context = (routesOf(site!.hcm)[0]!.perRoute as any).check_settings.context_extensions as Record<string, string>;
    const ask = async (c: string) => {
      const r = await zg.check(checkRequest({ certificate: encodeURIComponent(read(certs, c)), path: '/api/orders', context }));
      if (!r.ok) return `error ${r.error.code}`;
      const st = r.response.status as { code: number; message?: string };
      return st.code === 0 ? 'allow' : String(st.message);
    };
    expect(await ask('zone-a/svid.pem')).toBe('allow');
    expect(await ask('clients/forged.pem')).toBe('ERR_SVID_UNTRUSTED');
    expect(await ask('zone-b/svid.pem')).toBe('ERR_POLICY_NO_MATCH');
  });
});
