/**
 * `npm run bench [-- --quick] [-- --only a,b] [-- --skip a,b] [-- --transport http2]`: measures zonegate against the floor
 * of its own stack (bench/floor.ts: a bare grpc-js server with the same protos), both started in
 * this run, on loopback, and writes bench/results.json. Never part of npm test.
 *
 * `npm run bench -- --envoy`: the Envoy path instead (bench/envoy-path.ts): a client → Envoy A →
 * mTLS → Envoy B with no authorization, Envoy's native filters, or zonegate; its results are the
 * `envoy` section of the same file, which each kind of run leaves as the other wrote it.
 *
 * Generators: h2load (Debian nghttp2-client) for scenarios that repeat one request; bench/loadgen.ts
 * (node:http2, several processes) where every request must differ (cold tokens, cold chains,
 * 1M tokens). Each scenario's ratios are to the floor measured with the same generator. The cold
 * scenarios are also held to their limit: the floor's CPU plus the crypto they cannot avoid,
 * measured alone in the same run (bench/crypto-limit.ts).
 *
 * Every process started here is tracked and killed on exit, error, timeout or Ctrl-C.
 * BENCH_ZONEGATE_BIN runs another build's entry point (A/B comparisons of one change).
 * Every Node process runs on the Node running this script: `/path/to/node --import tsx bench/run.ts`.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findEnvoyBinaries, ENVOY_HINT } from '../src/envoy-binary.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { COLD_CRYPTO, CRYPTO_OP_MEANING, cryptoLimit, limitMultiple, measureCrypto, type ColdScenario, type CryptoOp, type Limit } from './crypto-limit.js';
import { ENVOY_SCENARIOS, envoyTable, runEnvoyPath, type EnvoyScenario } from './envoy-path.js';
import { coldChainFrames, createPki, checkRequest, frame, mint, PEER_ID, tokenTemplate, writeConfig, type BenchPki, type TokenAlg } from './fixtures.js';
import { Harness, decisions, grpcTarget, heap, killAll, log, memKb, params, ratio, round, type Load, type LoadgenJob } from './harness.js';

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
    /** zonegate's Check transport (server.grpc.transport), e.g. http2 or grpc-js; default: zonegate's. */
    transport: { type: 'string' },
    out: { type: 'string' },
    /** Write a V8 CPU profile of every zonegate process into this directory (node --cpu-prof). */
    'cpu-prof': { type: 'string' },
    /** The Envoy path (bench/envoy-path.ts) instead of the direct scenarios. */
    envoy: { type: 'boolean', default: false },
    /** Which found Envoy to run (a version of envoy/versions.txt); default the newest pinned. ZONEGATE_ENVOY_BIN runs any other. */
    'envoy-version': { type: 'string' },
    /** jwt_authn's cache of verified tokens in the native scenario (0: off). */
    'jwt-cache-size': { type: 'string', default: '100' },
    /** Print the tables of the results file (--out or bench/results.json) and exit. */
    table: { type: 'boolean', default: false },
  },
});
const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : []);
const KNOWN: readonly string[] = argv.envoy ? ENVOY_SCENARIOS : SCENARIOS;
for (const s of [...list(argv.only), ...list(argv.skip)])
  if (!KNOWN.includes(s)) throw new Error(`unknown ${argv.envoy ? 'Envoy-path ' : ''}scenario "${s}"; known: ${KNOWN.join(', ')}`);
const chosen = (argv.only ? list(argv.only) : [...KNOWN]).filter((s) => !list(argv.skip).includes(s));
const selected = new Set<Scenario>(chosen as Scenario[]);
selected.add('floor'); // every ratio needs it

const QUICK = argv.quick;
const P = params(QUICK, { rssTokens: argv['rss-tokens'], genProcs: argv['gen-procs'] });
const TARGET = argv.out ?? join(PACKAGE_ROOT, 'bench/results.json');

