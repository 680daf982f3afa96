/**
 * In-process cost of each phase of one hot Check (no gRPC, no network): decoding the request,
 * reading it, preparing the token, the pipeline, the response, its encoding and the decision
 * line, each timed over many iterations on the bench's own request. A profile tells where a
 * process spends its time; this tells what each step costs on its own, so a change to one step
 * can be measured before and after without the noise of a loaded machine.
 *   npx tsx bench/phases.ts [iterations]
 *
 * `--cold [tokens]`: instead, what a cold request costs the handler (decode, prepare on the
 * thread pool, the pipeline, the response) beside a hot one, for each cold scenario of the
 * harness, as CPU time of every thread and of the main thread (Linux /proc), 16 requests in
 * flight, next to the crypto each must do measured alone (bench/crypto-limit.ts): what is left
 * is the handler's own cost of a cold token.
 *   npx tsx bench/phases.ts --cold [tokens] [--only cold-chain]
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../src/config/load.js';
import { checkMethod } from '../src/envoy/proto.js';
import { toAuthRequest } from '../src/envoy/request.js';
import { decodeCheckRequest } from '../src/envoy/decode.js';
import { toCheckResponse } from '../src/envoy/response.js';
import { checkHandlers } from '../src/envoy/service.js';
import { Readiness } from '../src/readiness.js';
import { TrustManager } from '../src/federation/manager.js';
import { createCarriedPhase } from '../src/identity/phase.js';
import { buildDecisionState } from '../src/pipeline/state.js';
import { createLogger, decisionLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { COLD_CRYPTO, cryptoLimit, measureCrypto, type ColdScenario } from './crypto-limit.js';
import { checkRequest, coldChainFrames, createPki, mint, PEER_ID, writeConfig, type TokenAlg } from './fixtures.js';

const COLD = process.argv.includes('--cold');
const numeric = process.argv.slice(2).find((a) => /^\d+$/.test(a));
const N = Number(numeric ?? (COLD ? 3000 : 50_000));
/** `--only handler`: time the handler alone (for a focused `--cpu-prof`). */
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const dir = mkdtempSync(join(tmpdir(), 'zonegate-phases-'));
try {
  const pki = await createPki(dir);
  const loaded = loadConfig(writeConfig(dir));
  const trust = new TrustManager(loaded.config);
  await trust.start();
  const carried = createCarriedPhase(loaded.config, trust.bundles, undefined);
  await carried?.start();
  const state = buildDecisionState(loaded.config, trust, undefined, carried);
  const svid = pki.svids.ES256;
  const body = checkMethod().requestSerialize(checkRequest(svid.certPemEncoded, mint(svid, 'ES256')));
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const log = createLogger('info', sink);
  const metrics = createMetrics();

  const time = (name: string, fn: () => unknown): number => {
    if (ONLY && !name.toLowerCase().startsWith(ONLY)) return 0;
    for (let i = 0; i < Math.min(N, 5000); i++) fn();
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) fn();
    const us = Number(process.hrtime.bigint() - t) / 1000 / N;
    console.log(`${name.padEnd(28)} ${us.toFixed(2).padStart(8)} µs`);
    return us;
  };

  const protobufjs = checkMethod().requestDeserialize;
  const deserialize = decodeCheckRequest;
  const decoded = deserialize(body);
  const req = toAuthRequest(decoded, state.limits);
  await state.prepare?.(req);
  const outcome = state.pipeline.authorize(req);
  if (!outcome.allowed) throw new Error(`bench request denied: ${outcome.reason}`);
  const decisions = decisionLogger(log);

  if (COLD) await cold(pki, checkHandlers({ state: () => state, readiness: new Readiness(), metrics, log }).Check!);
  else {
    console.log(`${N} iterations, request ${body.length} bytes`);
    time('deserialize (proto-loader)', () => protobufjs(body));
    time('decodeCheckRequest', () => deserialize(body));
    time('toAuthRequest', () => toAuthRequest(decoded, state.limits));
    time('prepare (cached token)', () => state.prepare?.(toAuthRequest(decoded, state.limits)));
    time('  (minus toAuthRequest)', () => toAuthRequest(decoded, state.limits));
    time('authorize', () => state.pipeline.authorize(toAuthRequest(decoded, state.limits)));
    time('toCheckResponse (bytes)', () => toCheckResponse(outcome, state.response));
    time('decision line', () =>
      decisions.info({ decisionId: outcome.id, result: 'allow', reason: null, peer: outcome.peer?.principal ?? null, rule: outcome.rule ?? null, latencyUs: 42 }, 'decision'),
    );
    const seconds = metrics.checkSeconds.labels('allow');
    time('metrics (histogram+gauge)', () => {
      metrics.inFlight.inc();
      metrics.inFlight.dec();
      seconds.observe(0.0001);
    });
    // The whole handler, as grpc-js calls it, minus the transport.
    const handler = checkHandlers({ state: () => state, readiness: new Readiness(), metrics, log }).Check!;
    let done = 0;
    const call = { request: decoded, getDeadline: () => Infinity } as never;
    const cb = () => { done += 1; };
    const handlerUs = time('Check handler (no decode)', () => handler(call, cb));
    // fresh strings every time, as from the wire: no string is the previous request's object
    time('decode + Check handler', () => handler({ request: decodeCheckRequest(body), getDeadline: () => Infinity } as never, cb));
    await new Promise((r) => setTimeout(r, 100));
    if (done === 0 && handlerUs > 0) throw new Error('handler never answered');
  }
  trust.stop();
  carried?.stop();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** CPU µs of this process's main thread (Linux), for what stays on the event loop. */
