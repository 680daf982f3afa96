/**
 * The bootstrap of the demo's Envoys, one per zone, when an Envoy binary is found: ingress with
 * mTLS and ext_authz to the zone's zonegate, egress where the zone's app calls out. launchEnvoy
 * (envoy-binary.ts) runs them, under a watchdog that ends each with the demo however it ends.
 */
import { join } from 'node:path';
import type { PreparedZone } from './setup.js';
import { DEMO_ADDRESS, type Zone } from './zones.js';

const TLS = 'envoy.transport_sockets.tls';
const tlsType = (t: string) => `type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.${t}`;
const socket = (port: number) => ({ socket_address: { address: DEMO_ADDRESS, port_value: port } });
const staticCluster = (name: string, port: number, extra: object = {}) => ({
  name,
  type: 'STATIC',
  connect_timeout: '1s',
  load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(port) } }] }] },
  ...extra,
});

/** The ext_authz filter both listeners use: fail closed, an outage answered 503 (not a deny's 403). */
const extAuthz = {
  name: 'envoy.filters.http.ext_authz',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
    transport_api_version: 'V3',
    // generous for a demo on a busy laptop; production configs say 0.25–0.5 s (envoy/README.md)
    grpc_service: { envoy_grpc: { cluster_name: 'zonegate' }, timeout: '2s' },
    failure_mode_allow: false,
    status_on_error: { code: 'ServiceUnavailable' },
    include_peer_certificate: true,
  },
};
const router = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

function httpManager(prefix: string, route: object, context: Record<string, string>, extra: object = {}) {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      stat_prefix: prefix,
      // Decide on the path the app acts on: Envoy normalizes as zonegate does (docs/policy.md).
      normalize_path: true,
      merge_slashes: true,
      path_with_escaped_slashes_action: 'REJECT_REQUEST',
      ...extra,
      route_config: {
        virtual_hosts: [
          {
            name: prefix,
            domains: ['*'],
            routes: [
              {
                match: { prefix: '/' },
                route,
                typed_per_filter_config: {
                  'envoy.filters.http.ext_authz': {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
                    check_settings: { context_extensions: context },
                  },
                },
              },
            ],
          },
        ],
      },
      http_filters: [extAuthz, router],
    },
  };
}

/** The zone's SVID, the certificate its Envoy presents on both sides. */
const svid = (z: PreparedZone) => ({ certificate_chain: { filename: join(z.files.dir, 'svid.pem') }, private_key: { filename: join(z.files.dir, 'svid.key') } });

/**
 * The bootstrap of `self`'s Envoy. Ingress: mTLS requiring a client certificate whose chain Envoy
 * leaves to zonegate (ACCEPT_UNTRUSTED: zonegate verifies it against the bundle of the caller's
 * own trust domain, live), every route through ext_authz. `clientRoots` (both zones' roots) is
 * there for one reason: without a trusted_ca Envoy never demands a certificate, whatever
 * require_client_certificate says, and a caller without one would reach ext_authz. Egress: the
 * app's plain HTTP, ext_authz direction egress (zonegate mints the common identity for the other
 * zone), then mTLS with the zone's SVID to the other zone's ingress, whose certificate must be a
 * SPIFFE ID of the other trust domain, chained to its root.
 */
export function envoyBootstrap(self: PreparedZone, other: Zone, appPort: number, otherHost: string, clientRoots: string): object {
  const z = self.zone;
  return {
    node: { id: `demo-envoy-${z.key}`, cluster: z.zone },
    static_resources: {
      listeners: [
        {
          name: 'ingress',
          address: socket(z.ports.ingress),
          filter_chains: [
            {
              transport_socket: {
                name: TLS,
                typed_config: {
                  '@type': tlsType('DownstreamTlsContext'),
                  require_client_certificate: true,
                  common_tls_context: {
                    tls_certificates: [svid(self)],
                    validation_context: { trusted_ca: { filename: clientRoots }, trust_chain_verification: 'ACCEPT_UNTRUSTED' },
                  },
                },
              },
              filters: [httpManager('ingress', { cluster: 'app' }, { direction: 'ingress' }, { forward_client_cert_details: 'SANITIZE' })],
            },
          ],
        },
        {
          name: 'egress',
          address: socket(z.ports.egress),
          filter_chains: [
            {
              filters: [
                httpManager('egress', { cluster: 'other_zone', host_rewrite_literal: otherHost }, { direction: 'egress', audience: `spiffe://${other.trustDomain}` }),
              ],
            },
          ],
        },
      ],
      clusters: [
        staticCluster('app', appPort),
        staticCluster('zonegate', z.ports.grpc, {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        }),
        staticCluster('other_zone', other.ports.ingress, {
          transport_socket: {
            name: TLS,
            typed_config: {
              '@type': tlsType('UpstreamTlsContext'),
              common_tls_context: {
                tls_certificates: [svid(self)],
                validation_context: {
                  custom_validator_config: {
                    name: 'envoy.tls.cert_validator.spiffe',
                    typed_config: {
                      '@type': tlsType('SPIFFECertValidatorConfig'),
                      trust_domains: [{ name: other.trustDomain, trust_bundle: { filename: self.files.bootstrap } }],
                    },
                  },
                  match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: `spiffe://${other.trustDomain}/` } }],
                },
              },
            },
          },
        }),
      ],
    },
  };
}
