/**
 * X509-SVID verification (X509-SVID.md, RFC 5280 path validation) on node:crypto, in go-spiffe's
 * fixed order: chain present → SPIFFE ID of the leaf → leaf constraints → bundle of THAT trust
 * domain → path to one of its authorities (signatures, validity, signing-certificate rules).
 * A CA trusted for trust domain A can never vouch for an ID in trust domain B: only B's
 * authorities are ever tried for a leaf in B.
 */
import type { X509Certificate } from 'node:crypto';
import { ZonegateError, type ReasonCode } from '../errors.js';
import { SpiffeId } from '../spiffe/id.js';
import type { X509BundleSource } from '../bundle/set.js';
import { certInfo, type CertInfo } from './certinfo.js';

export interface VerifyOptions {
  /** Verification time in ms since the epoch (default: now). */
  readonly now?: number;
  /** Tolerance on validity windows, in seconds (default 0). */
  readonly skewSeconds?: number;
  /** Most certificates accepted in the presented chain (default 5). */
  readonly maxChainLength?: number;
  /** More intermediates to build paths with (e.g. configured beside the bundle). */
  readonly extraIntermediates?: readonly X509Certificate[];
}

export interface VerifiedSvid {
  readonly id: SpiffeId;
  /** leaf, intermediates, root */
  readonly chain: readonly X509Certificate[];
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

/** The most specific failure seen while searching for a path; reported when no path exists. */
class PathFailure {
  code: ReasonCode = 'ERR_SVID_UNTRUSTED';
  message = '';
  private rank = 0;
  note(code: ReasonCode, message: string, rank: number): void {
    if (rank > this.rank) Object.assign(this, { code, message, rank });
  }
}

/** Verifies an X509-SVID chain (leaf first). Throws ZonegateError with the specific code. */
export function verifyX509Svid(
  chain: readonly X509Certificate[],
  bundles: X509BundleSource,
  opts: VerifyOptions = {},
): VerifiedSvid {
  const now = opts.now ?? Date.now();
  const skew = (opts.skewSeconds ?? 0) * 1000;
  const maxLen = opts.maxChainLength ?? 5;
  if (chain.length === 0) fail('ERR_SVID_MALFORMED', 'empty certificate chain');
  if (chain.length > maxLen) fail('ERR_SVID_TOO_LARGE', `chain has ${chain.length} certificates (limit ${maxLen})`);
  const leaf = chain[0]!;
  const leafInfo = info(leaf, 'leaf certificate');

  // SPIFFE ID
  if (leafInfo.uris.length === 0) fail('ERR_SVID_NO_SPIFFE_ID', 'certificate contains no URI SAN');
  if (leafInfo.uris.length > 1) fail('ERR_SVID_NO_SPIFFE_ID', 'certificate contains more than one URI SAN');
  const id = SpiffeId.tryParse(leafInfo.uris[0]!);
  if (!id) return fail('ERR_SVID_NO_SPIFFE_ID', 'the URI SAN is not a valid SPIFFE ID');
  if (id.isRoot) fail('ERR_SVID_NO_SPIFFE_ID', `${id.value} has no path: a trust domain ID is not a workload ID`);

  // leaf constraints
  if (leafInfo.subjectEmpty && !leafInfo.sanCritical)
    fail('ERR_SVID_LEAF_CONSTRAINTS', 'a leaf with an empty subject must mark its subjectAltName critical');
  if (leafInfo.isCa) fail('ERR_SVID_LEAF_CONSTRAINTS', 'leaf certificate must not have CA flag set to true');
  const ku = leafInfo.keyUsage;
  if (!ku?.digitalSignature) fail('ERR_SVID_LEAF_CONSTRAINTS', "leaf certificate must have 'digitalSignature' set as key usage");
  if (ku?.keyCertSign) fail('ERR_SVID_LEAF_CONSTRAINTS', "leaf certificate must not have 'keyCertSign' set as key usage");
  if (ku?.cRLSign) fail('ERR_SVID_LEAF_CONSTRAINTS', "leaf certificate must not have 'cRLSign' set as key usage");

  // every presented certificate, before any bundle is consulted (go-spiffe's Parse)
  for (const [i, c] of chain.entries()) {
    const ci = info(c, i === 0 ? 'leaf certificate' : `certificate ${i}`);
    if (ci.unsupportedCritical.length > 0)
      fail('ERR_SVID_CRITICAL_EXTENSION', `certificate ${i} has unsupported critical extension ${ci.unsupportedCritical.join(', ')}`);
    // Like go-spiffe's Parse: every presented certificate after the leaf is a signing certificate.
    if (i > 0 && !ci.isCa) fail('ERR_SVID_SIGNER_CONSTRAINTS', 'signing certificate must have CA flag set to true');
    if (i > 0 && !ci.keyUsage?.keyCertSign)
      fail('ERR_SVID_SIGNER_CONSTRAINTS', "signing certificate must have 'keyCertSign' set as key usage");
  }

  // the bundle of the leaf's own trust domain, and nothing else
  const roots = bundles.x509Authorities(id.trustDomain);
  if (roots === undefined && bundles.isStale?.(id.trustDomain))
    fail('ERR_TRUST_DOMAIN_STALE', `the bundle of trust domain "${id.trustDomain.name}" is past its maximum staleness`);
  if (roots === undefined) fail('ERR_TRUST_DOMAIN_UNKNOWN', `no bundle for trust domain "${id.trustDomain.name}"`);
  if (roots!.length === 0) fail('ERR_TRUST_DOMAIN_REVOKED', `the bundle of trust domain "${id.trustDomain.name}" has no X.509 authorities`);

  const pool = [...chain.slice(1), ...(opts.extraIntermediates ?? []), ...(bundles.intermediates?.(id.trustDomain) ?? [])];
  const failure = new PathFailure();
  const inWindow = (c: X509Certificate, ci: CertInfo, what: string): boolean => {
    if (now + skew < ci.notBefore) {
      failure.note('ERR_SVID_NOT_YET_VALID', `${what} is not valid before ${new Date(ci.notBefore).toISOString()}`, 3);
      return false;
    }
    if (now - skew > ci.notAfter) {
      failure.note('ERR_SVID_EXPIRED', `${what} expired at ${new Date(ci.notAfter).toISOString()}`, 3);
      return false;
    }
    return true;
  };
  const signedBy = (child: X509Certificate, issuer: X509Certificate, what: string): boolean => {
    // Names first (cheap); then the signature. Constraints on the issuer are checked by the caller.
    if (child.issuer !== issuer.subject) return false;
    if (child.verify(issuer.publicKey)) return true;
    failure.note('ERR_SVID_SIGNATURE', `the signature on ${what} does not verify with its issuer's key`, 2);
    return false;
  };
  if (!inWindow(leaf, leafInfo, 'leaf certificate')) fail(failure.code, failure.message);

  // Depth-first search for a path leaf → intermediates* → root of this trust domain.
  const path: X509Certificate[] = [leaf];
  const search = (current: X509Certificate, intermediatesBelow: number): X509Certificate[] | undefined => {
    const what = path.length === 1 ? 'the leaf certificate' : `intermediate ${path.length - 1}`;
    for (const root of roots!) {
      if (!signedBy(current, root, what)) continue;
      const ri = info(root, 'bundle authority');
      if (!ri.isCa) {
        failure.note('ERR_SVID_SIGNER_CONSTRAINTS', 'a bundle authority without the CA flag cannot sign', 2);
        continue;
      }
      if (ri.pathLen !== undefined && intermediatesBelow > ri.pathLen) {
        failure.note('ERR_SVID_SIGNER_CONSTRAINTS', `path length ${intermediatesBelow} exceeds the root's limit ${ri.pathLen}`, 2);
        continue;
      }
      if (!inWindow(root, ri, 'the bundle authority')) continue;
      return [...path, root];
    }
    if (path.length > maxLen) return undefined;
    for (const im of pool) {
      if (path.includes(im) || !signedBy(current, im, what)) continue;
      const ii = info(im, 'intermediate certificate');
      if (!ii.isCa) {
        failure.note('ERR_SVID_SIGNER_CONSTRAINTS', 'signing certificate must have CA flag set to true', 2);
        continue;
      }
      if (!ii.keyUsage?.keyCertSign) {
        failure.note('ERR_SVID_SIGNER_CONSTRAINTS', "signing certificate must have 'keyCertSign' set as key usage", 2);
        continue;
      }
      if (ii.pathLen !== undefined && intermediatesBelow > ii.pathLen) {
        failure.note('ERR_SVID_SIGNER_CONSTRAINTS', `path length ${intermediatesBelow} exceeds an intermediate's limit ${ii.pathLen}`, 2);
        continue;
      }
      if (ii.unsupportedCritical.length > 0) {
        failure.note('ERR_SVID_CRITICAL_EXTENSION', `an intermediate has unsupported critical extension ${ii.unsupportedCritical.join(', ')}`, 2);
        continue;
      }
      if (!inWindow(im, ii, 'an intermediate certificate')) continue;
      path.push(im);
      const found = search(im, intermediatesBelow + 1);
      if (found) return found;
      path.pop();
    }
    return undefined;
  };
  const found = search(leaf, 0);
  if (!found)
    fail(failure.code, failure.message || `no path from ${id.value} to an authority of trust domain "${id.trustDomain.name}"`);
  return { id, chain: found!, notAfter: Math.min(...found!.map((c) => info(c, 'certificate').notAfter)) };
}
