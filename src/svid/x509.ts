/**
 * X509-SVID verification (X509-SVID.md, RFC 5280 path validation) on node:crypto, in go-spiffe's
 * fixed order: chain present → SPIFFE ID of the leaf → leaf constraints → bundle of THAT trust
 * domain → path to one of its authorities (signing-certificate rules, signatures, validity).
 * A CA trusted for trust domain A can never vouch for an ID in trust domain B: only B's
 * authorities are ever tried for a leaf in B.
 */
import type { X509Certificate } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { ZonegateError, type ReasonCode } from '../errors.js';
import { SpiffeId } from '../spiffe/id.js';
import type { X509BundleSource } from '../bundle/set.js';
import { certInfo, type CertInfo } from '../cert/certinfo.js';
import { certificateSignatureAsync, signatureCheckable } from '../cert/signature.js';

/**
 * The limits are the config's (limits.maxChainLength, limits.maxSignatureChecks): the caller
 * passes them, so their defaults live in the config schema only.
 */
export interface VerifyOptions {
  /** Verification time in ms since the epoch (default: now). */
  readonly now?: number;
  /** Tolerance on validity windows, in seconds (default 0: none). */
  readonly skewSeconds?: number;
  /** Most certificates accepted in the presented chain, and in a built path below the root (limits.maxChainLength). */
  readonly maxChainLength: number;
  /** More intermediates to build paths with (e.g. configured beside the bundle). */
  readonly extraIntermediates?: readonly X509Certificate[];
  /**
   * Most certificate signatures one path search may check (limits.maxSignatureChecks): every
   * candidate issuer whose name matches costs one, cached or not, so the count and the verdict
   * do not depend on what was verified before. Past it: ERR_SIGNATURE_LIMIT.
   */
  readonly maxSignatureChecks: number;
}

export interface VerifiedSvid {
  readonly id: SpiffeId;
  /** leaf, intermediates, root */
  readonly chain: readonly X509Certificate[];
  /** The earliest notAfter on the path: the result holds until then (ms). */
  readonly notAfter: number;
}

const fail = (code: ReasonCode, msg: string): never => {
  throw new ZonegateError(code, `x509svid: ${msg}`);
};

function info(cert: X509Certificate, what: string): CertInfo {
  try {
    return certInfo(cert);
  } catch (err) {
    return fail('ERR_SVID_MALFORMED', `${what} cannot be parsed: ${(err as Error).message}`);
  }
}

/**
 * Signature results per (certificate, issuer) pair, keyed by the SHA-256 of both DERs
 * (node:crypto's fingerprint256, computed once per object). A result is a function of the two
 * certificates' bytes alone, so a pair checked once is never checked again, whichever objects
 * carry it: the intermediate presented in a chain and the one configured beside the bundle, or
 * the peer's leaf and the same leaf in its token's x5c, cost one check. Bounded: an evicted
 * pair is checked again, with the same answer.
 */
const signatures = new LRUCache<string, boolean>({ max: 8192 });

const pairKey = (child: X509Certificate, issuer: X509Certificate): string => `${child.fingerprint256}/${issuer.fingerprint256}`;

function signatureValid(child: X509Certificate, issuer: X509Certificate): boolean {
  const k = pairKey(child, issuer);
  let ok = signatures.get(k);
  if (ok === undefined) signatures.set(k, (ok = child.verify(issuer.publicKey)));
  return ok;
}

function knownSignature(child: X509Certificate, issuer: X509Certificate): boolean {
  return signatures.has(pairKey(child, issuer));
}

function recordSignature(child: X509Certificate, issuer: X509Certificate, ok: boolean): void {
  signatures.set(pairKey(child, issuer), ok);
}

/**
 * Checks on the thread pool the certificate signatures a path search for `chain` would need and
 * has not seen, so that the verifyX509Svid() which follows finds them all known and spends no
 * signature time on the event loop. Candidates are found as the search finds them (names and key
 * identifiers, key strength, accepted algorithm), from the leaf up, at most maxSignatureChecks of
 * them. Undefined when nothing is left to check. Never rejects: what cannot be decided here is
 * decided by verifyX509Svid as before.
 */
