/**
 * POST /explain on the ops server: a request that is not a CheckRequest is the client's mistake
 * (400, with the decoder's message), anything else that stops a decision is the server's (503).
 * The explain function is the Envoy adapter's own (src/envoy/explain.ts), which rejects with
 * ZonegateError ERR_REQUEST_MALFORMED before it looks at any decision state. On the real server an
 * explained decision is recorded as a gRPC Check is (src/pipeline/record.ts), marked `mode: "explain"`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { explainCheck } from '../../src/envoy/explain.js';
import { startOpsServer } from '../../src/http/ops.js';
import type { Listening } from '../../src/net/listen.js';
import { createMetrics } from '../../src/metrics.js';
import type { DecisionState } from '../../src/pipeline/state.js';
import { Readiness } from '../../src/readiness.js';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { startWith } from '../helpers/zonegate.js';

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

describe('POST /explain is recorded as a gRPC Check is', () => {
  const sample = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);

  it('counted in zonegate_decisions_total, timed in zonegate_check_duration_seconds, one decision line with its rule', async () => {
    const config = parse(readFileSync(join(EXAMPLES_DIR, 'zonegate.yaml'), 'utf8')) as { server: { ops: Record<string, unknown> } };
    config.server.ops.explain = true;
    const s = await startWith(config);
    try {
      const explain = async (name: string) => {
        const body = readFileSync(join(EXAMPLES_DIR, 'requests', name), 'utf8');
        const r = await fetch(`http://127.0.0.1:${s.zg.ops.port}/explain`, { method: 'POST', body });
        expect(r.status).toBe(200);
        return ((await r.json()) as { checkResponse: { dynamicMetadata: { decision_id: string } } }).checkResponse.dynamicMetadata.decision_id;
      };
      const before = await s.zg.metrics.registry.metrics();
      const lines = s.logs.length;
      const allowed = await explain('allowed.json');
      const denied = await explain('denied-admin.json');
      const after = await s.zg.metrics.registry.metrics();
      const diff = (name: string) => sample(after, name) - sample(before, name);
      expect(diff('zonegate_decisions_total\\{result="allow",reason=""\\}')).toBe(1);
      expect(diff('zonegate_decisions_total\\{result="deny",reason="ERR_POLICY_DENIED"\\}')).toBe(1);
      expect(diff('zonegate_check_duration_seconds_count\\{result="allow"\\}')).toBe(1);
      expect(diff('zonegate_check_duration_seconds_count\\{result="deny"\\}')).toBe(1);
      const decisions = s.logs.slice(lines).filter((l) => l.msg === 'decision');
      expect(decisions.map((l) => [l.mode, l.decisionId, l.result, l.reason, l.rule])).toEqual([
        ['explain', allowed, 'allow', null, 'frontend-calls-api'],
        ['explain', denied, 'deny', 'ERR_POLICY_DENIED', 'no-admin-from-outside'],
      ]);
      for (const l of decisions) expect(l.latencyUs).toEqual(expect.any(Number));
    } finally {
      await s.close();
    }
  });
});
