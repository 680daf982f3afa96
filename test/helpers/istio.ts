/**
 * What istiod generates for a workload selected by an `action: CUSTOM` AuthorizationPolicy whose
 * provider is an `envoyExtAuthzGrpc` extension provider, reproduced from istio/istio (snapshot of
 * 2026-08-22, commit 86c9f01f, 1.31 development line) so that the real-Envoy suites can run it:
 *
 * - pilot/pkg/security/authz/builder/builder.go, `Builder.build` and `Builder.buildHTTP`: one
 *   RBAC filter whose `shadow_rules` (action DENY, never enforced) hold one policy per rule,
 *   named `istio-ext-authz-<provider>-ns[<ns>]-policy[<name>]-rule[<i>]`, with
 *   `shadow_rules_stat_prefix: istio_ext_authz_`, followed by the ext_authz filter;
 * - pilot/pkg/security/authz/builder/extauthz.go, `generateGRPCConfig` (`envoy_grpc` to the
 *   provider's cluster with its hostname as authority, `timeoutOrDefault`: 600 s,
 *   `status_on_error` only when `statusOnError` is set (Envoy's default is 403),
 *   `failure_mode_allow` = `failOpen`, `transport_api_version: V3`, no
 *   `include_peer_certificate`) and `generateFilterMatcherForProvider` (the filter runs only
 *   when the RBAC filter's dynamic metadata `istio_ext_authz_shadow_effective_policy_id` starts
 *   with `istio-ext-authz-<provider>`: a request no rule selects never reaches the provider);
 * - pilot/pkg/security/authz/model/model.go `New`/`Generate` and generator.go for the rules'
 *   permissions (only the `to.operation` fields paths, notPaths, methods and notMethods are
 *   reproduced; anything else throws rather than being guessed).
 */

const T = 'type.googleapis.com/envoy.extensions';

/** MeshConfig.ExtensionProvider.envoyExtAuthzGrpc, as written in istiod's values. */
export interface GrpcProvider {
  readonly service: string;
  readonly port: number;
  readonly timeout?: string;
  readonly failOpen?: boolean;
  readonly statusOnError?: string;
  readonly includeRequestBodyInCheck?: { maxRequestBytes?: number; allowPartialMessage?: boolean; packAsBytes?: boolean };
}

/** An AuthorizationPolicy (security.istio.io/v1) as written in YAML. */
export interface AuthorizationPolicy {
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly spec: { readonly action: string; readonly provider?: { readonly name: string }; readonly rules?: readonly Record<string, any>[] };
}

/** envoy.type.v3.StatusCode names for the codes a provider's statusOnError names in practice. */
const STATUS: Record<string, string> = { '401': 'Unauthorized', '403': 'Forbidden', '500': 'InternalServerError', '502': 'BadGateway', '503': 'ServiceUnavailable', '504': 'GatewayTimeout' };

/** Istio's name for the cluster of a service port: `outbound|PORT||HOST` (model.BuildSubsetKey). */
export const outboundCluster = (service: string, port: number) => `outbound|${port}||${service.replace(/^[^/]*\//, '')}`;

/** matcher.StringMatcherWithPrefix(v, ""): `*` any, `*x` suffix, `x*` prefix, else exact. */
function stringMatcher(v: string): Record<string, unknown> {
  if (v === '*') return { safe_regex: { regex: '.+' } };
  if (v.startsWith('*')) return { suffix: v.slice(1) };
  if (v.endsWith('*')) return { prefix: v.slice(0, -1) };
  return { exact: v };
}

/** matcher.HeaderMatcher(k, v). */
function headerMatcher(name: string, v: string): Record<string, unknown> {
  if (v === '*') return { name, present_match: true };
  return { name, string_match: stringMatcher(v) };
}

const GENERATORS: Record<string, (v: string) => Record<string, unknown>> = {
  methods: (v) => ({ header: headerMatcher(':method', v) }),
  paths: (v) => ({ url_path: { path: stringMatcher(v) } }),
};

/** One permission (model.generatePermission) for one `to` entry: method, then path (New's insertFront order). */
function permission(operation: Record<string, string[]> = {}): Record<string, unknown> {
  const known = new Set(['methods', 'notMethods', 'paths', 'notPaths']);
  for (const k of Object.keys(operation)) if (!known.has(k)) throw new Error(`istio: operation field ${k} is not reproduced`);
  const and: Record<string, unknown>[] = [];
  for (const key of ['methods', 'paths'] as const) {
    const values = operation[key] ?? [];
    const not = operation[`not${key[0]!.toUpperCase()}${key.slice(1)}`] ?? [];
    if (values.length > 0) and.push({ or_rules: { rules: values.map(GENERATORS[key]!) } });
    if (not.length > 0) and.push({ not_rule: { or_rules: { rules: not.map(GENERATORS[key]!) } } });
  }
  return { and_rules: { rules: and.length > 0 ? and : [{ any: true }] } };
}

