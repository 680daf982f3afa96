/**
 * `npm run bench:transports [-- --rounds N] [-- --requests N]`: the two gRPC transports of
 * zonegate (server.grpc.transport: grpc-js and http2) on the same hot Check body, directly (no
 * Envoy), with two floors beside them: a bare grpc-js server (bench/floor.ts) and a bare
 * node:http2 one (bench/floor-h2.ts, the runtime's limit). h2load -c1 -m50, interleaved rounds
 * (the order rotates every round, so a slower stretch of a shared machine falls on each), medians
 * and per-round ratios of rps and of CPU per request. Prints JSON; writes nothing. Never part of
 * npm test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts } from '../src/demo/ports.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { checkRequest, createPki, frame, mint, writeConfig } from './fixtures.js';
import { IMAGE_NODE_FLAGS } from './harness.js';

const { values: argv } = parseArgs({ options: { rounds: { type: 'string' }, requests: { type: 'string' }, streams: { type: 'string' } } });
const ROUNDS = Number(argv.rounds ?? 5);
const REQUESTS = Number(argv.requests ?? 60_000);
const STREAMS = Number(argv.streams ?? 50);
const dir = mkdtempSync(join(tmpdir(), 'zg-bench-transports-'));
const log = (...a: unknown[]) => console.error('[transports]', ...a);

const children = new Set<ChildProcess>();
const killAll = () => children.forEach((p) => p.kill('SIGKILL'));
process.on('exit', killAll);
process.on('SIGINT', () => process.exit(130));

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);
const cpuMicros = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK;
};

interface Target {
  name: string;
  pid: number;
  port: number;
  opsPort?: number;
}

async function zonegate(name: string, config: string, transport: string): Promise<Target> {
  const [port, opsPort] = (await freePorts(2)) as [number, number];
  const out = openSync(join(dir, `${name}.log`), 'w');
  const p = spawn(process.execPath, [...IMAGE_NODE_FLAGS, join(PACKAGE_ROOT, 'bin/zonegate.js'), 'serve', '--config', config, '--workers', '1'], {
    env: { ...process.env, ZONEGATE_GRPC_PORT: String(port), ZONEGATE_OPS_PORT: String(opsPort), ZONEGATE_GRPC_TRANSPORT: transport, ZONEGATE_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info' },
    stdio: ['ignore', out, 'inherit'],
  });
  children.add(p);
  closeSync(out);
  for (let i = 0; !(await fetch(`http://127.0.0.1:${opsPort}/readyz`).then((r) => r.ok, () => false)); i++) {
    if (p.exitCode !== null || i > 200) throw new Error(`${name} did not become ready; see ${join(dir, `${name}.log`)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { name, pid: p.pid!, port, opsPort };
}

/** A floor server (it prints its port). */
async function floor(name: string, file: string): Promise<Target> {
  const p = spawn(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'bench', file)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(p);
  const port = await new Promise<number>((resolve) => p.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  return { name, pid: p.pid!, port };
}

function h2load(t: Target, data: string, requests: number): { rps: number; cpuMicrosPerRequest: number; succeeded: number } {
  const before = cpuMicros(t.pid);
  // a grpc-timeout on every call, as Envoy sends one: each server arms a deadline per call (10 s, not
  // ext_authz's default 200 ms, so that a slow stretch of a shared machine never turns allows into errors)
  const r = spawnSync('h2load', ['-c', '1', '-m', String(STREAMS), '-n', String(requests), '-d', data, '-H', 'content-type: application/grpc', '-H', 'te: trailers', '-H', 'grpc-timeout: 10S', `http://127.0.0.1:${t.port}/envoy.service.auth.v3.Authorization/Check`], { encoding: 'utf8', timeout: 600_000 });
  const cpu = cpuMicros(t.pid) - before;
  if (r.status !== 0) throw new Error(`h2load: ${r.stderr || r.stdout}`);
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(r.stdout)?.[1] ?? NaN);
  const succeeded = Number(/requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(r.stdout)?.[1] ?? 0);
  return { rps, cpuMicrosPerRequest: Math.round(cpu / Math.max(1, succeeded)), succeeded };
}

