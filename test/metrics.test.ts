/**
 * Metric names follow the Prometheus and OpenMetrics conventions prom-client leaves to us: every
 * counter is named `_total`, and nothing else is; a count read from elsewhere at scrape time is
 * still a counter.
 */
import { describe, expect, it } from 'vitest';
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
