/**
 * Building blocks for the real-Envoy suites of several zones: a directory of files swapped
 * atomically the way Kubernetes updates a mounted Secret (so Envoy's `watched_directory` and
 * zonegate's directory watches see one move), file-based SDS secrets, and the pieces of Envoy
 * config every zone repeats. The echo app and the HTTP(S) client are helpers/http.ts.
 */
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

// ---- files swapped atomically ----------------------------------------------------------------

/**
 * A directory whose files are symlinks into `..data`, itself a symlink swapped by one rename: the
 * layout of a Kubernetes Secret volume. A reader sees either every old file or every new one,
 * and a watch on the directory sees one move (`..data`), which is what Envoy's
 * `watched_directory` reloads on.
 */
export class SwappedDir {
  private generation = 0;
  constructor(readonly dir: string) {}

  path(name: string): string {
    return join(this.dir, name);
  }

  /** Replaces the whole set of files at once (the first call creates the layout). */
  write(files: Record<string, string>): void {
    mkdirSync(this.dir, { recursive: true });
    const gen = `..gen_${++this.generation}`;
    mkdirSync(join(this.dir, gen));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(this.dir, gen, name), text);
    symlinkSync(gen, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const name of Object.keys(files)) {
      if (!existsSync(join(this.dir, name))) symlinkSync(join('..data', name), join(this.dir, name));
    }
    if (this.generation > 2) rmSync(join(this.dir, `..gen_${this.generation - 2}`), { recursive: true, force: true });
  }
}

// ---- Envoy config pieces ---------------------------------------------------------------------

const T = 'type.googleapis.com/envoy.extensions';

/** A file-based SDS secret: writes the DiscoveryResponse file and returns the reference to it. */
export function sdsSecret(file: string, secret: Record<string, unknown> & { name: string }): Record<string, unknown> {
  writeFileSync(file, stringify({ resources: [{ '@type': `${T}.transport_sockets.tls.v3.Secret`, ...secret }] }));
  return { name: secret.name, sds_config: { path_config_source: { path: file }, resource_api_version: 'V3' } };
}

/** A certificate pair that Envoy reloads when `dir` (a SwappedDir) is swapped. */
export const watchedCertificate = (dir: SwappedDir) => ({
  certificate_chain: { filename: dir.path('cert.pem') },
  private_key: { filename: dir.path('key.pem') },
  watched_directory: { path: dir.dir },
});

/** Trusted roots that Envoy reloads when `dir` (a SwappedDir holding roots.pem) is swapped. */
export const watchedRoots = (dir: SwappedDir) => ({
  trusted_ca: { filename: dir.path('roots.pem') },
  watched_directory: { path: dir.dir },
});

export const address = (at: number | string) =>
  typeof at === 'number' ? { socket_address: { address: '127.0.0.1', port_value: at } } : { pipe: { path: at } };

/**
 * A STATIC cluster to one endpoint; `h2` for gRPC; `maxConnectionDuration` closes pooled
 * connections after that long (a certificate Envoy reloads is presented on new connections only).
 */
export function cluster(name: string, at: number | string, o: { h2?: boolean; tls?: Record<string, unknown>; maxConnectionDuration?: string } = {}) {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': `${T}.upstreams.http.v3.HttpProtocolOptions`,
        explicit_http_config: o.h2 ? { http2_protocol_options: {} } : { http_protocol_options: {} },
        ...(o.maxConnectionDuration ? { common_http_protocol_options: { max_connection_duration: o.maxConnectionDuration } } : {}),
      },
    },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: address(at) } }] }] },
    ...(o.tls ? { transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': `${T}.transport_sockets.tls.v3.UpstreamTlsContext`, ...o.tls } } } : {}),
  };
}

/**
 * zonegate's ext_authz filter as the project's configs write it: fail closed, 503 on error, the
 * peer certificate, an explicit timeout (generous: the machine running the tests is shared).
 */
export function extAuthzFilter(name: string, clusterName = 'zonegate', extra: Record<string, unknown> = {}) {
  return {
    name,
    typed_config: {
      '@type': `${T}.filters.http.ext_authz.v3.ExtAuthz`,
      transport_api_version: 'V3',
      grpc_service: { envoy_grpc: { cluster_name: clusterName }, timeout: '5s' },
      failure_mode_allow: false,
      status_on_error: { code: 'ServiceUnavailable' },
      include_peer_certificate: true,
      ...extra,
    },
  };
}

export const routerFilter = { name: 'envoy.filters.http.router', typed_config: { '@type': `${T}.filters.http.router.v3.Router` } };

/** The per-route context_extensions of the ext_authz filter named `filter`. */
export const checkContext = (filter: string, context: Record<string, string>) => ({
  [filter]: { '@type': `${T}.filters.http.ext_authz.v3.ExtAuthzPerRoute`, check_settings: { context_extensions: context } },
});

/** A listener with one HTTP connection manager routing every path to `route`. */
export function httpListener(o: {
  name: string;
  at: number | string;
  route: Record<string, unknown>;
  filters: readonly unknown[];
  perFilter?: Record<string, unknown>;
  downstreamTls?: Record<string, unknown>;
}) {
  return {
    name: o.name,
    address: address(o.at),
    filter_chains: [
      {
        ...(o.downstreamTls
          ? { transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': `${T}.transport_sockets.tls.v3.DownstreamTlsContext`, ...o.downstreamTls } } }
          : {}),
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': `${T}.filters.network.http_connection_manager.v3.HttpConnectionManager`,
              stat_prefix: o.name,
              forward_client_cert_details: 'SANITIZE',
              route_config: {
                virtual_hosts: [
                  { name: o.name, domains: ['*'], routes: [{ match: { prefix: '/' }, route: o.route, ...(o.perFilter ? { typed_per_filter_config: o.perFilter } : {}) }] },
                ],
              },
              http_filters: o.filters,
            },
          },
        ],
      },
    ],
  };
}

/** The serial numbers (hex, lower case) of the certificates Envoy's admin /certs reports in use. */
export async function envoyCertSerials(admin: string): Promise<string[]> {
  const j = (await (await fetch(`${admin}/certs`)).json()) as { certificates?: { cert_chain?: { serial_number?: string }[] }[] };
  return (j.certificates ?? []).flatMap((c) => (c.cert_chain ?? []).map((x) => (x.serial_number ?? '').toLowerCase().replace(/^0+/, '') /* as the tests write serials: no leading zeros */));
}
