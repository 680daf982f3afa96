/**
 * What `zonegate status` shows, served at the ops server's GET /status: readiness, where the
 * config came from and how its last reload went, and per trust domain the bundle held (its
 * generation and sequence), the last and next refresh, and staleness. Times are RFC 3339.
 */
import type { ReloadState } from '../config/reload.js';
import type { Readiness } from '../readiness.js';
import type { TrustDomainStatus } from '../federation/manager.js';
import { VERSION } from '../version.js';

export interface TrustDomainReport {
  readonly trustDomain: string;
  readonly source: string;
  readonly required: boolean;
  readonly generation: number;
  readonly sequence: number | null;
  readonly x509Authorities: number;
  readonly jwtAuthorities: number;
  readonly lastResult: 'pending' | 'ok' | 'error';
  readonly lastError: string | null;
  readonly lastRefresh: string | null;
  readonly lastAttempt: string | null;
  readonly nextRefresh: string | null;
  readonly stale: boolean;
  readonly staleAt: string | null;
}

export interface StatusReport {
  readonly version: string;
  readonly now: string;
  readonly ready: boolean;
  readonly readiness: string;
  readonly config: {
    readonly origin: string;
    /** watching: reloaded on SIGHUP and on change (serve --config); last: the last reload tried. */
    readonly reload: { readonly watching: boolean; readonly last: (Omit<ReloadState, 'at'> & { at: string }) | null };
  };
  readonly trustDomains: readonly TrustDomainReport[];
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function statusReport(parts: {
  origin: string;
  readiness: Readiness;
  trust: readonly TrustDomainStatus[];
  reload?: { last: ReloadState | undefined } | undefined;
  now?: number;
}): StatusReport {
  const last = parts.reload?.last;
  return {
    version: VERSION,
    now: iso(parts.now ?? Date.now())!,
    ready: parts.readiness.ready,
    readiness: parts.readiness.reason,
    config: { origin: parts.origin, reload: { watching: parts.reload !== undefined, last: last ? { ...last, at: iso(last.at)! } : null } },
    trustDomains: parts.trust.map((s) => ({
      trustDomain: s.trustDomain,
      source: s.source,
      required: s.required,
      generation: s.generation,
      sequence: s.sequence ?? null,
      x509Authorities: s.x509Authorities,
      jwtAuthorities: s.jwtAuthorities,
      lastResult: s.lastResult,
      lastError: s.lastError ?? null,
      lastRefresh: iso(s.lastSuccessAt),
      lastAttempt: iso(s.lastAttemptAt),
      nextRefresh: iso(s.nextRefreshAt),
      stale: s.stale,
      staleAt: iso(s.staleAt),
    })),
  };
}
