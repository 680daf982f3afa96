/**
 * The `server` section: the listeners. The safe deployment is the default: the ext_authz gRPC
 * listener and the HTTP authorization listener bind loopback (or a Unix socket). Whoever reaches
 * them is trusted like the proxy (a Check names the peer, the path, the context_extensions), so a
 * listener on any other address must be mTLS (clientCa, ideally with allowedClients naming the
 * proxy's own identity) or say `insecure: true` explicitly, which is warned at every start.
 * The ops server (health, metrics, JWKS) stays on 0.0.0.0: probes come from the node, and it
 * answers nothing a decision depends on.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { filePath as configPath, headerName, port } from '../schema-parts.js';
import { SpiffeId } from '../spiffe/id.js';


/** A client identity the listener accepts: a SPIFFE ID, exactly or by prefix. */
const ClientMatcher = z.union([
  // parsed as a SPIFFE ID: an entry that is not one could never match, refusing every connection
  z.string().superRefine((v, ctx) => {
    try {
      SpiffeId.parse(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `must be a SPIFFE ID: ${(err as Error).message}` });
    }
  }),
  z.strictObject({ prefix: z.string().startsWith('spiffe://', 'must be a SPIFFE ID prefix (spiffe://…)') }),
]);
export type ClientMatcher = z.output<typeof ClientMatcher>;

const TlsListener = z
  .strictObject({
    cert: configPath,
    key: configPath,
    /** When set, clients must present a certificate issued by this CA (mTLS). */
    clientCa: configPath.optional(),
    /**
     * mTLS: the client certificate's SPIFFE ID (its one URI SAN) must match one of these, or the
     * connection is closed right after the handshake, before any call is read. Name the proxy's
     * own identity here: a CA that issues workload SVIDs would otherwise let every workload ask.
     */
    allowedClients: z.array(ClientMatcher).min(1).optional(),
  })
  .refine((t) => t.allowedClients === undefined || t.clientCa !== undefined, {
    message: 'allowedClients needs clientCa (client certificates are only requested with mTLS)',
    path: ['allowedClients'],
  });

/** 127.0.0.0/8, ::1 (and IPv4-mapped loopback) and "localhost": reachable from this host only. */
export function isLoopback(address: string): boolean {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (a === 'localhost') return true;
  const v = isIP(a);
  if (v === 4) return a.startsWith('127.');
  if (v === 6) return a === '::1' || /^(0{0,4}:){2,7}0{0,3}1$/.test(a) || /^::ffff:127\./i.test(a);
  return false;
}

/** An explicitly chosen exposed listener without mTLS: accepted, and worth a warning at every start. */
const insecure = z.boolean().default(false);

const Grpc = z.strictObject({
  /** Loopback by default: a non-loopback address needs mTLS (tls.clientCa) or insecure: true. */
  address: z.string().min(1).default('127.0.0.1'),
  port: port.default(50051),
  /** Also listen on this Unix domain socket (sidecar deployments). */
  unixSocket: z.string().min(1).optional(),
  tls: TlsListener.optional(),
  /** Listen on a non-loopback address without mTLS anyway (a trusted network only; warned). */
  insecure,
  maxMessageBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  /**
   * Most checks waiting at once (a new token's signature check on the thread pool); past
   * it a check is answered UNAVAILABLE (ERR_OVERLOADED) at once instead of queued.
   */
  maxInFlight: z.number().int().min(1).max(1_000_000).default(1024),
  /**
   * What serves Check and Health: grpc-js, or zonegate's own gRPC server on node:http2
   * (src/envoy/h2.ts), which honours the same settings and answers the same statuses.
   */
  transport: z.enum(['grpc-js', 'http2']).default('grpc-js'),
});

/**
 * Where the HTTP mode reads each part of the original request line: a header name, or "" for the
 * authorization request's own method / path / Host. src/http/request-line.ts reads it, and says
 * why only from there; PROXY_PRESETS is what `server.http.proxy` names.
 */
export interface RequestLineSource {
  readonly method: string;
  readonly uri: string;
  readonly host: string;
  /** "" → the scheme is not known to zonegate ("http"). */
  readonly scheme: string;
  /** "" → a fresh decision id per request. */
  readonly id: string;
  /** Removed from the front of the request's own path when `uri` is "" (Envoy's path_prefix). */
  readonly pathPrefix: string;
}

export const PROXY_PRESETS = {
  nginx: { method: 'x-original-method', uri: 'x-original-uri', host: 'x-original-host', scheme: 'x-original-proto', id: 'x-request-id', pathPrefix: '' },
  traefik: { method: 'x-forwarded-method', uri: 'x-forwarded-uri', host: 'x-forwarded-host', scheme: 'x-forwarded-proto', id: '', pathPrefix: '' },
  envoy: { method: '', uri: '', host: '', scheme: '', id: '', pathPrefix: '' },
} as const satisfies Record<string, RequestLineSource>;
export type ProxyKind = keyof typeof PROXY_PRESETS;

/** The preset of `proxy` with the keys the config sets explicitly. */
export function requestLineSource(proxy: ProxyKind, overrides: Partial<RequestLineSource>): RequestLineSource {
  const out: Record<string, string> = { ...PROXY_PRESETS[proxy] };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) out[k] = v;
  return out as unknown as RequestLineSource;
}

