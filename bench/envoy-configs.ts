/**
 * The two Envoys of the Envoy-path benchmark (bench/envoy-path.ts), as bootstraps built from the
 * same pieces the real-Envoy test suites use (test/helpers/envoy-authz.ts):
 *
 *   client → Envoy A (egress: plain HTTP listener, an HTTP/2 mTLS cluster presenting the peer's
 *            X509-SVID) → Envoy B (ingress: mTLS listener requiring a client certificate from the
 *            bench's trust domain) → a direct_response (200) on Envoy B, no upstream process.
 *
 * Envoy B has one listener per authorization variant, and Envoy A one listener and cluster per
 * listener of B, so one pair of Envoy processes serves every scenario:
 * - `none`: no authorization (Envoy's own floor);
 * - `native`: what a single-mesh user configures instead of zonegate: jwt_authn verifying the
 *   token against a local inline JWKS (issuer, audience, lifetime as zonegate checks them), then
 *   RBAC allowing the peer's SPIFFE ID (its URI SAN, as Envoy's authenticated principal) on the
 *   methods and path prefix of zonegate's rule;
 * - `zonegate`: ext_authz over envoy_grpc to zonegate, as the project recommends it (fail closed,
 *   503 on error, the peer certificate, mutations validated, an explicit timeout);
 * - `authz-floor`: the same ext_authz filter to a bare node:http2 server answering a fixed OK
 *   (bench/floor-h2.ts): what ext_authz costs Envoy with the cheapest Check server Node allows;
 * - `zonegate-h2`: as `zonegate`, to a second zonegate serving Check on its http2 transport.
 * Envoy's admin block and ports are left to test/helpers/envoy.ts (127.0.0.1:0, read back).
 */
import { cluster, downstreamTls, envoyGrpc, extAuthzFilter, grpcService, httpListener } from '../test/helpers/envoy-authz.js';

export const VARIANTS = ['none', 'native', 'zonegate', 'authz-floor', 'zonegate-h2'] as const;
export type Variant = (typeof VARIANTS)[number];

export const egressListener = (v: Variant) => `egress-${v}`;
export const ingressListener = (v: Variant) => `ingress-${v}`;

const T = (t: string) => `type.googleapis.com/${t}`;

/** TLS material as files: the trust domain's root, Envoy A's SVID (the peer), Envoy B's server certificate. */
export interface ChainFiles {
  readonly root: string;
  readonly clientChain: string;
  readonly clientKey: string;
  readonly serverChain: string;
  readonly serverKey: string;
}

/** What the native variant checks, the same as zonegate's bench config. */
export interface NativeAuth {
  readonly issuer: string;
  readonly audience: string;
  readonly maxLifetimeSeconds: number;
  readonly tokenHeader: string;
  /** The JWKS (RFC 7517) holding the token signer's public key. */
  readonly jwks: { keys: object[] };
  /** The peer allowed (its SPIFFE ID) and what it may call. */
  readonly principal: string;
  readonly methods: readonly string[];
  readonly pathPrefix: string;
  /** jwt_authn's cache of verified tokens (0: none). */
  readonly jwtCacheSize: number;
}

export function jwtAuthnFilter(n: NativeAuth) {
  return {
    name: 'envoy.filters.http.jwt_authn',
    typed_config: {
      '@type': T('envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication'),
      providers: {
        'common-identity': {
          issuer: n.issuer,
          audiences: [n.audience],
          local_jwks: { inline_string: JSON.stringify(n.jwks) },
          from_headers: [{ name: n.tokenHeader }],
          require_expiration: true,
          max_lifetime: `${n.maxLifetimeSeconds}s`,
          ...(n.jwtCacheSize > 0 ? { jwt_cache_config: { jwt_cache_size: n.jwtCacheSize } } : {}),
        },
      },
      rules: [{ match: { prefix: '/' }, requires: { provider_name: 'common-identity' } }],
    },
  };
}

export function rbacFilter(n: NativeAuth) {
  return {
    name: 'envoy.filters.http.rbac',
    typed_config: {
      '@type': T('envoy.extensions.filters.http.rbac.v3.RBAC'),
      rules: {
        action: 'ALLOW',
        policies: {
          'frontend-calls-api': {
            permissions: [
              {
                and_rules: {
                  rules: [
                    { url_path: { path: { prefix: n.pathPrefix } } },
                    { or_rules: { rules: n.methods.map((m) => ({ header: { name: ':method', string_match: { exact: m } } })) } },
                  ],
                },
              },
            ],
            principals: [{ authenticated: { principal_name: { exact: n.principal } } }],
          },
        },
      },
    },
  };
}

/** Every request answered by Envoy B itself (200), with zonegate's direction on the route. */
function directResponse(name: string, withExtAuthz: boolean) {
  return {
    name,
    virtual_hosts: [
      {
        name: 'all',
        domains: ['*'],
        routes: [
          {
            match: { prefix: '/' },
            direct_response: { status: 200, body: { inline_string: 'ok\n' } },
            ...(withExtAuthz
              ? {
                  typed_per_filter_config: {
                    'envoy.filters.http.ext_authz': { '@type': T('envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute'), check_settings: { context_extensions: { direction: 'ingress' } } },
                  },
                }
              : {}),
          },
        ],
      },
    ],
  };
}

/** Envoy B (ingress): one mTLS listener per variant, answering 200 itself. */
export function envoyB(files: ChainFiles, o: { zonegatePort: number; floorPort: number; zonegateH2Port: number; native: NativeAuth; extAuthzTimeoutSeconds?: number }) {
  const tls = downstreamTls({ cert: files.serverChain, key: files.serverKey, ca: files.root });
  const filters: Record<Variant, object[]> = {
    none: [],
    native: [jwtAuthnFilter(o.native), rbacFilter(o.native)],
    zonegate: [extAuthzFilter(grpcService(envoyGrpc('zonegate'), o.extAuthzTimeoutSeconds ?? 2))],
    'authz-floor': [extAuthzFilter(grpcService(envoyGrpc('authz-floor'), o.extAuthzTimeoutSeconds ?? 2))],
    'zonegate-h2': [extAuthzFilter(grpcService(envoyGrpc('zonegate-h2'), o.extAuthzTimeoutSeconds ?? 2))],
  };
  return {
    static_resources: {
      listeners: VARIANTS.map((v) =>
        // httpListener's route to a cluster is replaced by the direct response (hcm is merged last)
        httpListener(ingressListener(v), { tls, filters: filters[v], cluster: 'unused', hcm: { route_config: directResponse(ingressListener(v), v !== 'none' && v !== 'native') } }),
      ),
      clusters: [cluster('zonegate', o.zonegatePort, { http2: true }), cluster('authz-floor', o.floorPort, { http2: true }), cluster('zonegate-h2', o.zonegateH2Port, { http2: true })],
    },
  };
}

/** Envoy A (egress): one plain HTTP listener per variant, each to Envoy B's listener over HTTP/2 + mTLS. */
export function envoyA(files: ChainFiles, ingressPorts: Readonly<Record<Variant, number>>) {
  return {
    static_resources: {
      listeners: VARIANTS.map((v) => httpListener(egressListener(v), { filters: [], cluster: ingressListener(v) })),
      clusters: VARIANTS.map((v) => cluster(ingressListener(v), ingressPorts[v], { http2: true, tls: { ca: files.root, cert: files.clientChain, key: files.clientKey } })),
    },
  };
}
