/**
 * The demo behind Envoy: each zone's app (an echo server in this process that answers with the
 * request it received) and the calls as real HTTP requests — from a zone's app through its
 * Envoy's egress, or straight to a zone's Envoy ingress over mTLS with a given certificate (a
 * workload whose Envoy does not go through zonegate, or an impostor). The verdict is what the
 * client sees: the status, x-zonegate-reason, and for an allow the identity headers the app got.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { Verdict } from './client.js';
import type { IssuedSvid } from './pki.js';
import { DEMO_ADDRESS } from './zones.js';

const TIMEOUT_MS = 15_000;

export interface DemoApp {
  readonly port: number;
  close(): Promise<void>;
}

/** A zone's app on loopback `port` (0: any free one): answers every request with what it received. */
export async function startApp(zone: string, port = 0): Promise<DemoApp> {
  const server: Server = createServer((req, res) => {
    const body = JSON.stringify({ zone, method: req.method, path: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json' }).end(`${body}\n`);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, DEMO_ADDRESS, resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** One request the demo makes. */
export interface HttpCall {
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  /** mTLS to an ingress: the client certificate (none: a caller without one), the server's root and trust domain. */
  readonly tls?: { readonly cert?: IssuedSvid; readonly rootPem: string; readonly trustDomain: string };
}

const IDENTITY_HEADER = /^x-zonegate-/;

function verdictOf(res: IncomingMessage, body: string): Verdict {
  const status = res.statusCode ?? 0;
  const reason = res.headers['x-zonegate-reason'];
  if (status === 200) {
    let received: Record<string, string> = {};
    try {
      received = (JSON.parse(body) as { headers: Record<string, string> }).headers;
    } catch {
      /* not the app: left empty */
    }
    return { allowed: true, status, headers: Object.entries(received).filter(([k]) => IDENTITY_HEADER.test(k)), removed: [] };
  }
  return { allowed: false, status, reason: typeof reason === 'string' ? reason : `HTTP ${status}`, headers: [], removed: [] };
}

/** Sends `call` to 127.0.0.1:port (HTTPS when `call.tls`); never rejects. */
export function send(port: number, call: HttpCall): Promise<Verdict> {
  return new Promise((resolve) => {
    const options = { host: DEMO_ADDRESS, port, method: call.method, path: call.path, headers: call.headers ?? {}, timeout: TIMEOUT_MS };
    const onResponse = (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(verdictOf(res, body)));
    };
    const t = call.tls;
    const req = t
      ? httpsRequest(
          {
            ...options,
            ...(t.cert ? { cert: t.cert.certPem, key: t.cert.keyPem } : {}),
            ca: t.rootPem,
            // the other side is an X509-SVID: a SPIFFE ID of that trust domain, no host name
            checkServerIdentity: (_host, cert) => {
              const uri = new X509Certificate(cert.raw).subjectAltName ?? '';
              return uri.includes(`URI:spiffe://${t.trustDomain}/`) ? undefined : new Error(`the server is not a workload of ${t.trustDomain}`);
            },
            agent: false,
          },
          onResponse,
        )
      : httpRequest({ ...options, agent: false }, onResponse);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    // Envoy requiring a client certificate ends the handshake: nobody was asked, nothing reached the app
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ allowed: false, refused: true, reason: err.code ?? err.message, headers: [], removed: [] }));
    req.end();
  });
}
