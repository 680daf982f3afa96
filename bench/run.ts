/**
 * `npm run bench [-- --quick] [-- --only a,b] [-- --skip a,b]`: measures zonegate against the floor
 * of its own stack (bench/floor.ts: a bare grpc-js server with the same protos), both started in
 * this run, on loopback, and writes bench/results.json. Never part of npm test.
 *
 * Generators: h2load (Debian nghttp2-client) for scenarios that repeat one body; bench/loadgen.ts
 * (node:http2, several processes) where every request must differ (cold tokens, cold chains,
 * 1M tokens). Each scenario's ratios are to the floor measured with the same generator.
 *
 * Every process started here is tracked and killed on exit, error, timeout or Ctrl-C.
 * BENCH_ZONEGATE_BIN runs another build's entry point (A/B comparisons of one change).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PACKAGE_ROOT } from '../src/paths.js';
import { coldChainFrames, createPki, checkRequest, frame, mint, tokenTemplate, writeConfig, type TokenAlg } from './fixtures.js';
import type { Job, Result } from './loadgen.js';

const SCENARIOS = ['floor', 'hot', 'deny', 'cold-es256', 'cold-eddsa', 'cold-rs256', 'cold-chain', 'workers', 'rss'] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values: argv } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    skip: { type: 'string' },
    'rss-tokens': { type: 'string' },
    'gen-procs': { type: 'string' },
    /** Cache sizes for the zonegate config, e.g. tokens=20000,svids=5000 (default: the config's defaults). */
    cache: { type: 'string' },
    out: { type: 'string' },
    /** Write a V8 CPU profile of every zonegate process into this directory (node --cpu-prof). */
    'cpu-prof': { type: 'string' },
  },
});
const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : []);
for (const s of [...list(argv.only), ...list(argv.skip)])
  if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario "${s}"; known: ${SCENARIOS.join(', ')}`);
const selected = new Set<Scenario>(
  (argv.only ? (list(argv.only) as Scenario[]) : [...SCENARIOS]).filter((s) => !list(argv.skip).includes(s)),
);
selected.add('floor'); // every ratio needs it

const QUICK = argv.quick;
const P = {
  requests: Number(process.env.BENCH_REQUESTS ?? (QUICK ? 10_000 : 60_000)),
  streams: Number(process.env.BENCH_STREAMS ?? 50),
  rateSeconds: Number(process.env.BENCH_RATE_SECONDS ?? (QUICK ? 3 : 10)),
  coldRequests: QUICK ? 3_000 : 20_000,
  chainRequests: QUICK ? 600 : 5_000,
  rssTokens: Number(argv['rss-tokens'] ?? (QUICK ? 100_000 : 1_000_000)),
  genProcs: Number(argv['gen-procs'] ?? 2),
  h2loadTimeoutMs: QUICK ? 120_000 : 600_000,
};
const dir = mkdtempSync(join(tmpdir(), 'zg-bench-'));
const log = (...a: unknown[]) => console.error('[bench]', ...a);

// ---- processes: every child is tracked and killed (with its group) whatever happens ----
const children = new Set<ChildProcess>();
function track<T extends ChildProcess>(p: T): T {
  children.add(p);
  p.on('exit', () => children.delete(p));
  return p;
}
function killAll() {
  for (const p of children) {
    try {
      process.kill(-p.pid!, 'SIGKILL'); // detached: its own group (zonegate's workers too)
    } catch {
      p.kill('SIGKILL');
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

const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));

async function stopProcess(p: ChildProcess, timeoutMs = 15_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  const t = setTimeout(() => process.kill(-p.pid!, 'SIGKILL'), timeoutMs);
  await exited(p);
  clearTimeout(t);
}

// ---- measurements of the server processes ----
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);
/** The process and its children (zonegate's workers). */
function tree(pid: number): number[] {
  const kids = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
  return [pid, ...kids];
}
/** CPU time (user+system, µs) of processes, from /proc. */
function cpuMicros(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(f[11]) + Number(f[12]);
  }
  return (ticks * 1e6) / CLK_TCK;
}
function memKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

interface Load {
  rps: number;
  succeeded: number;
  failed: number;
  cpuMicrosPerRequest: number;
  p50Ms?: number;
  p99Ms?: number;
  statuses?: Record<string, number>;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const round = (x: number | undefined, d = 3) => (x === undefined || !Number.isFinite(x) ? undefined : Number(x.toFixed(d)));

function h2load(port: number, data: string, pids: number[], opts: { rps?: number; clients?: number; streams?: number; requests?: number } = {}): Load {
  const logFile = join(dir, `h2load-${Date.now()}.log`);
  const clients = opts.clients ?? 1;
  const args = ['-c', String(clients), '-m', String(opts.streams ?? P.streams), '-d', data, '-H', 'content-type: application/grpc', '-H', 'te: trailers', '--log-file', logFile];
  // --rps is per client
  if (opts.rps) args.push('--rps', String(Math.max(1, Math.round(opts.rps / clients))), '-D', String(P.rateSeconds));
  else args.push('-n', String(opts.requests ?? P.requests));
  const before = cpuMicros(pids);
  const r = spawnSync('h2load', [...args, `http://127.0.0.1:${port}/envoy.service.auth.v3.Authorization/Check`], {
    encoding: 'utf8',
    timeout: P.h2loadTimeoutMs,
    killSignal: 'SIGKILL',
  });
  const cpu = cpuMicros(pids) - before;
  if (r.status !== 0) throw new Error(`h2load failed (${r.signal ?? r.status}): ${r.stderr || r.stdout}`);
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(r.stdout)?.[1] ?? NaN);
  const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(r.stdout);
  const succeeded = Number(m?.[1] ?? 0);
  // h2load counts HTTP 200 as success; gRPC errors arrive as 200 with grpc-status in trailers, so
  // the scenarios check their verdicts with the generator below before they are measured.
  const durations = readFileSync(logFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => Number(l.split('\t')[2]) / 1000)
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  rmSync(logFile, { force: true });
  return {
    rps,
    succeeded,
    failed: Number(m?.[2] ?? 0),
    cpuMicrosPerRequest: Math.round(cpu / Math.max(1, succeeded)),
    ...(opts.rps ? { p50Ms: round(pct(durations, 50)), p99Ms: round(pct(durations, 99)) } : {}),
  };
}