export function prepareSignatures(chain: readonly X509Certificate[], bundles: X509BundleSource, opts: VerifyOptions): Promise<void> | undefined {
  const batch = candidateSignatures(chain, bundles, opts);
  // The batch follows the search breadth-first; the search itself goes depth-first, so under the
  // same cap it can reach pairs the batch did not. Those are found by running the search itself
  // until it asks for no unknown signature (one more per round, at most maxSignatureChecks rounds).
  const rest = async (): Promise<void> => {
    for (let i = 0; i < opts.maxSignatureChecks; i++) {
      const need = unknownSignature(chain, bundles, opts);
      const p = need && certificateSignatureAsync(need.child, need.issuer);
      if (!need || !p) return;
      recordSignature(need.child, need.issuer, await p);
    }
  };
  if (batch) return batch.then(rest);
  return unknownSignature(chain, bundles, opts) ? rest() : undefined;
}

const ASK = Symbol('ask for unknown signatures');

/** The search asks for a signature nobody has checked yet (prepareSignatures only). */
class UnknownSignature {
  constructor(
    readonly child: X509Certificate,
    readonly issuer: X509Certificate,
  ) {}
}

/** The first signature verifyX509Svid() would check on the event loop for `chain`; undefined when none. */
function unknownSignature(chain: readonly X509Certificate[], bundles: X509BundleSource, opts: VerifyOptions): UnknownSignature | undefined {
  try {
    verifyX509Svid(chain, bundles, { ...opts, [ASK]: true } as VerifyOptions);
  } catch (err) {
    if (err instanceof UnknownSignature) return err;
  }
  return undefined;
}

/** prepareSignatures' first round: the candidates breadth-first from the leaf, all at once. */
function candidateSignatures(chain: readonly X509Certificate[], bundles: X509BundleSource, opts: VerifyOptions): Promise<void> | undefined {
  const leaf = chain[0];
  if (!leaf) return undefined;
  let leafInfo: CertInfo;
  try {
    leafInfo = certInfo(leaf);
  } catch {
    return undefined;
  }
  const id = leafInfo.uris.length === 1 ? SpiffeId.tryParse(leafInfo.uris[0]!) : undefined;
  if (!id || leafInfo.weakKey) return undefined;
  // a presented certificate with a refused key fails the chain before any signature: nothing to do
  try {
    if (chain.some((c) => certInfo(c).weakKey)) return undefined;
  } catch {
    return undefined;
  }
  const roots = bundles.x509Authorities(id.trustDomain) ?? [];
  const pool = [...chain.slice(1), ...(opts.extraIntermediates ?? []), ...(bundles.intermediates?.(id.trustDomain) ?? [])];
  const max = opts.maxSignatureChecks;
  const work: Promise<void>[] = [];
  /** (child, issuer key) pairs already sent to the pool by this batch. */
  const sent = new Set<string>();
  const seen = new Set<X509Certificate>([leaf]);
  const queue = [leaf];
  let budget = max;
  while (queue.length > 0 && budget > 0) {
    const child = queue.shift()!;
    let childInfo: CertInfo;
    try {
      childInfo = certInfo(child);
    } catch {
      continue;
    }
    if (!childInfo.signature || !signatureCheckable(child)) continue;
    for (const issuer of [...roots, ...pool]) {
      if (budget === 0) break;
      if (issuer === child || !child.checkIssued(issuer)) continue;
      let weak: string | undefined;
      try {
        weak = certInfo(issuer).weakKey;
      } catch {
        continue;
      }
      if (weak) continue;
      budget--;
      if (!roots.includes(issuer) && !seen.has(issuer)) {
        seen.add(issuer);
        queue.push(issuer);
      }
      if (knownSignature(child, issuer)) continue;
      const pair = pairKey(child, issuer);
      if (sent.has(pair)) continue;
      sent.add(pair);
      const p = certificateSignatureAsync(child, issuer);
      if (p) work.push(p.then((ok) => recordSignature(child, issuer, ok)));
    }
  }
  return work.length > 0 ? Promise.all(work).then(() => undefined) : undefined;
}

