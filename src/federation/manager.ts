/**
 * TrustManager keeps every configured trust domain's bundle live in one BundleSet, without
 * restarts: it refreshes each source at its bundle's `spiffe_refresh_hint` (clamped, jittered),
 * reloads watched files on change, keeps the last good bundle when a refresh fails, never lets
 * `spiffe_sequence` go backwards, and fails a trust domain closed once it has gone longer than
 * the maximum staleness without a successful refresh. One refresh per trust domain is in flight
 * at a time. Requests never wait on any of this: they read the BundleSet.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { MAX_TIMER_SECONDS } from '../schema-parts.js';
import { fetchLimits, trustSlice, trustSourceKey, type SourceConfig, type TrustConfig } from './schema.js';
import { bundleDigest, type Bundle } from '../bundle/bundle.js';
import { BundleSet } from '../bundle/set.js';
import { ZonegateError } from '../errors.js';
import { TrustDomain } from '../spiffe/id.js';
import { parseCertificates } from '../cert/parse.js';
import { createSource, SourceError, type BundleSource } from './sources.js';

export interface TrustDomainStatus {
  readonly trustDomain: string;
  readonly source: string;
  readonly required: boolean;
  readonly hasBundle: boolean;
  readonly stale: boolean;
  readonly sequence: number | undefined;
  readonly x509Authorities: number;
  readonly jwtAuthorities: number;
  /** ms since the epoch of the last successful refresh (a fetch that returned a valid bundle). */
  readonly lastSuccessAt: number | undefined;
  readonly lastResult: 'pending' | 'ok' | 'error';
  readonly lastError: string | undefined;
  readonly refreshes: { readonly ok: number; readonly error: number };
  /** The BundleSet generation of the bundle held (0: none yet); it changes with every new bundle. */
  readonly generation: number;
  /** ms since the epoch of the last refresh attempt that ended, and of the next one scheduled. */
  readonly lastAttemptAt: number | undefined;
  readonly nextRefreshAt: number | undefined;
  /** ms since the epoch when the trust domain fails closed without a successful refresh. */
  readonly staleAt: number | undefined;
}

interface Domain {
  readonly td: TrustDomain;
  readonly source: BundleSource;
  readonly required: boolean;
  /** The source's configuration (config/diff.ts): a reload adopts the bundle of a domain whose key did not change. */
  readonly key: string;
  adopted?: boolean;
  bundle?: Bundle;
  /** bundleDigest of `bundle`: an unchanged refetch keeps the generation. */
  digest?: string;
  lastSuccessAt?: number;
  lastResult: 'pending' | 'ok' | 'error';
  lastError?: string;
  lastAttemptAt?: number;
  nextRefreshAt?: number;
  ok: number;
  error: number;
  pending?: Promise<void>;
  timer?: NodeJS.Timeout;
  staleTimer?: NodeJS.Timeout;
  unwatch?: () => void;
}

export interface TrustManagerOptions {
  readonly now?: () => number;
  /** Called with every refresh outcome (for logs). */
  readonly onRefresh?: (td: string, result: 'ok' | 'unchanged' | 'error', detail: string) => void;
}

/**
 * A delay Node can arm: a timer beyond 2^31 − 1 ms fires after 1 ms instead, which would make a
 * long staleness fail closed at once or a long refresh hint loop hot. The schema bounds the
 * configured values; this also bounds what jitter adds.
 */
const timerMs = (seconds: number): number => Math.max(1, Math.min(seconds, MAX_TIMER_SECONDS) * 1000);

/** Emits 'change' whenever a bundle, a staleness state or readiness may have changed. */
export class TrustManager extends EventEmitter {
  readonly bundles = new BundleSet();
  private readonly domains = new Map<string, Domain>();
  private readonly now: () => number;
  private stopped = false;

  /** Only trustSlice(config): the part a reload compares before keeping a running manager. */
  private readonly config: TrustConfig;

  constructor(
    full: TrustConfig,
    private readonly opts: TrustManagerOptions = {},
  ) {
    super();
    const config = (this.config = trustSlice(full));
    this.now = opts.now ?? Date.now;
    const limits = fetchLimits(config);
    for (const t of config.trust) {
      const td = TrustDomain.parse(t.trustDomain);
      const cfg: SourceConfig = t.source ?? { file: t.bundle! };
      const source = createSource(cfg, td, limits, { current: (other) => this.bundles.get(other) });
      this.domains.set(td.name, { td, source, required: t.required, key: trustSourceKey(t, config), lastResult: 'pending', ok: 0, error: 0 });
      if (t.intermediates) {
        try {
          this.bundles.setIntermediates(td, parseCertificates(readFileSync(t.intermediates)));
        } catch (err) {
          throw new ZonegateError('ERR_BUNDLE_INVALID', `bundle: trust domain "${td.name}": intermediates ${t.intermediates}: ${(err as Error).message}`);
        }
      }
    }
  }

