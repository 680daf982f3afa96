/**
 * X509SvidVerifier: the request-path front of verifyX509Svid. Parsing a certificate costs more
 * than checking a signature on Node 20, so a certificate string already seen is never parsed
 * again: results are cached by SHA-256 of the string exactly as received (e.g. Envoy's URL-encoded
 * PEM) together with the generation of the trust domain they depend on, so a bundle change for
 * that trust domain re-verifies, and only for that trust domain.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { RecentHashes } from '../hash.js';
import { LRUCache } from 'lru-cache';
import { ZonegateError, type ReasonCode } from '../errors.js';
import { SpiffeId, type TrustDomain } from '../spiffe/id.js';
import type { X509BundleSource } from '../bundle/set.js';
import { certInfo } from './certinfo.js';
import { parseCertificates } from './parse.js';
import { verifyX509Svid } from './x509.js';

export type SvidResult =
  | {
      readonly ok: true;
      readonly id: SpiffeId;
      readonly trustDomain: TrustDomain;
      readonly notAfter: number;
      /** base64url SHA-256 of the leaf DER (RFC 8705 x5t#S256), for binding tokens to this peer. */
      readonly thumbprint: string;
    }
  | { readonly ok: false; readonly code: ReasonCode; readonly message: string };

export interface VerifierOptions {
  readonly skewSeconds?: number;
  readonly maxChainLength?: number;
  /** Largest certificate string accepted, as received (default 64 KiB). */
  readonly maxBytes?: number;
  /** Largest single certificate (DER bytes) in the chain (default: no limit beyond maxBytes). */
  readonly maxCertificateBytes?: number;
  /** Cached results (default 10 000). */
  readonly cacheSize?: number;
  /** How long a failure is remembered (default 30 s), so a flood of one bad cert costs one parse. */
  readonly negativeTtlMs?: number;
  /** Clock in ms, for tests; the cache's expiry follows it too. */
  readonly now?: () => number;
}

export interface VerifyCallOptions {
  /** Verify at this time (ms) instead of the verifier's clock; such a call neither reads nor fills the cache. */
  readonly now?: number;
}

interface Entry {
  readonly result: SvidResult;
  /** Trust domain whose generation the result depends on (undefined: depends on none). */
  readonly td: TrustDomain | undefined;
  /** undefined when the source has no generations: such a result is never reused. */
  readonly generation: number | undefined;
}

export class X509SvidVerifier {
  private readonly cache: LRUCache<string, Entry>;
  private readonly clock: () => number;
  /** Verifications actually performed (cache misses); exposed for tests and metrics. */
  parses = 0;
  /** Answers served from the cache. */
  hits = 0;
  /** Cache keys (SHA-256) of the last certificates seen. */
  private readonly keys = new RecentHashes(8, 'base64');

  constructor(
    private readonly bundles: X509BundleSource,
    private readonly opts: VerifierOptions = {},
  ) {
    this.clock = opts.now ?? Date.now;
    // ttlResolution 0: read the clock on every lookup (no debouncing timer, and an injected clock is exact).
    this.cache = new LRUCache({ max: opts.cacheSize ?? 10_000, ttlResolution: 0, ...(opts.now ? { perf: { now: opts.now } } : {}) });
  }

  /** Verifies a chain given as received: URL-encoded or plain PEM, leaf first. Never throws ZonegateError. */
  verifyPem(received: string, call: VerifyCallOptions = {}): SvidResult {
    const maxBytes = this.opts.maxBytes ?? 64 * 1024;
    if (received.length > maxBytes)
      return { ok: false, code: 'ERR_SVID_TOO_LARGE', message: `x509svid: certificate is ${received.length} bytes (limit ${maxBytes})` };
    if (call.now !== undefined) {
      this.parses++;
      return this.verifyUncached(received, call.now).result;
    }
    const key = this.keys.hash(received);
    const now = this.clock();
    const skew = (this.opts.skewSeconds ?? 0) * 1000;
    const hit = this.cache.get(key);
    if (hit && this.current(hit) && (!hit.result.ok || now - skew <= hit.result.notAfter)) {
      this.hits++;
      return hit.result;
    }
    this.parses++;
    const entry = this.verifyUncached(received, now);
    const ttl = entry.result.ok ? entry.result.notAfter + skew - now : (this.opts.negativeTtlMs ?? 30_000);
    this.cache.set(key, entry, { ttl: Math.max(1, Math.ceil(ttl)) });
    return entry.result;
  }

  /** Drops every cached result (e.g. after a configuration reload). */
  clear(): void {
    this.cache.clear();
  }

  /** Still valid for the trust material it was computed with? A source without generations never says so. */
  private current(e: Entry): boolean {
    if (e.td === undefined) return true;
    return e.generation !== undefined && this.bundles.generation?.(e.td) === e.generation;
  }

  private generation(td: TrustDomain): number | undefined {
    return this.bundles.generation?.(td);
  }

  private verifyUncached(received: string, now: number): Entry {
    let td: TrustDomain | undefined;
    try {
      let pem = received;
      if (received.includes('%')) {
        try {
          pem = decodeURIComponent(received);
        } catch {
          return { result: { ok: false, code: 'ERR_PEER_CERT_MALFORMED', message: 'x509svid: certificate is not valid URL-encoded PEM' }, td, generation: undefined };
        }
      }
      const maxChainLength = this.opts.maxChainLength ?? 5;
      const chain = parseCertificates(pem, {
        maxCertificates: maxChainLength,
        ...(this.opts.maxCertificateBytes ? { maxCertificateBytes: this.opts.maxCertificateBytes } : {}),
      });
      td = leafTrustDomain(chain[0]);
      const v = verifyX509Svid(chain, this.bundles, { now, skewSeconds: this.opts.skewSeconds ?? 0, maxChainLength });
      const thumbprint = createHash('sha256').update(chain[0]!.raw).digest('base64url');
      const result = { ok: true, id: v.id, trustDomain: v.id.trustDomain, notAfter: v.notAfter, thumbprint } as const;
      return { result, td: v.id.trustDomain, generation: this.generation(v.id.trustDomain) };
    } catch (err) {
      if (!(err instanceof ZonegateError)) throw err;
      // A failure for a leaf of some trust domain is retried when that trust domain's bundle changes.
      return { result: { ok: false, code: err.code, message: err.message }, td, generation: td ? this.generation(td) : undefined };
    }
  }
}

/** The trust domain of the leaf's SPIFFE ID, when it has a readable one. */
function leafTrustDomain(leaf: X509Certificate | undefined): TrustDomain | undefined {
  if (!leaf) return undefined;
  try {
    const uris = certInfo(leaf).uris;
    return uris.length === 1 ? SpiffeId.tryParse(uris[0]!)?.trustDomain : undefined;
  } catch {
    return undefined;
  }
}
