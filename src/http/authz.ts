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
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listen, type Listening } from '../net/listen.js';
import { readRequestLine } from './request-line.js';
import { requestLineSource, type RequestLineSource } from '../config/server.js';
import type { Config } from '../config/schema.js';
import { REASONS } from '../errors.js';
import type { DecisionState } from '../pipeline/state.js';
import { denyResponse } from '../rewrite/deny.js';
import { decisionLogger, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { AuthRequest } from '../request/types.js';

export type HttpAuthzServer = Listening;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-connection', 'content-length']);

/** The certificate header as the verifier expects it: URL-encoded PEM stays; base64 DER becomes PEM. */
function certificateFrom(value: string | undefined): string {
  if (!value) return '';
  const v = value.trim();
  if (v.startsWith('-----') || v.startsWith('%2D') || v.includes('%20') || v.includes('%0A')) return v;
  if (/^[A-Za-z0-9+/=]+$/.test(v)) return `-----BEGIN CERTIFICATE-----\n${v.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  return v; // the verifier reports what is wrong with it
}

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
export function httpToAuthRequest(req: IncomingMessage, cfg: HttpAuthzSettings, limits: { maxHeaders: number; maxHeaderBytes: number }): AuthRequest {
  const headers = new Map<string, string>();
  const duplicates = new Set<string>();
  let bytes = 0;
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    const value = req.rawHeaders[i + 1]!;
    bytes += name.length + value.length;
    if (HOP_BY_HOP.has(name)) continue;
    const prev = headers.get(name);
    if (prev === undefined) headers.set(name, value);
    else {
      duplicates.add(name);
      headers.set(name, `${prev},${value}`);
    }
  }
  const line = readRequestLine(req, headers, duplicates, cfg.requestLine);
  const tooLarge = req.rawHeaders.length / 2 > limits.maxHeaders || bytes > limits.maxHeaderBytes;
  const malformed = tooLarge
    ? { code: 'ERR_HEADERS_TOO_LARGE' as const, message: 'request: too many or too large headers' }
    : line.ok
      ? undefined
      : { code: line.code, message: line.message };
  return {
    id: (line.ok ? line.id : undefined) ?? randomUUID(),
    method: line.ok ? line.method : '',
    path: line.ok ? line.path : '',
    query: line.ok ? line.query : '',
    host: line.ok ? line.host : '',
    scheme: line.ok ? line.scheme : '',
    protocol: `HTTP/${req.httpVersion}`,
    headers,
    nonUtf8Headers: new Set(),
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
  deps: { state: () => DecisionState | undefined; reasonHeader: string; limits: { maxHeaders: number; maxHeaderBytes: number }; metrics: Metrics; log: Logger },
): Promise<HttpAuthzServer> {
  const decisions = decisionLogger(deps.log);
  const settings = httpAuthzSettings(cfg);
  const respond = (res: ServerResponse, status: number, headers: Record<string, string>, body?: string) => {
    res.writeHead(status, headers).end(body);
  };
  // Node refuses headers past 16 KiB with its own 431; let every request within the configured
  // limit (and somewhat past it) reach the handler, which answers ERR_HEADERS_TOO_LARGE itself.
  const maxHeaderSize = Math.max(16 * 1024, 2 * deps.limits.maxHeaderBytes + 16 * 1024);
  const server: Server = createServer({ maxHeaderSize }, async (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    req.resume(); // the body is never read
    try {
      const state = deps.state();
      if (!state) {
        deps.metrics.errors.inc({ reason: 'ERR_NOT_READY' });
        return respond(res, 503, { 'content-type': 'application/json', ...(deps.reasonHeader ? { [deps.reasonHeader]: 'ERR_NOT_READY' } : {}) }, '{"reason":"ERR_NOT_READY"}');
      }
      // limits and the reason header come with the decision state, so a config reload applies them here too
      const authReq = httpToAuthRequest(req, settings, state.limits);
      // a new chain's or token's signatures, or a password hash, are checked off the event loop first
      await state.prepare?.(authReq)?.catch(() => undefined);
      const outcome = state.pipeline.authorize(authReq);
      const reasonHeader = state.response.reasonHeader;
      if (outcome.allowed) {
        const out: Record<string, string> = { 'x-zonegate-decision': 'allow' };
        for (const h of outcome.headersToSet) out[h.name] = h.value;
        // nginx cannot be told to remove headers: the list is for its config to clear. Envoy's
        // http_service removes those named in x-envoy-auth-headers-to-remove (after its sets).
        if (outcome.headersToRemove.length > 0) {
          out['x-zonegate-remove'] = outcome.headersToRemove.join(',');
          out['x-envoy-auth-headers-to-remove'] = outcome.headersToRemove.join(', ');
        }
        deps.metrics.decisions.inc({ result: 'allow', reason: '' });
        respond(res, 200, out);
      } else {
        const info = REASONS[outcome.reason];
        if (info.kind === 'error') {
          // not a verdict: the proxy must treat 5xx as a deny
          deps.metrics.errors.inc({ reason: outcome.reason });
          respond(res, info.http, { 'content-type': 'application/json', ...(reasonHeader ? { [reasonHeader]: outcome.reason } : {}) }, JSON.stringify({ reason: outcome.reason, decisionId: outcome.id }));
        } else {
          deps.metrics.decisions.inc({ result: 'deny', reason: outcome.reason });
          const d = denyResponse(outcome.reason, outcome.id, state.response);
          respond(res, d.status, Object.fromEntries(d.headers), d.body);
        }
      }
      if (decisions.isLevelEnabled('info'))
        decisions.info(
          {
            mode: 'http',
            decisionId: outcome.id,
            result: outcome.allowed ? 'allow' : 'deny',
            reason: outcome.allowed ? null : outcome.reason,
            peer: outcome.peer?.principal ?? null,
            latencyUs: Math.round(Number(process.hrtime.bigint() - started) / 1000),
          },
          'decision',
        );
    } catch (err) {
      deps.metrics.errors.inc({ reason: 'ERR_INTERNAL' });
      deps.log.error({ err }, 'http authz: internal failure');
      respond(res, 500, { 'content-type': 'application/json' }, '{"reason":"ERR_INTERNAL"}');
    }
  });
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 30_000;
  return listen(server, cfg.port, cfg.address);
}
