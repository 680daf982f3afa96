/**
 * The configuration schema. Validated once at startup (and on reload) into a frozen Config;
 * nothing on the request path reads YAML or re-validates.
 */
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const headerName = z
  .string()
  .regex(/^[a-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a lower-case HTTP header name')
  .refine((n) => !n.startsWith(':') && n !== 'host', 'must not be a pseudo-header or host');

/** A string matcher: a bare string is an exact match. */
export const StringMatch = z.union([
  z.string().min(1),
  z.strictObject({ exact: z.string().min(1) }),
  z.strictObject({ prefix: z.string().min(1) }),
  z.strictObject({ suffix: z.string().min(1) }),
]);
export type StringMatch = z.infer<typeof StringMatch>;

const Rule = z.strictObject({
  name: z.string().min(1).max(128),
  action: z
    .enum(['allow', 'deny', 'ALLOW', 'DENY'])
    .transform((a) => a.toLowerCase() as 'allow' | 'deny'),
  from: z
    .strictObject({
      /** Peer principals (SPIFFE IDs when verified). */
      principals: z.array(StringMatch).min(1).optional(),
      /** Trust domains of verified peers. */
      trustDomains: z.array(z.string().min(1)).min(1).optional(),
    })
    .default({}),
  to: z
    .strictObject({
      methods: z.array(z.string().min(1).transform((m) => m.toUpperCase())).min(1).optional(),
      paths: z.array(StringMatch).min(1).optional(),
      /** Match on Envoy's per-route context_extensions (all listed keys must be equal). */
      context: z.record(z.string(), z.string()).optional(),
    })
    .default({}),
});
export type RuleConfig = z.infer<typeof Rule>;

const TlsListener = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
  /** When set, clients must present a certificate issued by this CA (mTLS). */
  clientCa: z.string().min(1).optional(),
});

const TrustDomainConfig = z.strictObject({
  trustDomain: z.string().min(1),
  /** A file holding the bundle as SPIFFE bundle JSON or PEM. */
  bundle: z.string().min(1),
  /** Intermediates to complete chains when the proxy forwards the leaf only. */
  intermediates: z.string().min(1).optional(),
});

export const ConfigSchema = z.strictObject({
  server: z
    .strictObject({
      grpc: z
        .strictObject({
          address: z.string().min(1).default('0.0.0.0'),
          port: port.default(50051),
          /** Also listen on this Unix domain socket (sidecar deployments). */
          unixSocket: z.string().min(1).optional(),
          tls: TlsListener.optional(),
          maxMessageBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
        })
        .prefault({}),
      ops: z
        .strictObject({
          address: z.string().min(1).default('0.0.0.0'),
          port: port.default(8181),
        })
        .prefault({}),
      /**
       * On SIGTERM, keep answering for this long while health reports NOT_SERVING, so proxies
       * and load balancers stop sending before the listener closes.
       */
      drainDelaySeconds: z.number().min(0).max(300).default(2),
      /** After the drain delay, the longest wait for in-flight calls before closing them. */
      shutdownGraceSeconds: z.number().min(0).max(600).default(15),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxHeaders: z.number().int().min(1).max(10_000).default(100),
      maxHeaderBytes: z.number().int().min(256).max(1024 * 1024).default(64 * 1024),
      maxCertificateBytes: z.number().int().min(256).max(1024 * 1024).default(16 * 1024),
      maxChainLength: z.number().int().min(1).max(16).default(5),
    })
    .prefault({}),
  peer: z
    .strictObject({
      /**
       * Where the peer identity comes from:
       * - certificate: the leaf in attributes.source.certificate, verified against the bundle of
       *   its own trust domain (needs Envoy's include_peer_certificate);
       * - xfcc: the x-forwarded-client-cert header, verified the same way (only when the proxy
       *   sanitizes XFCC);
       * - principal: Envoy's source.principal, trusted as is (no verification; warns at startup).
       */
      source: z.enum(['certificate', 'xfcc', 'principal']).default('certificate'),
      clockSkewSeconds: z.number().int().min(0).max(3600).default(30),
    })
    .prefault({}),
  trust: z.array(TrustDomainConfig).default([]),
  rules: z.array(Rule).default([]),
  upstream: z
    .strictObject({
      /** Headers zonegate sets for the upstream; set to "" to leave one out. */
      headers: z
        .strictObject({
          principal: z.union([headerName, z.literal('')]).default('x-zonegate-peer'),
          trustDomain: z.union([headerName, z.literal('')]).default('x-zonegate-peer-trust-domain'),
          decisionId: z.union([headerName, z.literal('')]).default('x-zonegate-decision-id'),
        })
        .prefault({}),
      /** More headers no client may send through: removed from every allowed request. */
      guard: z.array(headerName).default([]),
    })
    .prefault({}),
  deny: z
    .strictObject({
      /** Response header carrying the reason code on a deny; "" to leave it out. */
      reasonHeader: z.union([headerName, z.literal('')]).default('x-zonegate-reason'),
    })
    .prefault({}),
});

export type Config = z.output<typeof ConfigSchema>;
