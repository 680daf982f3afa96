/**
 * The ops HTTP server: /healthz (alive), /readyz (ready to decide), /metrics (Prometheus text),
 * /.well-known/jwks.json (the keys that sign re-issued JWTs, docs/rewrite.md), /status (trust
 * domains and config, `zonegate status`) and, when server.ops.explain is on, POST /explain
 * (`zonegate explain`), which answers loopback clients only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { JsonValue } from '@bufbuild/protobuf';
import { listen, type Listening } from '../net/listen.js';
import type { Readiness } from '../readiness.js';
import type { KeyRing } from '../rewrite/keys.js';
import { ZonegateError } from '../errors.js';
import { isLoopback } from '../config/server.js';

/** The largest CheckRequest JSON POST /explain reads. */
const MAX_EXPLAIN_BYTES = 1024 * 1024;

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms: a connection from this host. */
const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body, null, 2)}\n`);

function explainHandler(req: IncomingMessage, res: ServerResponse, explain: (request: JsonValue) => Promise<Record<string, unknown>>): void {
  // a new way in: only a client on this host may ask, whatever address the ops server listens on
  if (!isLoopback(req.socket.remoteAddress ?? '')) return void json(res, 403, { error: 'explain answers loopback clients only' });
  if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end();
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_EXPLAIN_BYTES) {
      json(res, 413, { error: `request larger than ${MAX_EXPLAIN_BYTES} bytes` });
      req.destroy();
    } else chunks.push(c);
  });
  req.on('end', () => {
    if (res.headersSent) return;
    let body: JsonValue;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as JsonValue;
    } catch (err) {
      return void json(res, 400, { error: `request is not JSON: ${(err as Error).message}` });
    }
    explain(body).then(
      (r) => json(res, 200, r),
      (err: unknown) => (err instanceof ZonegateError && err.code === 'ERR_REQUEST_MALFORMED' ? json(res, 400, { error: err.message }) : json(res, 503, { error: (err as Error).message })),
    );
  });
}

/** Starts the ops server on `address:port` (port 0 picks a free one). */
export async function startOpsServer(
  address: string,
  port: number,
  /** `registry` may be the primary's aggregate of its workers' registries (serve --workers). */
  deps: {
    readiness: Readiness;
    metrics: { readonly registry: { metrics(): Promise<string>; readonly contentType: string } };
    keys?: KeyRing;
    now?: () => number;
    /** GET /status: what `zonegate status` shows (absent: 501, e.g. the primary of serve --workers). */
    status?: () => unknown;
    /**
     * POST /explain, when server.ops.explain is on: one decision with its steps, secrets redacted.
     * Rejecting with ZonegateError ERR_REQUEST_MALFORMED answers 400; any other rejection, 503.
     */
    explain?: (request: JsonValue) => Promise<Record<string, unknown>>;
  },
): Promise<Listening> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/explain') {
      if (deps.explain) explainHandler(req, res, deps.explain);
      else json(res, 404, { error: 'explain is off: set server.ops.explain: true (with serve --workers N > 1 the primary decides nothing: use --workers 1)' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/.well-known/jwks.json' && deps.keys) {
      const body = JSON.stringify(deps.keys.jwks((deps.now ?? Date.now)()));
      res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': `max-age=${deps.keys.maxAgeSeconds}` }).end(body);
      return;
    }
    switch (path) {
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/readyz': {
        const ready = deps.readiness.ready;
        res
          .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
          .end(ready ? 'ready\n' : `not ready: ${deps.readiness.reason}\n`);
        return;
      }
      case '/metrics':
        deps.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': deps.metrics.registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
        return;
      case '/status':
        if (deps.status) json(res, 200, deps.status());
        else json(res, 501, { error: 'status is served by each process of serve --workers 1, not by the primary of serve --workers N' });
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  server.keepAliveTimeout = 5000;
  return listen(server, port, address);
}
