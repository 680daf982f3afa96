/**
 * An OIDC issuer's keys, kept in the background: discovery (`/.well-known/openid-configuration`)
 * or a configured `jwks_uri`, refreshed periodically and — rate limited — when a token names a
 * kid not held yet. The request path only looks keys up: a token with an unknown kid is denied
 * (ERR_TOKEN_KEY_UNKNOWN) while the refetch runs; cached keys keep working while the issuer is down.
 */
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { importJwtAuthority, MAX_BUNDLE_KEYS } from '../bundle/bundle.js';
import { TrustDomain } from '../spiffe/id.js';
import { parseCertificates } from '../svid/parse.js';
import { boundedGet, type FetchLimits, type TlsProfile } from '../federation/fetch.js';

export interface OidcConfig {
  readonly issuer: string;
  readonly jwksUri?: string | undefined;
  readonly ca?: string | undefined;
  readonly refreshSeconds: number;
  /** Shortest time between two refetches triggered by unknown kids. */
  readonly minRefetchSeconds: number;
}

const PLACEHOLDER_TD = TrustDomain.parse('oidc.invalid');

export class OidcKeys {
  private keys = new Map<string, KeyObject>();
  private pending: Promise<void> | undefined;
  private lastFetch = 0;
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

  /** The key with this kid; an unknown kid schedules a (rate-limited) refetch. */
  key(kid: string): KeyObject | undefined {
    const k = this.keys.get(kid);
    if (!k && Date.now() - this.lastFetch >= this.cfg.minRefetchSeconds * 1000) void this.refresh();
    return k;
  }

  get size(): number {
    return this.keys.size;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.cfg.refreshSeconds * 1000);
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
      const maxKeys = this.limits.maxKeys ?? MAX_BUNDLE_KEYS;
      if (doc.keys.length > maxKeys) throw new Error(`ERR_BUNDLE_TOO_LARGE: JWKS has ${doc.keys.length} keys (limit ${maxKeys})`);
      const next = new Map<string, KeyObject>();
      doc.keys.forEach((el: unknown, i: number) => {
        if (typeof el !== 'object' || el === null) return;
        const e = el as Record<string, unknown>;
        if (!['EC', 'RSA', 'OKP'].includes(String(e.kty)) || (e.use !== undefined && e.use !== 'sig')) return;
        const a = importJwtAuthority(e, PLACEHOLDER_TD, `keys[${i}]`);
        next.set(a.kid, a.key);
      });
      this.keys = next;
      this.lastError = undefined;
    } catch (err) {
      // keep the keys we have: an issuer outage must not log everyone out
      this.lastError = (err as Error).message;
      this.onError(`oidc ${this.cfg.issuer}: ${this.lastError}`);
    }
  }
}