/** The most specific failure seen while searching for a path; reported when no path exists. */
class PathFailure {
  code: ReasonCode = 'ERR_SVID_UNTRUSTED';
  message = '';
  private rank = 0;
  note(code: ReasonCode, message: string, rank: number): void {
    if (rank > this.rank) Object.assign(this, { code, message, rank });
  }
}

/** Step 2: the leaf's single URI SAN, a SPIFFE ID with a path. */
function leafId(leaf: CertInfo): SpiffeId {
  if (leaf.uris.length === 0) fail('ERR_SVID_NO_SPIFFE_ID', 'certificate contains no URI SAN');
  if (leaf.uris.length > 1) fail('ERR_SVID_NO_SPIFFE_ID', 'certificate contains more than one URI SAN');
  const id = SpiffeId.tryParse(leaf.uris[0]!);
  if (!id) return fail('ERR_SVID_NO_SPIFFE_ID', 'the URI SAN is not a valid SPIFFE ID');
  if (id.isRoot) fail('ERR_SVID_NO_SPIFFE_ID', `leaf certificate SPIFFE ID must have a non-root path (${id.value})`);
  return id;
}

/** Step 3: X509-SVID §4 / §5.2 leaf rules, and a key zonegate accepts (cert/strength.ts). */
function checkLeaf(leaf: CertInfo): void {
  if (leaf.subjectEmpty && !leaf.sanCritical)
    fail('ERR_SVID_LEAF_CONSTRAINTS', 'a leaf with an empty subject must mark its subjectAltName critical');
  if (leaf.isCa) fail('ERR_SVID_LEAF_CONSTRAINTS', 'leaf certificate must not have CA flag set to true');
  const ku = leaf.keyUsage;
  if (!ku?.digitalSignature) fail('ERR_SVID_LEAF_CONSTRAINTS', "leaf certificate must have 'digitalSignature' set as key usage");
  if (ku?.keyCertSign) fail('ERR_SVID_LEAF_CONSTRAINTS', "leaf certificate must not have 'keyCertSign' set as key usage");
  if (ku?.cRLSign) fail('ERR_SVID_LEAF_CONSTRAINTS', "leaf certificate must not have 'cRLSign' set as key usage");
  if (leaf.unsupportedCritical.length > 0)
    fail('ERR_SVID_CRITICAL_EXTENSION', `leaf certificate has unsupported critical extension ${leaf.unsupportedCritical.join(', ')}`);
  if (leaf.weakKey) fail('ERR_KEY_TOO_WEAK', `leaf certificate has a ${leaf.weakKey}`);
}

/** Why `ci` may not sign a path with `below` intermediates under it; undefined when it may. */
function signerViolation(ci: CertInfo, below: number, isRoot: boolean): [ReasonCode, string] | undefined {
  if (!ci.isCa) return ['ERR_SVID_SIGNER_CONSTRAINTS', 'signing certificate must have CA flag set to true'];
  // Trust anchors without a keyUsage extension are common in public bundles; with one, it must allow signing.
  if (isRoot ? ci.keyUsage && !ci.keyUsage.keyCertSign : !ci.keyUsage?.keyCertSign)
    return ['ERR_SVID_SIGNER_CONSTRAINTS', "signing certificate must have 'keyCertSign' set as key usage"];
  if (ci.pathLen !== undefined && below > ci.pathLen)
    return ['ERR_SVID_SIGNER_CONSTRAINTS', `path length ${below} exceeds the pathLenConstraint ${ci.pathLen} of a signing certificate`];
  if (ci.unsupportedCritical.length > 0)
    return ['ERR_SVID_CRITICAL_EXTENSION', `a signing certificate has unsupported critical extension ${ci.unsupportedCritical.join(', ')}`];
  return undefined;
}

