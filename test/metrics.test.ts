/**
 * Metric names follow the Prometheus and OpenMetrics conventions prom-client leaves to us: every
 * counter is named `_total`, and nothing else is; a count read from elsewhere at scrape time is
 * still a counter. With `serve --workers N` the workers' registries are merged by each metric's
 * meaning (src/metrics.ts): events add up, state reports the worst worker, process metrics stay
 * one series per process. (test/cli/workers.test.ts checks the same through a real primary.)
 */
import { describe, expect, it } from 'vitest';
import { AggregatorRegistry } from 'prom-client';
import { registerTrustMetrics } from '../src/federation/metrics.js';
import type { TrustDomainStatus } from '../src/federation/manager.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { dryRunObserver } from '../src/policy/metrics.js';

const STATUS: TrustDomainStatus = {
  trustDomain: 'zone-b.test', source: 'file:/b.pem', required: true, hasBundle: true, stale: false, sequence: 3,
  x509Authorities: 1, jwtAuthorities: 0, lastSuccessAt: Date.now(), lastResult: 'ok', lastError: undefined,
  refreshes: { ok: 7, error: 2 }, generation: 4, lastAttemptAt: Date.now(), nextRefreshAt: Date.now() + 1000, staleAt: Date.now() + 86_400_000,
};

describe('metric names', () => {
  it('every counter ends in _total and every _total is a counter', async () => {
    // without prom-client's default process metrics, whose names are prom-client's (nodejs_active_resources_total is a gauge)
    const m = createMetrics(false);
    registerTrustMetrics(m.registry, { status: () => [STATUS] });
    dryRunObserver(m.registry, createLogger('silent'));
    const text = await m.registry.metrics();
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => ({ name: name!, type: type! }));
    expect(types.length).toBeGreaterThan(8);
    for (const { name, type } of types) {
      if (type === 'counter') expect(name, `${name} is a counter`).toMatch(/_total$/);
      if (name.endsWith('_total')) expect(type, `${name} ends in _total`).toBe('counter');
    }
    expect(types).toContainEqual({ name: 'zonegate_bundle_refreshes_total', type: 'counter' });
    expect(text).toMatch(/^zonegate_bundle_refreshes_total\{trust_domain="zone-b\.test",result="ok"\} 7$/m);
    expect(text).toMatch(/^zonegate_bundle_refreshes_total\{trust_domain="zone-b\.test",result="error"\} 2$/m);
    // scraped twice: the same counts, not their sum
    expect(await m.registry.metrics()).toMatch(/^zonegate_bundle_refreshes_total\{trust_domain="zone-b\.test",result="ok"\} 7$/m);
  });
});

/** One worker's registry as the primary receives it. */
async function worker(id: string, o: { allows: number; lastReload: 0 | 1; status: TrustDomainStatus; inFlight: number }) {
  const m = createMetrics(true, id);
  registerTrustMetrics(m.registry, { status: () => [o.status] });
  m.decisions.inc({ result: 'allow', reason: '' }, o.allows);
  m.checkSeconds.observe({ result: 'allow' }, 0.0002);
  m.lastSuccess.set(o.lastReload);
  m.inFlight.set(o.inFlight);
  return m.registry.getMetricsAsJSON();
}

const line = (text: string, series: string) => new RegExp(`^${series.replace(/[{}"()|.+]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1];

describe('metrics of serve --workers N', () => {
  it('merges by meaning: events and work in flight add up, state reports the worst worker, process metrics stay per worker', async () => {
    const now = Date.now();
    const text = await AggregatorRegistry.aggregate([
      await worker('1', { allows: 3, lastReload: 1, inFlight: 2, status: { ...STATUS, x509Authorities: 2, lastSuccessAt: now - 10_000 } }),
      await worker('2', { allows: 4, lastReload: 0, inFlight: 5, status: { ...STATUS, x509Authorities: 1, stale: true, sequence: 2, lastResult: 'error', lastSuccessAt: now - 90_000 } }),
    ]).metrics();
    expect(line(text, 'zonegate_decisions_total{result="allow",reason=""}')).toBe('7');
    expect(line(text, 'zonegate_check_duration_seconds_count{result="allow"}')).toBe('2');
    expect(line(text, 'zonegate_checks_in_flight')).toBe('7');
    expect(line(text, 'zonegate_bundle_refreshes_total{trust_domain="zone-b.test",result="ok"}')).toBe('14');
    // state: one refused reload, one worker behind, one failing closed: the merged gauge says so
    expect(line(text, 'zonegate_config_last_reload_successful')).toBe('0');
    expect(line(text, 'zonegate_bundle_authorities{trust_domain="zone-b.test",kind="x509"}')).toBe('1');
    expect(line(text, 'zonegate_bundle_sequence{trust_domain="zone-b.test"}')).toBe('2');
    expect(line(text, 'zonegate_bundle_last_refresh_success{trust_domain="zone-b.test"}')).toBe('0');
    expect(line(text, 'zonegate_bundle_stale{trust_domain="zone-b.test"}')).toBe('1');
    expect(Number(line(text, 'zonegate_bundle_age_seconds{trust_domain="zone-b.test"}'))).toBeGreaterThanOrEqual(90);
    // each process's own figures, one series each, never added into a meaningless total
    for (const w of ['1', '2']) {
      expect(line(text, `zonegate_process_cpu_seconds_total{worker="${w}"}`)).toBeDefined();
      expect(line(text, `zonegate_nodejs_heap_size_used_bytes{worker="${w}"}`)).toBeDefined();
    }
    expect(text).toMatch(/^zonegate_process_start_time_seconds\{worker="1"\} \d+/m);
    expect(text).not.toMatch(/^zonegate_process_cpu_seconds_total \S+$/m);
  });

  it('workers that agree read as one worker: a successful reload is 1 and a bundle counts its authorities once', async () => {
    const one = { allows: 1, lastReload: 1, inFlight: 0, status: { ...STATUS, x509Authorities: 3 } } as const;
    const text = await AggregatorRegistry.aggregate([await worker('1', one), await worker('2', one), await worker('3', one)]).metrics();
    expect(line(text, 'zonegate_config_last_reload_successful')).toBe('1');
    expect(line(text, 'zonegate_bundle_authorities{trust_domain="zone-b.test",kind="x509"}')).toBe('3');
    expect(line(text, 'zonegate_bundle_stale{trust_domain="zone-b.test"}')).toBe('0');
    expect(line(text, 'zonegate_decisions_total{result="allow",reason=""}')).toBe('3');
  });
});
