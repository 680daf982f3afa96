/**
 * In-process cost of each phase of one hot Check (no gRPC, no network): decoding the request,
 * reading it, preparing the token, the pipeline, the response, its encoding and the decision
 * line, each timed over many iterations on the bench's own request. A profile tells where a
 * process spends its time; this tells what each step costs on its own, so a change to one step
 * can be measured before and after without the noise of a loaded machine.
 *   npx tsx bench/phases.ts [iterations]
 */
import { mkdtempSync, rmSync } from 'node:fs';
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
import { checkRequest, createPki, mint, writeConfig } from './fixtures.js';

const N = Number(process.argv[2] ?? 50_000);
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
  trust.stop();
  carried?.stop();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