/** h2load counts any HTTP 200: the allow decisions zonegate counted must match the calls. */
async function allowed(t: Target): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${t.opsPort}/metrics`).then((r) => r.text());
  return Number(text.split('\n').find((l) => l.startsWith('zonegate_decisions_total{result="allow",reason=""}'))?.split(' ').pop() ?? 0);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

async function main() {
  if (spawnSync('h2load', ['--version']).status !== 0) throw new Error('h2load is missing: apt-get install nghttp2-client');
  const pki = await createPki(dir);
  const config = writeConfig(dir);
  const svid = pki.svids.ES256;
  const hot = join(dir, 'hot.bin');
  writeFileSync(hot, frame(checkRequest(svid.certPemEncoded, mint(svid, 'ES256'))));
  const targets = [
    await zonegate('grpc-js', config, 'grpc-js'),
    await zonegate('http2', config, 'http2'),
    await floor('floor (bare grpc-js)', 'floor.ts'),
    await floor('runtime floor (bare node:http2)', 'floor-h2.ts'),
  ];
  for (const t of targets) {
    const before = t.opsPort ? await allowed(t) : 0;
    const w = h2load(t, hot, 5000); // warm-up, and the verdict check
    if (t.opsPort && (await allowed(t)) - before !== w.succeeded) throw new Error(`${t.name}: ${w.succeeded} calls, ${(await allowed(t)) - before} allows counted`);
  }
  const rounds: Record<string, { rps: number; cpuMicrosPerRequest: number }[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
  for (let i = 0; i < ROUNDS; i++) {
    const order = targets.map((_, k) => targets[(k + i) % targets.length]!);
    for (const t of order) rounds[t.name]!.push(h2load(t, hot, REQUESTS));
    log(`round ${i + 1}:`, order.map((t) => `${t.name} ${Math.round(rounds[t.name]!.at(-1)!.rps)}`).join(', '));
  }
  const [grpcJs, http2, bare, runtime] = targets.map((t) => rounds[t.name]!);
  const perRound = (a: typeof grpcJs, b: typeof grpcJs) => a!.map((x, k) => r3(x.rps / b![k]!.rps));
  /** CPU per request of `b` over `a`'s: how many of a's requests fit in b's CPU (less noisy than rps on a shared machine). */
  const cpuPerRound = (a: typeof grpcJs, b: typeof grpcJs) => a!.map((x, k) => r3(b![k]!.cpuMicrosPerRequest / x.cpuMicrosPerRequest));
  const summary = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, node: process.version },
    method: { generator: 'h2load', clients: 1, streams: STREAMS, requests: REQUESTS, rounds: ROUNDS },
    medians: Object.fromEntries(targets.map((t) => [t.name, { rps: Math.round(median(rounds[t.name]!.map((r) => r.rps))), cpuMicrosPerRequest: median(rounds[t.name]!.map((r) => r.cpuMicrosPerRequest)) }])),
    http2OverGrpcJs: { perRound: perRound(http2, grpcJs), median: median(perRound(http2, grpcJs)) },
    http2OverGrpcJsByCpu: { perRound: cpuPerRound(http2, grpcJs), median: median(cpuPerRound(http2, grpcJs)) },
    http2OverFloor: { perRound: perRound(http2, bare), median: median(perRound(http2, bare)) },
    grpcJsOverFloor: { perRound: perRound(grpcJs, bare), median: median(perRound(grpcJs, bare)) },
    http2OverRuntimeFloor: { perRound: perRound(http2, runtime), median: median(perRound(http2, runtime)) },
  };
  console.log(JSON.stringify(summary, null, 2));
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  });