  /**
   * Loads every trust domain once and starts refreshing. A local file that cannot be loaded at
   * startup is a configuration error (thrown); a remote source that fails is retried while the
   * trust domain stays without a bundle (and readiness waits if it is required).
   */
  async start(): Promise<void> {
    const all = [...this.domains.values()];
    for (const d of all.filter((x) => x.adopted)) this.schedule(d);
    await Promise.all(all.filter((x) => !x.adopted).map((d) => this.refresh(d.td.name)));
    const broken = [...this.domains.values()].filter((d) => (d.source.kind === 'file' || d.source.kind === 'istio') && !d.bundle);
    if (broken.length > 0) {
      this.stop();
      throw new ZonegateError('ERR_BUNDLE_INVALID', broken.map((d) => `bundle: trust domain "${d.td.name}": ${d.lastError}`).join('; '));
    }
    if (this.stopped) return;
    for (const d of this.domains.values()) d.unwatch = d.source.watch?.(() => this.refreshInBackground(d));
  }

  /**
   * A config reload: takes over, from the manager being replaced, the bundle and history of every
   * trust domain whose source is configured exactly as before, so it keeps serving without a
   * refetch (and its staleness clock keeps running). start() then fetches only the new or
   * changed ones. Call before start().
   */
  adopt(previous: TrustManager): void {
    for (const d of this.domains.values()) {
      const p = previous.domains.get(d.td.name);
      if (!p || p.key !== d.key) continue;
      d.adopted = true;
      Object.assign(d, { lastResult: p.lastResult, lastError: p.lastError, ok: p.ok, error: p.error, lastAttemptAt: p.lastAttemptAt });
      if (p.lastSuccessAt !== undefined) d.lastSuccessAt = p.lastSuccessAt;
      if (p.bundle) {
        d.bundle = p.bundle;
        d.digest = p.digest;
        this.bundles.set(p.bundle);
        if (previous.bundles.isStale(d.td)) this.bundles.setStale(d.td, true);
        else if (d.lastSuccessAt !== undefined)
          this.armStaleness(d, this.config.federation.maxStalenessSeconds * 1000 - (this.now() - d.lastSuccessAt));
      }
    }
  }

  /** Trust domains this manager fetched itself (not adopted): what a reload must have loaded. */
  get fetched(): { trustDomain: string; required: boolean; hasBundle: boolean; lastError: string | undefined }[] {
    return [...this.domains.values()]
      .filter((d) => !d.adopted)
      .map((d) => ({ trustDomain: d.td.name, required: d.required, hasBundle: d.bundle !== undefined, lastError: d.lastError }));
  }

  stop(): void {
    this.stopped = true;
    for (const d of this.domains.values()) {
      clearTimeout(d.timer);
      clearTimeout(d.staleTimer);
      d.unwatch?.();
    }
  }

  /** True when every required trust domain has a bundle that is not stale. */
  get ready(): boolean {
    for (const d of this.domains.values()) if (d.required && (!d.bundle || this.bundles.isStale(d.td))) return false;
    return true;
  }

  /** Why not ready, for /readyz. */
  get waitingFor(): string[] {
    return [...this.domains.values()]
      .filter((d) => d.required && (!d.bundle || this.bundles.isStale(d.td)))
      .map((d) => `${d.td.name} (${d.bundle ? 'stale' : (d.lastError ?? 'loading')})`);
  }

  status(): TrustDomainStatus[] {
    return [...this.domains.values()].map((d) => ({
      trustDomain: d.td.name,
      source: d.source.describe,
      required: d.required,
      hasBundle: d.bundle !== undefined,
      stale: this.bundles.isStale(d.td),
      sequence: d.bundle?.sequence,
      x509Authorities: d.bundle?.x509Authorities.length ?? 0,
      jwtAuthorities: d.bundle?.jwtAuthorities.size ?? 0,
      lastSuccessAt: d.lastSuccessAt,
      lastResult: d.lastResult,
      lastError: d.lastError,
      refreshes: { ok: d.ok, error: d.error },
      generation: d.bundle ? this.bundles.generation(d.td) : 0,
      lastAttemptAt: d.lastAttemptAt,
      nextRefreshAt: d.nextRefreshAt,
      staleAt: d.lastSuccessAt === undefined ? undefined : d.lastSuccessAt + this.config.federation.maxStalenessSeconds * 1000,
    }));
  }

