/**
 * Common identity verification (docs/common-identity.md). A token is checked in this order, and
 * nothing in it is trusted before the step that proves it:
 *   the parse step of every token (compact.ts: size → shape → header: alg allowlist, typ ci+jwt,
 *   no jku/x5u/jwk, no crit, x5c present and bounded → payload) → claims shape
 *   → (this request's time, audience and peer checks on the unverified claims, never cached:
 *   cheap before expensive) → x5c chain is an X509-SVID of the trust domain of its leaf, whose
 *   ID is `iss` → signature with the leaf key → act chain
 * (all of which depend only on the token, the bundle and the clock, so they are cached until the
 * token or the signer chain expires), then per request:
 *   time (exp, nbf, iat, lifetime) → audience → binding to the mTLS peer (iss = peer, cnf)
 *   → the signer chain still valid → replay.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { RecentHashes, sha256 } from '../hash.js';
import { LRUCache } from 'lru-cache';
import type { X509BundleSource } from '../bundle/set.js';
import type { ReasonCode } from '../errors.js';
import { SpiffeId, type TrustDomain } from '../spiffe/id.js';
import { parseCertificates } from '../cert/parse.js';
import { prepareSignatures, verifyX509Svid } from '../svid/x509.js';
import { claimsProblem } from './claims.js';
import {
  chainFailure,
  checkSignature,
  checkSize,
  checkTime,
  failure,
  failWith,
  HeaderCache,
  parseCompact,
  timeClaims,
  x5cDers,
  type Compact,
  type CompactRules,
  type SignatureCheck,
  type TokenFailure,
} from './compact.js';
import { verifySignature, verifySignatureAsync, type Algorithm } from './jws.js';
import { subjectProblem } from './subject.js';

export const COMMON_IDENTITY_TYP = 'ci+jwt';

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
  readonly maxX5cCertificates: number;
  /** Most base64 characters in x5c altogether (limits.maxChainBytes). */
  readonly maxX5cBytes: number;
  /** Most certificate signature checks the x5c path search may do (limits.maxSignatureChecks). */
  readonly maxSignatureChecks: number;
  /** Deepest nesting in the claims (commonIdentity.maxClaimDepth). */
  readonly maxClaimDepth: number;
  /** Largest decoded payload in bytes (commonIdentity.maxClaimBytes). */
  readonly maxClaimBytes: number;
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

/** The verifier's caches, sized by the configuration (`cache`, `commonIdentity.replayCacheSize`). */
export interface VerifierOptions {
  /** Entries of each cache: tokens and their results, verified x5c chains, parsed certificates. */
  readonly cache: { readonly tokens: number; readonly chains: number; readonly certificates: number };
  /** jti values remembered to refuse replays (0: off). */
  readonly replayCacheSize: number;
  /** Token bytes the token cache may stand for (not configurable; default 32 MiB). */
  readonly cacheBytes?: number;
  /** How long a failure is cached (not configurable; default 10 s). */
  readonly negativeTtlMs?: number;
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

export type TokenResult = { readonly ok: true; readonly claims: Claims; readonly issuer: SpiffeId; readonly actors: readonly string[] } | TokenFailure;

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
/** How long a failure is remembered, so a flood of one bad token costs one verification. */
const NEGATIVE_TTL_MS = 10_000;

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

const fail = failWith('token');
/** Headers remembered per verifier: a workload's tokens share one (alg, typ, x5c). */
const HEADER_CACHE_SIZE = 256;
/**
 * And at most this many characters of header text: 256 headers of 4 KB (a three-certificate
 * x5c). Without it, 256 headers of junk at the token size limit (up to 1 MiB each) were kept,
 * none of it counted in cacheBytes.
 */
const HEADER_CACHE_BYTES = 1024 * 1024;

/** A token through the parse step and its claims' shape; nothing in it verified yet. */
interface Parsed {
  readonly t: Compact;
  readonly claims: Claims;
  readonly issuer: SpiffeId;
}
/** An x5c chain's DER, their digests and the chain cache key (see x5cChain). */
interface X5cChain {
  readonly ders: Buffer[];
  readonly digests: string[];
  readonly key: string;
}
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

/**
 * The claims a common identity must have, with their types (ERR_TOKEN_CLAIMS; a payload nested
 * too deep is ERR_CLAIMS_TOO_LARGE). Nothing is verified yet: time, audience and binding are
 * checked on these as sent before any cryptography, and again on every request.
 */
function claimsOf(raw: Record<string, unknown>, rules: TokenRules, requireJti: boolean): { claims: Claims; issuer: SpiffeId } {
  const deep = claimsProblem(raw, rules.maxClaimDepth);
  if (deep) fail('ERR_CLAIMS_TOO_LARGE', deep);
  const iss = raw.iss;
  if (typeof iss !== 'string') return fail('ERR_TOKEN_CLAIMS', 'iss is missing');
  const issuer = SpiffeId.tryParse(iss);
  if (!issuer || issuer.isRoot) return fail('ERR_TOKEN_CLAIMS', 'iss is not a workload SPIFFE ID');
  const subProblem = subjectProblem(raw.sub);
  if (subProblem) fail('ERR_TOKEN_CLAIMS', subProblem);
  const aud = typeof raw.aud === 'string' ? [raw.aud] : raw.aud;
  if (!Array.isArray(aud) || aud.length === 0 || aud.some((a) => typeof a !== 'string')) fail('ERR_TOKEN_CLAIMS', 'aud is missing');
  timeClaims(raw, true, fail);
  if (raw.jti !== undefined && (typeof raw.jti !== 'string' || raw.jti.length > MAX_JTI))
    fail('ERR_TOKEN_CLAIMS', `jti is not a string of at most ${MAX_JTI} characters`);
  // with replay protection on, a token without jti would be the one kind it cannot protect
  if (requireJti && raw.jti === undefined) fail('ERR_TOKEN_CLAIMS', 'jti is required while the replay cache is on');
  return { claims: { ...raw, aud } as unknown as Claims, issuer };
}

const OFF_LOOP = /^(ES|EdDSA)/;
/** RSA keys above this size cost more than the hand-over to the thread pool. */
const RSA_IN_PLACE_BITS = 2048;

const derDigest = (der: Buffer): string => sha256(der, 'base64');
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
  /** The header rules of the parse step. */
  private readonly profile: CompactRules;
  private readonly negativeTtlMs: number;
  private readonly preparing = new Map<string, Promise<void>>();
  /** Full verifications performed (cache misses), for tests and metrics. */
  verifications = 0;
  /** x5c certificates actually parsed (certificate cache misses). */
  certificateParses = 0;

