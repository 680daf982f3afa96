/**
 * `npm run bench -- --envoy`: zonegate as users feel it, through Envoy, against Envoy's own
 * filters. All in one run, on loopback:
 *
 *   generator → Envoy A (egress, plain HTTP) → HTTP/2 + mTLS with the bench's X509-SVID →
 *   Envoy B (ingress) → direct_response 200 (bench/envoy-configs.ts)
 *
 * Scenarios: none (a: Envoy's own floor), native (b: jwt_authn + RBAC on the peer's SPIFFE ID),
 * hot (c: zonegate ext_authz, the same token: cache hits), cold (d: zonegate, a new token per
 * request), deny (e: zonegate, a token whose signature fails). Each Envoy runs with
 * `--concurrency 1` (one worker thread), so CPU per request compares across scenarios.
 *
 * h2load sends one request over and over (same token header); the cold scenario needs a new
 * token per request, which only bench/loadgen.ts (node:http2, HTTP mode) sends; its own ceiling is
 * measured on scenario a (`none-loadgen`), as the direct harness does with `floor-loadgen`.
 */
import { createPublicKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EnvoyBinary } from '../src/envoy-binary.js';
import { REASONS } from '../src/errors.js';
import { loopbackServerCert } from '../test/helpers/envoy-authz.js';
import { envoyStat, startEnvoy, type RunningEnvoy } from '../test/helpers/envoy.js';
import { envoyA, envoyB, egressListener, ingressListener, VARIANTS, type ChainFiles, type NativeAuth, type Variant } from './envoy-configs.js';
import { AUDIENCE, PEER_ID, TOKEN_HEADER, type BenchPki } from './fixtures.js';
import { decisions, log, ratio, round, trackPid, type Harness, type Load, type LoadgenJob, type Measured } from './harness.js';

export const ENVOY_SCENARIOS = ['none', 'native', 'authz-floor', 'hot', 'hot-h2', 'cold', 'deny'] as const;
export type EnvoyScenario = (typeof ENVOY_SCENARIOS)[number];

/** Fixed rates, as fractions of scenario a's max rps. */
export const RATES = [25, 50, 75] as const;
type Rate = `${(typeof RATES)[number]}`;

const PATH = '/api/items?page=1';
/** zonegate's bench config allows GET and POST on /api/ for the peer; the native variant the same. */
const METHODS = ['GET', 'POST'];
const SERVER_ID = `spiffe://zone-a.bench/ns/shop/sa/api`;
/** What scenario e's token (its signature altered) is denied for. */
const DENY_REASON = 'ERR_TOKEN_SIGNATURE';

export interface RateResult extends Partial<Load> {
  readonly targetRps: number;
  readonly saturated?: true;
}

export interface EnvoyScenarioResult extends Load {
  readonly generator: 'h2load' | 'loadgen';
  /** Envoy B's listener (authorization variant). */
  readonly variant: Variant;
  /** The status every request must get; requests that got another are `unexpected`. */
  readonly expect: number;
  readonly unexpected: number;
  readonly ratioToNone?: number;
  readonly atRates: Record<Rate, RateResult>;
}

export interface EnvoyOptions {
  readonly selected: ReadonlySet<EnvoyScenario>;
  readonly envoy: EnvoyBinary;
  readonly pki: BenchPki;
  /** zonegate's config file. */
  readonly config: string;
  /** The same config with server.grpc.transport: http2 (scenario hot-h2). */
  readonly configH2: string;
  /** The ES256 token template (bench/fixtures tokenTemplate), for new tokens per request. */
  readonly template: string;
  readonly hotToken: string;
  readonly badToken: string;
  readonly jwtCacheSize: number;
}

/** The JWKS of the SVID that signs the bench's ES256 tokens. */
export function jwksOf(keyPem: string): { keys: object[] } {
  const jwk = createPublicKey(keyPem).export({ format: 'jwk' });
  return { keys: [{ ...jwk, alg: 'ES256', use: 'sig' }] };
}

