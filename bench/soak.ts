/**
 * `npm run soak -- --minutes N` (or `--seconds S`; `--rps R` to skip the capacity measurement):
 * runs a real `zonegate serve --config FILE` on loopback and sends it mixed valid and hostile
 * Checks whose verdicts are known, at half of the capacity measured first, while zone A's bundle
 * rotates, zone B's bundle endpoint flaps and the config is reloaded (rewritten, HUPed, and now
 * and then replaced with an invalid file). Reports total calls, failed calls (an error status, a
 * timeout or a wrong deny), wrong allows, p99 and RSS over time with a flatness verdict. Exits 1
 * on any failed call or wrong allow, or (runs of 3 minutes or more) RSS that is not flat.
 */
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { checkMethod, loadProtos } from '../src/envoy/proto.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { FRONTEND, World, type Flap } from './soak-world.js';

const { values: args } = parseArgs({ options: { minutes: { type: 'string' }, seconds: { type: 'string' }, rps: { type: 'string' }, connections: { type: 'string', default: '4' } } });
const durationMs = args.seconds ? Number(args.seconds) * 1000 : Number(args.minutes ?? 1) * 60_000;
const log = (s: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

interface Kind {
  readonly name: string;
  readonly weight: number;
  /** undefined: do not send now (its verdict is not certain at this moment). */
  readonly make: (w: World) => object | undefined;
  readonly allow: boolean;
}
const req = (cert: string, path = '/api/items', method = 'GET', headers: Record<string, string> = {}) => ({
  attributes: {
    source: { certificate: cert, address: { socket_address: { address: '10.0.0.7', port_value: 40000 } } },
    request: { http: { id: 'soak', method, path, host: 'api.soak', headers: { 'user-agent': 'soak', ...headers } } },
  },
});
/** DER as zonegate would read it (lenient base64, whitespace ignored), to know whether a flip changed it. */
const derOf = (urlPem: string) => {
  try {
    return Buffer.from(decodeURIComponent(urlPem).replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64').toString('base64');
  } catch {
    return '';
  }
};
/** One character flipped so that the certificate really changes (a flip in padding bits or whitespace would not). */
const flip = (s: string) => {
  for (;;) {
    const i = 200 + Math.floor(Math.random() * (s.length - 400));
    const out = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    if (derOf(out) !== derOf(s)) return out;
  }
};
const KINDS: Kind[] = [
  { name: 'frontend allowed', weight: 30, allow: true, make: (w) => req(w.current.frontend) },
  { name: 'billing allowed (zone B, endpoint flapping)', weight: 15, allow: true, make: (w) => req(w.billing, '/api/orders/7') },
  { name: 'spoofed identity header (allowed, overwritten)', weight: 5, allow: true, make: (w) => req(w.current.frontend, '/api/items', 'GET', { 'x-zonegate-peer': 'spiffe://zone-b.soak/admin' }) },
  { name: 'deny rule', weight: 8, allow: false, make: (w) => req(w.current.frontend, '/admin/users') },
  { name: 'no rule matches', weight: 8, allow: false, make: (w) => req(w.billing, '/api/orders', 'POST') },
  { name: 'forged trust domain', weight: 8, allow: false, make: (w) => req(w.forged) },
  { name: 'self-signed', weight: 4, allow: false, make: (w) => req(w.selfSigned) },
  { name: 'mutated certificate', weight: 6, allow: false, make: (w) => req(flip(w.current.frontend)) },
  { name: 'revoked root', weight: 4, allow: false, make: (w) => (w.revoked.length ? req(w.revoked[Math.floor(Math.random() * w.revoked.length)]!) : undefined) },
  { name: 'no certificate', weight: 3, allow: false, make: () => req('') },
  { name: 'too many headers', weight: 3, allow: false, make: (w) => req(w.current.frontend, '/api/items', 'GET', Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`x-h${i}`, 'v']))) },
  { name: 'not a CheckRequest', weight: 3, allow: false, make: () => ({}) },
];
const TOTAL_WEIGHT = KINDS.reduce((n, k) => n + k.weight, 0);
const pick = (): Kind => {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const k of KINDS) if ((r -= k.weight) < 0) return k;
  return KINDS[0]!;
};