/**
 * The X509-SVID leaf rules alone (SPIFFE ID with a path, X509-SVID §4 / §5.2, key strength), for a certificate
 * whose chain something else has verified — e.g. a bundle endpoint's, checked by TLS against that
 * trust domain's roots. Throws ZonegateError with the specific code.
 */
export function checkX509SvidLeaf(cert: X509Certificate): SpiffeId {
  const leafInfo = info(cert, 'leaf certificate');
  const id = leafId(leafInfo);
  checkLeaf(leafInfo);
  return id;
}

/**
 * The X509-SVID leaf rules without the SPIFFE ID (X509-SVID §4 / §5.2: not a CA, `digitalSignature`,
 * neither `keyCertSign` nor `cRLSign`, no unsupported critical extension, a key zonegate accepts),
 * for a certificate that signs tokens and names no SPIFFE ID: a WirePact translator certificate.
 * Throws ZonegateError (ERR_SVID_LEAF_CONSTRAINTS, ERR_SVID_CRITICAL_EXTENSION, ERR_KEY_TOO_WEAK).
 */
export function checkSigningLeaf(cert: X509Certificate): void {
  checkLeaf(info(cert, 'leaf certificate'));
}

/** Step 1: a chain is present and within the length limit. */
function checkChain(chain: readonly X509Certificate[], maxLen: number): void {
  if (chain.length === 0) fail('ERR_SVID_MALFORMED', 'empty certificate chain');
  if (chain.length > maxLen) fail('ERR_SVID_TOO_LARGE', `chain has ${chain.length} certificates (limit ${maxLen})`);
}

/** Step 4: the X.509 authorities of the leaf's own trust domain, and nothing else. */
function trustDomainRoots(bundles: X509BundleSource, td: SpiffeId['trustDomain']): readonly X509Certificate[] {
  const roots = bundles.x509Authorities(td);
  if (roots === undefined && bundles.isStale?.(td))
    fail('ERR_TRUST_DOMAIN_STALE', `the bundle of trust domain "${td.name}" is past its maximum staleness`);
  if (roots === undefined) return fail('ERR_TRUST_DOMAIN_UNKNOWN', `no bundle for trust domain "${td.name}"`);
  if (roots.length === 0) fail('ERR_TRUST_DOMAIN_REVOKED', `the bundle of trust domain "${td.name}" has no X.509 authorities`);
  return roots;
}

/**
 * Step 5, first: every presented certificate after the leaf claims to be a signing certificate
 * (go-spiffe's Parse rule): one that cannot be fails even when it is not on the path.
 */
function checkPresentedSigners(chain: readonly X509Certificate[]): void {
  for (let i = 1; i < chain.length; i++) {
    const ci = info(chain[i]!, `certificate ${i}`);
    if (!ci.isCa) fail('ERR_SVID_SIGNER_CONSTRAINTS', 'signing certificate must have CA flag set to true');
    if (!ci.keyUsage?.keyCertSign) fail('ERR_SVID_SIGNER_CONSTRAINTS', "signing certificate must have 'keyCertSign' set as key usage");
    if (ci.unsupportedCritical.length > 0)
      fail('ERR_SVID_CRITICAL_EXTENSION', `certificate ${i} has unsupported critical extension ${ci.unsupportedCritical.join(', ')}`);
    if (ci.weakKey) fail('ERR_KEY_TOO_WEAK', `certificate ${i} has a ${ci.weakKey}`);
  }
}

/**
 * Step 5, then: a depth-first search for leaf → intermediates* → root of the leaf's trust domain.
 * Validity windows are checked on complete paths only, so a time failure is reported only where a
 * path exists; the most specific failure seen is kept for when none does.
 */
class PathSearch {
  readonly failure = new PathFailure();
  private checks = 0;
  private readonly path: X509Certificate[] = [];

  constructor(
    /** The leaf, as messages name it. */
    private readonly subject: string,
    private readonly roots: readonly X509Certificate[],
    private readonly pool: readonly X509Certificate[],
    private readonly o: { readonly now: number; readonly skew: number; readonly maxLen: number; readonly maxChecks: number; readonly ask: boolean },
  ) {}

