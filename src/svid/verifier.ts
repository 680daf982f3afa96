/**
 * X509SvidVerifier: the request-path front of verifyX509Svid. Parsing a certificate costs more
 * than checking a signature on Node 20, so a certificate string already seen is never parsed
 * again: results are cached by SHA-256 of the string exactly as received (e.g. Envoy's URL-encoded
 * PEM) together with the generation of the trust domain they depend on, so a bundle change for
 * that trust domain re-verifies, and only for that trust domain.
 *
 * The string is only the first key. The same chain spelled another way (other line breaks,
 * URL-encoding of other characters, unused base64 bits) decodes to the same DER, and results and
 * parsed certificates are also kept by the SHA-256 of the DER: a caller cannot make zonegate
 * parse and verify one certificate again by re-spelling it. prepare() checks a new chain's
 * signatures on the thread pool before the synchronous verifyPem() of the same request.
 */
import type { X509Certificate } from 'node:crypto';
import { RecentHashes, sha256 } from '../hash.js';
import { LRUCache } from 'lru-cache';
import { ZonegateError, type ReasonCode } from '../errors.js';
import { SpiffeId, type TrustDomain } from '../spiffe/id.js';
import type { X509BundleSource } from '../bundle/set.js';
import { certInfo } from '../cert/certinfo.js';
import { certificateDers, certificateFromDer } from '../cert/parse.js';
import { prepareSignatures, verifyX509Svid } from './x509.js';

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

