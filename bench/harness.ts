/**
 * What every benchmark of bench/run.ts shares: the processes it starts (tracked, each in its own
 * group, killed on exit, error, timeout or Ctrl-C), CPU time and memory read from /proc, the two
 * load generators (h2load for a request that repeats, bench/loadgen.ts for requests that differ)
 * and the servers (the grpc-js floor, zonegate).
 *
 * Every Node child runs on the Node that runs the harness (process.execPath), with tsx resolved
 * from this package, so `/path/to/another/node --import tsx bench/run.ts` measures that Node.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePorts } from '../src/demo/ports.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import type { Job, Result } from './loadgen.js';


/** The V8 flags the image runs zonegate with (Dockerfile ENTRYPOINT): the bench measures what ships. */
export const IMAGE_NODE_FLAGS = ['--max-semi-space-size=16', '--heap-growing-percent=100'];

export const log = (...a: unknown[]) => console.error('[bench]', ...a);

/** `--import` for Node children: tsx's loader by file URL, so it resolves from any working directory. */
export const TSX_IMPORT = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

export interface Params {
  /** Closed-loop requests per phase. */
  readonly requests: number;
  /** Streams in flight (h2load -m; loadgen: divided among its processes). */
  readonly streams: number;
  readonly rateSeconds: number;
  readonly coldRequests: number;
  readonly chainRequests: number;
  readonly rssTokens: number;
  readonly genProcs: number;
  readonly h2loadTimeoutMs: number;
}

export function params(quick: boolean, o: { rssTokens?: string; genProcs?: string } = {}): Params {
  return {
    requests: Number(process.env.BENCH_REQUESTS ?? (quick ? 10_000 : 60_000)),
    streams: Number(process.env.BENCH_STREAMS ?? 50),
    rateSeconds: Number(process.env.BENCH_RATE_SECONDS ?? (quick ? 3 : 10)),
    coldRequests: quick ? 3_000 : 20_000,
    chainRequests: quick ? 600 : 5_000,
    rssTokens: Number(o.rssTokens ?? (quick ? 100_000 : 1_000_000)),
    genProcs: Number(o.genProcs ?? 2),
    h2loadTimeoutMs: quick ? 120_000 : 600_000,
  };
}

// ---- processes: every child is tracked and killed (with its group) whatever happens ----
const children = new Set<ChildProcess>();
/** Processes started elsewhere (Envoy, by the test helper): killed by pid. */
const foreign = new Set<number>();

export function track<T extends ChildProcess>(p: T): T {
  children.add(p);
  p.on('exit', () => children.delete(p));
  return p;
}
export function trackPid(pid: number): () => void {
  foreign.add(pid);
  return () => foreign.delete(pid);
}
export function killAll(): void {
  for (const p of children) {
    try {
      process.kill(-p.pid!, 'SIGKILL'); // detached: its own group (zonegate's workers too)
    } catch {
      p.kill('SIGKILL');
    }
  }
  for (const pid of foreign) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    log(`${sig}: stopping every server and generator`);
    killAll();
    process.exit(130);
  });

export const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));

export async function stopProcess(p: ChildProcess, timeoutMs = 15_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  const t = setTimeout(() => process.kill(-p.pid!, 'SIGKILL'), timeoutMs);
  await exited(p);
  clearTimeout(t);
}

// ---- measurements of the server processes ----
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);
/** The process and its children (zonegate's workers). */
export function tree(pid: number): number[] {
  const kids = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
  return [pid, ...kids];
}
/** CPU time (user+system, µs) of processes (every thread of each), from /proc. */
export function cpuMicros(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(f[11]) + Number(f[12]);
  }
  return (ticks * 1e6) / CLK_TCK;
}
export function memKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

/**
 * The processes whose CPU a phase measures: one list (its total is the figure), or named groups
 * (each reported apart, e.g. Envoy A, Envoy B and zonegate, and their total).
 */
