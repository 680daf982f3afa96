/**
 * Building blocks for the suites that put zonegate behind a real Envoy: the bootstrap pieces
 * (an mTLS listener with ext_authz, clusters for zonegate and the app, both gRPC clients) and
 * an HTTPS request with a client certificate (helpers/http.ts's call). Config objects are
 * Envoy's proto3 JSON, handed to startEnvoy() in envoy.ts.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../src/config/schema.js';
import type { AuthRequest } from '../../src/request/types.js';
import { createRewriter } from '../../src/rewrite/index.js';
import { identityNames } from '../../src/rewrite/identity.js';
import type { Issued, MemoryCA } from '../../src/demo/pki.js';
import { call, type Reply } from './http.js';

const T = (t: string) => `type.googleapis.com/${t}`;

/** An ext_authz gRPC service: Envoy's own client through a cluster, or the Google C-core client. */
export type GrpcService = { envoy_grpc: { cluster_name: string; authority?: string } } | { google_grpc: Record<string, unknown> };

/** TLS material for a listener or a client, as file paths. */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** Writes PEM text into `dir` and returns the path. */
export function writePem(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/**
 * A TLS server certificate for loopback (DNS localhost and IP 127.0.0.1, as both of Envoy's gRPC
 * clients and node's https check), issued by `ca`; optionally also carrying a SPIFFE ID.
 */
export async function loopbackServerCert(ca: MemoryCA, id?: string): Promise<Issued> {
  const names: x509.JsonGeneralName[] = [
    ...(id ? [{ type: 'url' as const, value: id }] : []),
    { type: 'dns', value: 'localhost' },
    { type: 'ip', value: '127.0.0.1' },
  ];
  return ca.issue(undefined, {
    keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    extensions: [new x509.SubjectAlternativeNameExtension(names, false), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth])],
  });
}

/** Envoy's ext_authz filter as the project recommends it, around `service`. */
export function extAuthzFilter(service: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    name: 'envoy.filters.http.ext_authz',
    typed_config: {
      '@type': T('envoy.extensions.filters.http.ext_authz.v3.ExtAuthz'),
      transport_api_version: 'V3',
      ...service,
      failure_mode_allow: false,
      status_on_error: { code: 'ServiceUnavailable' },
      include_peer_certificate: true,
      validate_mutations: true,
      ...extra,
    },
  };
}

/** The `grpc_service` part of ext_authz: `timeout` in seconds (Envoy's default is 0.2). */
export function grpcService(service: GrpcService, timeout = 1) {
  return { grpc_service: { ...service, timeout: `${timeout}s` } };
}

/** Envoy's gRPC client through the cluster `cluster`. */
export const envoyGrpc = (cluster: string): GrpcService => ({ envoy_grpc: { cluster_name: cluster } });

/** The Google C-core client to `target` (host:port or unix:PATH), plaintext or with TLS credentials. */
export function googleGrpc(target: string, tls?: { ca: string; cert?: string; key?: string }): GrpcService {
  return {
    google_grpc: {
      target_uri: target,
      stat_prefix: 'zonegate_google',
      ...(tls
        ? {
            channel_credentials: {
              ssl_credentials: {
                root_certs: { filename: tls.ca },
                ...(tls.cert ? { cert_chain: { filename: tls.cert }, private_key: { filename: tls.key! } } : {}),
              },
            },
          }
        : {}),
    },
  };
}

/** Downstream TLS: Envoy's server certificate, the roots it accepts, and how strict it is. */
export function downstreamTls(files: TlsFiles, o: { require?: boolean; allowExpired?: boolean } = {}) {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': T('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext'),
      require_client_certificate: o.require ?? true,
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { filename: files.cert }, private_key: { filename: files.key } }],
        validation_context: { trusted_ca: { filename: files.ca }, ...(o.allowExpired ? { allow_expired_certificate: true } : {}) },
      },
    },
  };
}

export interface RouteOptions {
  /** context_extensions for the route (per-route ext_authz config). */
  readonly context?: Record<string, string>;
  readonly prefix?: string;
}