/** Runs bench/loadgen.ts in `P.genProcs` processes; they start together once all are ready. */
async function loadgen(port: number, job: Omit<Job, 'port' | 'index' | 'of' | 'connections' | 'streams'> & { streams?: number }, pids: number[], timeoutMs = 900_000): Promise<Load> {
  const of = P.genProcs;
  const streams = job.streams ?? Math.max(1, Math.round(P.streams / of));
  const procs = Array.from({ length: of }, (_, index) =>
    track(
      // `requests` is the total: each process does its share
      spawn(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'bench/loadgen.ts'), JSON.stringify({ ...job, ...(job.requests ? { requests: Math.ceil(job.requests / of) } : {}), port, index, of, connections: 1, streams })], {
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
  const timer = setTimeout(() => procs.forEach((p) => p.kill('SIGKILL')), timeoutMs);
  try {
    const ready = await Promise.all(lines.map((l) => l()));
    if (ready.some((r) => r !== 'ready')) throw new Error(`load generator: ${ready.join(' | ')}`);
    const before = cpuMicros(pids);
    procs.forEach((p) => p.stdin!.write('go\n'));
    const results = (await Promise.all(lines.map((l) => l()))).map((l) => JSON.parse(l) as Result);
    const cpu = cpuMicros(pids) - before;
    const err = results.find((r) => r.error);
    if (err) throw new Error(`load generator: ${err.error}`);
    const done = results.reduce((a, r) => a + r.done, 0);
    const ok = results.reduce((a, r) => a + r.ok, 0);
    const seconds = Math.max(...results.map((r) => r.seconds));
    const statuses: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
    const lat = job.noLatencies ? [] : results.flatMap((r) => r.latenciesUs ?? []).sort((a, b) => a - b);
    return {
      rps: round(done / seconds, 1)!,
      succeeded: ok,
      failed: done - ok,
      cpuMicrosPerRequest: Math.round(cpu / Math.max(1, done)),
      ...(job.rate ? { p50Ms: round(pct(lat, 50)! / 1000), p99Ms: round(pct(lat, 99)! / 1000) } : {}),
      statuses,
    };
  } finally {
    clearTimeout(timer);
    procs.forEach((p) => p.kill('SIGKILL'));
  }
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

interface Server {
  proc: ChildProcess;
  port: number;
  opsPort?: number;
  pids: () => number[];
  stop(): Promise<void>;
}

async function startFloor(): Promise<Server> {
  const proc = track(spawn(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'bench/floor.ts')], { stdio: ['ignore', 'pipe', 'inherit'], detached: true }));
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('floor: no port in 20 s')), 20_000);
    proc.stdout!.once('data', (d: Buffer) => (clearTimeout(t), resolve(Number(d.toString().trim()))));
    proc.once('exit', (c) => reject(new Error(`floor exited ${c}`)));
  });
  return { proc, port, pids: () => [proc.pid!], stop: () => stopProcess(proc) };
}

