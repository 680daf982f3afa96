/**
 * Every Envoy config under envoy/ parses strictly as envoy.config.bootstrap.v3.Bootstrap against
 * Envoy's own protos (unknown fields and enum values rejected, every typed_config Any resolved)
 * and wires ext_authz the way zonegate's safety needs. The inline documents prove that the
 * checks can fail.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { connectionManagers, envoyRegistry, extAuthzProblems, field, parseBootstrap, parseYaml } from '../helpers/envoy-config.js';

const ENVOY_DIR = join(PACKAGE_ROOT, 'envoy');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'certs' ? [] : yamlFiles(p);
    return /\.ya?ml$/.test(name) ? [p] : [];
  });
}

/** Envoy bootstraps: every YAML under envoy/ except the compose file and zonegate's configs. */
export const ENVOY_CONFIGS = yamlFiles(ENVOY_DIR)
  .filter((p) => !/(^|\/)(docker-compose|zonegate)\.ya?ml$/.test(p))
  .map((p) => relative(PACKAGE_ROOT, p))
  .sort();

const MINIMAL = `
static_resources:
  listeners:
    - name: ingress
      address: { socket_address: { address: 0.0.0.0, port_value: 10000 } }
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: ingress
                route_config:
                  virtual_hosts:
                    - name: app
                      domains: ["*"]
                      routes:
                        - match: { prefix: / }
                          route: { cluster: zonegate }
                          typed_per_filter_config:
                            envoy.filters.http.ext_authz:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                              check_settings: { context_extensions: { direction: ingress } }
                http_filters:
                  - name: envoy.filters.http.ext_authz
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
                      transport_api_version: V3
                      grpc_service: { envoy_grpc: { cluster_name: zonegate }, timeout: 0.25s }
                      failure_mode_allow: false
                      status_on_error: { code: ServiceUnavailable }
                      include_peer_certificate: true
                      validate_mutations: true
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: zonegate
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config: { http2_protocol_options: {} }
`;

/** MINIMAL with one textual substitution (which must apply); `null` drops the whole line. */
function variant(from: string, to: string | null): string {
  expect(MINIMAL).toContain(from);
  if (to !== null) return MINIMAL.replace(from, to);
  return MINIMAL.split('\n').filter((line) => !line.includes(from)).join('\n');
}

beforeAll(() => {
  envoyRegistry(); // buf build of the descriptor set, once for this file
}, 60_000);

describe('the strict Bootstrap parser', () => {
  it('accepts a minimal correct bootstrap, with no ext_authz problem', () => {
    const doc = parseYaml(MINIMAL);
    expect(() => parseBootstrap(doc)).not.toThrow();
    expect(extAuthzProblems(doc)).toEqual([]);
  });

  it.each([
    ['a misspelled field inside a typed_config', 'include_peer_certificate: true', 'include_peer_certificates: true', /include_peer_certificates/],
    ['a misspelled top-level field', 'static_resources:', 'static_resource:', /static_resource/],
    ['an unknown Any type', 'filters.http.router.v3.Router', 'filters.http.routr.v3.Router', /routr/],
    ['a field of another message in an Any', 'envoy.extensions.filters.http.router.v3.Router\n', 'envoy.extensions.filters.http.router.v3.Router\n                      failure_mode_allow: false\n', /failure_mode_allow/],
    ['an unknown enum value', 'transport_api_version: V3', 'transport_api_version: V4', /V4/],
    ['a malformed duration', 'timeout: 0.25s', 'timeout: 250ms', /250ms|duration/i],
    ['a string where a message belongs', 'status_on_error: { code: ServiceUnavailable }', 'status_on_error: ServiceUnavailable', /status_on_error|statusOnError|HttpStatus/],
  ])('rejects %s', (_what, from, to, message) => {
    expect(() => parseBootstrap(parseYaml(variant(from, to)))).toThrow(message);
  });

  it.each([
    ['an empty cluster name (min_len)', 'cluster_name: zonegate }', 'cluster_name: "" }', /cluster_name: must be at least 1/],
    ['a missing stat_prefix (min_len)', 'stat_prefix: ingress', null, /stat_prefix: must be at least 1/],
    ['a route without an action (required oneof)', 'route: { cluster: zonegate }', null, /one of route, redirect/],
    ['a listener filter chain without filters\' names', '- name: envoy.filters.http.router', '- name: ""', /name: must be at least 1/],
  ])('rejects what Envoy\'s validate rules reject: %s', (_what, from, to, message) => {
    expect(() => parseBootstrap(parseYaml(variant(from, to)))).toThrow(message);
  });

  it('rejects a duplicate key (YAML)', () => {
    expect(() => parseYaml(variant('failure_mode_allow: false', 'failure_mode_allow: false\n                      failure_mode_allow: true'))).toThrow(/unique|duplicate/i);
  });

  it.each([
    ['fails open', 'failure_mode_allow: false', 'failure_mode_allow: true', /failure_mode_allow/],
    ['leaves failure_mode_allow implicit', 'failure_mode_allow: false', null, /failure_mode_allow/],
    ['answers an outage with 403', 'code: ServiceUnavailable', 'code: Forbidden', /403/],
    ['has no status_on_error', 'status_on_error: { code: ServiceUnavailable }', null, /status_on_error/],
    ['drops the peer certificate', 'include_peer_certificate: true', 'include_peer_certificate: false', /include_peer_certificate/],
    ['passes invalid header mutations on', 'validate_mutations: true', null, /validate_mutations/],
    ['uses the transport default', 'transport_api_version: V3', null, /V3/],
    ['has no explicit timeout', ', timeout: 0.25s', '', /timeout/],
    ['has a route without context_extensions', 'check_settings: { context_extensions: { direction: ingress } }', 'check_settings: {}', /direction/],
    ['disables ext_authz on a route', 'check_settings: { context_extensions: { direction: ingress } }', 'disabled: true', /disabled/],
    ['runs the router first', '- name: envoy.filters.http.ext_authz\n', '- name: envoy.filters.http.ext_authz_later\n', /first/],
    ['points at a cluster without HTTP/2', 'explicit_http_config: { http2_protocol_options: {} }', 'explicit_http_config: { http_protocol_options: {} }', /HTTP\/2/],
  ])('flags a config that %s', (_what, from, to, problem) => {
    const doc = parseYaml(variant(from, to));
    expect(extAuthzProblems(doc).join('\n')).toMatch(problem);
  });
});

