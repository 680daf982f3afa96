/**
 * An OIDC issuer's keys, kept in the background: discovery (`/.well-known/openid-configuration`)
 * or a configured `jwks_uri`, refreshed periodically and — rate limited — when a token names a
 * kid not held yet. The request path only looks keys up: a token with an unknown kid is denied
 * (ERR_TOKEN_KEY_UNKNOWN) while the refetch runs; cached keys keep working while the issuer is down.
 *
 * Cached keys have a maximum age (`keysMaxAgeSeconds`, counted from the last successful fetch):
 * a set that old is fetched again even when the refresh interval is longer, and while the issuer
 * cannot be reached (fetches go on at least twice per maximum age) it keeps verifying for
 * `keysMaxStaleSeconds` more. Past that the issuer's
 * tokens fail closed (ERR_OIDC_KEYS_STALE) until a fetch succeeds: a key the issuer revoked
 * during a long outage must not verify forever.
 */
import { readFileSync } from 'node:fs';
import { importJwtAuthority, type JwtAuthority } from '../bundle/bundle.js';
import { TrustDomain } from '../spiffe/id.js';
import { parseCertificates } from '../cert/parse.js';
import { boundedGet, type FetchLimits, type TlsProfile } from '../net/fetch.js';

export interface OidcConfig {
  readonly issuer: string;
  readonly jwksUri?: string | undefined;
  readonly ca?: string | undefined;
  readonly refreshSeconds: number;
  /** Shortest time between two refetches triggered by unknown kids. */
  readonly minRefetchSeconds: number;
  /** Keys fetched longer ago than this are fetched again. */
  readonly keysMaxAgeSeconds: number;
  /** How long keys past their maximum age keep verifying while refetches fail. */
  readonly keysMaxStaleSeconds: number;
}

export type OidcKeysState = 'fresh' | 'stale' | 'expired';

const PLACEHOLDER_TD = TrustDomain.parse('oidc.invalid');

export class OidcKeys {
  private keys = new Map<string, JwtAuthority>();
  private pending: Promise<void> | undefined;
  private lastFetch = 0;
  /** When the held keys were fetched (ms); undefined before the first success. */
  private fetchedAt: number | undefined;
  private timer?: NodeJS.Timeout;
  lastError: string | undefined;
  private readonly profile: TlsProfile;

  constructor(
    private readonly cfg: OidcConfig,
    private readonly limits: FetchLimits,
    private readonly onError: (message: string) => void = () => undefined,
  ) {
    this.profile = { kind: 'https_web', ...(cfg.ca ? { ca: parseCertificates(readFileSync(cfg.ca)).map((c) => c.toString()) } : {}) };
  }

  private get maxAgeMs(): number {
    return this.cfg.keysMaxAgeSeconds * 1000;
  }

  /**
   * fresh: fetched within the maximum age (or never fetched: no keys to be stale). stale: older,
   * still verifying while refetches are attempted. expired: older than the maximum age plus the
   * stale limit: the caller fails closed.
   */
  state(now = Date.now()): OidcKeysState {
    if (this.fetchedAt === undefined) return 'fresh';
    const age = now - this.fetchedAt;
    if (age <= this.maxAgeMs) return 'fresh';
    return age <= this.maxAgeMs + this.cfg.keysMaxStaleSeconds * 1000 ? 'stale' : 'expired';
  }

  /** Seconds since the held keys were fetched; undefined before the first success. */
  ageSeconds(now = Date.now()): number | undefined {
    return this.fetchedAt === undefined ? undefined : Math.round((now - this.fetchedAt) / 1000);
  }

  /**
   * The key with this kid, with its JWK (whose alg, use and key_ops verification keeps to); an
   * unknown kid, or keys past their maximum age, schedule a (rate-limited) refetch.
   */
  key(kid: string): JwtAuthority | undefined {
    const k = this.keys.get(kid);
    const now = Date.now();
    if ((!k || this.state(now) !== 'fresh') && now - this.lastFetch >= this.cfg.minRefetchSeconds * 1000) void this.refresh();
    return k;
  }

  get size(): number {
    return this.keys.size;
  }

  async start(): Promise<void> {
    await this.refresh();
    // keys are fetched again at least twice per maximum age, whatever the refresh interval, so a
    // set reaches its maximum age only when fetches have failed
    this.timer = setInterval(() => void this.refresh(), Math.min(this.cfg.refreshSeconds * 1000, this.maxAgeMs / 2));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  refresh(): Promise<void> {
    this.pending ??= this.fetch().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async fetch(): Promise<void> {
    this.lastFetch = Date.now();
    try {
      let jwksUri = this.cfg.jwksUri;
      if (!jwksUri) {
        const url = `${this.cfg.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
        const res = await boundedGet(url, this.profile, this.limits);
        if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
        const doc = JSON.parse(res.body.toString()) as { issuer?: unknown; jwks_uri?: unknown };
        if (doc.issuer !== this.cfg.issuer) throw new Error(`discovery names issuer "${String(doc.issuer)}", configured "${this.cfg.issuer}"`);
        if (typeof doc.jwks_uri !== 'string') throw new Error('discovery has no jwks_uri');
        jwksUri = doc.jwks_uri;
      }
      const res = await boundedGet(jwksUri, this.profile, this.limits);
      if (res.status !== 200) throw new Error(`${jwksUri}: HTTP ${res.status}`);
      const doc = JSON.parse(res.body.toString()) as { keys?: unknown };
      if (!Array.isArray(doc.keys)) throw new Error('JWKS has no keys');
      const maxKeys = this.limits.maxKeys;
      if (doc.keys.length > maxKeys) throw new Error(`ERR_BUNDLE_TOO_LARGE: JWKS has ${doc.keys.length} keys (limit ${maxKeys})`);
      const next = new Map<string, JwtAuthority>();
      doc.keys.forEach((el: unknown, i: number) => {
        if (typeof el !== 'object' || el === null) return;
        const e = el as Record<string, unknown>;
        if (!['EC', 'RSA', 'OKP'].includes(String(e.kty)) || (e.use !== undefined && e.use !== 'sig')) return;
        const a = importJwtAuthority(e, PLACEHOLDER_TD, `keys[${i}]`);
        next.set(a.kid, a);
      });
      this.keys = next;
      this.fetchedAt = Date.now();
      this.lastError = undefined;
    } catch (err) {
      // keep the keys we have: an issuer outage must not log everyone out (up to the stale limit)
      this.lastError = (err as Error).message;
      const state = this.state();
      const age = state === 'fresh' ? '' : ` (keys fetched ${this.ageSeconds()} s ago: ${state === 'stale' ? 'past their maximum age, still used' : 'past the stale limit, tokens fail closed with ERR_OIDC_KEYS_STALE'})`;
      this.onError(`oidc ${this.cfg.issuer}: ${this.lastError}${age}`);
    }
  }
}