export function nativeAuth(pki: BenchPki, jwtCacheSize: number): NativeAuth {
  return {
    issuer: PEER_ID,
    audience: AUDIENCE,
    maxLifetimeSeconds: 3600, // zonegate's commonIdentity.maxLifetimeSeconds in the bench config
    tokenHeader: TOKEN_HEADER,
    jwks: jwksOf(pki.svids.ES256.keyPem),
    principal: PEER_ID,
    methods: METHODS,
    pathPrefix: '/api/',
    jwtCacheSize,
  };
}

/** Writes the TLS files of both Envoys into `dir`: Envoy A presents the bench's ES256 SVID. */
export async function writeChainFiles(dir: string, pki: BenchPki): Promise<ChainFiles> {
  const server = await loopbackServerCert(pki.inter, SERVER_ID);
  const w = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));
  return {
    root: join(dir, 'root.pem'), // written by createPki
    clientChain: w('envoy-a.pem', pki.svids.ES256.certPem),
    clientKey: w('envoy-a.key', pki.svids.ES256.keyPem),
    serverChain: w('envoy-b.pem', server.chainPem),
    serverKey: w('envoy-b.key', server.keyPem),
  };
}

const VARIANT_OF: Record<EnvoyScenario, Variant> = { none: 'none', native: 'native', 'authz-floor': 'authz-floor', hot: 'zonegate', 'hot-h2': 'zonegate-h2', cold: 'zonegate', deny: 'zonegate' };