  /** Token bytes the cached entries stand for (bounded by the cacheBytes option). */
  get cachedBytes(): number {
    return this.tokens.calculatedSize;
  }

  /** Characters of the accepted header texts kept (bounded: HEADER_CACHE_BYTES). */
  get cachedHeaderBytes(): number {
    return this.profile.headers!.bytes;
  }

  constructor(
    private readonly bundles: X509BundleSource,
    private readonly rules: TokenRules,
    opts: VerifierOptions,
  ) {
    // Bounded by count and by the bytes of the tokens behind the entries: an entry holds the
    // decoded claims, whose size grows with the token, so many large tokens would otherwise
    // keep hundreds of megabytes.
    this.tokens = new LRUCache({ max: opts.cache.tokens, maxSize: opts.cacheBytes ?? DEFAULT_CACHE_BYTES, sizeCalculation: (e) => Math.max(1, e.size ?? 1) });
    this.chains = new LRUCache({ max: opts.cache.chains });
    this.certs = new LRUCache({ max: opts.cache.certificates });
    this.seen = opts.replayCacheSize > 0 ? new LRUCache({ max: opts.replayCacheSize, ttlAutopurge: false }) : undefined;
    this.negativeTtlMs = opts.negativeTtlMs ?? NEGATIVE_TTL_MS;
    this.profile = {
      name: 'token',
      maxBytes: rules.maxBytes,
      algorithms: rules.algorithms,
      typ: { required: true, allowed: new Set([rules.typ]) },
      x5c: { maxCertificates: rules.maxX5cCertificates, maxBytes: rules.maxX5cBytes },
      maxPayloadBytes: rules.maxClaimBytes,
      decode: 'header-first',
      headers: new HeaderCache(HEADER_CACHE_SIZE, HEADER_CACHE_BYTES),
    };
  }

  /** The parse step and the claims' shape (throws TokenError). */
  private parse(token: string): Parsed {
    const t = parseCompact(token, this.profile);
    const { claims, issuer } = claimsOf(t.claims, this.rules, this.seen !== undefined);
    return { t, claims, issuer };
  }

