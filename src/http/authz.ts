/**
 * The HTTP authorization mode: the same pipeline behind the contract of nginx `auth_request`,
 * Envoy's `http_service`, Istio's `envoyExtAuthzHttp` and Traefik's ForwardAuth:
 * 200 with the identity headers to pass upstream; 401 or 403 with the reason otherwise; 503/500
 * when zonegate cannot decide (the proxy must treat that as a deny).
 *
 * The original request line is read only where the configured proxy writes it
 * (request-line.ts): headers its recipe sets, or the request itself behind Envoy; never from a
 * header a client can send through. The client certificate comes from a configured header that
 * the proxy must always set.
 *
 * What the gRPC Check shares is shared, not copied: headers are read by the request model's
 * reader within the same limits (src/request/headers.ts), the URI is split as Envoy's path is
 * (src/request/path.ts), a new chain's or token's signatures are checked off the event loop first
 * (decidePrepared), and the check is counted, timed and logged by the same recorder
 * (src/pipeline/record.ts).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listen, REQUEST_TIMEOUT_MS, type Listening } from '../net/listen.js';
import { readRequestLine } from './request-line.js';
import { requestLineSource, type RequestLineSource } from '../config/server.js';
import type { Config } from '../config/schema.js';
import { REASONS } from '../errors.js';
import { checkRecorder } from '../pipeline/record.js';
import { decidePrepared, type DecisionState } from '../pipeline/state.js';
import { denyResponse } from '../rewrite/deny.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { HeaderReader, headersTooLarge, type RequestLimits } from '../request/headers.js';
import type { AuthRequest } from '../request/types.js';

/**
 * Headers of the proxy's own connection to zonegate (and the subrequest's own body), not of the
 * request being authorized: never read, never counted toward the limits.
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-connection', 'content-length']);
const NO_NAMES: ReadonlySet<string> = new Set();

/** The certificate header as the verifier expects it: URL-encoded PEM stays; base64 DER becomes PEM. */
function certificateFrom(value: string | undefined): string {
  if (!value) return '';
  const v = value.trim();
  if (v.startsWith('-----') || v.startsWith('%2D') || v.includes('%20') || v.includes('%0A')) return v;
  if (/^[A-Za-z0-9+/=]+$/.test(v)) return `-----BEGIN CERTIFICATE-----\n${v.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  return v; // the verifier reports what is wrong with it
}

/**
 * A header value as the bytes the gRPC Check gives Envoy: UTF-8. node:http writes a header value
 * one byte per character (latin1) and throws on a character past U+00FF, so a verified subject
 * such as "李" would end in a 500 and "José" would reach the upstream as latin1; the UTF-8 bytes
 * are handed over as latin1 characters instead (the reverse of HeaderReader.addLatin1).
 */
const NOT_ASCII = /[\u0080-\uffff]/;
const wireValue = (v: string): string => (NOT_ASCII.test(v) ? Buffer.from(v, 'utf8').toString('latin1') : v);

/** The server.http settings the request path reads, resolved at startup. */
export interface HttpAuthzSettings {
  readonly peerCertificateHeader: string;
  readonly context: ReadonlyMap<string, string>;
  readonly requestLine: RequestLineSource;
}

/** Resolves server.http once: the proxy preset with the request-line keys the config sets. */
export function httpAuthzSettings(cfg: NonNullable<Config['server']['http']>): HttpAuthzSettings {
  return {
    peerCertificateHeader: cfg.peerCertificateHeader,
    context: new Map(Object.entries(cfg.context)),
    requestLine: requestLineSource(cfg.proxy, cfg.request),
  };
}

/** Reads an HTTP authorization request into an AuthRequest. */
export function httpToAuthRequest(req: IncomingMessage, cfg: HttpAuthzSettings, limits: RequestLimits): AuthRequest {
  const reader = new HeaderReader(limits, HOP_BY_HOP);
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length && !reader.overLimit; i += 2) reader.addLatin1(raw[i]!, raw[i + 1]!);
  const { headers } = reader;
  const duplicates = reader.duplicates ?? NO_NAMES;
  const line = readRequestLine(req, headers, duplicates, cfg.requestLine);
  const malformed = reader.overLimit
    ? headersTooLarge(limits)
    : !line.ok
      ? { code: line.code, message: line.message }
      : duplicates.has(cfg.peerCertificateHeader)
        ? // joined, a client's copy beside the proxy's would be read as part of one chain
          { code: 'ERR_DUPLICATE_HEADER' as const, message: `http: ${cfg.peerCertificateHeader} appears more than once` }
        : undefined;
  return {
    id: (line.ok ? line.id : undefined) ?? randomUUID(),
    method: line.ok ? line.method : '',
    path: line.ok ? line.path : '',
    query: line.ok ? line.query : '',
    host: line.ok ? line.host : '',
    scheme: line.ok ? line.scheme : '',
    protocol: `HTTP/${req.httpVersion}`,
    headers,
    nonUtf8Headers: reader.nonUtf8 ?? NO_NAMES,
    duplicateHeaders: duplicates,
    source: { principal: '', certificate: certificateFrom(headers.get(cfg.peerCertificateHeader)), address: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0 },
    destination: { principal: '', certificate: '', address: '', port: 0 },
    contextExtensions: cfg.context, // read only: the map built at startup
    ...(malformed ? { malformed } : {}),
  };
}

/** Starts the HTTP authorization server. */
export async function startHttpAuthz(
  cfg: NonNullable<Config['server']['http']>,
  deps: { state: () => DecisionState | undefined; reasonHeader: string; limits: RequestLimits; metrics: Metrics; log: Logger },
): Promise<Listening> {
  const record = checkRecorder(deps.metrics, deps.log, { mode: 'http' });
  const settings = httpAuthzSettings(cfg);
  const respond = (res: ServerResponse, status: number, headers: Record<string, string>, body?: string) => {
    res.writeHead(status, headers).end(body);
  };
  // Node refuses headers past 16 KiB with its own 431; let every request within the configured
  // limit (and somewhat past it) reach the handler, which answers ERR_HEADERS_TOO_LARGE itself.
  const maxHeaderSize = Math.max(16 * 1024, 2 * deps.limits.maxHeaderBytes + 16 * 1024);
  // A request must arrive whole, body included (never read, but received), within
  // REQUEST_TIMEOUT_MS (10 s), or node:http answers 408 and closes the connection; the timeouts are
  // checked every second instead of node's 30 s.
  const server: Server = createServer({ maxHeaderSize, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1000 }, async (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    req.resume(); // the body is never read
    try {
      const state = deps.state();
      if (!state) {
        record.refused('ERR_NOT_READY', started);
        return respond(res, 503, { 'content-type': 'application/json', ...(deps.reasonHeader ? { [deps.reasonHeader]: 'ERR_NOT_READY' } : {}) }, '{"reason":"ERR_NOT_READY"}');
      }
      // limits and the reason header come with the decision state, so a config reload applies them here too
      const outcome = await decidePrepared(state, httpToAuthRequest(req, settings, state.limits));
      const reasonHeader = state.response.reasonHeader;
      if (outcome.allowed) {
        const out: Record<string, string> = { 'x-zonegate-decision': 'allow' };
        for (const h of outcome.headersToSet) out[h.name] = wireValue(h.value);
        // nginx cannot be told to remove headers: the list is for its config to clear. Envoy's
        // http_service removes those named in x-envoy-auth-headers-to-remove (after its sets).
        if (outcome.headersToRemove.length > 0) {
          out['x-zonegate-remove'] = outcome.headersToRemove.join(',');
          out['x-envoy-auth-headers-to-remove'] = outcome.headersToRemove.join(', ');
        }
        respond(res, 200, out);
      } else {
        const info = REASONS[outcome.reason];
        if (info.kind === 'error') {
          // not a verdict: the proxy must treat 5xx as a deny
          respond(res, info.http, { 'content-type': 'application/json', ...(reasonHeader ? { [reasonHeader]: outcome.reason } : {}) }, JSON.stringify({ reason: outcome.reason, decisionId: outcome.id }));
        } else {
          const d = denyResponse(outcome.reason, outcome.id, state.response);
          respond(res, d.status, Object.fromEntries(d.headers), d.body);
        }
      }
      record.outcome(outcome, started);
    } catch (err) {
      deps.log.error({ err }, 'http authz: internal failure');
      record.refused('ERR_INTERNAL', started);
      respond(res, 500, { 'content-type': 'application/json' }, '{"reason":"ERR_INTERNAL"}');
    }
  });
  server.keepAliveTimeout = 30_000;
  // past this many connections node:http closes a new one at once (the proxy answers 5xx: a deny)
  server.maxConnections = cfg.maxConnections;
  return listen(server, cfg.port, cfg.address);
}