/** The Node, OpenSSL and generator the figures come from. */
function machine(extra: { envoy?: string } = {}) {
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    memoryGB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    openssl: process.versions.openssl,
    h2load: spawnSync('h2load', ['--version'], { encoding: 'utf8' }).stdout.trim(),
    ...extra,
  };
}
const command = () => `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

/** The results file as it is (the other kind of run's section is kept). */
function previous(): Record<string, unknown> {
  if (!existsSync(TARGET)) return {};
  try {
    return JSON.parse(readFileSync(TARGET, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** The run's own tokens, frames and zonegate config. */
async function setup(dir: string) {
  const pki = await createPki(dir);
  const cache = Object.fromEntries(list(argv.cache).map((kv) => kv.split('=')).map(([k, v]) => [k!, Number(v)]));
  const config = writeConfig(dir, cache, argv.transport ? { transport: argv.transport } : {});
  const configH2 = writeConfig(dir, cache, { transport: 'http2', name: 'zonegate-h2.yaml' });
  const file = (name: string, data: Buffer) => (writeFileSync(join(dir, name), data), join(dir, name));
  const svid = pki.svids.ES256;
  const hotToken = mint(svid, 'ES256');
  const badToken = hotToken.slice(0, -6) + (hotToken.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA');
  const templates = {} as Record<TokenAlg, string>;
  for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) templates[alg] = file(`template-${alg}.json`, Buffer.from(JSON.stringify(tokenTemplate(pki.svids[alg], alg))));
  return { pki, cache, config, configH2, file, svid, hotToken, badToken, templates };
}

async function mainEnvoy(dir: string) {
  const found = findEnvoyBinaries();
  const want = argv['envoy-version'];
  const envoy = want ? found.find((b) => b.version === want) : found[0];
  if (!envoy) throw new Error(want ? `no Envoy ${want} found (found: ${found.map((b) => b.version).join(', ') || 'none'}); ${ENVOY_HINT}` : `no Envoy found: ${ENVOY_HINT}`);
  const selectedEnvoy = new Set(chosen as EnvoyScenario[]);
  log(`Envoy path: ${['none', ...[...selectedEnvoy].filter((s) => s !== 'none')].join(', ')}${QUICK ? ' (quick)' : ''}; Envoy ${envoy.version}; work dir ${dir}`);
  const s = await setup(dir);
  const jwtCacheSize = Number(argv['jwt-cache-size']);
  const h = new Harness(dir, P, { cpuProf: argv['cpu-prof'], zonegateBin: process.env.BENCH_ZONEGATE_BIN, logLevel: process.env.BENCH_LOG_LEVEL });
  const { results, comparisons } = await runEnvoyPath(h, { selected: selectedEnvoy, envoy, pki: s.pki, config: s.config, configH2: s.configH2, template: s.templates.ES256, hotToken: s.hotToken, badToken: s.badToken, jwtCacheSize });
  const section = {
    date: new Date().toISOString(),
    command: command(),
    machine: machine({ envoy: envoy.version }),
    method: {
      envoyConcurrency: 1,
      streams: P.streams,
      requests: P.requests,
      rateSeconds: P.rateSeconds,
      coldRequests: P.coldRequests,
      generatorProcesses: P.genProcs,
      ratesOfNoneMax: [0.25, 0.5, 0.75],
      jwtCacheSize,
      transport: argv.transport ?? null,
      cache: s.cache,
      quick: QUICK,
    },
    results,
    comparisons,
  };
  writeFileSync(TARGET, `${JSON.stringify({ ...previous(), envoy: section }, null, 2)}\n`);
  console.log(envoyTable(section));
  log(`written: ${TARGET} (envoy section)`);
}

/** The unavoidable crypto of this run's cold scenarios, measured alone on this Node. */
async function measureColdCrypto(pki: BenchPki, tokens: Record<TokenAlg, string>): Promise<Record<CryptoOp, number>> {
  const leaves = await Promise.all(Array.from({ length: 16 }, () => pki.inter.issue(PEER_ID, { keyType: 'P-256' })));
  return measureCrypto(
    {
      tokens: Object.fromEntries((['ES256', 'EdDSA', 'RS256'] as const).map((a) => [a, { token: tokens[a], key: pki.svids[a].chain[0]!.publicKey }])),
      leaves: leaves.map((l) => l.der),
      issuerKey: new X509Certificate(pki.inter.certPem).publicKey,
    },
    { roundMs: QUICK ? 100 : 300 },
  );
}

async function mainDirect(dir: string) {
  log(`scenarios: ${[...selected].join(', ')}${QUICK ? ' (quick)' : ''}; work dir ${dir}`);
  const { pki, cache, config, file, svid, hotToken, badToken, templates } = await setup(dir);
  const hot = file('hot.bin', frame(checkRequest(svid.certPemEncoded, hotToken)));
  const deny = file('deny.bin', frame(checkRequest(svid.certPemEncoded, badToken)));
  const h = new Harness(dir, P, { cpuProf: argv['cpu-prof'], zonegateBin: process.env.BENCH_ZONEGATE_BIN, logLevel: process.env.BENCH_LOG_LEVEL });

  const coldSelected = (['cold-es256', 'cold-eddsa', 'cold-rs256', 'cold-chain'] as const).filter((c) => selected.has(c));
  let cryptoCosts: Record<CryptoOp, number> | undefined;
  if (coldSelected.length > 0) {
    // before any server starts: the harness's own process, alone on its core
    cryptoCosts = await measureColdCrypto(pki, { ES256: mint(pki.svids.ES256, 'ES256'), EdDSA: mint(pki.svids.EdDSA, 'EdDSA'), RS256: mint(pki.svids.RS256, 'RS256') });
    log('crypto µs/op (alone):', JSON.stringify(cryptoCosts));
  }

  const floor = await h.startFloor();
  const zg = await h.startZonegate(config, 1, 'zonegate');
  const results: Record<string, unknown> = {};
  try {
    // the verdicts each scenario relies on, checked once (h2load counts any HTTP 200 as success)
    // read from the decision counter, so it holds at any log level (BENCH_LOG_LEVEL=warn)
    const verdict = async (data: string, labels: string) => {
      const before = await decisions(zg.opsPort, labels);
      const r = await h.loadgen(zg.port, { frames: data, repeat: true, requests: 4, streams: 1 }, zg.pids());
      if (r.failed !== 0 || r.succeeded === 0) throw new Error(`verdict check: gRPC statuses ${JSON.stringify(r.statuses)}`);
      const after = await decisions(zg.opsPort, labels);
      if (after - before !== r.succeeded) throw new Error(`verdict check: ${r.succeeded} calls, but ${after - before} decisions counted as {${labels}}`);
      log(`verdict {${labels}}: ok`);
    };
    await verdict(hot, 'result="allow",reason=""');
    await verdict(deny, 'result="deny",reason="ERR_TOKEN_SIGNATURE"');

    const floorHot = grpcTarget(floor.port, hot);
    const zgHot = grpcTarget(zg.port, hot);
    log('warm-up');
    h.h2load(floorHot, floor.pids(), { requests: 5000 });
    h.h2load(zgHot, zg.pids(), { requests: 5000 });

    const floorMax = h.h2load(floorHot, floor.pids());
    const rate = Math.max(1, Math.round(floorMax.rps / 2));
    const floorRate = h.h2load(floorHot, floor.pids(), { rps: rate });
    results.floor = { generator: 'h2load', ...floorMax, atHalfFloor: floorRate };
    log('floor', floorMax.rps, 'rps; fixed rate', rate);
    // the Node generator's own ceiling, on the same floor: its ratios are to this
    const genMax = await h.loadgen(floor.port, { frames: hot, repeat: true, requests: P.requests }, floor.pids());
    const genSaturated = genMax.rps < rate * 1.05;
    const genRate = genSaturated ? undefined : await h.loadgen(floor.port, { frames: hot, repeat: true, rate, seconds: P.rateSeconds }, floor.pids());
    results['floor-loadgen'] = { generator: 'loadgen', ...genMax, atHalfFloor: genRate ?? null, saturatedAtHalfFloor: genSaturated, ratioToFloor: ratio(genMax.rps, floorMax.rps), cpuRatioToFloor: ratio(genMax.cpuMicrosPerRequest, floorMax.cpuMicrosPerRequest) };
    log('floor with loadgen', genMax.rps, 'rps (its ceiling)');

    for (const [name, data] of [['hot', hot], ['deny', deny]] as const) {
      if (!selected.has(name)) continue;
      const t = grpcTarget(zg.port, data);
      const max = h.h2load(t, zg.pids());
      const atRate = h.h2load(t, zg.pids(), { rps: rate });
      results[name] = { generator: 'h2load', ...max, atHalfFloor: atRate, ratioToFloor: ratio(max.rps, floorMax.rps), cpuRatioToFloor: ratio(max.cpuMicrosPerRequest, floorMax.cpuMicrosPerRequest), p99RatioToFloor: ratio(atRate.p99Ms, floorRate.p99Ms) };
      log(name, max.rps, 'rps', `${ratio(max.rps, floorMax.rps)} of floor`);
    }

    const cold = async (name: ColdScenario, job: LoadgenJob, rateJob: (n: number) => Promise<LoadgenJob> | undefined) => {
      const max = await h.loadgen(zg.port, job, zg.pids());
      // A fixed rate the scenario cannot sustain measures a queue, not a latency: reported as saturated.
      const saturated = max.rps < rate * 1.05 || genRate === undefined;
      const rj = saturated ? undefined : await rateJob?.(rate * P.rateSeconds);
      const atRate = rj ? await h.loadgen(zg.port, rj, zg.pids()) : undefined;
      // The limit: the floor's CPU with the same generator, plus the crypto the request cannot avoid.
      const limit: Limit | undefined = cryptoCosts && cryptoLimit(genMax.cpuMicrosPerRequest, COLD_CRYPTO[name], cryptoCosts);
      results[name] = {
        generator: 'loadgen',
        ...max,
        ...(atRate ? { atHalfFloor: atRate, p99RatioToFloor: ratio(atRate.p99Ms, genRate?.p99Ms) } : { atHalfFloor: null, saturatedAtHalfFloor: saturated }),
        // Against the h2load floor: these scenarios are bound by the server, well below the
        // generator's own ceiling (floor-loadgen); against that ceiling too, for comparison.
        ratioToFloor: ratio(max.rps, floorMax.rps),
        ratioToLoadgenFloor: ratio(max.rps, genMax.rps),
        cpuRatioToFloor: ratio(max.cpuMicrosPerRequest, floorMax.cpuMicrosPerRequest),
        ...(limit ? { cryptoLimit: { ...limit, floorFrom: 'floor-loadgen', ops: COLD_CRYPTO[name], multiple: limitMultiple(max.cpuMicrosPerRequest, limit) } } : {}),
      };
      log(name, max.rps, 'rps', `${ratio(max.rps, floorMax.rps)} of the floor`, limit ? `CPU ${max.cpuMicrosPerRequest} µs = ${limitMultiple(max.cpuMicrosPerRequest, limit)}× its limit ${limit.limitMicros} µs` : '', JSON.stringify(max.statuses));
    };
    for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
      const name = `cold-${alg.toLowerCase()}` as ColdScenario;
      if (!selected.has(name)) continue;
      await cold(name, { template: templates[alg], presign: true, requests: P.coldRequests }, () => Promise.resolve({ template: templates[alg], presign: true, rate, seconds: P.rateSeconds }));
    }
    if (selected.has('cold-chain')) {
      log(`issuing ${P.chainRequests} certificates`);
      const chains = file('chains.bin', await coldChainFrames(pki, P.chainRequests));
      await cold('cold-chain', { frames: chains, requests: P.chainRequests }, async (n) => ({ frames: file('chains-rate.bin', await coldChainFrames(pki, n)), rate, seconds: P.rateSeconds }));
    }

    if (selected.has('workers')) {
      // Four connections, so the cluster's round-robin has something to spread. This machine's
      // cores also run the generator, so rps cannot show scaling: the figure that can is the
      // total CPU per request of the whole process tree, 1, 2 and 4 workers, each after a warm-up.
      const one = h.h2load(zgHot, zg.pids(), { clients: 4, streams: Math.round(P.streams / 4) });
      const byCount: Record<string, Load> = { 1: one };
      for (const n of [2, 4]) {
        const zgN = await h.startZonegate(config, n, `zonegate-${n}w`);
        try {
          const t = grpcTarget(zgN.port, hot);
          h.h2load(t, zgN.pids(), { requests: 5000, clients: 4, streams: 12 });
          byCount[n] = h.h2load(t, zgN.pids(), { clients: 4, streams: Math.round(P.streams / 4) });
        } finally {
          await zgN.stop();
        }
      }
      const cpuVsOne = Object.fromEntries(Object.entries(byCount).map(([n, l]) => [n, ratio(l.cpuMicrosPerRequest, one.cpuMicrosPerRequest)]));
      results.workers = { generator: 'h2load', clients: 4, one, two: byCount[2], four: byCount[4], speedup: ratio(byCount[2]!.rps, one.rps), cpuPerRequestVsOne: cpuVsOne };
      log('workers: rps 1 →', one.rps, '2 →', byCount[2]!.rps, '4 →', byCount[4]!.rps, '; CPU per request ÷ one worker', cpuVsOne);
    }
  } finally {
    await Promise.all([floor.stop(), zg.stop()]);
  }

  if (selected.has('rss')) {
    // A fresh server: its peak RSS is this scenario's, after P.rssTokens distinct ES256 tokens.
    const zr = await h.startZonegate(config, 1, 'zonegate-rss');
    try {
      const pid = zr.proc.pid!;
      const startRss = memKb(pid, 'VmRSS');
      let peak = startRss;
      const poll = setInterval(() => (peak = Math.max(peak, memKb(pid, 'VmRSS'))), 250);
      log(`rss: ${P.rssTokens} distinct tokens`);
      const r = await h.loadgen(zr.port, { template: templates.ES256, requests: P.rssTokens, noLatencies: true }, zr.pids(), { timeoutMs: 3_600_000 });
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

  const prev = previous();
  const out = {
    date: new Date().toISOString(),
    command: command(),
    machine: machine(),
    method: { cache, transport: argv.transport ?? null, streams: P.streams, requests: P.requests, rateSeconds: P.rateSeconds, coldRequests: P.coldRequests, chainRequests: P.chainRequests, generatorProcesses: P.genProcs, quick: QUICK },
    ...(cryptoCosts ? { crypto: { microsPerOp: cryptoCosts, meaning: CRYPTO_OP_MEANING } } : {}),
    results,
    ...(prev.envoy ? { envoy: prev.envoy } : {}),
  };
  writeFileSync(TARGET, `${JSON.stringify(out, null, 2)}\n`);
  console.log(table(results));
  log(`written: ${TARGET}`);
}

async function main() {
  if (argv.table) {
    const r = previous() as { results?: Record<string, unknown>; envoy?: Parameters<typeof envoyTable>[0] };
    if (!r.results && !r.envoy) throw new Error(`no results in ${TARGET}`);
    if (r.results) console.log(table(r.results));
    if (r.envoy) console.log(`\nEnvoy path (Envoy ${r.envoy.machine?.envoy ?? '?'}):\n${envoyTable(r.envoy)}`);
    return;
  }
  if (spawnSync('h2load', ['--version']).status !== 0) throw new Error('h2load is missing: apt-get install nghttp2-client');
  const dir = mkdtempSync(join(tmpdir(), 'zg-bench-'));
  if (argv.envoy) await mainEnvoy(dir);
  else await mainDirect(dir);
  rmSync(dir, { recursive: true, force: true });
}

/** The results as the markdown table BENCHMARKS.md shows. */
function table(results: Record<string, unknown>): string {
  const rows = ['| scenario | generator | max rps | ratio to floor | CPU µs/req | floor CPU ÷ CPU | p50 ms @50% | p99 ms @50% | p99 ratio | CPU ÷ crypto limit |', '|---|---|---|---|---|---|---|---|---|---|'];
  const floorCpu = (results.floor as Load | undefined)?.cpuMicrosPerRequest ?? NaN;
  for (const [name, v] of Object.entries(results)) {
    const r = v as Load & { generator?: string; ratioToFloor?: number; p99RatioToFloor?: number; atHalfFloor?: Load | null; saturatedAtHalfFloor?: boolean; cryptoLimit?: Limit & { multiple: number } };
    if (typeof r.rps !== 'number' || name === 'rss') continue;
    const at = r.atHalfFloor;
    const lim = r.cryptoLimit ? `${r.cryptoLimit.multiple} (limit ${r.cryptoLimit.limitMicros} = ${r.cryptoLimit.floorMicros} + ${r.cryptoLimit.cryptoMicros})` : '–';
    rows.push(`| ${name} | ${r.generator} | ${Math.round(r.rps)} | ${r.ratioToFloor ?? '1.00'} | ${r.cpuMicrosPerRequest} | ${round(floorCpu / r.cpuMicrosPerRequest, 2)} | ${at?.p50Ms ?? (r.saturatedAtHalfFloor ? 'saturated' : '–')} | ${at?.p99Ms ?? '–'} | ${r.p99RatioToFloor ?? (name.startsWith('floor') ? '1.00' : '–')} | ${lim} |`);
  }
  const w = results.workers as { one: Load; two: Load; four?: Load; speedup: number; cpuPerRequestVsOne?: Record<string, number> } | undefined;
  if (w) {
    const each = (n: string, l: Load | undefined) => (l ? `${n} ${Math.round(l.rps)} rps, ${l.cpuMicrosPerRequest} µs CPU/req (×${w.cpuPerRequestVsOne?.[n] ?? '–'} one worker's)` : '');
    rows.push('', `workers (h2load, 4 connections, CPU of the whole process tree): ${[each('1', w.one), each('2', w.two), each('4', w.four)].filter(Boolean).join('; ')}`);
  }
  const rss = results.rss as { tokens: number; peakRssMB: number; startRssMB: number; rps: number } | undefined;
  if (rss) rows.push('', `rss: ${rss.tokens} distinct tokens at ${rss.rps} rps: peak RSS ${rss.peakRssMB} MB (at start ${rss.startRssMB} MB)`);
  return rows.join('\n');
}

main().catch((err) => {
  console.error(err);
  killAll();
  process.exit(1);
});
