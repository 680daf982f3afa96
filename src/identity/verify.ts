/**
 * Common identity verification (docs/common-identity.md). A token is checked in this order, and
 * nothing in it is trusted before the step that proves it:
 *   size → shape → header (alg allowlist, typ, no jku/x5u, no unknown crit, x5c present)
 *   → claims shape → (this request's time, audience and peer checks on the unverified claims,
 *   never cached: cheap before expensive) → x5c chain is an X509-SVID of the trust domain of `iss` and its leaf ID is
 *   `iss` → signature with the leaf key
 * (all of which depend only on the token, the bundle and the clock, so they are cached until the token
 * or the signer chain expires), then per request:
 *   time (exp, nbf, iat, lifetime) → audience → binding to the mTLS peer (iss = peer, cnf)
 *   → act chain → replay.
 */
import { createHash, type KeyObject, type X509Certificate } from 'node:crypto';
import { RecentHashes } from '../hash.js';
import { LRUCache } from 'lru-cache';
import type { X509BundleSource } from '../bundle/set.js';
import { ZonegateError, type ReasonCode } from '../errors.js';
import { SpiffeId, type TrustDomain } from '../spiffe/id.js';
import { parseCertificates } from '../cert/parse.js';
import { prepareSignatures, verifyX509Svid } from '../svid/x509.js';
import { claimsProblem } from './claims.js';
import { b64urlDecode, isAlgorithm, keyFits, verifySignature, verifySignatureAsync, type Algorithm } from './jws.js';
import { subjectProblem } from './subject.js';

export const COMMON_IDENTITY_TYP = 'ci+jwt';
const KNOWN_CRIT = new Set<string>();

export interface Claims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: readonly string[];
  readonly iat: number;
  readonly exp: number;
  readonly nbf?: number;
  readonly jti?: string;
  readonly cnf?: { readonly 'x5t#S256'?: string };
  readonly act?: Act;
  readonly [claim: string]: unknown;
}
export interface Act {
  readonly sub: string;
  /** Claims of the token this hop signed that were copied into the next one (their provenance). */
  readonly claims?: Readonly<Record<string, unknown>>;
  readonly act?: Act;
}

export interface TokenRules {
  readonly algorithms: ReadonlySet<Algorithm>;
  readonly maxBytes: number;
  readonly maxLifetimeSeconds: number;
  readonly skewSeconds: number;
  /** Accepted `aud` values: this zone (spiffe://td) and/or this service's SPIFFE ID. */
  readonly audiences: ReadonlySet<string>;
  readonly maxActDepth: number;
  /** Most certificates in x5c (limits.maxChainLength). */
  readonly maxX5cCertificates?: number;
  /** Most base64 characters in x5c altogether (limits.maxChainBytes). */
  readonly maxX5cBytes?: number;
  /** Most certificate signature checks the x5c path search may do (limits.maxSignatureChecks). */
  readonly maxSignatureChecks?: number;
  /** Deepest nesting in the claims (commonIdentity.maxClaimDepth, default 16). */
  readonly maxClaimDepth?: number;
  /** Largest decoded payload in bytes (commonIdentity.maxClaimBytes, default 8 KiB). */
  readonly maxClaimBytes?: number;
  /** `iss` must equal the mTLS peer's SPIFFE ID. */
  readonly bindToPeer: boolean;
  /** A `cnf` claim is required (it is always checked when present, unless ignoreCnf). */
  readonly requireCnf: boolean;
  /**
   * Skip cnf: only for a token re-verified at egress, whose hop binding was checked at ingress
   * and whose original mTLS hop is not this one.
   */
  readonly ignoreCnf?: boolean;
  readonly typ: string;
}

export interface RequestContext {
  readonly now: number;
  /** The verified SPIFFE ID of the mTLS peer, if any. */
  readonly peerId?: string;
  /** base64url SHA-256 of the peer certificate's DER, for cnf (RFC 8705 x5t#S256). */
  readonly peerThumbprint?: string;
  /**
   * One request's scratch space: prepare() leaves the token's cache key here and the verify() of
   * the same request reuses it instead of hashing the token again. Used only when it was made
   * for the very token being verified.
   */
  readonly memo?: TokenMemo;
}