function mainThreadMicros(): number {
  const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / 100; // USER_HZ is 100 on Linux
}

async function cold(pki: Awaited<ReturnType<typeof createPki>>, handler: (call: never, cb: (err: unknown, r?: { status?: { code?: number } }) => void) => void): Promise<void> {
  const ser = checkMethod().requestSerialize;
  const serve = async (bodies: Buffer[]) => {
    let i = 0;
    let denied = 0;
    const one = () =>
      new Promise<void>((resolve) =>
        handler({ request: decodeCheckRequest(bodies[i++]!), getDeadline: () => Infinity } as never, (err, r) => {
          if (err || r?.status?.code) denied++;
          resolve();
        }),
      );
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (i < bodies.length) await one();
    }));
    if (denied > 0) throw new Error(`${denied} of ${bodies.length} requests were not allowed`);
  };
  const cpu = async (bodies: Buffer[]) => {
    const c0 = process.cpuUsage();
    const m0 = mainThreadMicros();
    await serve(bodies);
    const c = process.cpuUsage(c0);
    return { all: (c.user + c.system) / bodies.length, main: (mainThreadMicros() - m0) / bodies.length };
  };
  const tokens = (alg: TokenAlg, n: number) => Array.from({ length: n }, () => ser(checkRequest(pki.svids[alg].certPemEncoded, mint(pki.svids[alg], alg))));
  const unframe = (frames: Buffer) => {
    const out: Buffer[] = [];
    for (let pos = 0; pos < frames.length; ) {
      const len = frames.readUInt32BE(pos + 1);
      out.push(frames.subarray(pos + 5, pos + 5 + len));
      pos += 5 + len;
    }
    return out;
  };
  // warm every path (and the peer certificates' cache) first
  for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) await serve(tokens(alg, 200));
  await serve(unframe(await coldChainFrames(pki, 100)));

  const costs = measureCrypto({
    tokens: Object.fromEntries((['ES256', 'EdDSA', 'RS256'] as const).map((a) => [a, { token: mint(pki.svids[a], a), key: pki.svids[a].chain[0]!.publicKey }])),
    leaves: (await Promise.all(Array.from({ length: 16 }, () => pki.inter.issue(PEER_ID, { keyType: 'P-256' })))).map((l) => l.der),
    issuerKey: new X509Certificate(pki.inter.certPem).publicKey,
  });
  const hotBody = tokens('ES256', 1)[0]!;
  const hot = await cpu(Array.from({ length: N }, () => hotBody));
  console.log(`${N} requests each, 16 in flight; CPU µs per request: every thread / main thread`);
  console.log(`${'hot (same token)'.padEnd(12)} ${hot.all.toFixed(1).padStart(7)} / ${hot.main.toFixed(1).padStart(6)}`);
  const scenarios: [ColdScenario, () => Promise<Buffer[]>][] = [
    ['cold-es256', async () => tokens('ES256', N)],
    ['cold-eddsa', async () => tokens('EdDSA', N)],
    ['cold-rs256', async () => tokens('RS256', N)],
    ['cold-chain', async () => unframe(await coldChainFrames(pki, Math.min(N, 1000)))],
  ];
  for (const [name, make] of scenarios) {
    if (ONLY && !name.startsWith(ONLY)) continue;
    const c = await cpu(await make());
    const crypto = cryptoLimit(0, COLD_CRYPTO[name], costs).cryptoMicros;
    console.log(
      `${name.padEnd(12)} ${c.all.toFixed(1).padStart(7)} / ${c.main.toFixed(1).padStart(6)}   crypto alone ${crypto.toFixed(1).padStart(6)}   beyond hot + crypto ${(c.all - hot.all - crypto).toFixed(1).padStart(6)}`,
    );
  }
}