  /** Is `ci` outside its validity window (with the skew)? Notes why. */
  outside(ci: CertInfo, what: string): boolean {
    const { now, skew } = this.o;
    if (now + skew < ci.notBefore) {
      this.failure.note('ERR_SVID_NOT_YET_VALID', `${what} is not valid before ${new Date(ci.notBefore).toISOString()}`, 3);
      return true;
    }
    if (now - skew > ci.notAfter) {
      this.failure.note('ERR_SVID_EXPIRED', `${what} expired at ${new Date(ci.notAfter).toISOString()}`, 3);
      return true;
    }
    return false;
  }

  /** The path from `leaf` up to a root, validity checked; undefined when there is none. */
  from(leaf: X509Certificate): X509Certificate[] | undefined {
    this.path.push(leaf);
    return this.search(leaf, 0);
  }

  private search(current: X509Certificate, below: number): X509Certificate[] | undefined {
    const path = this.path;
    const what = path.length === 1 ? 'the leaf certificate' : `intermediate ${path.length - 1}`;
    for (const root of this.roots) {
      if (!this.issued(current, root, below, true, what)) continue;
      const candidate = [...path, root];
      const expired = candidate.slice(1).some((c, i) => this.outside(info(c, 'certificate'), i === below ? 'the bundle authority' : `intermediate ${i + 1}`));
      if (!expired) return candidate;
    }
    if (path.length >= this.o.maxLen) return undefined;
    for (const im of this.pool) {
      if (path.includes(im) || !this.issued(current, im, below, false, what)) continue;
      path.push(im);
      const found = this.search(im, below + 1);
      if (found) return found;
      path.pop();
    }
    return undefined;
  }

  /** Can `issuer` have signed `child`? Names and key identifiers first (≈ 1 µs), then rules, then the signature. */
  private issued(child: X509Certificate, issuer: X509Certificate, below: number, isRoot: boolean, what: string): boolean {
    const failure = this.failure;
    if (!child.checkIssued(issuer)) {
      // OpenSSL also refuses an issuer whose keyUsage lacks keyCertSign: name the rule then.
      if (child.issuer === issuer.subject && info(issuer, 'issuer').keyUsage?.keyCertSign === false)
        failure.note('ERR_SVID_SIGNER_CONSTRAINTS', "signing certificate must have 'keyCertSign' set as key usage", 2);
      return false;
    }
    const violation = signerViolation(info(issuer, 'signing certificate'), below, isRoot);
    if (violation) {
      failure.note(violation[0], violation[1], 2);
      return false;
    }
    // Configured intermediates and bundle roots too: a bundle parser leaves weak roots out, but
    // a source that builds its bundle another way must not make one a trust anchor.
    const issuerKey = info(issuer, 'signing certificate').weakKey;
    if (issuerKey) {
      failure.note('ERR_KEY_TOO_WEAK', `the ${isRoot ? 'bundle authority' : 'intermediate'} that issued ${what} has a ${issuerKey}`, 2);
      return false;
    }
    // A signature with a broken hash (SHA-1, MD5) proves nothing, whatever OpenSSL would accept.
    const childInfo = info(child, 'certificate');
    if (!childInfo.signature) {
      failure.note('ERR_SVID_SIGNATURE', `${what} is signed with an algorithm zonegate does not accept (${childInfo.signatureOid})`, 2);
      return false;
    }
    // Parameters the thread pool cannot check exactly (a PSS MGF1 hash other than the hash, as Go
    // refuses too) are refused, not checked here: every such check would run on the event loop.
    if (!signatureCheckable(child)) {
      failure.note('ERR_SVID_SIGNATURE', `${what} is signed with ${childInfo.signature} parameters zonegate does not accept`, 2);
      return false;
    }
    // Same-name intermediates (or roots) make every candidate cost a signature: bound them.
    if (++this.checks > this.o.maxChecks)
      fail('ERR_SIGNATURE_LIMIT', `building a path for ${this.subject} needs more than ${this.o.maxChecks} signature checks (limits.maxSignatureChecks)`);
    if (this.o.ask && !knownSignature(child, issuer)) throw new UnknownSignature(child, issuer);
    if (signatureValid(child, issuer)) return true;
    failure.note('ERR_SVID_SIGNATURE', `the signature on ${what} does not verify with its issuer's key`, 2);
    return false;
  }
}

