/**
 * The Envoy-path benchmark's two bootstraps (bench/envoy-configs.ts), as the benchmark writes
 * them, pass `envoy --mode validate` on every pinned Envoy (the benchmark itself never runs in the
 * test suite), a broken one does not, and zonegate's listener is wired as the project recommends.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { envoyA, envoyB, ingressListener, VARIANTS, type ChainFiles } from '../../bench/envoy-configs.js';
import { jwksOf, nativeAuth, writeChainFiles } from '../../bench/envoy-path.js';
import { createPki, type BenchPki } from '../../bench/fixtures.js';
import { envoyMatrix } from '../helpers/envoy.js';
import { connectionManagers, extAuthzProblems } from '../helpers/envoy-config.js';

const matrix = envoyMatrix();
let dir: string;
let pki: BenchPki;
let files: ChainFiles;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'zg-bench-envoy-'));
  pki = await createPki(dir);
  files = await writeChainFiles(dir, pki);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ports = { none: 10001, native: 10002, zonegate: 10003, 'authz-floor': 10005, 'zonegate-h2': 10007 };
const b = (jwtCacheSize = 100) => envoyB(files, { zonegatePort: 10004, floorPort: 10006, zonegateH2Port: 10008, native: nativeAuth(pki, jwtCacheSize) });

function validate(path: string, config: object): { ok: boolean; out: string } {
  const file = join(dir, `validate-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify(config));
  const r = spawnSync(path, ['--mode', 'validate', '-c', file, '-l', 'error'], { encoding: 'utf8', timeout: 60_000 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(matrix.length === 0)('the Envoy-path benchmark configs', () => {
  for (const bin of matrix) {
    it(`Envoy ${bin.version} validates Envoy A and Envoy B (jwt_authn cache on and off)`, () => {
      for (const config of [envoyA(files, ports), b(), b(0)]) {
        const r = validate(bin.path, config);
        expect(r.ok, r.out).toBe(true);
      }
    });

    it(`Envoy ${bin.version} refuses a broken one (the check can fail)`, () => {
      const broken = b();
      const native = broken.static_resources.listeners.find((l) => l.name === ingressListener('native'))!;
      const hcm = native.filter_chains[0]!.filters[0]!.typed_config as { http_filters: { typed_config: Record<string, unknown> }[] };
      hcm.http_filters[1]!.typed_config.rules = { action: 'ALLOW', policies: { p: { permissions: [{ no_such_matcher: true }], principals: [{ any: true }] } } };
      const r = validate(bin.path, broken);
      expect(r.ok).toBe(false);
      expect(r.out).toMatch(/no_such_matcher|unknown field|INVALID_ARGUMENT/i);
    });
  }
});

describe('what the configs say', () => {
  it('Envoy A routes each variant to its Envoy B listener over HTTP/2 + mTLS with the peer SVID', () => {
    const a = envoyA(files, ports);
    for (const v of VARIANTS) {
      const c = a.static_resources.clusters.find((x) => x.name === ingressListener(v))!;
      expect(c.load_assignment.endpoints[0]!.lb_endpoints[0]!.endpoint.address).toEqual({ socket_address: { address: '127.0.0.1', port_value: ports[v] } });
      expect(JSON.stringify(c.transport_socket)).toContain(files.clientChain);
    }
  });

  it("zonegate's listener on Envoy B is wired as the project recommends, and first", () => {
    const bootstrap = b();
    const zonegate = { static_resources: { ...bootstrap.static_resources, listeners: bootstrap.static_resources.listeners.filter((l) => l.name === ingressListener('zonegate')) } };
    expect(extAuthzProblems(zonegate)).toEqual([]);
  });

  it("the authz-floor listener asks the bare Check server with the same ext_authz filter as zonegate's listener", () => {
    const listeners = b().static_resources.listeners;
    const filtersOf = (v: string) => (listeners.find((l) => l.name === ingressListener(v as never))!.filter_chains[0]!.filters[0]!.typed_config as { http_filters: object[] }).http_filters;
    const floor = JSON.stringify(filtersOf('authz-floor'));
    expect(floor).toContain('"cluster_name":"authz-floor"');
    expect(floor.replaceAll('authz-floor', 'zonegate')).toBe(JSON.stringify(filtersOf('zonegate')));
    const cluster = b().static_resources.clusters.find((c) => c.name === 'authz-floor')!;
    expect(cluster.load_assignment.endpoints[0]!.lb_endpoints[0]!.endpoint.address).toEqual({ socket_address: { address: '127.0.0.1', port_value: 10006 } });
  });

  it('the native listener verifies the token with the SVID key and allows the peer by its SPIFFE ID only', () => {
    const [site] = connectionManagers(b()).filter((s) => s.listener === ingressListener('native'));
    const filters = (site!.hcm.http_filters as { name: string; typed_config: any }[]).map((f) => f.name);
    expect(filters).toEqual(['envoy.filters.http.jwt_authn', 'envoy.filters.http.rbac', 'envoy.filters.http.router']);
    const jwt = (site!.hcm.http_filters as { typed_config: any }[])[0]!.typed_config.providers['common-identity'];
    expect(JSON.parse(jwt.local_jwks.inline_string)).toEqual(jwksOf(pki.svids.ES256.keyPem));
    expect(jwt.jwt_cache_config).toEqual({ jwt_cache_size: 100 });
    const off = (connectionManagers(b(0)).find((s) => s.listener === ingressListener('native'))!.hcm.http_filters as { typed_config: any }[])[0]!.typed_config;
    expect(off.providers['common-identity']).not.toHaveProperty('jwt_cache_config');
    const rbac = (site!.hcm.http_filters as { typed_config: any }[])[1]!.typed_config.rules;
    expect(rbac.action).toBe('ALLOW');
    expect(Object.values(rbac.policies).flatMap((p: any) => p.principals)).toEqual([{ authenticated: { principal_name: { exact: pki.svids.ES256.id.value } } }]);
  });
});