export type Measured = readonly number[] | Readonly<Record<string, readonly number[]>>;
const groupsOf = (m: Measured): Record<string, readonly number[]> => (Array.isArray(m) ? { total: m as readonly number[] } : (m as Record<string, readonly number[]>));
function cpuSnapshot(m: Measured): Record<string, number> {
  return Object.fromEntries(Object.entries(groupsOf(m)).map(([k, pids]) => [k, cpuMicros(pids)]));
}
/** CPU µs per request: the total, and per group when there are named groups. */
function cpuPer(m: Measured, before: Record<string, number>, requests: number): Pick<Load, 'cpuMicrosPerRequest' | 'cpuMicrosPerRequestBy'> {
  const after = cpuSnapshot(m);
  const n = Math.max(1, requests);
  const by = Object.fromEntries(Object.keys(after).map((k) => [k, Math.round((after[k]! - before[k]!) / n)]));
  const total = Math.round(Object.keys(after).reduce((s, k) => s + after[k]! - before[k]!, 0) / n);
  return Array.isArray(m) ? { cpuMicrosPerRequest: total } : { cpuMicrosPerRequest: total, cpuMicrosPerRequestBy: by };
}

export interface Load {
  rps: number;
  succeeded: number;
  failed: number;
  /** CPU µs per request of every measured process together. */
  cpuMicrosPerRequest: number;
  /** The same per named group (Envoy A, Envoy B, zonegate), when the phase measured groups. */
  cpuMicrosPerRequestBy?: Record<string, number>;
  p50Ms?: number;
  p99Ms?: number;
  /** gRPC statuses (loadgen, gRPC), HTTP statuses (loadgen, HTTP) or status classes (h2load). */
  statuses?: Record<string, number>;
}

export const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
export const round = (x: number | undefined, d = 3) => (x === undefined || !Number.isFinite(x) ? undefined : Number(x.toFixed(d)));
export const ratio = (a: number | undefined, b: number | undefined) => round((a ?? NaN) / (b ?? NaN));

/** What h2load sends: one URL, an optional body file and headers ("name: value"). */
export interface H2Target {
  readonly url: string;
  readonly data?: string;
  readonly headers?: readonly string[];
}

/** A gRPC Check call on `port` with the length-prefixed frame in the file `data`. */
export const grpcTarget = (port: number, data: string): H2Target => ({
  url: `http://127.0.0.1:${port}${CHECK_PATH}`,
  data,
  headers: ['content-type: application/grpc', 'te: trailers'],
});

export interface LoadgenJob extends Omit<Job, 'port' | 'index' | 'of' | 'connections' | 'streams'> {
  readonly streams?: number;
}

/** The load generators and servers of one run: its work directory and parameters. */
export class Harness {
  constructor(
    readonly dir: string,
    readonly P: Params,
    private readonly opts: { cpuProf?: string | undefined; zonegateBin?: string | undefined; logLevel?: string | undefined } = {},
  ) {}

