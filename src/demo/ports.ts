/** Choosing ports before the configs that name them are written (the demo's --port-base 0, the test suites). */
import { createServer, type Server } from 'node:net';

/**
 * `n` distinct ports nothing listens on now at `address`: each is bound, all are held together
 * while the others are chosen (so they differ), then released. Someone else can take one before
 * the caller binds it; the caller's listener then fails, it never shares a port.
 */
export async function freePorts(n: number, address = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = createServer();
      servers.push(s);
      ports.push(await new Promise<number>((resolve, reject) => s.once('error', reject).listen(0, address, () => resolve((s.address() as { port: number }).port))));
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}
