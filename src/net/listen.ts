/** Starting and stopping zonegate's HTTP(S) listeners (ops, HTTP authorization, bundle endpoint). */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

/**
 * The longest a request may take to arrive whole, headers and body, from its first byte: a
 * proxy sends an authorization request at once, so a request still arriving after this is a
 * stalled or hostile client. The HTTP authorization mode's requestTimeout and headersTimeout,
 * and the http2 transport's limit for a request message (src/envoy/h2.ts).
 */
export const REQUEST_TIMEOUT_MS = 10_000;

export interface Listening {
  /** The port actually bound (useful when the config says 0). */
  readonly port: number;
  /**
   * Stops accepting connections and closes the idle ones; requests in flight get up to `graceMs`
   * (default 0) to be answered, each on a connection that then closes; then the rest is closed.
   * Resolves once every connection is closed.
   */
  close(graceMs?: number): Promise<void>;
}

/** Listens on `address:port` and resolves once bound (rejects when the port cannot be bound). */
export async function listen(server: Server, port: number, address: string): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  /** Connections (TLS ones once the handshake is done), and those with a request being answered. */
  const connections = new Set<Socket>();
  const busy = new WeakSet<Socket>();
  /** Responses not finished yet: while closing, each goes out with `connection: close`. */
  const open = new Set<ServerResponse>();
  let closing = false;
  const lastOnConnection = (res: ServerResponse) => {
    if (!res.headersSent) res.setHeader('connection', 'close');
  };
  /** Closes the connections no request is being answered on (node's closeIdleConnections leaves a new, silent one open). */
  const closeIdle = () => {
    for (const c of connections) if (!busy.has(c)) c.destroy();
  };
  server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', (c: Socket) => {
    connections.add(c);
    c.once('close', () => connections.delete(c));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const c = req.socket;
    if (closing) lastOnConnection(res);
    busy.add(c);
    open.add(res);
    res.once('close', () => open.delete(res));
    res.once('finish', () => {
      busy.delete(c);
      // answered while closing: its connection is idle now (connection: close ends it anyway)
      if (closing) setImmediate(closeIdle);
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: (graceMs = 0) =>
      new Promise<void>((resolve) => {
        closing = true;
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        server.once('close', () => clearTimeout(timer));
        server.close(() => resolve());
        for (const res of open) lastOnConnection(res);
        closeIdle();
        if (graceMs <= 0) server.closeAllConnections();
      }),
  };
}