async function main(): Promise<number> {
  const world = await World.create();
  // one process: its RSS is the figure that must stay flat (workers would each be a process of their own)
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'bin/zonegate.js'), 'serve', '--config', world.configFile, '--workers', '1'], {
    env: { ...process.env, ZONEGATE_GRPC_ADDRESS: '127.0.0.1', ZONEGATE_GRPC_PORT: '0', ZONEGATE_OPS_ADDRESS: '127.0.0.1', ZONEGATE_OPS_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const counts = { errorLines: 0 };
  const ports = await new Promise<{ grpc: number; ops: number }>((resolve, reject) => {
    let buf = '';
    child.on('exit', (c) => reject(new Error(`zonegate exited ${c}`)));
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.includes('"zonegate started"')) {
          const o = JSON.parse(line) as { grpcPort: number; opsPort: number };
          resolve({ grpc: o.grpcPort, ops: o.opsPort });
        }
        if (line.includes('"level":50') && !line.includes('"config reload failed')) counts.errorLines++;
      }
    });
  });
  log(`zonegate pid ${child.pid}: gRPC ${ports.grpc}, ops ${ports.ops}; config ${world.configFile}`);
  const Client = grpc.makeGenericClientConstructor(loadProtos().authService, 'Authorization');
  const clients = Array.from({ length: Number(args.connections) }, () => new Client(`127.0.0.1:${ports.grpc}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
  const m = checkMethod();
  let rr = 0;
  type Verdict = { allowed: boolean; reason: string; peerHeader?: string } | { error: string };
  const check = (body: object): Promise<Verdict> =>
    new Promise((resolve) =>
      clients[rr++ % clients.length]!.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, body, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e, r) => {
        if (e) return resolve({ error: `${grpc.status[e.code]}: ${e.details}` });
        const res = r as { status: { code: number; message?: string }; ok_response?: { headers: { header: { key: string; value: string } }[] } };
        const peerHeader = res.ok_response?.headers.find((h) => h.header.key === 'x-zonegate-peer')?.header.value;
        resolve({ allowed: res.status.code === 0, reason: res.status.message ?? '', ...(peerHeader ? { peerHeader } : {}) });
      }),
    );
  const allowedNow = async (cert: string) => {
    const v = await check(req(cert));
    return 'allowed' in v && v.allowed;
  };

  // capacity: closed loop, 64 in flight, 5 s of allowed calls
  let rps = Number(args.rps ?? 0);
  if (!rps) {
    let done = 0;
    const end = Date.now() + 5000;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (Date.now() < end) {
        await check(req(world.current.frontend));
        done++;
      }
    }));
    rps = Math.max(10, Math.round(done / 5 / 2));
    log(`measured capacity ≈ ${Math.round(done / 5)} calls/s with this client; soaking at half: ${rps} calls/s`);
  }

  const stats = { total: 0, failed: 0, wrongAllows: 0, byKind: new Map<string, number>(), failures: new Map<string, number>() };
  const latencies: number[] = [];
  let window: number[] = [];
  const samples: { t: number; rssMiB: number; p99ms: number; calls: number }[] = [];
  const startedAt = Date.now();
  const stopAt = startedAt + durationMs;
  let inFlight = 0;
  const record = (k: Kind, v: Verdict, ms: number) => {
    stats.total++;
    stats.byKind.set(k.name, (stats.byKind.get(k.name) ?? 0) + 1);
    latencies.push(ms);
    window.push(ms);
    let bad: string | undefined;
    if ('error' in v) bad = `${k.name}: ${v.error.split(':')[0]}`; // grouped by status, not by its timing details
    else if (v.allowed && !k.allow) {
      stats.wrongAllows++;
      log(`WRONG ALLOW: ${k.name}`);
    } else if (!v.allowed && k.allow) bad = `${k.name}: denied ${v.reason}`;
    else if (v.allowed && v.peerHeader !== (k.name.startsWith('billing') ? 'spiffe://zone-b.soak/ns/default/sa/billing' : FRONTEND)) {
      stats.wrongAllows++; // allowed, but the upstream would be told a different identity
      log(`WRONG IDENTITY: ${k.name} → ${v.peerHeader}`);
    }
    if (bad) {
      stats.failed++;
      stats.failures.set(bad, (stats.failures.get(bad) ?? 0) + 1);
    }
  };

  // traffic: open loop, paced every 10 ms
  const traffic = (async () => {
    let credit = 0;
    let last = performance.now();
    while (Date.now() < stopAt) {
      // from the time that really passed: timers drift under load, the rate must not
      const now = performance.now();
      credit += (rps * (now - last)) / 1000;
      last = now;
      for (; credit >= 1; credit--) {
        const k = pick();
        const body = k.make(world);
        if (!body) continue;
        const t0 = performance.now();
        inFlight++;
        void check(body).then((v) => {
          inFlight--;
          record(k, v, performance.now() - t0);
        });
      }
      await sleep(10);
    }
  })();

  // chaos: intervals shrink for short runs so every kind of event happens at least twice
  const every = (ms: number) => Math.min(ms, Math.max(2000, durationMs / 5));
  const chaos: Promise<void>[] = [];
  const loop = (ms: number, f: () => Promise<void>) =>
    chaos.push((async () => {
      await sleep(ms / 2);
      while (Date.now() + ms / 2 < stopAt) {
        await f();
        await sleep(ms);
      }
    })());
  const flaps: Flap[] = ['reset', 'stall', 'garbage', 'http500'];
  let flapCount = 0;
  loop(every(20_000), async () => {
    world.flap = flaps[flapCount++ % flaps.length]!;
    await sleep(every(20_000) / 2);
    world.endFlap();
  });
  let rotations = 0;
  loop(every(30_000), async () => {
    const next = await world.addRoot();
    while (!(await allowedNow(next.frontend))) await sleep(100);
    const old = world.removeOldRoot(next);
    while (await allowedNow(old)) await sleep(100);
    world.revoked = [...world.revoked.slice(-3), old];
    rotations++;
  });
  let reloads = 0;
  loop(every(15_000), async () => {
    reloads++;
    if (reloads % 3 === 0) {
      world.writeInvalidConfig();
      await sleep(1000);
      child.kill('SIGHUP');
      await sleep(1000);
    }
    world.writeConfig();
    if (reloads % 2 === 0) child.kill('SIGHUP');
  });

  // samples every 10 s (or a tenth of a short run)
  const sampleMs = Math.min(10_000, Math.max(1000, durationMs / 10));
  const sampler = (async () => {
    while (Date.now() < stopAt) {
      await sleep(sampleMs);
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
      const w = window.sort((a, b) => a - b);
      window = [];
      const s = { t: Math.round((Date.now() - startedAt) / 1000), rssMiB: Math.round(rss), p99ms: Number((w[Math.floor(w.length * 0.99)] ?? 0).toFixed(2)), calls: w.length };
      samples.push(s);
      log(`t=${s.t}s calls=${s.calls} p99=${s.p99ms}ms rss=${s.rssMiB}MiB in-flight=${inFlight} failed=${stats.failed} wrong-allows=${stats.wrongAllows}`);
    }
  })();

  await Promise.all([traffic, sampler, ...chaos]);
  while (inFlight > 0) await sleep(50);
  const metrics = await (await fetch(`http://127.0.0.1:${ports.ops}/metrics`)).text();
  const metric = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? 0);
  for (const c of clients) c.close();
  child.kill('SIGTERM');
  const exit = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.on('exit', (c) => r(c))));
  await world.close();

  const sorted = latencies.sort((a, b) => a - b);
  const p99 = sorted[Math.floor(sorted.length * 0.99)] ?? 0;
  // flatness: after a warm-up fifth, the last quarter's median RSS vs the first half's
  const steady = samples.slice(Math.ceil(samples.length / 5));
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const early = median(steady.slice(0, Math.ceil(steady.length / 2)).map((s) => s.rssMiB));
  const late = median(steady.slice(-Math.max(1, Math.floor(steady.length / 4))).map((s) => s.rssMiB));
  const growth = late - early;
  const flat = growth <= Math.max(20, early * 0.15);
  const judged = durationMs >= 3 * 60_000;

  log('--- soak report ---');
  console.log(JSON.stringify({
    durationSeconds: Math.round(durationMs / 1000),
    targetRps: rps,
    totalCalls: stats.total,
    failedCalls: stats.failed,
    wrongAllows: stats.wrongAllows,
    p99ms: Number(p99.toFixed(2)),
    rssMiBOverTime: samples.map((s) => `${s.t}s:${s.rssMiB}`).join(' '),
    p99msOverTime: samples.map((s) => `${s.t}s:${s.p99ms}`).join(' '),
    rss: { earlyMedianMiB: early, lateMedianMiB: late, growthMiB: growth, verdict: judged ? (flat ? 'flat' : 'GROWING') : `${flat ? 'flat' : 'growing'} (not judged: under 3 minutes)` },
    events: {
      bundleRotations: rotations,
      endpointFlaps: flapCount,
      configReloads: metric(/zonegate_config_reload_total\{result="ok"\} (\d+)/),
      refusedReloads: metric(/zonegate_config_reload_total\{result="error"\} (\d+)/),
      bundleRefreshErrors: metric(/zonegate_bundle_refreshes_total\{trust_domain="zone-b.soak",result="error"\} (\d+)/),
      errorLogLines: counts.errorLines,
    },
    calls: Object.fromEntries(stats.byKind),
    failures: Object.fromEntries(stats.failures),
    zonegateExit: exit,
  }, null, 2));
  return stats.failed > 0 || stats.wrongAllows > 0 || exit !== 0 || (judged && !flat) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