/** zonegate on the bench config; its log goes to a file, as a container runtime would take it. */
async function startZonegate(config: string, workers: number, name: string): Promise<Server> {
  const [port, opsPort] = [await freePort(), await freePort()];
  const out = openSync(join(dir, `${name}.log`), 'w');
  const proc = track(
    // with the V8 flags the image runs it with (Dockerfile ENTRYPOINT)
    spawn(process.execPath, ['--max-semi-space-size=16', '--heap-growing-percent=100', ...(argv['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', argv['cpu-prof']] : []), process.env.BENCH_ZONEGATE_BIN ?? join(PACKAGE_ROOT, 'bin/zonegate.js'), 'serve', '--config', config, '--workers', String(workers)], {
      env: { ...process.env, ZONEGATE_GRPC_PORT: String(port), ZONEGATE_OPS_PORT: String(opsPort), ZONEGATE_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info' },
      stdio: ['ignore', out, 'inherit'],
      detached: true,
    }),
  );
  closeSync(out);
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`zonegate exited ${proc.exitCode}; see ${join(dir, `${name}.log`)}`);
    if (await fetch(`http://127.0.0.1:${opsPort}/readyz`).then((r) => r.ok, () => false)) break;
    if (i > 200) throw new Error('zonegate did not become ready in 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const pids = tree(proc.pid!);
  return { proc, port, opsPort, pids: () => pids, stop: () => stopProcess(proc) };
}

/** Heap figures (MB) from a server's /metrics. */
async function heap(opsPort: number | undefined): Promise<Record<string, number | undefined>> {
  const text = await fetch(`http://127.0.0.1:${opsPort}/metrics`).then((r) => r.text(), () => '');
  const get = (name: string) => round(Number(new RegExp(`^zonegate_${name} ([\\d.e+]+)$`, 'm').exec(text)?.[1]) / 2 ** 20, 1);
  return { heapUsedMB: get('nodejs_heap_size_used_bytes'), heapTotalMB: get('nodejs_heap_size_total_bytes'), externalMB: get('nodejs_external_memory_bytes') };
}

async function main() {
  if (spawnSync('h2load', ['--version']).status !== 0) throw new Error('h2load is missing: apt-get install nghttp2-client');
  log(`scenarios: ${[...selected].join(', ')}${QUICK ? ' (quick)' : ''}; work dir ${dir}`);
  const pki = await createPki(dir);
  const cache = Object.fromEntries(list(argv.cache).map((kv) => kv.split('=')).map(([k, v]) => [k!, Number(v)]));
  const config = writeConfig(dir, cache);
  const file = (name: string, data: Buffer) => (writeFileSync(join(dir, name), data), join(dir, name));
  const svid = pki.svids.ES256;
  const hotToken = mint(svid, 'ES256');
  const hot = file('hot.bin', frame(checkRequest(svid.certPemEncoded, hotToken)));
  const badToken = hotToken.slice(0, -6) + (hotToken.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA');
  const deny = file('deny.bin', frame(checkRequest(svid.certPemEncoded, badToken)));
  const templates: Partial<Record<TokenAlg, string>> = {};
  for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) templates[alg] = file(`template-${alg}.json`, Buffer.from(JSON.stringify(tokenTemplate(pki.svids[alg], alg))));

  const floor = await startFloor();
  const zg = await startZonegate(config, 1, 'zonegate');
  const results: Record<string, unknown> = {};
  const ratio = (a: number | undefined, b: number | undefined) => round((a ?? NaN) / (b ?? NaN));
  try {
    // the verdicts each scenario relies on, checked once (h2load counts any HTTP 200 as success)
    // read from the decision counter, so it holds at any log level (BENCH_LOG_LEVEL=warn)
    const decided = async (labels: string) => {
      const text = await fetch(`http://127.0.0.1:${zg.opsPort}/metrics`).then((r) => r.text());
      const line = text.split('\n').find((l) => l.startsWith(`zonegate_decisions_total{${labels}}`));
      return Number(line?.split(' ').pop() ?? 0);
    };
    const verdict = async (data: string, labels: string) => {
      const before = await decided(labels);
      const r = await loadgen(zg.port, { frames: data, repeat: true, requests: 4, streams: 1 }, zg.pids());
      if (r.failed !== 0 || r.succeeded === 0) throw new Error(`verdict check: gRPC statuses ${JSON.stringify(r.statuses)}`);
      const after = await decided(labels);
      if (after - before !== r.succeeded) throw new Error(`verdict check: ${r.succeeded} calls, but ${after - before} decisions counted as {${labels}}`);
      log(`verdict {${labels}}: ok`);
    };
    await verdict(hot, 'result="allow",reason=""');
    await verdict(deny, 'result="deny",reason="ERR_TOKEN_SIGNATURE"');

    log('warm-up');
    h2load(floor.port, hot, floor.pids(), { requests: 5000 });
    h2load(zg.port, hot, zg.pids(), { requests: 5000 });

    const floorMax = h2load(floor.port, hot, floor.pids());
    const rate = Math.max(1, Math.round(floorMax.rps / 2));
    const floorRate = h2load(floor.port, hot, floor.pids(), { rps: rate });
    results.floor = { generator: 'h2load', ...floorMax, atHalfFloor: floorRate };
    log('floor', floorMax.rps, 'rps; fixed rate', rate);
    // the Node generator's own ceiling, on the same floor: its ratios are to this
    const genMax = await loadgen(floor.port, { frames: hot, repeat: true, requests: P.requests }, floor.pids());
    const genSaturated = genMax.rps < rate * 1.05;
    const genRate = genSaturated ? undefined : await loadgen(floor.port, { frames: hot, repeat: true, rate, seconds: P.rateSeconds }, floor.pids());
    results['floor-loadgen'] = { generator: 'loadgen', ...genMax, atHalfFloor: genRate ?? null, saturatedAtHalfFloor: genSaturated, ratioToFloor: ratio(genMax.rps, floorMax.rps), cpuRatioToFloor: ratio(genMax.cpuMicrosPerRequest, floorMax.cpuMicrosPerRequest) };
    log('floor with loadgen', genMax.rps, 'rps (its ceiling)');

    for (const [name, data] of [['hot', hot], ['deny', deny]] as const) {
      if (!selected.has(name)) continue;
      const max = h2load(zg.port, data, zg.pids());
      const atRate = h2load(zg.port, data, zg.pids(), { rps: rate });
      results[name] = { generator: 'h2load', ...max, atHalfFloor: atRate, ratioToFloor: ratio(max.rps, floorMax.rps), cpuRatioToFloor: ratio(max.cpuMicrosPerRequest, floorMax.cpuMicrosPerRequest), p99RatioToFloor: ratio(atRate.p99Ms, floorRate.p99Ms) };
      log(name, max.rps, 'rps', `${ratio(max.rps, floorMax.rps)} of floor`);
    }

    const cold = async (name: string, job: Omit<Job, 'port' | 'index' | 'of' | 'connections' | 'streams'>, rateJob: (n: number) => Promise<Omit<Job, 'port' | 'index' | 'of' | 'connections' | 'streams'>> | undefined) => {
      const max = await loadgen(zg.port, job, zg.pids());
      // A fixed rate the scenario cannot sustain measures a queue, not a latency: reported as saturated.
      const saturated = max.rps < rate * 1.05 || genRate === undefined;
      const rj = saturated ? undefined : await rateJob?.(rate * P.rateSeconds);
      const atRate = rj ? await loadgen(zg.port, rj, zg.pids()) : undefined;
      results[name] = {
        generator: 'loadgen',
        ...max,
        ...(atRate ? { atHalfFloor: atRate, p99RatioToFloor: ratio(atRate.p99Ms, genRate?.p99Ms) } : { atHalfFloor: null, saturatedAtHalfFloor: saturated }),
        // Against the h2load floor: these scenarios are bound by the server, well below the
        // generator's own ceiling (floor-loadgen); against that ceiling too, for comparison.
        ratioToFloor: ratio(max.rps, floorMax.rps),
        ratioToLoadgenFloor: ratio(max.rps, genMax.rps),
        cpuRatioToFloor: ratio(max.cpuMicrosPerRequest, floorMax.cpuMicrosPerRequest),
      };
      log(name, max.rps, 'rps', `${ratio(max.rps, floorMax.rps)} of the floor`, JSON.stringify(max.statuses));
    };
    for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
      const name = `cold-${alg.toLowerCase()}` as Scenario;
      if (!selected.has(name)) continue;
      await cold(name, { template: templates[alg]!, presign: true, requests: P.coldRequests }, () => Promise.resolve({ template: templates[alg]!, presign: true, rate, seconds: P.rateSeconds }));
    }
    if (selected.has('cold-chain')) {
      log(`issuing ${P.chainRequests} certificates`);
      const chains = file('chains.bin', await coldChainFrames(pki, P.chainRequests));
      await cold('cold-chain', { frames: chains, requests: P.chainRequests }, async (n) => ({ frames: file('chains-rate.bin', await coldChainFrames(pki, n)), rate, seconds: P.rateSeconds }));
    }

    if (selected.has('workers')) {
      // Four connections, so the cluster's round-robin has something to spread.
      const one = h2load(zg.port, hot, zg.pids(), { clients: 4, streams: Math.round(P.streams / 4) });
      const zg2 = await startZonegate(config, 2, 'zonegate-2w');
      try {
        h2load(zg2.port, hot, zg2.pids(), { requests: 5000, clients: 4, streams: 12 });
        const two = h2load(zg2.port, hot, zg2.pids(), { clients: 4, streams: Math.round(P.streams / 4) });
        results.workers = { generator: 'h2load', clients: 4, one, two, speedup: ratio(two.rps, one.rps) };
        log('workers: 1 →', one.rps, '2 →', two.rps);
      } finally {
        await zg2.stop();
      }
    }
  } finally {
    await Promise.all([floor.stop(), zg.stop()]);
  }

  if (selected.has('rss')) {
    // A fresh server: its peak RSS is this scenario's, after P.rssTokens distinct ES256 tokens.
    const zr = await startZonegate(config, 1, 'zonegate-rss');
    try {
      const pid = zr.proc.pid!;
      const startRss = memKb(pid, 'VmRSS');
      let peak = startRss;
      const poll = setInterval(() => (peak = Math.max(peak, memKb(pid, 'VmRSS'))), 250);
      log(`rss: ${P.rssTokens} distinct tokens`);
      const r = await loadgen(zr.port, { template: templates.ES256!, requests: P.rssTokens, noLatencies: true }, zr.pids(), 3_600_000);
      clearInterval(poll);
      results.rss = {
        generator: 'loadgen',
        tokens: P.rssTokens,
        rps: r.rps,
        succeeded: r.succeeded,
        failed: r.failed,
        statuses: r.statuses,
        startRssMB: round(startRss / 1024, 1),
        peakRssMB: round(Math.max(peak, memKb(pid, 'VmHWM')) / 1024, 1),
        endRssMB: round(memKb(pid, 'VmRSS') / 1024, 1),
        atEnd: await heap(zr.opsPort),
      };
      log('rss', JSON.stringify(results.rss));
    } finally {
      await zr.stop();
    }
  }

  const out = {
    date: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGB: round(totalmem() / 2 ** 30, 1), node: process.version, h2load: spawnSync('h2load', ['--version'], { encoding: 'utf8' }).stdout.trim() },
    method: { cache, streams: P.streams, requests: P.requests, rateSeconds: P.rateSeconds, coldRequests: P.coldRequests, chainRequests: P.chainRequests, generatorProcesses: P.genProcs, quick: QUICK },
    results,
  };
  const target = argv.out ?? join(PACKAGE_ROOT, 'bench/results.json');
  writeFileSync(target, `${JSON.stringify(out, null, 2)}\n`);
  console.log(table(results));
  log(`written: ${target}`);
  rmSync(dir, { recursive: true, force: true });
}