describe('the Envoy configs shipped under envoy/', () => {
  it('are found: the single-zone sketch and both zones of the compose setup', () => {
    expect(ENVOY_CONFIGS).toEqual(['envoy/envoy.yaml', 'envoy/zone-a/envoy.yaml', 'envoy/zone-b/envoy.yaml']);
  });

  it.each(ENVOY_CONFIGS)('%s parses strictly as envoy.config.bootstrap.v3.Bootstrap', (file) => {
    expect(() => parseBootstrap(parseYaml(readFileSync(join(PACKAGE_ROOT, file), 'utf8')))).not.toThrow();
  });

  it.each(ENVOY_CONFIGS)('%s wires ext_authz fail-closed on every listener and route', (file) => {
    expect(extAuthzProblems(parseYaml(readFileSync(join(PACKAGE_ROOT, file), 'utf8')))).toEqual([]);
  });
});

/**
 * Envoy's path normalization on every HTTP connection manager: zonegate decides on the path the
 * upstream will act on only if the proxy hands both the same one (docs/policy.md "Paths").
 */
function normalizationProblems(bootstrap: unknown): string[] {
  const problems: string[] = [];
  for (const { listener, hcm } of connectionManagers(bootstrap)) {
    if (field(hcm, 'normalize_path') !== true) problems.push(`listener ${listener}: normalize_path is not true`);
    if (field(hcm, 'merge_slashes') !== true) problems.push(`listener ${listener}: merge_slashes is not true`);
    const escaped = field(hcm, 'path_with_escaped_slashes_action');
    if (escaped !== 'REJECT_REQUEST' && escaped !== 'UNESCAPE_AND_REDIRECT')
      problems.push(`listener ${listener}: path_with_escaped_slashes_action is ${String(escaped)}, not REJECT_REQUEST or UNESCAPE_AND_REDIRECT`);
  }
  return problems;
}

/** Every shipped Envoy config: envoy/ and the guides' (docs/integrations/**). */
const GUIDE_ENVOY_CONFIGS = yamlFiles(join(PACKAGE_ROOT, 'docs', 'integrations'))
  .filter((p) => readFileSync(p, 'utf8').includes('HttpConnectionManager'))
  .map((p) => relative(PACKAGE_ROOT, p));

describe('path normalization in the shipped Envoy configs', () => {
  const NORMALIZED = MINIMAL.replace('stat_prefix: ingress\n', 'stat_prefix: ingress\n                normalize_path: true\n                merge_slashes: true\n                path_with_escaped_slashes_action: REJECT_REQUEST\n');

  it('the check accepts a normalizing manager and flags each missing setting', () => {
    expect(NORMALIZED).not.toBe(MINIMAL);
    expect(normalizationProblems(parseYaml(NORMALIZED))).toEqual([]);
    expect(() => parseBootstrap(parseYaml(NORMALIZED))).not.toThrow();
    expect(normalizationProblems(parseYaml(MINIMAL))).toHaveLength(3);
    expect(normalizationProblems(parseYaml(NORMALIZED.replace('merge_slashes: true', 'merge_slashes: false')))).toEqual(['listener ingress: merge_slashes is not true']);
    expect(normalizationProblems(parseYaml(NORMALIZED.replace('REJECT_REQUEST', 'KEEP_UNCHANGED'))).join()).toMatch(/KEEP_UNCHANGED/);
  });

  it('finds the guides\' Envoy configs', () => {
    expect(GUIDE_ENVOY_CONFIGS).toContain('docs/integrations/consul/edge-envoy.yaml');
  });

  it.each([...ENVOY_CONFIGS, ...GUIDE_ENVOY_CONFIGS])('%s normalizes paths on every HTTP connection manager', (file) => {
    const doc = parseYaml(readFileSync(join(PACKAGE_ROOT, file), 'utf8'));
    expect(connectionManagers(doc).length).toBeGreaterThan(0);
    expect(normalizationProblems(doc)).toEqual([]);
  });
});
