/**
 * `npm run bench`: loads the real gRPC server with h2load (pre-serialized, length-prefixed
 * CheckRequest frames) next to the floor server started in the same run, and reports for each
 * scenario the closed-loop maximum rps, p50/p99 at a fixed rate of 50% of the floor's maximum,
 * CPU µs per request of the server process, and the ratio to the floor. Writes
 * bench/results.json. Loopback only; bounded in requests and time. Never part of npm test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkMethod } from '../src/envoy/proto.js';
import { EXAMPLES_DIR, PACKAGE_ROOT } from '../src/paths.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 60_000);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 50);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 10);
const dir = mkdtempSync(join(tmpdir(), 'zg-bench-'));
const PATH = '/envoy.service.auth.v3.Authorization/Check';

function frame(request: object): string {
  const body = checkMethod().requestSerialize(request);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  const file = join(dir, `frame-${Math.random().toString(36).slice(2)}.bin`);
  writeFileSync(file, Buffer.concat([prefix, body]));
  return file;
}

const certificate = (n: string) => encodeURIComponent(readFileSync(join(EXAMPLES_DIR, 'certs', `${n}.svid.pem`), 'utf8'));
const request = (cert: string) => ({
  attributes: {
    source: { certificate: cert, address: { socket_address: { address: '10.0.0.7', port_value: 40000 } } },
    request: { http: { id: 'bench', method: 'GET', path: '/api/items', host: 'api.zone-a.example', headers: { 'user-agent': 'h2load', 'x-request-id': 'bench' } } },
  },
});

/** CPU time (user+system, µs) of a process, from /proc. */
function cpuMicros(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return (ticks * 1e6) / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);
}

function startProcess(cmd: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<{ proc: ChildProcess; match: RegExpMatchArray }> {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')}: not ready`)), 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = buf.match(ready);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.removeAllListeners('data');
        proc.stdout!.resume();
        resolve({ proc, match: m });
      }
    });
  });
}

interface Load {
  rps: number;
  succeeded: number;
  failed: number;
  cpuMicrosPerRequest: number;
  p50Ms?: number;
  p99Ms?: number;
}

function h2load(port: number, data: string, pid: number, opts: { rps?: number } = {}): Load {
  const log = join(dir, `h2load-${Date.now()}.log`);
  const args = ['-c', '1', '-m', String(STREAMS), '-d', data, '-H', 'content-type: application/grpc', '-H', 'te: trailers', '--log-file', log];
  if (opts.rps) args.push('--rps', String(opts.rps), '-D', String(RATE_SECONDS));
  else args.push('-n', String(REQUESTS));
  const before = cpuMicros(pid);
  const r = spawnSync('h2load', [...args, `http://127.0.0.1:${port}${PATH}`], { encoding: 'utf8', timeout: 300_000 });
  const cpu = cpuMicros(pid) - before;
  if (r.status !== 0) throw new Error(`h2load failed: ${r.stderr || r.stdout}`);
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(r.stdout)?.[1] ?? NaN);
  const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(r.stdout);
  const succeeded = Number(m?.[1] ?? 0);
  const failed = Number(m?.[2] ?? 0);
  const durations = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => Number(l.split('\t')[2]) / 1000) // µs → ms
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  const pct = (p: number) => durations[Math.min(durations.length - 1, Math.floor((p / 100) * durations.length))];
  return {
    rps,
    succeeded,
    failed,
    cpuMicrosPerRequest: Math.round(cpu / Math.max(1, succeeded)),
    ...(opts.rps ? { p50Ms: pct(50), p99Ms: pct(99) } : {}),
  };
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

async function waitReady(opsPort: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${opsPort}/readyz`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('zonegate did not become ready in 20 s');
}

async function main() {
  if (spawnSync('h2load', ['--version']).status !== 0) throw new Error('h2load is missing: apt-get install nghttp2-client');
  // one process (not the tsx wrapper), so its CPU time is the server's
  const floor = await startProcess(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'bench/floor.ts')], /^(\d+)\n/);
  const floorPort = Number(floor.match[1]);
  const [zgPort, opsPort] = [await freePort(), await freePort()];
  // The embedded default config; one decision log line per Check at info (the default), drained
  // from the pipe so logging is measured, not blocked. BENCH_LOG_LEVEL=warn measures without it.
  const zgProc = spawn(process.execPath, [join(PACKAGE_ROOT, 'bin/zonegate.js'), 'serve'], {
    env: {
      ...process.env,
      ZONEGATE_GRPC_PORT: String(zgPort),
      ZONEGATE_OPS_PORT: String(opsPort),
      ZONEGATE_GRPC_ADDRESS: '127.0.0.1',
      ZONEGATE_OPS_ADDRESS: '127.0.0.1',
      ZONEGATE_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  zgProc.stdout!.resume();
  const zg = { proc: zgProc };
  await waitReady(opsPort).catch((err) => {
    floor.proc.kill();
    zgProc.kill();
    throw err;
  });
  const hot = frame(request(certificate('frontend')));
  const deny = frame(request(certificate('forged')));
  const results: Record<string, unknown> = {};
  try {
    h2load(floorPort, hot, floor.proc.pid!, {}); // warm-up
    h2load(zgPort, hot, zg.proc.pid!, {});
    const floorMax = h2load(floorPort, hot, floor.proc.pid!);
    const rate = Math.max(1, Math.round(floorMax.rps / 2));
    const floorRate = h2load(floorPort, hot, floor.proc.pid!, { rps: rate });
    results.floor = { ...floorMax, atHalfFloor: floorRate };
    for (const [name, data] of [['hot', hot], ['deny', deny]] as const) {
      const max = h2load(zgPort, data, zg.proc.pid!);
      const atRate = h2load(zgPort, data, zg.proc.pid!, { rps: rate });
      results[name] = {
        ...max,
        atHalfFloor: atRate,
        ratioToFloor: Number((max.rps / floorMax.rps).toFixed(3)),
        p99RatioToFloor: Number(((atRate.p99Ms ?? NaN) / (floorRate.p99Ms ?? NaN)).toFixed(3)),
      };
    }
  } finally {
    floor.proc.kill();
    zg.proc.kill();
  }
  const out = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    method: { generator: 'h2load', clients: 1, streams: STREAMS, requests: REQUESTS, rateSeconds: RATE_SECONDS },
    results,
  };
  writeFileSync(join(PACKAGE_ROOT, 'bench/results.json'), `${JSON.stringify(out, null, 2)}\n`);
  console.log(JSON.stringify(out, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