/** See RequestContext.memo. One per request, never shared between requests. */
export interface TokenMemo {
  token?: string;
  key?: string;
}

export type TokenResult =
  | { readonly ok: true; readonly claims: Claims; readonly issuer: SpiffeId; readonly actors: readonly string[] }
  | { readonly ok: false; readonly code: ReasonCode; readonly message: string };

interface Entry {
  readonly intrinsic?: Intrinsic;
  readonly error?: { code: ReasonCode; message: string };
  /** Trust domain whose bundle generation the entry depends on. */
  readonly td?: TrustDomain;
  readonly gen: number;
  /** A failure of this request's checks on the unverified claims: never cached. */
  readonly transient?: true;
  /** The token's length, the entry's weight in the cache's byte budget. */
  readonly size?: number;
}

/** Token bytes the verification cache may stand for. */
const DEFAULT_CACHE_BYTES = 32 * 1024 * 1024;

interface Intrinsic {
  readonly claims: Claims;
  readonly issuer: SpiffeId;
  readonly actors: readonly string[];
  /** The earliest notAfter on the signer's verified path (ms): the signature proves nothing after it. */
  readonly notAfter: number;
}

/** A verified x5c chain: whom it names, the leaf key, and until when the verification holds. */
interface Signer {
  readonly id: SpiffeId;
  readonly key: KeyObject;
  readonly gen: number;
  readonly notAfter: number;
}

/** The signature check of intrinsic(): done in place, or recorded to be done off the event loop. */
type SignatureCheck = (alg: Algorithm, key: KeyObject, signingInput: string, signature: Buffer) => boolean;

const fail = (code: ReasonCode, message: string): never => {
  throw new ZonegateError(code, `token: ${message}`);
};

