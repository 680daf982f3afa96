/**
 * Envoy configuration checks: strict proto3 JSON parsing against Envoy's own protos (unknown
 * fields rejected, every Any resolved), and the ext_authz semantics zonegate's safety rests on.
 * The descriptor set is built once per test file by scripts/envoy-descriptor.mjs with buf.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileRegistry, fromBinary, fromJson, type FileRegistry, type JsonValue } from '@bufbuild/protobuf';
import { reflect } from '@bufbuild/protobuf/reflect';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { parse } from 'yaml';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { pgvProblems } from './envoy-pgv.js';

export const EXT_AUTHZ = 'envoy.filters.http.ext_authz';
export const EXT_AUTHZ_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
const PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';
const HCM = 'envoy.filters.network.http_connection_manager';

let registry: FileRegistry | undefined;

/** Envoy's bootstrap API and the extensions the shipped configs use, as a protobuf registry. */
export function envoyRegistry(): FileRegistry {
  if (registry) return registry;
  const dir = mkdtempSync(join(tmpdir(), 'zg-envoy-desc-'));
  try {
    const out = join(dir, 'envoy.binpb');
    execFileSync(process.execPath, [join(PACKAGE_ROOT, 'scripts/envoy-descriptor.mjs'), out], { stdio: 'pipe' });
    registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(out)));
    return registry;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** YAML as Envoy reads it: one document, duplicate keys refused. */
export function parseYaml(text: string): JsonValue {
  return parse(text, { uniqueKeys: true }) as JsonValue;
}

/**
 * Parses proto3 JSON strictly as `typeName`, as Envoy loads a config: throws on any unknown
 * field, enum value or Any type, and on what Envoy's validate rules reject (a required field
 * left out, an empty name). With `partial`, only the first: for fragments merged into a config.
 */
export function parseStrict(typeName: string, json: JsonValue, opts: { partial?: boolean } = {}): void {
  const reg = envoyRegistry();
  const schema = reg.getMessage(typeName);
  if (!schema) throw new Error(`${typeName} is not in the Envoy descriptor set`);
  const msg = fromJson(schema, json, { registry: reg, ignoreUnknownFields: false });
  // A partial message (an Istio MERGE patch) completes something generated: no required fields.
  if (opts.partial) return;
  const problems = pgvProblems(reflect(schema, msg), reg);
  if (problems.length > 0) throw new Error(`${typeName}: ${problems.join('; ')}`);
}

export const parseBootstrap = (json: JsonValue): void => parseStrict('envoy.config.bootstrap.v3.Bootstrap', json);

// ---- semantics --------------------------------------------------------------------------------

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
/** A field by its proto name or its JSON name (proto3 JSON accepts both). */
export function field(o: unknown, name: string): unknown {
  if (!isObj(o)) return undefined;
  return o[name] ?? o[camel(name)];
}
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const DURATION = /^(\d+)(\.\d{1,9})?s$/;

/** Seconds of a proto3 JSON Duration ("0.25s"), or undefined. */
export function seconds(v: unknown): number | undefined {
  return typeof v === 'string' && DURATION.test(v) ? Number(v.slice(0, -1)) : undefined;
}

export interface HcmSite {
  readonly listener: string;
  readonly listenerObj: Obj;
  readonly chain: Obj;
  readonly hcm: Obj;
}

/** Every HTTP connection manager of every listener, with where it sits. */
export function connectionManagers(bootstrap: unknown): HcmSite[] {
  const out: HcmSite[] = [];
  for (const l of list(field(field(bootstrap, 'static_resources'), 'listeners'))) {
    for (const chain of list(field(l, 'filter_chains'))) {
      for (const f of list(field(chain, 'filters'))) {
        if (field(f, 'name') === HCM && isObj(chain) && isObj(l)) out.push({ listener: String(field(l, 'name')), listenerObj: l, chain, hcm: field(f, 'typed_config') as Obj });
      }
    }
  }
  return out;
}

/** The ext_authz filter config of an HTTP connection manager, if any. */
export function extAuthzOf(hcm: Obj): Obj | undefined {
  const f = list(field(hcm, 'http_filters')).find((x) => field(x, 'name') === EXT_AUTHZ);
  return f ? (field(f, 'typed_config') as Obj) : undefined;
}

/**
 * Every ext_authz filter of an HTTP connection manager, by filter name: the one named
 * envoy.filters.http.ext_authz and any other whose typed_config is an ExtAuthz (a listener that
 * asks zonegate twice, as the Consul edge does, names the second one differently).
 */
export function extAuthzFilters(hcm: Obj): { name: string; config: Obj }[] {
  return list(field(hcm, 'http_filters'))
    .filter((x) => field(x, 'name') === EXT_AUTHZ || field(field(x, 'typed_config'), '@type') === EXT_AUTHZ_TYPE)
    .map((x) => ({ name: String(field(x, 'name')), config: (field(x, 'typed_config') ?? {}) as Obj }));
}

export interface Route {
  readonly vhost: string;
  readonly route: Obj;
  readonly perRoute: Obj | undefined;
}

