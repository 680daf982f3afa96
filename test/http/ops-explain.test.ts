/**
 * POST /explain on the ops server: a request that is not a CheckRequest is the client's mistake
 * (400, with the decoder's message), anything else that stops a decision is the server's (503).
 * The explain function is the Envoy adapter's own (src/envoy/explain.ts), which rejects with
 * ZonegateError ERR_REQUEST_MALFORMED before it looks at any decision state.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { explainCheck } from '../../src/envoy/explain.js';
import { startOpsServer } from '../../src/http/ops.js';
import type { Listening } from '../../src/net/listen.js';
import { createMetrics } from '../../src/metrics.js';
import type { DecisionState } from '../../src/pipeline/state.js';
import { Readiness } from '../../src/readiness.js';

let ops: Listening | undefined;
afterEach(async () => {
  await ops?.close();
  ops = undefined;
});

const post = async (body: string) => {
  const r = await fetch(`http://127.0.0.1:${ops!.port}/explain`, { method: 'POST', body });
  return { status: r.status, body: (await r.json()) as { error?: string } };
};

describe('POST /explain answers by who is at fault', () => {
  it('400 for JSON that is not a CheckRequest, 400 for no JSON, 503 when the decision cannot be made', async () => {
    const state: DecisionState | undefined = undefined;
    ops = await startOpsServer('127.0.0.1', 0, {
      readiness: new Readiness(),
      metrics: createMetrics(false),
      explain: async (request) => {
        if (request && typeof request === 'object' && 'notReady' in request) throw new Error('not ready: starting');
        return (await explainCheck(state!, request)).result;
      },
    });
    const unknownField = await post(JSON.stringify({ attributes: { sauce: {} } }));
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.error).toMatch(/^request is not a valid CheckRequest: .*sauce/);
    expect((await post('{nope')).status).toBe(400);
    const notReady = await post(JSON.stringify({ notReady: true }));
    expect(notReady).toEqual({ status: 503, body: { error: 'not ready: starting' } });
  });
});
