/**
 * The ops HTTP server: /healthz (alive), /readyz (ready to decide), /metrics (Prometheus text),
 * /.well-known/jwks.json (the keys that sign re-issued JWTs, docs/rewrite.md).
 */
import { createServer, type Server } from 'node:http';
import { listen, type Listening } from './listen.js';
import type { Readiness } from '../envoy/health.js';
import type { KeyRing } from '../rewrite/keys.js';

export type OpsServer = Listening;

/** Starts the ops server on `address:port` (port 0 picks a free one). */
export async function startOpsServer(
  address: string,
  port: number,
  /** `registry` may be the primary's aggregate of its workers' registries (serve --workers). */
  deps: { readiness: Readiness; metrics: { readonly registry: { metrics(): Promise<string>; readonly contentType: string } }; keys?: KeyRing; now?: () => number },
): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
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
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  server.keepAliveTimeout = 5000;
  return listen(server, port, address);
}