function json(part: string, what: string, maxBytes = Infinity): Record<string, unknown> {
  const bytes = b64urlDecode(part);
  if (!bytes) return fail('ERR_TOKEN_MALFORMED', `${what} is not base64url`);
  if (bytes.length > maxBytes) return fail('ERR_CLAIMS_TOO_LARGE', `${what} is ${bytes.length} bytes (limit ${maxBytes})`);
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    return fail('ERR_TOKEN_MALFORMED', `${what} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('ERR_TOKEN_MALFORMED', `${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/** jti is a replay cache key: bounded (zonegate mints UUIDs). */
const MAX_JTI = 256;

/** Flattens `act` into the list of previous hops, outermost (most recent) first. */
function actChain(act: unknown, max: number): string[] {
  const hops: string[] = [];
  let cur = act;
  while (cur !== undefined) {
    if (hops.length >= max) fail('ERR_TOKEN_ACT_DEPTH', `act chain deeper than ${max}`);
    if (typeof cur !== 'object' || cur === null || typeof (cur as Act).sub !== 'string')
      fail('ERR_TOKEN_ACT_INVALID', 'an act hop has no sub');
    const sub = (cur as Act).sub;
    if (!SpiffeId.tryParse(sub)) fail('ERR_TOKEN_ACT_INVALID', `act hop "${sub.slice(0, 80)}" is not a SPIFFE ID`);
    hops.push(sub);
    cur = (cur as Act).act;
  }
  return hops;
}

const OFF_LOOP = /^(ES|EdDSA)/;
/** RSA keys above this size cost more than the hand-over to the thread pool. */
const RSA_IN_PLACE_BITS = 2048;

/** One DER certificate per x5c element (RFC 7515 §4.1.6), canonical base64 only: one spelling per certificate. */
function x5cDers(x5c: readonly string[]): Buffer[] {
  return x5c.map((c) => {
    const der = Buffer.from(c, 'base64');
    if (der.toString('base64') !== c) fail('ERR_TOKEN_X5C', 'x5c holds a certificate that is not canonical base64');
    return der;
  });
}

const derDigest = (der: Buffer): string => createHash('sha256').update(der).digest('base64');
/** Cache keys (SHA-256) of the last tokens seen, process-wide (the key depends on the token only). */
const recentKeys = new RecentHashes(4, 'base64url');

/** The token's cache key, hashed once per request (the memo holds it for the next call). */
function keyOf(token: string, memo: TokenMemo | undefined): string {
  if (memo && memo.token === token && memo.key !== undefined) return memo.key;
  const key = recentKeys.hash(token);
  if (memo) {
    memo.token = token;
    memo.key = key;
  }
  return key;
}

/** Verifies common identity tokens against an X.509 bundle source, with caches. */
export class CommonIdentityVerifier {
  private readonly tokens: LRUCache<string, Entry>;
  /** Verified x5c chains: many tokens of one workload share a chain; parse and verify it once. */
  private readonly chains: LRUCache<string, Signer>;
  /**
   * Parsed x5c certificates by the SHA-256 of their DER: a new leaf under a known intermediate parses
   * the leaf only. Parsing is not verifying: every chain is still verified as a whole.
   */
  private readonly certs: LRUCache<string, X509Certificate>;
  private readonly seen: LRUCache<string, true> | undefined;
  /** Full verifications performed (cache misses), for tests and metrics. */
  verifications = 0;
  /** x5c certificates actually parsed (certificate cache misses). */
  certificateParses = 0;

  /** Token bytes the cached entries stand for (bounded by the cacheBytes option). */
  get cachedBytes(): number {
    return this.tokens.calculatedSize;
  }

  constructor(
    private readonly bundles: X509BundleSource,
    private readonly rules: TokenRules,
    opts: { cacheSize?: number; cacheBytes?: number; chainCacheSize?: number; certificateCacheSize?: number; negativeTtlMs?: number; replayCacheSize?: number } = {},
  ) {
    // Bounded by count and by the bytes of the tokens behind the entries: an entry holds the
    // decoded claims, whose size grows with the token, so many large tokens would otherwise
    // keep hundreds of megabytes.
    this.tokens = new LRUCache({ max: opts.cacheSize ?? 10_000, maxSize: opts.cacheBytes ?? DEFAULT_CACHE_BYTES, sizeCalculation: (e) => Math.max(1, e.size ?? 1) });
    this.chains = new LRUCache({ max: opts.chainCacheSize ?? 10_000 });
    this.certs = new LRUCache({ max: opts.certificateCacheSize ?? 1_000 });
    this.seen = opts.replayCacheSize ? new LRUCache({ max: opts.replayCacheSize, ttlAutopurge: false }) : undefined;
    this.negativeTtlMs = opts.negativeTtlMs ?? 10_000;
  }
  private readonly negativeTtlMs: number;

  /** Verifies one token for one request. Never throws for a bad token. */
  verify(token: string, ctx: RequestContext): TokenResult {
    try {
      if (token.length > this.rules.maxBytes) fail('ERR_TOKEN_TOO_LARGE', `${token.length} bytes (limit ${this.rules.maxBytes})`);
      const key = keyOf(token, ctx.memo);
      let entry = this.cached(key);
      if (!entry) {
        this.verifications++;
        entry = this.intrinsic(token, ctx, verifySignature);
        this.remember(key, entry, ctx.now, token.length);
      }
      if (entry.error) return { ok: false, ...entry.error };
      const v = entry.intrinsic!;
      this.perRequest(v, ctx);
      return { ok: true, claims: v.claims, issuer: v.issuer, actors: v.actors };
    } catch (err) {
      if (err instanceof ZonegateError) return { ok: false, code: err.code, message: err.message };
      throw err;
    }
  }

  private parsed(der: Buffer, digest = derDigest(der)): X509Certificate {
    let cert = this.certs.get(digest);
    if (!cert) {
      this.certificateParses++;
      cert = parseCertificates(der, { maxCertificates: 1 })[0]!;
      this.certs.set(digest, cert);
    }
    return cert;
  }

  /** The x5c chain's DER certificates and the chain cache key (digests of the DER, not the base64 text). */
  private x5cChain(x5c: readonly string[]): { ders: Buffer[]; digests: string[]; key: string } {
    const ders = x5cDers(x5c);
    const digests = ders.map(derDigest);
    return { ders, digests, key: digests.join('.') };
  }

  /** A cached signer still good for its bundle generation and at `nowMs`. */
  private signerFor(chainKey: string, nowMs: number): Signer | undefined {
    const signer = this.chains.get(chainKey);
    if (!signer || signer.gen !== this.generation(signer.id.trustDomain) || nowMs - this.rules.skewSeconds * 1000 > signer.notAfter) return undefined;
    return signer;
  }

  /**
   * The x5c chain's certificate signatures on the thread pool, for a chain not verified yet;
   * undefined when nothing waits. Anything wrong with the token is left for verify() to report.
   */
  private prepareChain(token: string, ctx: RequestContext): Promise<void> | undefined {
    try {
      const [h, p] = token.split('.', 3);
      const header = json(h!, 'header');
      if (!isAlgorithm(header.alg) || !this.rules.algorithms.has(header.alg) || header.typ !== this.rules.typ) return undefined;
      const x5c = header.x5c;
      if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > (this.rules.maxX5cCertificates ?? 5) || x5c.some((c) => typeof c !== 'string')) return undefined;
      // cheap before expensive, as in intrinsic(): a token refused by this request's checks on
      // its claims as sent costs no certificate parsing and no signature, here either
      const claims = json(p!, 'payload', this.rules.maxClaimBytes ?? 8 * 1024);
      if (claimsProblem(claims, this.rules.maxClaimDepth ?? 16)) return undefined;
      const aud = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
      if (!Array.isArray(aud) || !isNum(claims.exp) || !isNum(claims.iat) || typeof claims.iss !== 'string') return undefined;
      this.requestChecks({ ...claims, aud } as unknown as Claims, ctx);
      const chain = this.x5cChain(x5c as string[]);
      if (this.signerFor(chain.key, ctx.now)) return undefined;
      const certs = chain.ders.map((d, i) => this.parsed(d, chain.digests[i]));
      return prepareSignatures(certs, this.bundles, {
        now: ctx.now,
        skewSeconds: this.rules.skewSeconds,
        maxChainLength: this.rules.maxX5cCertificates ?? 5,
        maxSignatureChecks: this.rules.maxSignatureChecks ?? 8,
      });
    } catch {
      return undefined; // verify() reports why
    }
  }

  /**
   * Verifies a token not yet cached, with an elliptic-curve signature check on the thread pool,
   * and caches the result, so that the verify() which follows is a cache hit. Undefined when
   * nothing waits (cached, too large, or verified in place). The entry is exactly the one verify()
   * would compute: the same checks in the same order.
   */
  prepare(token: string, ctx: RequestContext): Promise<void> | undefined {
    if (token.length > this.rules.maxBytes) return undefined;
    const key = keyOf(token, ctx.memo);
    if (this.cached(key)) return undefined;
    const inFlight = this.preparing.get(key);
    if (inFlight) return inFlight;
    const chain = this.prepareChain(token, ctx);
    if (chain) {
      const p = chain.then(() => {
        this.preparing.delete(key);
        return this.cached(key) ? undefined : this.prepareToken(token, ctx, key);
      });
      this.preparing.set(key, p);
      return p;
    }
    return this.prepareToken(token, ctx, key);
  }

  /** prepare() once the x5c chain's signatures are known: the token's own signature. */
  private prepareToken(token: string, ctx: RequestContext, key: string): Promise<void> | undefined {
    let deferred: Parameters<SignatureCheck> | undefined;
    // Elliptic-curve checks (140–190 µs) go to the pool; an RSA check (≈ 47 µs) costs less than
    // the hand-over, so it is done here, and so is a token refused before its signature.
    const offLoop = (alg: Algorithm, key: KeyObject) => OFF_LOOP.test(alg) || (key.asymmetricKeyDetails?.modulusLength ?? 0) > RSA_IN_PLACE_BITS;
    const entry = this.intrinsic(token, ctx, (...args) => (offLoop(args[0], args[1]) ? ((deferred = args), true) : verifySignature(...args)));
    if (!deferred) {
      this.verifications++;
      this.remember(key, entry, ctx.now, token.length);
      return undefined;
    }
    const [alg, pub, input, sig] = deferred;
    const p = verifySignatureAsync(alg, pub, input, sig).then((ok) => {
      this.preparing.delete(key);
      this.verifications++;
      const e: Entry = ok
        ? entry
        : { error: { code: 'ERR_TOKEN_SIGNATURE', message: 'token: signature does not verify with the x5c leaf key' }, ...(entry.td ? { td: entry.td } : {}), gen: entry.gen };
      this.remember(key, e, ctx.now, token.length);
    });
    this.preparing.set(key, p);
    return p;
  }
  private readonly preparing = new Map<string, Promise<void>>();

  private cached(key: string): Entry | undefined {
    const entry = this.tokens.get(key);
    return entry?.td && this.generation(entry.td) !== entry.gen ? undefined : entry;
  }

  private remember(key: string, entry: Entry, now: number, size: number): void {
    // Without generations a source cannot say a result is still current: nothing that depends on
    // a trust domain is reused with it. Transient failures (this request's peer, clock) are not kept.
    if (entry.transient || (!this.bundles.generation && entry.td)) return;
    // a verified entry lives until the token or its signer's chain expires, whichever is first
    const until = entry.intrinsic ? Math.min(entry.intrinsic.claims.exp * 1000, entry.intrinsic.notAfter) : 0;
    const ttl = entry.intrinsic ? Math.max(1, until + this.rules.skewSeconds * 1000 - now) : this.negativeTtlMs;
    this.tokens.set(key, { ...entry, size }, { ttl });
  }

  private generation(td: TrustDomain): number {
    return this.bundles.generation?.(td) ?? 0;
  }

  /** Everything that depends only on the token and the bundles (cached). */
  private intrinsic(token: string, ctx: RequestContext, checkSignature: SignatureCheck): Entry {
    const nowMs = ctx.now;
    let td: TrustDomain | undefined;
    const gen = () => (td ? this.generation(td) : 0);
    try {
      const parts = token.split('.');
      if (parts.length !== 3) fail('ERR_TOKEN_MALFORMED', 'not three dot-separated parts');
      const [h, p, s] = parts as [string, string, string];
      const header = json(h, 'header');
      const alg = header.alg;
      if (!isAlgorithm(alg) || !this.rules.algorithms.has(alg)) fail('ERR_TOKEN_ALG', `alg "${String(alg).slice(0, 20)}" is not allowed`);
      if (header.typ !== this.rules.typ) fail('ERR_TOKEN_TYPE', `typ must be "${this.rules.typ}"`);
      if ('jku' in header || 'x5u' in header || 'jwk' in header) fail('ERR_TOKEN_KEY_URL', 'jku, x5u and jwk are never followed');
      if ('crit' in header) {
        const crit = header.crit;
        if (!Array.isArray(crit) || crit.length === 0 || crit.some((c) => typeof c !== 'string' || !KNOWN_CRIT.has(c)))
          fail('ERR_TOKEN_CRIT', 'unknown crit extension');
      }
      const x5c = header.x5c;
      if (!Array.isArray(x5c) || x5c.length === 0 || x5c.some((c) => typeof c !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(c)))
        fail('ERR_TOKEN_X5C', 'x5c must be a non-empty array of base64 certificates');
      // every certificate is parsed and its signature checked: bound the work before doing any
      const x5cBytes = (x5c as string[]).reduce((n, c) => n + c.length, 0);
      const maxCerts = this.rules.maxX5cCertificates ?? 5;
      const maxX5cBytes = this.rules.maxX5cBytes ?? 64 * 1024;
      if ((x5c as string[]).length > maxCerts || x5cBytes > maxX5cBytes)
        fail('ERR_TOKEN_X5C_TOO_LARGE', `x5c holds ${(x5c as string[]).length} certificates, ${x5cBytes} bytes (limits ${maxCerts}, ${maxX5cBytes})`);
      const claims = json(p, 'payload', this.rules.maxClaimBytes ?? 8 * 1024);
      const deep = claimsProblem(claims, this.rules.maxClaimDepth ?? 16);
      if (deep) fail('ERR_CLAIMS_TOO_LARGE', deep);
      const iss = claims.iss;
      if (typeof iss !== 'string') return fail('ERR_TOKEN_CLAIMS', 'iss is missing');
      const issuer = SpiffeId.tryParse(iss);
      if (!issuer || issuer.isRoot) return fail('ERR_TOKEN_CLAIMS', 'iss is not a workload SPIFFE ID');
      td = issuer.trustDomain;
      const subProblem = subjectProblem(claims.sub);
      if (subProblem) fail('ERR_TOKEN_CLAIMS', subProblem);
      const aud = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
      if (!Array.isArray(aud) || aud.length === 0 || aud.some((a) => typeof a !== 'string')) fail('ERR_TOKEN_CLAIMS', 'aud is missing');
      if (!isNum(claims.exp) || !isNum(claims.iat)) fail('ERR_TOKEN_CLAIMS', 'exp and iat are required numbers');
      if (claims.nbf !== undefined && !isNum(claims.nbf)) fail('ERR_TOKEN_CLAIMS', 'nbf is not a number');
      if (claims.jti !== undefined && (typeof claims.jti !== 'string' || claims.jti.length > MAX_JTI))
        fail('ERR_TOKEN_CLAIMS', `jti is not a string of at most ${MAX_JTI} characters`);
      // with replay protection on, a token without jti would be the one kind it cannot protect
      if (this.seen && claims.jti === undefined) fail('ERR_TOKEN_CLAIMS', 'jti is required while the replay cache is on');

      // Cheap before expensive: this request's checks on the claims as sent, before any
      // certificate is parsed or signature checked. They run again on the verified claims.
      try {
        this.requestChecks({ ...claims, aud } as unknown as Claims, ctx);
      } catch (err) {
        if (!(err instanceof ZonegateError)) throw err;
        return { error: { code: err.code, message: err.message }, gen: 0, transient: true };
      }

      // the signer: an X509-SVID of the trust domain named by iss, whose ID is iss
      let chain;
      try {
        chain = this.x5cChain(x5c as string[]);
      } catch (err) {
        if (err instanceof ZonegateError) throw err;
        return fail('ERR_TOKEN_X5C', `x5c: ${(err as Error).message}`);
      }
      const skewMs = this.rules.skewSeconds * 1000;
      // a cached chain holds only for its bundle generation and until its earliest notAfter
      let signer = this.signerFor(chain.key, nowMs);
      if (!signer) {
        let certs;
        try {
          certs = chain.ders.map((d, i) => this.parsed(d, chain.digests[i]));
        } catch (err) {
          return fail('ERR_TOKEN_X5C', `x5c: ${(err as Error).message}`);
        }
        let verified;
        try {
          // verified against the bundle of the leaf's own trust domain only, at the request's clock
          verified = verifyX509Svid(certs, this.bundles, {
            now: nowMs,
            skewSeconds: this.rules.skewSeconds,
            maxChainLength: maxCerts,
            maxSignatureChecks: this.rules.maxSignatureChecks ?? 8,
          });
        } catch (err) {
          const code = (err as ZonegateError).code;
          return fail(code === 'ERR_KEY_TOO_WEAK' || code === 'ERR_SIGNATURE_LIMIT' ? code : 'ERR_TOKEN_CHAIN', `x5c: ${code}: ${(err as Error).message}`);
        }
        const { id, notAfter } = verified;
        signer = { id, key: certs[0]!.publicKey, gen: this.generation(id.trustDomain), notAfter };
        if (this.bundles.generation) this.chains.set(chain.key, signer, { ttl: Math.max(1, notAfter + skewMs - nowMs) });
      }
      if (signer.id.value !== iss) fail('ERR_TOKEN_ISSUER_MISMATCH', `iss ${iss} is not the x5c leaf ${signer.id.value}`);
      const key = signer.key;
      if (!keyFits(alg as Algorithm, key)) fail('ERR_TOKEN_ALG', `alg ${String(alg)} does not fit the signer's ${key.asymmetricKeyType} key`);
      const sig = b64urlDecode(s);
      if (!sig || !checkSignature(alg as Algorithm, key, `${h}.${p}`, sig)) fail('ERR_TOKEN_SIGNATURE', 'signature does not verify with the x5c leaf key');
      const actors = actChain(claims.act, this.rules.maxActDepth);
      return { intrinsic: { claims: { ...claims, aud } as unknown as Claims, issuer, actors, notAfter: signer.notAfter }, td, gen: gen() };
    } catch (err) {
      if (!(err instanceof ZonegateError)) throw err;
      return { error: { code: err.code, message: err.message }, ...(td ? { td } : {}), gen: gen() };
    }
  }

  /** The checks that depend on the request and the clock (cheap, never cached). */
  private perRequest(v: Intrinsic, ctx: RequestContext): void {
    const skew = this.rules.skewSeconds;
    const c = v.claims;
    this.requestChecks(c, ctx);
    // the cached verification of the signer's chain ends with the chain's validity
    if (ctx.now - skew * 1000 > v.notAfter)
      fail('ERR_TOKEN_CHAIN', `x5c: ERR_SVID_EXPIRED: the signer's chain expired at ${new Date(v.notAfter).toISOString()}`);
    if (this.seen && c.jti !== undefined) {
      const k = `${c.iss} ${c.jti}`;
      if (this.seen.has(k)) fail('ERR_TOKEN_REPLAYED', 'jti seen before');
      this.seen.set(k, true, { ttl: Math.max(1, (c.exp + skew) * 1000 - ctx.now) });
    }
  }

  /** Time, audience and binding to this request's peer: pure functions of the claims and the request. */
  private requestChecks(c: Claims, ctx: RequestContext): void {
    const now = ctx.now / 1000;
    const skew = this.rules.skewSeconds;
    if (now - skew >= c.exp) fail('ERR_TOKEN_EXPIRED', `expired at ${new Date(c.exp * 1000).toISOString()}`);
    if (c.nbf !== undefined && now + skew < c.nbf) fail('ERR_TOKEN_NOT_YET_VALID', 'nbf is in the future');
    if (now + skew < c.iat) fail('ERR_TOKEN_NOT_YET_VALID', 'iat is in the future');
    if (c.exp - c.iat > this.rules.maxLifetimeSeconds)
      fail('ERR_TOKEN_LIFETIME', `lifetime ${c.exp - c.iat} s exceeds ${this.rules.maxLifetimeSeconds} s`);
    if (!c.aud.some((a) => this.rules.audiences.has(a))) fail('ERR_TOKEN_AUDIENCE', `aud ${JSON.stringify(c.aud).slice(0, 200)} does not name this zone`);
    if (this.rules.bindToPeer && c.iss !== ctx.peerId)
      fail('ERR_TOKEN_PEER_MISMATCH', `signer ${c.iss} is not the mTLS peer ${ctx.peerId ?? '(none)'}`);
    const thumb = c.cnf?.['x5t#S256'];
    if (!this.rules.ignoreCnf && (thumb !== undefined || this.rules.requireCnf)) {
      if (!ctx.peerThumbprint) fail('ERR_TOKEN_CNF_MISMATCH', 'cnf needs the peer certificate');
      if (thumb !== ctx.peerThumbprint) fail('ERR_TOKEN_CNF_MISMATCH', 'cnf x5t#S256 does not match the peer certificate');
    }
  }
}