/** The results as the markdown table BENCHMARKS.md shows. */
function table(results: Record<string, unknown>): string {
  const rows = ['| scenario | generator | max rps | ratio to floor | CPU µs/req | floor CPU ÷ CPU | p50 ms @50% | p99 ms @50% | p99 ratio |', '|---|---|---|---|---|---|---|---|---|'];
  const floorCpu = (results.floor as Load | undefined)?.cpuMicrosPerRequest ?? NaN;
  for (const [name, v] of Object.entries(results)) {
    const r = v as Load & { generator?: string; ratioToFloor?: number; p99RatioToFloor?: number; atHalfFloor?: Load | null; saturatedAtHalfFloor?: boolean };
    if (typeof r.rps !== 'number' || name === 'rss') continue;
    const at = r.atHalfFloor;
    rows.push(`| ${name} | ${r.generator} | ${Math.round(r.rps)} | ${r.ratioToFloor ?? '1.00'} | ${r.cpuMicrosPerRequest} | ${round(floorCpu / r.cpuMicrosPerRequest, 2)} | ${at?.p50Ms ?? (r.saturatedAtHalfFloor ? 'saturated' : '–')} | ${at?.p99Ms ?? '–'} | ${r.p99RatioToFloor ?? (name.startsWith('floor') ? '1.00' : '–')} |`);
  }
  const w = results.workers as { one: Load; two: Load; speedup: number } | undefined;
  if (w) rows.push('', `workers (h2load, 4 connections): 1 worker ${Math.round(w.one.rps)} rps, 2 workers ${Math.round(w.two.rps)} rps, ×${w.speedup}`);
  const rss = results.rss as { tokens: number; peakRssMB: number; startRssMB: number; rps: number } | undefined;
  if (rss) rows.push('', `rss: ${rss.tokens} distinct tokens at ${rss.rps} rps: peak RSS ${rss.peakRssMB} MB (at start ${rss.startRssMB} MB)`);
  return rows.join('\n');
}

main().catch((err) => {
  console.error(err);
  killAll();
  process.exit(1);
});