  /** Refreshes one trust domain now (joins a refresh already in flight). */
  refresh(name: string): Promise<void> {
    const d = this.domains.get(name);
    if (!d) return Promise.reject(new Error(`trust: unknown trust domain "${name}"`));
    d.pending ??= this.doRefresh(d)
      .catch((err: unknown) => this.failed(d, `internal: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => {
        d.pending = undefined;
        d.lastAttemptAt = this.now();
        this.schedule(d);
      });
    return d.pending;
  }

  /** A refresh nobody awaits (timers, file watches): it must never become an unhandled rejection. */
  private refreshInBackground(d: Domain): void {
    this.refresh(d.td.name).catch((err: unknown) => this.opts.onRefresh?.(d.td.name, 'error', String(err)));
  }

  /** One refresh; whatever it throws is caught by refresh() and kept as the domain's last error. */
  private async doRefresh(d: Domain): Promise<void> {
    let next: Bundle;
    try {
      next = await d.source.fetch();
    } catch (err) {
      this.failed(d, err instanceof SourceError ? `${err.kind}: ${err.code}: ${err.message}` : String(err));
      return;
    }
    if (this.stopped) return;
    const prevSeq = d.bundle?.sequence;
    const digest = bundleDigest(next);
    // spiffe_sequence orders a publisher's bundles: it never goes back, and once a publisher has
    // one it never drops it (an older document without one could not be told from a newer one).
    // A publisher MUST increment it when the content changes, so new content under the same
    // number is refused as well. Those two rules are for fetched bundles: a local file is the
    // operator's, who may replace a SPIFFE bundle with a PEM file.
    const remote = d.source.kind !== 'file' && d.source.kind !== 'istio';
    if (remote && prevSeq !== undefined && next.sequence === undefined) {
      this.failed(d, `sequence dropped: the fetched bundle has no spiffe_sequence, the current one ${prevSeq}; keeping the current bundle`);
      return;
    }
    if (prevSeq !== undefined && next.sequence !== undefined && next.sequence < prevSeq) {
      this.failed(d, `sequence regression: fetched spiffe_sequence ${next.sequence} < ${prevSeq}; keeping the current bundle`);
      return;
    }
    if (remote && prevSeq !== undefined && next.sequence === prevSeq && digest !== d.digest) {
      this.failed(d, `sequence not incremented: fetched content differs under the same spiffe_sequence ${prevSeq}; keeping the current bundle`);
      return;
    }
    d.lastSuccessAt = this.now();
    d.lastResult = 'ok';
    d.lastError = undefined;
    d.ok++;
    this.armStaleness(d);
    const wasStale = this.bundles.isStale(d.td);
    if (digest === d.digest && !wasStale) {
      this.opts.onRefresh?.(d.td.name, 'unchanged', d.source.describe);
      return; // same content: keep the generation, so caches stay warm
    }
    d.bundle = next;
    d.digest = digest;
    this.bundles.set(next);
    this.bundles.setStale(d.td, false);
    this.opts.onRefresh?.(
      d.td.name,
      'ok',
      `${d.source.describe}: ${next.x509Authorities.length} X.509 and ${next.jwtAuthorities.size} JWT authorities, sequence ${next.sequence ?? 'none'}` +
        next.ignored.map((n) => `; ${n}`).join(''),
    );
    this.emit('change');
  }

  private failed(d: Domain, message: string): void {
    d.lastResult = 'error';
    d.lastError = message;
    d.error++;
    this.opts.onRefresh?.(d.td.name, 'error', message);
    this.emit('change');
  }

  private armStaleness(d: Domain, ms = this.config.federation.maxStalenessSeconds * 1000): void {
    clearTimeout(d.staleTimer);
    if (this.stopped) return;
    d.staleTimer = setTimeout(() => {
      this.bundles.setStale(d.td, true);
      this.opts.onRefresh?.(d.td.name, 'error', `no successful refresh for ${this.config.federation.maxStalenessSeconds} s: failing closed`);
      this.emit('change');
    }, timerMs(Math.max(0, ms) / 1000));
    d.staleTimer.unref();
  }

  /** Next refresh: the bundle's hint (or the default), clamped to [min, max], with jitter. */
  private schedule(d: Domain): void {
    clearTimeout(d.timer);
    if (this.stopped) return;
    const r = this.config.federation.refresh;
    const hint = d.bundle?.refreshHintSeconds ?? r.defaultSeconds;
    const base = Math.min(Math.max(hint, r.minSeconds), r.maxSeconds);
    const jittered = base * (1 + (Math.random() * 2 - 1) * r.jitter);
    d.nextRefreshAt = this.now() + timerMs(jittered);
    d.timer = setTimeout(() => this.refreshInBackground(d), timerMs(jittered));
    d.timer.unref();
  }
}
