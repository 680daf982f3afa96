/**
 * `zonegate serve --workers 2` as a real process tree: both workers answer Checks on the one
 * shared port, the primary's /readyz and /metrics speak for all of them, and SIGTERM drains every
 * worker and exits 0.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, serve, zonegate } from '../helpers/cli.js';
import { checkClient, checkRequest, exampleCert } from '../helpers/zonegate.js';
import { until } from '../helpers/wait.js';

/** A client on its own connection (no shared subchannel), so the cluster can route it to any worker. */
const client = (port: number) => checkClient(port, { 'grpc.use_local_subchannel_pool': 1 });

describe('serve --workers', () => {
  it('two workers share the gRPC port and both decide; /metrics adds them up; SIGTERM drains both and exits 0', async () => {
    const s = await serve(process.execPath, [BIN, 'serve', '--workers', '2']);
    const started = s.lines.find((l) => l.msg === 'zonegate started');
    try {
      expect(started).toMatchObject({ workers: 2, ready: true });
      // each process writes its own lines: a worker's may arrive after the primary's
      await until(() => s.lines.filter((l) => l.msg === 'worker started').length === 2, 5000, 'two workers started');
      expect(s.lines.filter((l) => l.msg === 'worker started').map((l) => l.grpcPort)).toEqual([s.grpcPort, s.grpcPort]);

      // Connections are handed to workers round-robin: eight connections reach both.
      const clients = Array.from({ length: 8 }, () => client(s.grpcPort));
      const results = await Promise.all(
        clients.flatMap(({ check }) => [
          check(checkRequest({ certificate: exampleCert('frontend') })),
          check(checkRequest({ certificate: exampleCert('forged') })),
        ]),
      );
      clients.forEach(({ c }) => c.close());
      expect(results.filter((r, i) => i % 2 === 0)).toEqual(Array(8).fill({ code: 0 }));
      expect(results.filter((r, i) => i % 2 === 1)).toEqual(Array(8).fill({ code: 16 }));
      await until(() => s.lines.filter((l) => l.msg === 'decision').length === 16, 5000, 'sixteen decision lines'); // written asynchronously
      const deciders = new Set(s.lines.filter((l) => l.msg === 'decision').map((l) => l.worker));
      expect([...deciders].sort()).toEqual([1, 2]);

      expect((await fetch(`http://127.0.0.1:${s.opsPort}/readyz`)).status).toBe(200);
      const metrics = await (await fetch(`http://127.0.0.1:${s.opsPort}/metrics`)).text();
      expect(metrics).toContain('zonegate_decisions_total{result="allow",reason=""} 8');
      expect(metrics).toMatch(/zonegate_decisions_total\{result="deny",reason="ERR_[A-Z_]+"\} 8/);
    } finally {
      s.signal('SIGTERM');
    }
    const code = await s.exited();
    expect(code).toBe(0);
    await until(() => s.lines.filter((l) => l.msg === 'zonegate stopped').length === 3, 5000, 'three processes stopped');
    const workerPids = s.lines.filter((l) => l.msg === 'worker started').map((l) => l.pid as number);
    expect(s.lines.filter((l) => l.msg === 'zonegate stopped').map((l) => l.pid).sort()).toEqual([...workerPids, started!.pid].sort());
    for (const pid of workerPids) expect(() => process.kill(pid, 0)).toThrow();
  });

  it('refuses a worker count that is not a whole number', async () => {
    const r = zonegate(['serve', '--workers', '1.5']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--workers must be a whole number');
  });

  it('refuses re-issued JWTs with keys made per worker: the primary publishes one JWKS', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-workers-jwt-'));
    try {
      const file = join(dir, 'zonegate.yaml');
      writeFileSync(file, 'server: {grpc: {address: 127.0.0.1, port: 0}, ops: {address: 127.0.0.1, port: 0}}\nupstream: {default: {mode: jwt}}\n');
      const r = zonegate(['serve', '--config', file, '--workers', '2']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${file}:2: upstream.jwt.keyFile: serve --workers 2 with re-issued JWTs needs a key file`);
      // config validate says the same when told the worker count
      const v = zonegate(['config', 'validate', file, '--workers', '2']);
      expect(v.code).toBe(2);
      expect(v.stderr).toContain(`${file}:2: upstream.jwt.keyFile: serve --workers 2`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