/** Verifies an X509-SVID chain (leaf first). Throws ZonegateError with the specific code. */
export function verifyX509Svid(
  chain: readonly X509Certificate[],
  bundles: X509BundleSource,
  opts: VerifyOptions,
): VerifiedSvid {
  const maxLen = opts.maxChainLength;
  checkChain(chain, maxLen); // 1
  const leaf = chain[0]!;
  const leafInfo = info(leaf, 'leaf certificate');
  const id = leafId(leafInfo); // 2
  checkLeaf(leafInfo); // 3
  const td = id.trustDomain;
  const roots = trustDomainRoots(bundles, td); // 4
  checkPresentedSigners(chain); // 5
  const pool = [...chain.slice(1), ...(opts.extraIntermediates ?? []), ...(bundles.intermediates?.(td) ?? [])];
  const search = new PathSearch(id.value, roots, pool, {
    now: opts.now ?? Date.now(),
    skew: (opts.skewSeconds ?? 0) * 1000,
    maxLen,
    maxChecks: opts.maxSignatureChecks,
    ask: (opts as { [ASK]?: true })[ASK] === true,
  });
  // As Go's x509 does, the leaf's own window is checked before any path is built.
  if (search.outside(leafInfo, 'leaf certificate')) fail(search.failure.code, search.failure.message);
  const found = search.from(leaf);
  if (!found) return fail(search.failure.code, search.failure.message || `no path from ${id.value} to an authority of trust domain "${td.name}"`);
  return { id, chain: found, notAfter: Math.min(...found.map((c) => info(c, 'certificate').notAfter)) };
}

/** What verifyPath needs: every limit explicit (the defaults are the caller's). */
export interface PathOptions {
  /** Verification time, ms since the epoch. */
  readonly now: number;
  readonly skewSeconds: number;
  /** Most certificates in the presented chain and in a built path below the root. */
  readonly maxChainLength: number;
  /** Most certificate signatures the search may check (ERR_SIGNATURE_LIMIT past it). */
  readonly maxSignatureChecks: number;
  /** Certificates to build paths with beside the presented ones. */
  readonly intermediates?: readonly X509Certificate[];
  /** The leaf and the anchors, as messages name them. */
  readonly subject: string;
  readonly anchors: string;
}

/**
 * Steps 1 and 5 of verifyX509Svid alone: RFC 5280 path validation from `chain[0]` to one of
 * `roots`, with the signing-certificate rules, key strength, accepted signature algorithms,
 * validity windows and the signature-check bound of X509-SVIDs, for a leaf whose own rules are the
 * caller's (a WirePact translator certificate has no SPIFFE ID). Throws ZonegateError.
 */
export function verifyPath(chain: readonly X509Certificate[], roots: readonly X509Certificate[], opts: PathOptions): { chain: readonly X509Certificate[]; notAfter: number } {
  checkChain(chain, opts.maxChainLength);
  checkPresentedSigners(chain);
  const leaf = chain[0]!;
  const search = new PathSearch(opts.subject, roots, [...chain.slice(1), ...(opts.intermediates ?? [])], {
    now: opts.now,
    skew: opts.skewSeconds * 1000,
    maxLen: opts.maxChainLength,
    maxChecks: opts.maxSignatureChecks,
    ask: false,
  });
  if (search.outside(info(leaf, 'leaf certificate'), 'leaf certificate')) fail(search.failure.code, search.failure.message);
  const found = search.from(leaf);
  if (!found) return fail(search.failure.code, search.failure.message || `no path from ${opts.subject} to ${opts.anchors}`);
  return { chain: found, notAfter: Math.min(...found.map((c) => info(c, 'certificate').notAfter)) };
}