/** An HTTP listener on 127.0.0.1:0 routing everything to `cluster` through `filters` (router added). */
export function httpListener(name: string, o: { tls?: object; filters: object[]; cluster: string; routes?: RouteOptions[]; hcm?: Record<string, unknown> }) {
  const routes = (o.routes ?? [{}]).map((r) => ({
    match: { prefix: r.prefix ?? '/' },
    route: { cluster: o.cluster },
    ...(r.context
      ? {
          typed_per_filter_config: {
            'envoy.filters.http.ext_authz': {
              '@type': T('envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute'),
              check_settings: { context_extensions: r.context },
            },
          },
        }
      : {}),
  }));
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        ...(o.tls ? { transport_socket: o.tls } : {}),
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': T('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
              stat_prefix: name,
              route_config: { name, virtual_hosts: [{ name: 'all', domains: ['*'], routes }] },
              http_filters: [...o.filters, { name: 'envoy.filters.http.router', typed_config: { '@type': T('envoy.extensions.filters.http.router.v3.Router') } }],
              ...o.hcm,
            },
          },
        ],
      },
    ],
  };
}

export interface ClusterOptions {
  /** HTTP/2 to the endpoint (gRPC). */
  readonly http2?: boolean;
  /** Upstream TLS: the CA to verify the server (SAN DNS localhost), and a client certificate for mTLS. */
  readonly tls?: { ca: string; cert?: string; key?: string };
  readonly connectTimeout?: string;
}

/** A static cluster to 127.0.0.1:`port`, or to a Unix socket `{ pipe }`. */
export function cluster(name: string, to: number | { pipe: string }, o: ClusterOptions = {}) {
  const address = typeof to === 'number' ? { socket_address: { address: '127.0.0.1', port_value: to } } : { pipe: { path: to.pipe } };
  return {
    name,
    type: 'STATIC',
    connect_timeout: o.connectTimeout ?? '1s',
    ...(o.http2
      ? {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': T('envoy.extensions.upstreams.http.v3.HttpProtocolOptions'),
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        }
      : {}),
    ...(o.tls
      ? {
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': T('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext'),
              sni: 'localhost',
              common_tls_context: {
                ...(o.tls.cert ? { tls_certificates: [{ certificate_chain: { filename: o.tls.cert }, private_key: { filename: o.tls.key! } }] } : {}),
                validation_context: {
                  trusted_ca: { filename: o.tls.ca },
                  match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'localhost' } }],
                },
              },
            },
          },
        }
      : {}),
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
  };
}

export interface SendOptions {
  /** The client certificate (chain) and key; none for a client without one. */
  readonly client?: { chainPem: string; keyPem: string } | undefined;
  /** Roots to verify Envoy's certificate. */
  readonly ca: string;
  readonly path?: string;
  readonly method?: string;
  /** Header values; an array sends the header once per value. */
  readonly headers?: Record<string, string | string[]>;
}

/** One HTTPS request to Envoy on 127.0.0.1:`port` over a fresh connection (helpers/http.ts's call, with this suite's defaults). */
export function send(port: number, o: SendOptions): Promise<Reply> {
  const tls = { ca: o.ca, ...(o.client ? { cert: o.client.chainPem, key: o.client.keyPem } : {}) };
  return call({ to: port, method: o.method ?? 'GET', path: o.path ?? '/api/items', headers: o.headers ?? {}, tls });
}

/**
 * Every header zonegate sets for the upstream or guards against clients under `config`, asked of
 * the rewrite phase itself (not listed by hand): the configured identity header names, and what an
 * ingress allow sets and removes (guard list, carried token header, the headers of the jwt, hmac
 * and basic modes when a destination uses them).
 */
export function controlledHeaders(config: Config): string[] {
  const rewriter = createRewriter(config, { carriedHeader: config.commonIdentity?.header });
  const names = new Set(identityNames(config.upstream.headers));
  const req = { id: 'probe', method: 'GET', path: '/', query: '', host: 'probe', contextExtensions: new Map<string, string>() } as unknown as AuthRequest;
  const r = rewriter.apply({ req, direction: 'ingress', peer: { principal: 'spiffe://probe.test/p', trustDomain: 'probe.test', verified: true, source: 'certificate' }, now: Date.now() });
  if (!r.ok) throw new Error(`controlledHeaders: the rewrite refused the probe: ${r.message}`);
  for (const n of [...r.set.map((h) => h.name), ...r.remove]) names.add(n);
  return [...names].sort();
}
