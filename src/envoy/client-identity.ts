/**
 * mTLS with a client allowlist for the gRPC listener: only the proxy's own identity may ask for
 * decisions. A CA that issues workload SVIDs would otherwise let any workload holding one write
 * a whole CheckRequest (peer certificate, context_extensions) and read what an allow carries.
 *
 * grpc-js cannot check a client certificate beyond "issued by clientCa", so zonegate terminates
 * TLS itself: after the handshake, the certificate's one URI SAN must match allowedClients, or
 * the connection is closed before a single HTTP/2 frame is read. Allowed connections are handed
 * to the gRPC server (its connection injector) as an already-secured stream. The check runs once
 * per connection, not per call. The node:http2 transport (h2.ts) terminates all of its TLS here,
 * with or without an allowlist (startTlsListeners).
 */
import type * as grpc from '@grpc/grpc-js';
import { ServerCredentials } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { ClientMatcher } from '../config/server.js';
import type { Logger } from '../log.js';

export interface AllowlistedTls {
  readonly port: number;
  /** Stops accepting connections; the server's shutdown closes the sessions it holds. */
  close(graceMs: number): void;
}

/** The URI SANs of a peer certificate as Node reports them (`URI:a, DNS:b`, quoted when escaped). */
export function uriSans(subjectaltname: string | undefined): string[] {
  if (!subjectaltname) return [];
  const out: string[] = [];
  // Node quotes an entry (JSON string syntax) when it holds a comma, quote or control character
  const re = /(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (const m of subjectaltname.matchAll(re)) {
    if (m[1] !== 'URI') continue;
    const v = m[2]!;
    try {
      out.push(v.startsWith('"') ? (JSON.parse(v) as string) : v);
    } catch {
      out.push(v);
    }
  }
  return out;
}

/** Compiled once: does this SPIFFE ID match one of the allowed client matchers? */
export function clientAllowlist(matchers: readonly ClientMatcher[]): (id: string) => boolean {
  const exact = new Set(matchers.filter((m): m is string => typeof m === 'string'));
  const prefixes = matchers.filter((m): m is { prefix: string } => typeof m !== 'string').map((m) => m.prefix);
  return (id) => exact.has(id) || prefixes.some((p) => id.startsWith(p));
}

/**
 * Listens with TLS on address:port (and the Unix socket) and hands each connection that passed the
 * handshake to `accept`. With clientCa, a client certificate issued by it is required; with
 * allowedClients, its SPIFFE ID must also match one of them, or the connection is closed here,
 * logged, and never handed on.
 */
export async function startTlsListeners(
  accept: (socket: TLSSocket) => void,
  tls: { cert: string; key: string; clientCa?: string | undefined; allowedClients?: readonly ClientMatcher[] | undefined },
  address: string,
  port: number,
  unixSocket: string | undefined,
  log: Logger,
): Promise<AllowlistedTls> {
  const allowed = tls.allowedClients ? clientAllowlist(tls.allowedClients) : undefined;
  const options = {
    cert: readFileSync(tls.cert),
    key: readFileSync(tls.key),
    ...(tls.clientCa ? { ca: readFileSync(tls.clientCa), requestCert: true, rejectUnauthorized: true } : {}),
    ALPNProtocols: ['h2'],
  };
  const onSecure = (socket: TLSSocket) => {
    socket.on('error', () => undefined); // a reset connection is the client's problem, not a crash
    if (allowed) {
      const ids = uriSans(socket.getPeerCertificate().subjectaltname);
      const id = ids.length === 1 ? ids[0]! : undefined;
      if (id === undefined || !allowed(id)) {
        // the client identity is not secret (it is in the certificate); the certificate body is never logged
        log.warn({ client: id ?? null, uriSans: ids.length, remote: socket.remoteAddress ?? null }, 'grpc: client identity not in server.grpc.tls.allowedClients: connection refused');
        socket.destroy();
        return;
      }
    }
    accept(socket);
  };
  const servers: Server[] = [];
  const open = (listenOn: (s: Server, done: () => void) => void) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer(options, onSecure);
      s.on('tlsClientError', () => undefined); // a failed handshake is the client's problem, not a crash
      s.once('error', reject);
      listenOn(s, () => resolve(s));
      servers.push(s);
    });
  let tcp: Server;
  try {
    tcp = await open((s, done) => s.listen(port, address, done));
    if (unixSocket) await open((s, done) => s.listen(unixSocket, done));
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
  return {
    port: (tcp.address() as AddressInfo).port,
    close: () => {
      for (const s of servers) s.close();
    },
  };
}

/** Listens with mTLS on address:port (and the Unix socket); hands allowed connections to the grpc-js `server`. */
export async function startAllowlistedTls(
  server: grpc.Server,
  tls: { cert: string; key: string; clientCa: string; allowedClients: readonly ClientMatcher[] },
  address: string,
  port: number,
  unixSocket: string | undefined,
  log: Logger,
): Promise<AllowlistedTls> {
  // TLS is done here: the injected streams are plaintext to grpc-js
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  try {
    const listening = await startTlsListeners((socket) => injector.injectConnection(socket), tls, address, port, unixSocket, log);
    return {
      port: listening.port,
      close: (graceMs) => {
        listening.close(graceMs);
        injector.drain(graceMs);
      },
    };
  } catch (err) {
    injector.destroy();
    throw err;
  }
}