/** The limits and cache sizes are the config's: the caller passes them, so their defaults live in the config schema only. */
export interface VerifierOptions {
  /** Tolerance on validity windows, in seconds (default 0: none). */
  readonly skewSeconds?: number;
  /** Most certificates in a chain (limits.maxChainLength). */
  readonly maxChainLength: number;
  /** Largest certificate string accepted, as received (limits.maxChainBytes). */
  readonly maxBytes: number;
  /** Largest single certificate (DER bytes) in the chain (limits.maxCertificateBytes). */
  readonly maxCertificateBytes: number;
  /** Cached results (cache.svids). */
  readonly cacheSize: number;
  /** Parsed certificates kept by the SHA-256 of their DER (cache.certificates). */
  readonly certificateCacheSize: number;
  /** Most signature checks one path search may do (limits.maxSignatureChecks). */
  readonly maxSignatureChecks: number;
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
    private readonly opts: VerifierOptions,
  ) {
    this.clock = opts.now ?? Date.now;
    // ttlResolution 0: read the clock on every lookup (no debouncing timer, and an injected clock is exact).
    this.cache = new LRUCache({ max: opts.cacheSize, ttlResolution: 0, ...(opts.now ? { perf: { now: opts.now } } : {}) });
    this.byDer = new LRUCache({ max: opts.cacheSize, ttlResolution: 0, ...(opts.now ? { perf: { now: opts.now } } : {}) });
    this.certs = new LRUCache({ max: opts.certificateCacheSize });
  }
  /** The same results by the digest of the chain's DER (see the file comment). */
  private readonly byDer: LRUCache<string, Entry>;
  private readonly certs: LRUCache<string, X509Certificate>;
  /** Certificates actually parsed (certificate cache misses). */
  certificateParses = 0;

  /** Verifies a chain given as received: URL-encoded or plain PEM, leaf first. Never throws ZonegateError. */
  verifyPem(received: string, call: VerifyCallOptions = {}): SvidResult {
    const maxBytes = this.opts.maxBytes;
    if (received.length > maxBytes)
      return { ok: false, code: 'ERR_SVID_TOO_LARGE', message: `x509svid: certificate is ${received.length} bytes (limit ${maxBytes})` };
    if (call.now !== undefined) {
      this.parses++;
      return this.verifyUncached(received, call.now).result;
    }
    const key = this.keys.hash(received);
    const now = this.clock();
    const hit = this.fresh(this.cache.get(key), now);
    if (hit) {
      this.hits++;
      return hit.result;
    }
    // The same DER under another spelling is the same chain: look it up by the DER's digest.
    const decoded = this.decode(received);
    const known = 'derKey' in decoded ? this.fresh(this.byDer.get(decoded.derKey), now) : undefined;
    if (known) {
      this.hits++;
      this.remember(this.cache, key, known, now);
      return known.result;
    }
    this.parses++;
    const entry = 'entry' in decoded ? decoded.entry : this.verifyDers(decoded.ders, now);
    this.remember(this.cache, key, entry, now);
    if ('derKey' in decoded) this.remember(this.byDer, decoded.derKey, entry, now);
    return entry.result;
  }

  /**
   * Checks on the thread pool the certificate signatures verifyPem() will need for a chain not
   * seen before, so that verifyPem() of the same chain spends none on the event loop. Undefined
   * when there is nothing to wait for (known, malformed, or no signature left to check).
   */
  prepare(received: string): Promise<void> | undefined {
    if (received.length > this.opts.maxBytes) return undefined;
    const now = this.clock();
    if (this.fresh(this.cache.get(this.keys.hash(received)), now)) return undefined;
    const decoded = this.decode(received);
    if (!('derKey' in decoded) || this.fresh(this.byDer.get(decoded.derKey), now)) return undefined;
    try {
      const chain = decoded.ders.map((d) => this.certificate(d));
      return prepareSignatures(chain, this.bundles, {
        now,
        skewSeconds: this.opts.skewSeconds ?? 0,
        maxChainLength: this.opts.maxChainLength,
        maxSignatureChecks: this.opts.maxSignatureChecks,
      });
    } catch {
      return undefined; // verifyPem reports why
    }
  }

  private fresh(hit: Entry | undefined, now: number): Entry | undefined {
    const skew = (this.opts.skewSeconds ?? 0) * 1000;
    return hit && this.current(hit) && (!hit.result.ok || now - skew <= hit.result.notAfter) ? hit : undefined;
  }

  private remember(cache: LRUCache<string, Entry>, key: string, entry: Entry, now: number): void {
    const skew = (this.opts.skewSeconds ?? 0) * 1000;
    const ttl = entry.result.ok ? entry.result.notAfter + skew - now : (this.opts.negativeTtlMs ?? 30_000);
    cache.set(key, entry, { ttl: Math.max(1, Math.ceil(ttl)) });
  }

  /** The chain's DER certificates and their cache key, or the failure to report. */
  private decode(received: string): { ders: Buffer[]; derKey: string } | { entry: Entry } {
    let pem = received;
    if (received.includes('%')) {
      try {
        pem = decodeURIComponent(received);
      } catch {
        return { entry: { result: { ok: false, code: 'ERR_PEER_CERT_MALFORMED', message: 'x509svid: certificate is not valid URL-encoded PEM' }, td: undefined, generation: undefined } };
      }
    }
    try {
      const ders = certificateDers(pem, {
        maxCertificates: this.opts.maxChainLength,
        maxCertificateBytes: this.opts.maxCertificateBytes,
      });
      return { ders, derKey: `der:${ders.map(digest).join('.')}` };
    } catch (err) {
      if (!(err instanceof ZonegateError)) throw err;
      return { entry: { result: { ok: false, code: err.code, message: err.message }, td: undefined, generation: undefined } };
    }
  }

  /** A parsed certificate, once per DER. */
  private certificate(der: Buffer): X509Certificate {
    const k = digest(der);
    let cert = this.certs.get(k);
    if (!cert) {
      this.certificateParses++;
      cert = certificateFromDer(der);
      this.certs.set(k, cert);
    }
    return cert;
  }

  /** Drops every cached result (e.g. after a configuration reload). */
  clear(): void {
    this.cache.clear();
    this.byDer.clear();
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
    const decoded = this.decode(received);
    return 'entry' in decoded ? decoded.entry : this.verifyDers(decoded.ders, now);
  }

  private verifyDers(ders: readonly Buffer[], now: number): Entry {
    let td: TrustDomain | undefined;
    try {
      const chain = ders.map((d) => this.certificate(d));
      td = leafTrustDomain(chain[0]);
      const v = verifyX509Svid(chain, this.bundles, {
        now,
        skewSeconds: this.opts.skewSeconds ?? 0,
        maxChainLength: this.opts.maxChainLength,
        maxSignatureChecks: this.opts.maxSignatureChecks,
      });
      const thumbprint = sha256(chain[0]!.raw, 'base64url');
      const result = { ok: true, id: v.id, trustDomain: v.id.trustDomain, notAfter: v.notAfter, thumbprint } as const;
      return { result, td: v.id.trustDomain, generation: this.generation(v.id.trustDomain) };
    } catch (err) {
      if (!(err instanceof ZonegateError)) throw err;
      // A failure for a leaf of some trust domain is retried when that trust domain's bundle changes.
      return { result: { ok: false, code: err.code, message: err.message }, td, generation: td ? this.generation(td) : undefined };
    }
  }
}

const digest = (der: Buffer): string => sha256(der, 'base64');

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
