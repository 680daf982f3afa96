/** The shipped Envoy config keeps the ext_authz settings zonegate's safety depends on. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PACKAGE_ROOT } from '../../src/paths.js';

const doc = parse(readFileSync(join(PACKAGE_ROOT, 'envoy/envoy.yaml'), 'utf8'), { uniqueKeys: true });
const listener = doc.static_resources.listeners[0];
const hcm = listener.filter_chains[0].filters[0].typed_config;
const filters = hcm.http_filters as { name: string; typed_config: Record<string, any> }[];
const extAuthz = filters.find((f) => f.name === 'envoy.filters.http.ext_authz')!.typed_config;

describe('envoy/envoy.yaml', () => {
  it('ext_authz: V3, fail closed, explicit timeout, outage ≠ deny, peer certificate included', () => {
    expect(extAuthz['@type']).toBe('type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz');
    expect(extAuthz.transport_api_version).toBe('V3');
    expect(extAuthz.failure_mode_allow).toBe(false);
    expect(extAuthz.include_peer_certificate).toBe(true);
    expect(extAuthz.grpc_service.timeout).toMatch(/^\d+(\.\d+)?s$/);
    expect(extAuthz.status_on_error.code).not.toMatch(/^(Forbidden|403)$/);
    expect(extAuthz.grpc_service.envoy_grpc.cluster_name).toBe('zonegate');
  });

  it('ext_authz runs before the router; XFCC is sanitized; mTLS is required', () => {
    expect(filters.map((f) => f.name)).toEqual(['envoy.filters.http.ext_authz', 'envoy.filters.http.router']);
    expect(hcm.forward_client_cert_details).toBe('SANITIZE_SET');
    expect(listener.filter_chains[0].transport_socket.typed_config.require_client_certificate).toBe(true);
  });

  it('the zonegate cluster speaks HTTP/2 to port 50051', () => {
    const cluster = doc.static_resources.clusters.find((c: { name: string }) => c.name === 'zonegate');
    expect(cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config).toHaveProperty('http2_protocol_options');
    expect(cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(50051);
  });

  it('routes carry context_extensions for zonegate', () => {
    const route = hcm.route_config.virtual_hosts[0].routes[0];
    expect(route.typed_per_filter_config['envoy.filters.http.ext_authz'].check_settings.context_extensions).toMatchObject({ direction: 'ingress' });
  });
});
