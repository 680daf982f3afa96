/** Per-trust-domain bundle metrics, read from the TrustManager at scrape time. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TrustManager } from './manager.js';

/** Registers bundle age, sequence, last refresh result, refresh counts and authority counts. */
export function registerTrustMetrics(registry: Registry, trust: Pick<TrustManager, 'status'>): void {
  const labelNames = ['trust_domain'] as const;
  // serve --workers N: every worker holds and refreshes its own copy of each bundle. A state
  // gauge reports the worst worker (src/metrics.ts), so an alert fires while any worker is
  // affected: the oldest bundle, the lowest sequence (a worker behind), a failed last refresh, a
  // trust domain failing closed, the fewest authorities (an empty bundle denies every peer of it).
  // prom-client calls collect() on each scrape, in registration order: the first gauge fills all.
  const age: Gauge<'trust_domain'> = new Gauge({
    name: 'zonegate_bundle_age_seconds',
    help: 'Seconds since the last successful refresh of the bundle',
    labelNames,
    registers: [registry],
    aggregator: 'max',
    collect: () => fill(),
  });
  const seq = new Gauge({ name: 'zonegate_bundle_sequence', help: 'spiffe_sequence of the bundle held (absent when the bundle has none)', labelNames, registers: [registry], aggregator: 'min' });
  const ok = new Gauge({ name: 'zonegate_bundle_last_refresh_success', help: '1 when the last refresh succeeded, 0 when it failed', labelNames, registers: [registry], aggregator: 'min' });
  const stale = new Gauge({ name: 'zonegate_bundle_stale', help: '1 when the trust domain is past its maximum staleness and fails closed', labelNames, registers: [registry], aggregator: 'max' });
  // A count that only grows is a counter, named _total (OpenMetrics); the manager holds the count,
  // so it is set at scrape time (reset and added), like the gauges beside it. Each worker fetches
  // on its own: the sum is what the sources served.
  const refreshes = new Counter({ name: 'zonegate_bundle_refreshes_total', help: 'Refresh attempts by result since the trust domain was configured', labelNames: ['trust_domain', 'result'], registers: [registry], aggregator: 'sum' });
  const authorities = new Gauge({ name: 'zonegate_bundle_authorities', help: 'Authorities in the bundle held, by kind (x509, jwt)', labelNames: ['trust_domain', 'kind'], registers: [registry], aggregator: 'min' });
  function fill() {
    const now = Date.now();
    for (const g of [age, seq, ok, stale, refreshes, authorities]) g.reset();
    for (const s of trust.status()) {
      const l = { trust_domain: s.trustDomain };
      if (s.lastSuccessAt !== undefined) age.set(l, (now - s.lastSuccessAt) / 1000);
      if (s.sequence !== undefined) seq.set(l, s.sequence);
      if (s.lastResult !== 'pending') ok.set(l, s.lastResult === 'ok' ? 1 : 0);
      stale.set(l, s.stale ? 1 : 0);
      refreshes.inc({ ...l, result: 'ok' }, s.refreshes.ok);
      refreshes.inc({ ...l, result: 'error' }, s.refreshes.error);
      authorities.set({ ...l, kind: 'x509' }, s.x509Authorities);
      authorities.set({ ...l, kind: 'jwt' }, s.jwtAuthorities);
    }
  }
}