/** Builder.build for CUSTOM: the shadow rules of one provider, one policy per rule. */
function shadowRules(provider: string, policies: readonly AuthorizationPolicy[]): { action: string; policies: Record<string, unknown> } {
  const out: Record<string, unknown> = {};
  for (const p of policies) {
    const name = (i: number) => `istio-ext-authz-${provider}-ns[${p.metadata.namespace}]-policy[${p.metadata.name}]-rule[${i}]`;
    const rules = p.spec.rules ?? [];
    if (rules.length === 0) {
      // rbacPolicyMatchNever
      out[name(0)] = { permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] };
      continue;
    }
    rules.forEach((rule, i) => {
      for (const k of Object.keys(rule)) if (k !== 'to') throw new Error(`istio: rule field ${k} is not reproduced`);
      const to = (rule.to ?? []) as { operation?: Record<string, string[]> }[];
      out[name(i)] = {
        permissions: to.length > 0 ? to.map((t) => permission(t.operation)) : [permission()],
        principals: [{ and_ids: { ids: [{ any: true }] } }],
      };
    });
  }
  return { action: 'DENY', policies: out };
}

/**
 * The two HTTP filters istiod puts on a sidecar's inbound chain for the CUSTOM policies of one
 * provider, in Istio's order: the RBAC filter in shadow mode, then ext_authz.
 */
export function customFilters(providerName: string, provider: GrpcProvider, policies: readonly AuthorizationPolicy[]) {
  const custom = policies.filter((p) => p.spec.action === 'CUSTOM' && p.spec.provider?.name === providerName);
  if (custom.length === 0) throw new Error(`istio: no CUSTOM policy names provider ${providerName}`);
  const body = provider.includeRequestBodyInCheck;
  const rbac = {
    name: 'envoy.filters.http.rbac',
    typed_config: { '@type': `${T}.filters.http.rbac.v3.RBAC`, shadow_rules: shadowRules(providerName, custom), shadow_rules_stat_prefix: 'istio_ext_authz_' },
  };
  const extAuthz = {
    name: 'envoy.filters.http.ext_authz',
    typed_config: {
      '@type': `${T}.filters.http.ext_authz.v3.ExtAuthz`,
      ...(provider.statusOnError ? { status_on_error: { code: STATUS[provider.statusOnError] ?? Number(provider.statusOnError) } } : {}),
      ...(provider.failOpen ? { failure_mode_allow: true } : {}),
      grpc_service: {
        envoy_grpc: { cluster_name: outboundCluster(provider.service, provider.port), authority: provider.service.replace(/^[^/]*\//, '') },
        timeout: provider.timeout ?? '600s',
      },
      filter_enabled_metadata: {
        filter: 'envoy.filters.http.rbac',
        path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
        value: { string_match: { prefix: `istio-ext-authz-${providerName}` } },
      },
      transport_api_version: 'V3',
      ...(body
        ? {
            with_request_body: {
              ...(body.maxRequestBytes ? { max_request_bytes: body.maxRequestBytes } : {}),
              ...(body.allowPartialMessage ? { allow_partial_message: true } : {}),
              ...(body.packAsBytes ? { pack_as_bytes: true } : {}),
            },
          }
        : {}),
    },
  };
  return [rbac, extAuthz] as const;
}

/**
 * An EnvoyFilter `MERGE` patch applied to one generated filter: protobuf merge semantics, i.e.
 * scalars replace, messages merge field by field, repeated fields append.
 */
export function mergePatch<V>(target: V, patch: unknown): V {
  if (Array.isArray(target) && Array.isArray(patch)) return [...target, ...patch] as V;
  if (isObject(target) && isObject(patch)) {
    const out: Record<string, unknown> = { ...target };
    for (const [k, v] of Object.entries(patch)) out[k] = k in out ? mergePatch(out[k], v) : v;
    return out as V;
  }
  return patch as V;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The HTTP filters that follow CUSTOM's pair on a sidecar inbound chain that upstream Envoy also
 * has (listener_builder.go `buildHTTPConnectionManager`; xds/filters/filters.go): gRPC stats,
 * fault, CORS, then the router. Istio's own proxy adds istio.metadata_exchange before the pair and
 * istio_authn and istio.stats around these; upstream Envoy has no such filters, and none of them
 * decides or rewrites what ext_authz sees.
 */
export const inboundTail = [
  {
    name: 'envoy.filters.http.grpc_stats',
    typed_config: { '@type': `${T}.filters.http.grpc_stats.v3.FilterConfig`, emit_filter_state: true, stats_for_all_methods: false },
  },
  { name: 'envoy.filters.http.fault', typed_config: { '@type': `${T}.filters.http.fault.v3.HTTPFault` } },
  { name: 'envoy.filters.http.cors', typed_config: { '@type': `${T}.filters.http.cors.v3.Cors` } },
  { name: 'envoy.filters.http.router', typed_config: { '@type': `${T}.filters.http.router.v3.Router` } },
];

/**
 * A sidecar's inbound mTLS context (pilot/pkg/security/authn/utils/utils.go `BuildInboundTLS`
 * and security/model/authentication.go `ApplyToCommonTLSContext`): client certificate required,
 * the workload certificate from the SDS secret `default`, the roots from `ROOTCA` (every root
 * the mesh trusts, caCertificates included) with no subject-alt-name match.
 */
export function inboundTls(defaultSecret: Record<string, unknown>, rootCa: Record<string, unknown>) {
  return {
    require_client_certificate: true,
    common_tls_context: {
      alpn_protocols: ['h2', 'http/1.1'],
      tls_params: {
        tls_minimum_protocol_version: 'TLSv1_2',
        tls_maximum_protocol_version: 'TLSv1_3',
        cipher_suites: ['ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'AES128-GCM-SHA256'],
      },
      tls_certificate_sds_secret_configs: [defaultSecret],
      combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: rootCa },
    },
  };
}