export async function runEnvoyPath(h: Harness, o: EnvoyOptions): Promise<{ results: Record<string, unknown>; comparisons: Record<string, number | undefined> }> {
  const P = h.P;
  const files = await writeChainFiles(h.dir, o.pki);
  const zg = await h.startZonegate(o.config, 1, 'zonegate-envoy');
  const floor = await h.startFloor('floor-h2.ts');
  // the second zonegate (http2 transport) runs only when its scenario does
  const zgH2 = o.selected.has('hot-h2') ? await h.startZonegate(o.configH2, 1, 'zonegate-envoy-h2') : undefined;
  const started: RunningEnvoy[] = [];
  const start = async (name: string, config: object) => {
    const e = await startEnvoy(o.envoy, config, { dir: h.dir });
    const untrack = trackPid(e.pid);
    started.push({ ...e, stop: async () => (await e.stop(), untrack()) });
    // one worker thread each, so CPU per request compares: as Envoy itself reports it
    const info = (await (await fetch(`${e.admin}/server_info`)).json()) as { command_line_options?: { concurrency?: number } };
    const concurrency = info.command_line_options?.concurrency;
    if (concurrency !== 1) throw new Error(`${name}: Envoy runs with --concurrency ${concurrency}, the benchmark needs 1`);
    log(`${name}: Envoy ${e.version}, pid ${e.pid}, --concurrency ${concurrency}`);
    return e;
  };
  try {
    const b = await start('Envoy B (ingress)', envoyB(files, { zonegatePort: zg.port, floorPort: floor.port, zonegateH2Port: zgH2?.port ?? floor.port, native: nativeAuth(o.pki, o.jwtCacheSize) }));
    const ingressPorts = Object.fromEntries(VARIANTS.map((v) => [v, b.ports[ingressListener(v)]!])) as Record<Variant, number>;
    const a = await start('Envoy A (egress)', envoyA(files, ingressPorts));
    const port = (s: EnvoyScenario) => a.ports[egressListener(VARIANT_OF[s])]!;
    // CPU of the processes on the request's path: the Check server (zonegate, or the bare one) only where Envoy B asks it
    const measuredFor = (s: EnvoyScenario): Measured =>
      VARIANT_OF[s] === 'zonegate'
        ? { envoyA: [a.pid], envoyB: [b.pid], zonegate: zg.pids() }
        : VARIANT_OF[s] === 'zonegate-h2'
          ? { envoyA: [a.pid], envoyB: [b.pid], zonegate: zgH2!.pids() }
          : VARIANT_OF[s] === 'authz-floor'
            ? { envoyA: [a.pid], envoyB: [b.pid], zonegate: floor.pids() }
            : { envoyA: [a.pid], envoyB: [b.pid] };
    const url = (s: EnvoyScenario) => `http://127.0.0.1:${port(s)}${PATH}`;
    const tokenOf = (s: EnvoyScenario) => (s === 'deny' ? o.badToken : o.hotToken);
    const target = (s: EnvoyScenario) => ({ url: url(s), headers: [`${TOKEN_HEADER}: ${tokenOf(s)}`] });
    const http = { path: PATH, tokenHeader: TOKEN_HEADER };
    // zonegate's deny for a bad signature answers with its reason's HTTP status (401)
    const expectOf = (s: EnvoyScenario) => (s === 'deny' ? REASONS[DENY_REASON].http : 200);
    const sample = (s: EnvoyScenario, job: Partial<LoadgenJob> = {}) =>
      h.loadgen(port(s), { http, token: tokenOf(s), requests: 4, streams: 1, ...job }, measuredFor(s), { procs: 1 });

    // ---- the verdict of each scenario, checked through the whole chain before any timing ----
    const checks: Record<string, unknown> = {};
    const expectStatuses = (s: string, r: Load, status: number) => {
      if (r.statuses?.[String(status)] !== 4 || Object.keys(r.statuses).length !== 1) throw new Error(`verdict check ${s}: expected 4 × ${status}, got ${JSON.stringify(r.statuses)}`);
    };
    const counted = async (s: EnvoyScenario, labels: string, run: () => Promise<Load>) => {
      const ops = s === 'hot-h2' ? zgH2!.opsPort : zg.opsPort;
      const before = await decisions(ops, labels);
      const r = await run();
      expectStatuses(s, r, expectOf(s));
      const moved = (await decisions(ops, labels)) - before;
      if (moved !== 4) throw new Error(`verdict check ${s}: 4 requests, but ${moved} zonegate decisions counted as {${labels}}`);
      checks[s] = { status: expectOf(s), zonegateDecisions: { [labels]: moved } };
    };
    const envoyCounter = async (name: string) => (await envoyStat(b, name)) ?? 0;
    const sel = (s: EnvoyScenario) => s === 'none' || o.selected.has(s);
    {
      const before = await decisions(zg.opsPort, 'result="allow",reason=""');
      const r = await sample('none');
      expectStatuses('none', r, 200);
      if ((await decisions(zg.opsPort, 'result="allow",reason=""')) !== before) throw new Error('verdict check none: zonegate was asked');
      checks.none = { status: 200 };
    }
    if (sel('native')) {
      const jwt = `http.${ingressListener('native')}.jwt_authn.allowed`;
      const rbac = `http.${ingressListener('native')}.rbac.allowed`;
      const [j0, r0] = [await envoyCounter(jwt), await envoyCounter(rbac)];
      expectStatuses('native', await sample('native'), 200);
      const [j1, r1] = [await envoyCounter(jwt), await envoyCounter(rbac)];
      if (j1 - j0 !== 4 || r1 - r0 !== 4) throw new Error(`verdict check native: jwt_authn allowed ${j1 - j0}, rbac allowed ${r1 - r0} of 4`);
      // and the filters refuse: a bad signature is jwt_authn's 401
      expectStatuses('native (bad token)', await sample('native', { token: o.badToken }), 401);
      checks.native = { status: 200, badTokenStatus: 401, envoy: { [jwt]: j1 - j0, [rbac]: r1 - r0 } };
    }
    if (sel('authz-floor')) {
      // Envoy B asked the bare server, which allowed: its ext_authz counted 4 OK answers
      const ok = `http.${ingressListener('authz-floor')}.ext_authz.ok`;
      const k0 = await envoyCounter(ok);
      expectStatuses('authz-floor', await sample('authz-floor'), 200);
      const k1 = await envoyCounter(ok);
      if (k1 - k0 !== 4) throw new Error(`verdict check authz-floor: ext_authz.ok moved by ${k1 - k0}, not 4`);
      checks['authz-floor'] = { status: 200, envoy: { [ok]: k1 - k0 } };
    }
    if (sel('hot')) await counted('hot', 'result="allow",reason=""', () => sample('hot'));
    if (sel('hot-h2')) await counted('hot-h2', 'result="allow",reason=""', () => sample('hot-h2'));
    if (sel('cold')) await counted('cold', 'result="allow",reason=""', () => h.loadgen(port('cold'), { http, template: o.template, requests: 4, streams: 1 }, measuredFor('cold'), { procs: 1 }));
    if (sel('deny')) await counted('deny', `result="deny",reason="${DENY_REASON}"`, () => sample('deny'));
    log('verdicts:', JSON.stringify(checks));

    log('warm-up');
    for (const s of ENVOY_SCENARIOS) if (sel(s) && s !== 'cold') h.h2load(target(s), measuredFor(s), { requests: 5000 });

    const results: Record<string, unknown> = {};
    const unexpected = (r: Load, status: number, h2: boolean) => {
      const key = h2 ? `${String(status)[0]}xx` : String(status);
      return Object.entries(r.statuses ?? {}).reduce((n, [k, v]) => n + (k === key ? 0 : v), 0);
    };
    const none = h.h2load(target('none'), measuredFor('none'));
    const rates = Object.fromEntries(RATES.map((r) => [String(r), Math.max(1, Math.round((none.rps * r) / 100))])) as Record<Rate, number>;
    log('none', none.rps, 'rps; fixed rates', JSON.stringify(rates));

    /** The fixed-rate phases a scenario of max `max` can sustain (5% margin), the others marked saturated. */
    const atRates = async (max: number, run: (rps: number) => Load | Promise<Load>, also?: (rate: Rate) => boolean) => {
      const out = {} as Record<Rate, RateResult>;
      for (const r of RATES.map(String) as Rate[]) {
        const rps = rates[r];
        out[r] = max < rps * 1.05 || (also && !also(r)) ? { targetRps: rps, saturated: true } : { targetRps: rps, ...(await run(rps)) };
      }
      return out;
    };
    const record = (s: string, generator: 'h2load' | 'loadgen', variant: Variant, max: Load, rateResults: Record<Rate, RateResult>, expect: number) => {
      const r: EnvoyScenarioResult = {
        generator,
        variant,
        ...max,
        expect,
        unexpected: unexpected(max, expect, generator === 'h2load') + Object.values(rateResults).reduce((n, x) => n + (x.statuses ? unexpected(x as Load, expect, generator === 'h2load') : 0), 0),
        ...(s === 'none' ? {} : { ratioToNone: ratio(max.rps, none.rps) }),
        atRates: rateResults,
      };
      if (r.unexpected > 0) log(`WARNING ${s}: ${r.unexpected} requests did not get ${expect}`, JSON.stringify(max.statuses));
      results[s] = r;
      log(s, max.rps, 'rps', JSON.stringify(max.cpuMicrosPerRequestBy), `p99 @50%: ${rateResults['50'].p99Ms ?? 'saturated'}`);
    };
    record('none', 'h2load', 'none', none, await atRates(none.rps, (rps) => h.h2load(target('none'), measuredFor('none'), { rps })), 200);

    // the Node generator's own ceiling on scenario a, in HTTP mode with the same token
    const genMax = await h.loadgen(port('none'), { http, token: o.hotToken, requests: P.requests }, measuredFor('none'));
    const genRates = await atRates(genMax.rps, (rps) => h.loadgen(port('none'), { http, token: o.hotToken, rate: rps, seconds: P.rateSeconds }, measuredFor('none')));
    record('none-loadgen', 'loadgen', 'none', genMax, genRates, 200);

    for (const s of ['native', 'authz-floor', 'hot', 'hot-h2', 'deny'] as const) {
      if (!sel(s)) continue;
      const max = h.h2load(target(s), measuredFor(s));
      record(s, 'h2load', VARIANT_OF[s], max, await atRates(max.rps, (rps) => h.h2load(target(s), measuredFor(s), { rps })), expectOf(s));
    }
    if (sel('cold')) {
      const max = await h.loadgen(port('cold'), { http, template: o.template, presign: true, requests: P.coldRequests }, measuredFor('cold'));
      const rateRuns = await atRates(
        max.rps,
        (rps) => h.loadgen(port('cold'), { http, template: o.template, presign: true, rate: rps, seconds: P.rateSeconds }, measuredFor('cold')),
        (r) => !genRates[r].saturated, // a rate the generator itself cannot send measures the generator
      );
      record('cold', 'loadgen', 'zonegate', max, rateRuns, 200);
    }

    const get = (s: string) => results[s] as EnvoyScenarioResult | undefined;
    const p99At50 = (s: string) => get(s)?.atRates['50'].p99Ms;
    const sub = (x: number | undefined, y: number | undefined) => (x === undefined || y === undefined ? undefined : round(x - y));
    const comparisons = {
      hotToNone: ratio(get('hot')?.rps, none.rps),
      hotToNative: ratio(get('hot')?.rps, get('native')?.rps),
      hotToAuthzFloor: ratio(get('hot')?.rps, get('authz-floor')?.rps),
      authzFloorToNative: ratio(get('authz-floor')?.rps, get('native')?.rps),
      hotH2ToHot: ratio(get('hot-h2')?.rps, get('hot')?.rps),
      hotH2ToNative: ratio(get('hot-h2')?.rps, get('native')?.rps),
      nativeToNone: ratio(get('native')?.rps, none.rps),
      coldToLoadgenCeiling: ratio(get('cold')?.rps, genMax.rps),
      hotAddedP99At50Ms: sub(p99At50('hot'), p99At50('none')),
      nativeAddedP99At50Ms: sub(p99At50('native'), p99At50('none')),
      denyAddedP99At50Ms: sub(p99At50('deny'), p99At50('none')),
    };
    return { results: { verdicts: checks, ...results }, comparisons };
  } finally {
    for (const e of started.reverse()) await e.stop().catch(() => undefined);
    await Promise.all([zg.stop(), floor.stop(), zgH2?.stop()]);
  }
}