/** "" reads the authorization request's own method / path / Host (Envoy's http_service). */
const lineSource = z.union([headerName, z.literal('')]).optional();

const Http = z.strictObject({
  /** Loopback by default: a non-loopback address needs insecure: true (no TLS on this listener). */
  address: z.string().min(1).default('127.0.0.1'),
  port: port.default(8182),
  /** Listen on a non-loopback address anyway (a trusted network only; warned). */
  insecure,
  /**
   * The header in which the proxy passes the client certificate: URL-encoded PEM (nginx
   * $ssl_client_escaped_cert) or base64 DER (Traefik). The proxy must always set it.
   */
  peerCertificateHeader: headerName.default('x-ssl-client-cert'),
  /**
   * The proxy in front, which says where the original request line is read (src/http/request-line.ts):
   * nginx (X-Original-Method/-URI/-Host/-Proto and X-Request-Id, set by the recipe), traefik
   * (X-Forwarded-*), envoy (the authorization request itself). Never a header the proxy does not set.
   */
  proxy: z.enum(Object.keys(PROXY_PRESETS) as [keyof typeof PROXY_PRESETS, ...(keyof typeof PROXY_PRESETS)[]]).default('nginx'),
  /** Overrides of the proxy's preset: header names, or "" for the authorization request's own. */
  request: z
    .strictObject({
      method: lineSource,
      uri: lineSource,
      host: lineSource,
      scheme: lineSource,
      id: lineSource,
      /** Envoy's http_service path_prefix, removed from the front of the request's own path. */
      pathPrefix: z.string().startsWith('/').or(z.literal('')).optional(),
    })
    .prefault({}),
  /** context_extensions for every request on this listener (e.g. direction). */
  context: z.record(z.string(), z.string()).default({}),
  /**
   * Most connections open at once (each carries at most one authorization request at a time);
   * past it a new connection is closed at once. A proxy's keepalive pool must stay below it.
   */
  maxConnections: z.number().int().min(1).max(1_000_000).default(1024),
});

export const ServerSchema = z
  .strictObject({
    grpc: Grpc.prefault({}),
    ops: z
      .strictObject({
        /** 0.0.0.0: kubelet and load-balancer probes come from outside; nothing here decides. */
        address: z.string().min(1).default('0.0.0.0'),
        port: port.default(8181),
        /**
         * POST /explain: decide a CheckRequest with the live trust material and return the
         * steps (zonegate explain). Off by default; answered only to loopback clients.
         */
        explain: z.boolean().default(false),
      })
      .prefault({}),
    /**
     * The HTTP authorization mode (nginx auth_request, Envoy http_service, Istio
     * envoyExtAuthzHttp, Traefik ForwardAuth): the same decisions over plain HTTP.
     */
    http: Http.optional(),
    /**
     * On SIGTERM, keep answering for this long while health reports NOT_SERVING, so proxies
     * and load balancers stop sending before the listener closes.
     */
    drainDelaySeconds: z.number().min(0).max(300).default(2),
    /** After the drain delay, the longest wait for in-flight calls before closing them. */
    shutdownGraceSeconds: z.number().min(0).max(600).default(15),
  })
  .superRefine((s, ctx) => {
    const g = s.grpc;
    if (!isLoopback(g.address) && !g.tls?.clientCa && !g.insecure)
      ctx.addIssue({
        code: 'custom',
        path: ['grpc', 'address'],
        message: `"${g.address}" is not loopback and the listener has no mTLS: whoever reaches it is trusted like Envoy. Set tls with clientCa (and allowedClients), listen on 127.0.0.1 or a unixSocket, or say insecure: true`,
      });
    const h = s.http;
    if (h && !isLoopback(h.address) && !h.insecure)
      ctx.addIssue({
        code: 'custom',
        path: ['http', 'address'],
        message: `"${h.address}" is not loopback: whoever reaches it is trusted like the proxy. Listen on 127.0.0.1 (the proxy on the same host or pod), or say insecure: true`,
      });
  });
export type ServerConfig = z.output<typeof ServerSchema>;

/** The warnings a valid server section is worth at every start (and in `config validate`). */
export function serverWarnings(s: ServerConfig): string[] {
  const out: string[] = [];
  if (s.grpc.insecure && !isLoopback(s.grpc.address) && !s.grpc.tls?.clientCa)
    out.push(`server.grpc.insecure: the gRPC listener on ${s.grpc.address} has no mTLS; anyone who can reach it is trusted like Envoy`);
  if (s.grpc.tls?.clientCa && !s.grpc.tls.allowedClients && !isLoopback(s.grpc.address))
    out.push('server.grpc.tls.allowedClients is not set: any certificate of clientCa may ask for decisions; name the proxy\'s own SPIFFE ID');
  if (s.http?.insecure && !isLoopback(s.http.address))
    out.push(`server.http.insecure: the HTTP authorization listener on ${s.http.address} is reachable by more than the proxy; anyone who can reach it is trusted like the proxy`);
  return out;
}
