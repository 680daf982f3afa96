/**
 * Building blocks for the suites that put zonegate behind a real Envoy: the bootstrap pieces
 * (an mTLS listener with ext_authz, clusters for zonegate and the app, both gRPC clients), an
 * echo upstream that returns every header it received (repeats kept, in order), and an HTTPS
 * client with a client certificate. Config objects are Envoy's proto3 JSON, handed to
 * startEnvoy() in envoy.ts.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Config } from '../../src/config/schema.js';
import type { AuthRequest } from '../../src/pipeline/types.js';
import { createRewriter } from '../../src/rewrite/index.js';
import { identityNames } from '../../src/rewrite/identity.js';
import type { Issued, MemoryCA } from '../../src/demo/pki.js';

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

/** What the echo upstream saw of one request. */
export interface Seen {
  readonly method: string;
  readonly url: string;
  /** Every header line as received: lower-case name and value, in order, repeats kept. */
  readonly headers: readonly [string, string][];
}

/** Every value the upstream received for `name`, in order. */
export const valuesOf = (seen: Seen, name: string): string[] => seen.headers.filter(([n]) => n === name).map(([, v]) => v);

export interface EchoUpstream {
  readonly port: number;
  /** How many requests reached it. */
  readonly count: () => number;
  /** The last request it received. */
  readonly last: () => Seen | undefined;
  close(): Promise<void>;
}

/** A node:http server answering 200 with the request it received as JSON (a `Seen`). */
export async function echoUpstream(): Promise<EchoUpstream> {
  let n = 0;
  let last: Seen | undefined;
  const server: Server = createServer((req, res) => {
    n++;
    req.resume();
    const headers: [string, string][] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i]!.toLowerCase(), req.rawHeaders[i + 1]!]);
    const seen: Seen = { method: req.method ?? '', url: req.url ?? '', headers };
    last = seen;
    res.writeHead(200, { 'content-type': 'application/json', 'x-echo': 'upstream' }).end(JSON.stringify(seen));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    count: () => n,
    last: () => last,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** The zonegate reason header, when there is one. */
  readonly reason?: string;
  /** What the echo upstream received (present only when the request reached it). */
  readonly seen?: Seen;
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

/** One HTTPS request to Envoy on 127.0.0.1:`port` over a fresh connection. */
export function send(port: number, o: SendOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method: o.method ?? 'GET',
        path: o.path ?? '/api/items',
        headers: o.headers ?? {},
        ca: o.ca,
        servername: 'localhost',
        agent: false,
        ...(o.client ? { cert: o.client.chainPem, key: o.client.keyPem } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          const reason = res.headers['x-zonegate-reason'];
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            ...(typeof reason === 'string' ? { reason } : {}),
            ...(res.headers['x-echo'] === 'upstream' ? { seen: JSON.parse(body) as Seen } : {}),
          });
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('no answer from Envoy in 10 s')));
    req.on('error', reject);
    req.end();
  });
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