/** The routes of an HTTP connection manager, each with its per-route config for `filter`. */
export function routesOf(hcm: Obj, filter = EXT_AUTHZ): Route[] {
  const out: Route[] = [];
  for (const vh of list(field(field(hcm, 'route_config'), 'virtual_hosts'))) {
    for (const r of list(field(vh, 'routes'))) {
      const per = field(field(r, 'typed_per_filter_config'), filter);
      if (isObj(r)) out.push({ vhost: String(field(vh, 'name')), route: r, perRoute: isObj(per) ? per : undefined });
    }
  }
  return out;
}

/**
 * What is wrong with the ext_authz wiring of a bootstrap, as messages (empty: nothing). Every
 * listener asks zonegate before its router; every ext_authz filter (a listener may have two) with
 * V3, the peer certificate, an explicit timeout, fail-closed, mutations validated, and a
 * status_on_error other than 403; every route names its direction for each of them.
 */
export function extAuthzProblems(bootstrap: unknown): string[] {
  const problems: string[] = [];
  const clusters = new Map<string, Obj>();
  for (const c of list(field(field(bootstrap, 'static_resources'), 'clusters'))) if (isObj(c)) clusters.set(String(field(c, 'name')), c);
  const sites = connectionManagers(bootstrap);
  if (sites.length === 0) problems.push('no HTTP connection manager');
  for (const { listener, hcm } of sites) {
    const at = `listener ${listener}`;
    const names = list(field(hcm, 'http_filters')).map((f) => field(f, 'name'));
    if (names[0] !== EXT_AUTHZ) problems.push(`${at}: ext_authz is not the first HTTP filter (${names.join(', ')})`);
    if (names[names.length - 1] !== 'envoy.filters.http.router') problems.push(`${at}: the router is not the last HTTP filter`);
    for (const { name, config: ea } of extAuthzFilters(hcm)) problems.push(...filterProblems(name === EXT_AUTHZ ? at : `${at}, filter ${name}`, name, ea, hcm, clusters));
  }
  return problems;
}

/** What is wrong with one ext_authz filter of a connection manager and its routes' settings for it. */
function filterProblems(at: string, name: string, ea: Obj, hcm: Obj, clusters: Map<string, Obj>): string[] {
  const problems: string[] = [];
  if (field(ea, '@type') !== EXT_AUTHZ_TYPE) problems.push(`${at}: ext_authz typed_config is not ${EXT_AUTHZ_TYPE}`);
  if (field(ea, 'transport_api_version') !== 'V3') problems.push(`${at}: transport_api_version is not V3`);
  if (field(ea, 'include_peer_certificate') !== true) problems.push(`${at}: include_peer_certificate is not true`);
  if (field(ea, 'failure_mode_allow') !== false) problems.push(`${at}: failure_mode_allow is not explicitly false`);
  if (field(ea, 'validate_mutations') !== true) problems.push(`${at}: validate_mutations is not true (invalid header values would pass on)`);
  const status = field(field(ea, 'status_on_error'), 'code');
  if (status === undefined) problems.push(`${at}: status_on_error is not set (the default 403 makes an outage look like a deny)`);
  else if (status === 'Forbidden' || status === 403) problems.push(`${at}: status_on_error is 403, the same as a deny`);
  const grpc = field(ea, 'grpc_service');
  const timeout = seconds(field(grpc, 'timeout'));
  if (timeout === undefined || timeout <= 0) problems.push(`${at}: grpc_service.timeout is not an explicit duration`);
  else if (timeout > 5) problems.push(`${at}: grpc_service.timeout ${timeout}s is longer than a request should wait`);
  const clusterName = field(field(grpc, 'envoy_grpc'), 'cluster_name');
  const cluster = typeof clusterName === 'string' ? clusters.get(clusterName) : undefined;
  if (!cluster) problems.push(`${at}: ext_authz names no defined cluster (${String(clusterName)})`);
  else {
    const opts = field(field(cluster, 'typed_extension_protocol_options'), 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions');
    if (field(field(opts, 'explicit_http_config'), 'http2_protocol_options') === undefined) problems.push(`${at}: cluster ${String(clusterName)} does not speak HTTP/2 (gRPC)`);
  }
  const routes = routesOf(hcm, name);
  if (routes.length === 0) problems.push(`${at}: no routes`);
  for (const { vhost, route, perRoute } of routes) {
    const where = `${at}, virtual host ${vhost}, route ${JSON.stringify(field(route, 'match'))}`;
    if (!perRoute) {
      problems.push(`${where}: no ext_authz per-route config (context_extensions)`);
      continue;
    }
    if (field(perRoute, '@type') !== PER_ROUTE_TYPE) problems.push(`${where}: per-route config is not ${PER_ROUTE_TYPE}`);
    if (field(perRoute, 'disabled') === true) problems.push(`${where}: ext_authz is disabled`);
    const dir = field(field(field(perRoute, 'check_settings'), 'context_extensions'), 'direction');
    if (dir !== 'ingress' && dir !== 'egress') problems.push(`${where}: context_extensions.direction is not ingress or egress`);
  }
  return problems;
}
