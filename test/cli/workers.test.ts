/**
 * `zonegate serve --workers 2` as a real process tree: both workers answer Checks on the one
 * shared port, the primary's /readyz and /metrics speak for all of them (each metric merged by
 * its meaning, src/metrics.ts), and SIGTERM drains every worker and exits 0.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { BIN, serve, zonegate } from '../helpers/cli.js';
import { checkClient, checkRequest, exampleCert } from '../helpers/zonegate.js';
import { until } from '../helpers/wait.js';

/** A client on its own connection (no shared subchannel), so the cluster can route it to any worker. */
const client = (port: number) => checkClient(port, { 'grpc.use_local_subchannel_pool': 1 });


/** The value of one series in Prometheus text. */
const sample = (text: string, series: string) => text.split('\n').find((l) => l.startsWith(`${series} `))?.slice(series.length + 1);

/** The example config in a directory of its own, its bundles named by absolute path. */
function exampleConfig(dir: string): { file: string; text: string; authorities: Record<string, number> } {
  const file = join(dir, 'zonegate.yaml');
  const authorities: Record<string, number> = {};
  const text = readFileSync(join(EXAMPLES_DIR, 'zonegate.yaml'), 'utf8').replace(/bundle: (certs\/(zone-[ab])\.root\.pem)/g, (_m, path: string, zone: string) => {
    const abs = join(EXAMPLES_DIR, path);
    authorities[`${zone}.example`] = readFileSync(abs, 'utf8').split('BEGIN CERTIFICATE').length - 1;
    return `bundle: ${abs}`;
  });
  expect(Object.keys(authorities)).toHaveLength(2);
  writeFileSync(file, text);
  return { file, text, authorities };
}

describe('serve --workers', () => {
  it('two workers share the gRPC port and both decide; /metrics adds up events and reads state once; SIGTERM drains both and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-workers-'));
    const { file, text, authorities } = exampleConfig(dir);
    const s = await serve(process.execPath, [BIN, 'serve', '--config', file, '--workers', '2']);
    const started = s.lines.find((l) => l.msg === 'zonegate started');
    const metrics = async () => (await fetch(`http://127.0.0.1:${s.opsPort}/metrics`)).text();
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
      // events add up across the workers
      let m = await metrics();
      expect(sample(m, 'zonegate_decisions_total{result="allow",reason=""}')).toBe('8');
      expect(m).toMatch(/zonegate_decisions_total\{result="deny",reason="ERR_[A-Z_]+"\} 8/);
      expect(sample(m, 'zonegate_check_duration_seconds_count{result="allow"}')).toBe('8');
      // state every worker holds for itself reads as one worker's: each bundle's authorities once
      for (const [td, n] of Object.entries(authorities)) expect(sample(m, `zonegate_bundle_authorities{trust_domain="${td}",kind="x509"}`)).toBe(String(n));
      expect(sample(m, 'zonegate_config_last_reload_successful')).toBe('1');
      // process metrics: one series per process, the primary's own included
      for (const w of ['1', '2', 'primary']) expect(sample(m, `zonegate_process_cpu_seconds_total{worker="${w}"}`)).toMatch(/^[\d.e-]+$/);

      // each worker sees the file change and refuses it, then takes the fixed one
      const logged = (msg: string) => s.lines.filter((l) => l.msg === msg || String(l.msg).startsWith(`${msg}:`)).length;
      writeFileSync(file, `${text}bogus: 1\n`);
      await until(() => logged('config reload failed') === 2 || undefined, 10_000, 'both workers refused the file');
      m = await metrics();
      expect(sample(m, 'zonegate_config_last_reload_successful')).toBe('0');
      expect(sample(m, 'zonegate_config_reload_total{result="error"}')).toBe('2');
      writeFileSync(file, `${text}# fixed\n`);
      await until(() => logged('config reloaded') === 2 || undefined, 10_000, 'both workers reloaded');
      m = await metrics();
      expect(sample(m, 'zonegate_config_last_reload_successful')).toBe('1');
      expect(sample(m, 'zonegate_config_reload_total{result="ok"}')).toBe('2');
      for (const [td, n] of Object.entries(authorities)) expect(sample(m, `zonegate_bundle_authorities{trust_domain="${td}",kind="x509"}`)).toBe(String(n));
      expect(sample(m, 'zonegate_decisions_total{result="allow",reason=""}')).toBe('8');
    } finally {
      s.signal('SIGTERM');
    }
    const code = await s.exited();
    expect(code).toBe(0);
    await until(() => s.lines.filter((l) => l.msg === 'zonegate stopped').length === 3, 5000, 'three processes stopped');
    const workerPids = s.lines.filter((l) => l.msg === 'worker started').map((l) => l.pid as number);
    expect(s.lines.filter((l) => l.msg === 'zonegate stopped').map((l) => l.pid).sort()).toEqual([...workerPids, started!.pid].sort());
    for (const pid of workerPids) expect(() => process.kill(pid, 0)).toThrow();
    rmSync(dir, { recursive: true, force: true });
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