/** The Envoy-path results as markdown tables (from the `envoy` section of results.json). */
export function envoyTable(section: { results: Record<string, unknown>; comparisons: Record<string, number | undefined>; machine?: { envoy?: string } }): string {
  const cpu = (r: EnvoyScenarioResult, k: string) => r.cpuMicrosPerRequestBy?.[k] ?? '–';
  const at = (x: RateResult | undefined) => (!x ? '–' : x.saturated ? 'saturated' : `${x.p50Ms} / ${x.p99Ms}`);
  const rows = [
    `| scenario | generator | max rps | ÷ a | CPU µs/req Envoy A | Envoy B | Check server | total | p50 / p99 ms @25% | @50% | @75% |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const label: Record<string, string> = { none: 'a. none', 'none-loadgen': 'a. none (loadgen ceiling)', native: 'b. native jwt_authn + RBAC', 'authz-floor': 'c0. ext_authz, bare Check server', hot: 'c. zonegate hot', 'hot-h2': 'c. zonegate hot, http2 transport', cold: 'd. zonegate cold', deny: 'e. zonegate deny' };
  for (const name of ['none', 'none-loadgen', 'native', 'authz-floor', 'hot', 'hot-h2', 'cold', 'deny']) {
    const r = section.results[name] as EnvoyScenarioResult | undefined;
    if (!r) continue;
    const warn = r.unexpected > 0 ? ` (${r.unexpected} not ${r.expect})` : '';
    rows.push(
      `| ${label[name]}${warn} | ${r.generator} | ${Math.round(r.rps)} | ${r.ratioToNone ?? '1.00'} | ${cpu(r, 'envoyA')} | ${cpu(r, 'envoyB')} | ${cpu(r, 'zonegate')} | ${r.cpuMicrosPerRequest} | ${at(r.atRates['25'])} | ${at(r.atRates['50'])} | ${at(r.atRates['75'])} |`,
    );
  }
  const c = section.comparisons;
  rows.push(
    '',
    `c/a ${c.hotToNone ?? '–'}, c/b ${c.hotToNative ?? '–'} (target ≥ 0.7), b/a ${c.nativeToNone ?? '–'}; c0/b ${c.authzFloorToNative ?? '–'} (the most any ext_authz server on Node reaches), c/c0 ${c.hotToAuthzFloor ?? '–'}; c with the http2 transport ÷ c ${c.hotH2ToHot ?? '–'} (÷ b ${c.hotH2ToNative ?? '–'}); d ÷ loadgen ceiling ${c.coldToLoadgenCeiling ?? '–'}; ` +
      `zonegate's added p99 at 50% of a's max (c − a): ${c.hotAddedP99At50Ms ?? '–'} ms (target ≤ 1 ms); native's (b − a): ${c.nativeAddedP99At50Ms ?? '–'} ms; deny's (e − a): ${c.denyAddedP99At50Ms ?? '–'} ms`,
  );
  return rows.join('\n');
}