  /**
   * h2load, 1 connection × P.streams by default: a closed loop of P.requests, or a fixed rate
   * (`rps`, for P.rateSeconds) with p50/p99 from its per-request log. h2load counts only 2xx/3xx
   * as succeeded (a gRPC error is an HTTP 200 with grpc-status in trailers: callers check gRPC
   * verdicts apart); CPU is per request done, whatever its status.
   */
  h2load(target: H2Target, measured: Measured, opts: { rps?: number; clients?: number; streams?: number; requests?: number } = {}): Load {
    const logFile = join(this.dir, `h2load-${Date.now()}.log`);
    const clients = opts.clients ?? 1;
    const args = ['-c', String(clients), '-m', String(opts.streams ?? this.P.streams), '--log-file', logFile];
    if (target.data) args.push('-d', target.data);
    for (const h of target.headers ?? []) args.push('-H', h);
    // --rps is per client
    if (opts.rps) args.push('--rps', String(Math.max(1, Math.round(opts.rps / clients))), '-D', String(this.P.rateSeconds));
    else args.push('-n', String(opts.requests ?? this.P.requests));
    const before = cpuSnapshot(measured);
    const r = spawnSync('h2load', [...args, target.url], { encoding: 'utf8', timeout: this.P.h2loadTimeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 });
    const m = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(r.stdout ?? '');
    const done = Number(m?.[1] ?? 0);
    const cpu = cpuPer(measured, before, done);
    if (r.status !== 0) throw new Error(`h2load failed (${r.signal ?? r.status}): ${r.stderr || r.stdout}`);
    // req/s counts every request done, whatever its status
    const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(r.stdout)?.[1] ?? NaN);
    const sc = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(r.stdout);
    const statuses = sc ? Object.fromEntries(['2xx', '3xx', '4xx', '5xx'].map((k, i) => [k, Number(sc[i + 1])]).filter(([, v]) => v !== 0)) : {};
    const durations = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => Number(l.split('\t')[2]) / 1000)
      .filter((x) => Number.isFinite(x))
      .sort((a, b) => a - b);
    rmSync(logFile, { force: true });
    return {
      rps,
      succeeded: Number(m?.[2] ?? 0),
      failed: Number(m?.[3] ?? 0),
      ...cpu,
      ...(opts.rps ? { p50Ms: round(pct(durations, 50)), p99Ms: round(pct(durations, 99)) } : {}),
      statuses,
    };
  }

  /** Runs bench/loadgen.ts in `P.genProcs` processes (or `procs`); they start together once all are ready. */
  async loadgen(port: number, job: LoadgenJob, measured: Measured, o: { timeoutMs?: number; procs?: number } = {}): Promise<Load> {
    const of = o.procs ?? this.P.genProcs;
    const streams = job.streams ?? Math.max(1, Math.round(this.P.streams / of));
    const procs = Array.from({ length: of }, (_, index) =>
      track(
        // `requests` is the total: each process does its share
        spawn(process.execPath, ['--import', TSX_IMPORT, join(PACKAGE_ROOT, 'bench/loadgen.ts'), JSON.stringify({ ...job, ...(job.requests ? { requests: Math.ceil(job.requests / of) } : {}), port, index, of, connections: 1, streams })], {
          stdio: ['pipe', 'pipe', 'inherit'],
          detached: true,
        }),
      ),
    );
    const lines = procs.map((p) => {
      let buf = '';
      const queue: string[] = [];
      const waiters: ((l: string) => void)[] = [];
      p.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const l = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const w = waiters.shift();
          if (w) w(l);
          else queue.push(l);
        }
      });
      return () =>
        new Promise<string>((resolve, reject) => {
          const q = queue.shift();
          if (q !== undefined) return resolve(q);
          waiters.push(resolve);
          void exited(p).then(() => reject(new Error('load generator exited early')));
        });
    });
    const timer = setTimeout(() => procs.forEach((p) => p.kill('SIGKILL')), o.timeoutMs ?? 900_000);
    try {
      const ready = await Promise.all(lines.map((l) => l()));
      if (ready.some((r) => r !== 'ready')) throw new Error(`load generator: ${ready.join(' | ')}`);
      const before = cpuSnapshot(measured);
      procs.forEach((p) => p.stdin!.write('go\n'));
      const results = (await Promise.all(lines.map((l) => l()))).map((l) => JSON.parse(l) as Result);
      const err = results.find((r) => r.error);
      if (err) throw new Error(`load generator: ${err.error}`);
      const done = results.reduce((a, r) => a + r.done, 0);
      const cpu = cpuPer(measured, before, done);
      const ok = results.reduce((a, r) => a + r.ok, 0);
      const seconds = Math.max(...results.map((r) => r.seconds));
      const statuses: Record<string, number> = {};
      for (const r of results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
      const lat = job.noLatencies ? [] : results.flatMap((r) => r.latenciesUs ?? []).sort((a, b) => a - b);
      return {
        rps: round(done / seconds, 1)!,
        succeeded: ok,
        failed: done - ok,
        ...cpu,
        ...(job.rate ? { p50Ms: round(pct(lat, 50)! / 1000), p99Ms: round(pct(lat, 99)! / 1000) } : {}),
        statuses,
      };
    } finally {
      clearTimeout(timer);
      procs.forEach((p) => p.kill('SIGKILL'));
    }
  }

  /** A bare Check server answering a fixed OK: the grpc-js floor (floor.ts) or the runtime's (floor-h2.ts). */
  async startFloor(script: 'floor.ts' | 'floor-h2.ts' = 'floor.ts'): Promise<Server> {
    const proc = track(spawn(process.execPath, ['--import', TSX_IMPORT, join(PACKAGE_ROOT, 'bench', script)], { stdio: ['ignore', 'pipe', 'inherit'], detached: true }));
    const port = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('floor: no port in 20 s')), 20_000);
      proc.stdout!.once('data', (d: Buffer) => (clearTimeout(t), resolve(Number(d.toString().trim()))));
      proc.once('exit', (c) => reject(new Error(`floor exited ${c}`)));
    });
    return { proc, port, pids: () => [proc.pid!], stop: () => stopProcess(proc) };
  }

  /** zonegate on the bench config; its log goes to a file, as a container runtime would take it. */
  async startZonegate(config: string, workers: number, name: string): Promise<Server> {
    const [port, opsPort] = (await freePorts(2)) as [number, number];
    const out = openSync(join(this.dir, `${name}.log`), 'w');
    const proc = track(
      spawn(
        process.execPath,
        [
          ...IMAGE_NODE_FLAGS,
          ...(this.opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', this.opts.cpuProf] : []),
          this.opts.zonegateBin ?? join(PACKAGE_ROOT, 'bin/zonegate.js'),
          'serve',
          '--config',
          config,
          '--workers',
          String(workers),
        ],
        {
          env: { ...process.env, ZONEGATE_GRPC_PORT: String(port), ZONEGATE_OPS_PORT: String(opsPort), ZONEGATE_LOG_LEVEL: this.opts.logLevel ?? 'info' },
          stdio: ['ignore', out, 'inherit'],
          detached: true,
        },
      ),
    );
    closeSync(out);
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null) throw new Error(`zonegate exited ${proc.exitCode}; see ${join(this.dir, `${name}.log`)}`);
      if (await fetch(`http://127.0.0.1:${opsPort}/readyz`).then((r) => r.ok, () => false)) break;
      if (i > 200) throw new Error('zonegate did not become ready in 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const pids = tree(proc.pid!);
    return { proc, port, opsPort, pids: () => pids, stop: () => stopProcess(proc) };
  }
}

export interface Server {
  proc: ChildProcess;
  port: number;
  opsPort?: number;
  pids: () => number[];
  stop(): Promise<void>;
}

/** zonegate's decision counter for `labels` (e.g. `result="allow",reason=""`), from /metrics: holds at any log level. */
export async function decisions(opsPort: number | undefined, labels: string): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${opsPort}/metrics`).then((r) => r.text());
  const line = text.split('\n').find((l) => l.startsWith(`zonegate_decisions_total{${labels}}`));
  return Number(line?.split(' ').pop() ?? 0);
}

/** Heap figures (MB) from a server's /metrics. */
export async function heap(opsPort: number | undefined): Promise<Record<string, number | undefined>> {
  const text = await fetch(`http://127.0.0.1:${opsPort}/metrics`).then((r) => r.text(), () => '');
  const get = (name: string) => round(Number(new RegExp(`^zonegate_${name} ([\\d.e+]+)$`, 'm').exec(text)?.[1]) / 2 ** 20, 1);
  return { heapUsedMB: get('nodejs_heap_size_used_bytes'), heapTotalMB: get('nodejs_heap_size_total_bytes'), externalMB: get('nodejs_external_memory_bytes') };
}