  /** Verifies one token for one request. Never throws for a bad token. */
  verify(token: string, ctx: RequestContext): TokenResult {
    try {
      checkSize(token, this.rules.maxBytes, fail);
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
      return failure(err);
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

  /**
   * The x5c chain's DER certificates and the chain cache key (digests of the DER, not the base64
   * text). Kept by the x5c array: a header the parse step remembered hands every token of its
   * signer the same frozen array, so their chain is decoded and hashed once.
   */
  private x5cChain(x5c: readonly string[]): X5cChain {
    let chain = this.x5cChains.get(x5c);
    if (!chain) {
      const ders = x5cDers(x5c, fail);
      const digests = ders.map(derDigest);
      chain = { ders, digests, key: digests.join('.') };
      if (Object.isFrozen(x5c)) this.x5cChains.set(x5c, chain);
    }
    return chain;
  }
  private readonly x5cChains = new WeakMap<readonly string[], X5cChain>();

  /** The chain's certificates, parsed once per DER (ERR_TOKEN_X5C when one is not a certificate). */
  private certificates(chain: { ders: Buffer[]; digests: string[] }): X509Certificate[] {
    try {
      return chain.ders.map((d, i) => this.parsed(d, chain.digests[i]));
    } catch (err) {
      return fail('ERR_TOKEN_X5C', `x5c: ${(err as Error).message}`);
    }
  }

  /** The x5c path validation's limits: the configured ones (limits.maxChainLength, maxSignatureChecks). */
  private pathOptions(now: number) {
    return { now, skewSeconds: this.rules.skewSeconds, maxChainLength: this.rules.maxX5cCertificates, maxSignatureChecks: this.rules.maxSignatureChecks };
  }

  /** A cached signer still good for its bundle generation and at `nowMs`. */
  private signerFor(chainKey: string, nowMs: number): Signer | undefined {
    const signer = this.chains.get(chainKey);
    if (!signer || signer.gen !== this.generation(signer.id.trustDomain) || nowMs - this.rules.skewSeconds * 1000 > signer.notAfter) return undefined;
    return signer;
  }

  /**
   * The signer: an X509-SVID of the trust domain named by its own leaf, verified against that
   * trust domain's bundle only, at the request's clock. A verified chain is cached for its
   * bundle generation and until its earliest notAfter.
   */
  private signer(x5c: readonly string[], nowMs: number): Signer {
    const chain = this.x5cChain(x5c);
    const cached = this.signerFor(chain.key, nowMs);
    if (cached) return cached;
    const certs = this.certificates(chain);
    let verified;
    try {
      verified = verifyX509Svid(certs, this.bundles, this.pathOptions(nowMs));
    } catch (err) {
      return chainFailure(err, fail);
    }
    const { id, notAfter } = verified;
    const signer = { id, key: certs[0]!.publicKey, gen: this.generation(id.trustDomain), notAfter };
    if (this.bundles.generation) this.chains.set(chain.key, signer, { ttl: Math.max(1, notAfter + this.rules.skewSeconds * 1000 - nowMs) });
    return signer;
  }

  /**
   * The x5c chain's certificate signatures on the thread pool, for a chain not verified yet;
   * undefined when nothing waits. Anything wrong with the token is left for verify() to report.
   */
  private prepareChain(token: string, ctx: RequestContext): { parsed?: Parsed; wait?: Promise<void> } {
    let parsed: Parsed | undefined;
    try {
      // cheap before expensive, as in intrinsic(): a token refused by its header, its claims or
      // this request's checks on its claims as sent costs no certificate parsing and no signature
      parsed = this.parse(token);
      this.requestChecks(parsed.claims, ctx);
      const chain = this.x5cChain(parsed.t.x5c);
      if (this.signerFor(chain.key, ctx.now)) return { parsed };
      const certs = chain.ders.map((d, i) => this.parsed(d, chain.digests[i]));
      const wait = prepareSignatures(certs, this.bundles, this.pathOptions(ctx.now));
      return wait ? { parsed, wait } : { parsed };
    } catch {
      // verify() reports why; a token that parsed is handed on all the same (intrinsic() runs
      // the same checks on it again, in its order)
      return parsed ? { parsed } : {};
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
    const { parsed, wait } = this.prepareChain(token, ctx);
    if (wait) return this.track(key, wait.then(() => (this.cached(key) ? undefined : this.prepareToken(token, ctx, key, parsed))));
    return this.prepareToken(token, ctx, key, parsed);
  }

  /**
   * Holds `p` as the preparation in flight for `key` until it settles, fulfilled or rejected: a
   * preparation that failed must not stand for the token forever (verify() then decides in place).
   * An entry another preparation has taken over meanwhile is left to that one.
   */
  private track(key: string, p: Promise<void>): Promise<void> {
    const tracked: Promise<void> = p.finally(() => {
      if (this.preparing.get(key) === tracked) this.preparing.delete(key);
    });
    this.preparing.set(key, tracked);
    return tracked;
  }

  /** prepare() once the x5c chain's signatures are known: the token's own signature. */
  private prepareToken(token: string, ctx: RequestContext, key: string, parsed?: Parsed): Promise<void> | undefined {
    let deferred: Parameters<SignatureCheck> | undefined;
    // Elliptic-curve checks (140–190 µs) go to the pool; an RSA check (≈ 47 µs) costs less than
    // the hand-over, so it is done here, and so is a token refused before its signature.
    const offLoop = (alg: Algorithm, key: KeyObject) => OFF_LOOP.test(alg) || (key.asymmetricKeyDetails?.modulusLength ?? 0) > RSA_IN_PLACE_BITS;
    const entry = this.intrinsic(token, ctx, (...args) => (offLoop(args[0], args[1]) ? ((deferred = args), true) : verifySignature(...args)), parsed);
    if (!deferred) {
      this.verifications++;
      this.remember(key, entry, ctx.now, token.length);
      return undefined;
    }
    const [alg, pub, input, sig] = deferred;
    return this.track(
      key,
      verifySignatureAsync(alg, pub, input, sig).then((ok) => {
        this.verifications++;
        const e: Entry = ok ? entry : { error: { code: 'ERR_TOKEN_SIGNATURE', message: SIGNATURE_MISMATCH }, ...(entry.td ? { td: entry.td } : {}), gen: entry.gen };
        this.remember(key, e, ctx.now, token.length);
      }),
    );
  }

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

  /**
   * Everything that depends only on the token and the bundles (cached), in the order of the file
   * comment: the parse step, the claims, this request's checks on them as sent (a failure there is
   * transient), the signer, iss = signer, the signature, the act chain. `parsed`: the parse step
   * and claims of this very token, done by prepare() of the same request (a pure function of
   * the token and the rules: the same as parsing it again).
   */
  private intrinsic(token: string, ctx: RequestContext, checkSignature: SignatureCheck, parsed?: Parsed): Entry {
    let td: TrustDomain | undefined;
    const gen = () => (td ? this.generation(td) : 0);
    try {
      const { t, claims, issuer } = parsed ?? this.parse(token);
      td = issuer.trustDomain;
      const early = this.checkedAsSent(claims, ctx);
      if (early) return early;
      const signer = this.signer(t.x5c, ctx.now);
      if (signer.id.value !== claims.iss) fail('ERR_TOKEN_ISSUER_MISMATCH', `iss ${claims.iss} is not the x5c leaf ${signer.id.value}`);
      verifyWith(t, signer.key, checkSignature);
      const actors = actChain(claims.act, this.rules.maxActDepth);
      return { intrinsic: { claims, issuer, actors, notAfter: signer.notAfter }, td, gen: gen() };
    } catch (err) {
      const f = failure(err);
      return { error: { code: f.code, message: f.message }, ...(td ? { td } : {}), gen: gen() };
    }
  }

  /**
   * Cheap before expensive: this request's checks on the claims as sent, before any certificate
   * is parsed or signature checked. They run again on the verified claims. A failure here depends
   * on the request, so it is not cached (transient).
   */
  private checkedAsSent(claims: Claims, ctx: RequestContext): Entry | undefined {
    try {
      this.requestChecks(claims, ctx);
      return undefined;
    } catch (err) {
      const f = failure(err);
      return { error: { code: f.code, message: f.message }, gen: 0, transient: true };
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
    checkTime(c, ctx.now, this.rules, fail);
    if (!c.aud.some((a) => this.rules.audiences.has(a))) fail('ERR_TOKEN_AUDIENCE', `aud ${JSON.stringify(c.aud).slice(0, 200)} does not name this zone`);
    if (this.rules.bindToPeer && c.iss !== ctx.peerId)
      fail('ERR_TOKEN_PEER_MISMATCH', `signer ${c.iss} is not the mTLS peer ${ctx.peerId ?? '(none)'}`);
    // a cnf present binds the token, whatever it holds: one without x5t#S256 (another confirmation
    // method, or not an object) is a binding zonegate cannot check, so it is refused, not ignored
    const cnf: unknown = c.cnf;
    if (!this.rules.ignoreCnf && (cnf !== undefined || this.rules.requireCnf)) {
      const thumb = typeof cnf === 'object' && cnf !== null ? (cnf as Record<string, unknown>)['x5t#S256'] : undefined;
      if (!ctx.peerThumbprint) fail('ERR_TOKEN_CNF_MISMATCH', 'cnf needs the peer certificate');
      if (thumb === undefined) fail('ERR_TOKEN_CNF_MISMATCH', 'cnf has no x5t#S256, the one confirmation method zonegate checks');
      if (thumb !== ctx.peerThumbprint) fail('ERR_TOKEN_CNF_MISMATCH', 'cnf x5t#S256 does not match the peer certificate');
    }
  }
}

const SIGNATURE_MISMATCH = 'token: signature does not verify with the x5c leaf key';

/** The token's signature with the signer's leaf key (see checkSignature). */
function verifyWith(t: Compact, key: KeyObject, check: SignatureCheck): void {
  checkSignature(t, key, 'the x5c leaf key', fail, check);
}
