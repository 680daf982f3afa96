/** Starting and stopping zonegate's HTTP(S) listeners (ops, HTTP authorization, bundle endpoint). */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Listening {
  /** The port actually bound (useful when the config says 0). */
  readonly port: number;
  /** Closes open connections and the listener. */
  close(): Promise<void>;
}

/** Listens on `address:port` and resolves once bound (rejects when the port cannot be bound). */
export async function listen(server: Server, port: number, address: string): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
