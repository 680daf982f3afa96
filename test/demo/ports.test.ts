import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePorts } from '../../src/demo/ports.js';

const bind = (port: number) =>
  new Promise<void>((resolve, reject) => {
    const s = createServer().once('error', reject);
    s.listen(port, '127.0.0.1', () => s.close(() => resolve()));
  });

describe('freePorts', () => {
  it('n distinct ports, each free to bind once chosen', async () => {
    const ports = await freePorts(12);
    expect(ports).toHaveLength(12);
    expect(new Set(ports).size).toBe(12);
    for (const p of ports) expect(p).toBeGreaterThan(0);
    await Promise.all(ports.map(bind));
  });

  it('an address it cannot bind rejects', async () => {
    await expect(freePorts(2, '192.0.2.1')).rejects.toThrow(/EADDRNOTAVAIL/);
    expect(await freePorts(0)).toEqual([]);
  });
});
