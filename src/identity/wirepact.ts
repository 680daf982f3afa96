/**
 * The WirePact profile, so WirePact translators can be replaced one at a time: read and emit its
 * identity token (`x-wirepact-identity`: RS256, `typ` JWT, `x5c` = [signing cert, WirePact CA],
 * `x5t` = base64(SHA-256(signing cert)), `aud` ["WirePact"], `sub` the user) — but verified fully:
 * the x5c chain must lead to the configured WirePact CA by the X.509 path validation of
 * X509-SVIDs (svid/x509.ts verifyPath: signing-certificate rules, key strength, validity, bounded
 * signature checks), the signing certificate keeps to the X509-SVID leaf rules (checkSigningLeaf:
 * not a CA, digitalSignature), x5t must match, and the signature, time and audience are checked (WirePact's
 * own translators skip some of these). A WirePact token names no workload, so it cannot be bound
 * to the mTLS peer: use it for migration only.
 */
import type { X509Certificate, KeyObject } from 'node:crypto';
import { sha256 } from '../hash.js';
import { parseCertificates } from '../cert/parse.js';
import { checkSigningLeaf, verifyPath } from '../svid/x509.js';
import { signCompact } from './jws.js';
import { keyWeakness } from '../cert/strength.js';
import { subjectProblem } from './subject.js';
import { audienceList, chainFailure, checkSignature, checkTime, failure, failWith, parseCompact, timeClaims, x5cDers, type CompactRules, type TokenFailure } from './compact.js';

export const WIREPACT_HEADER = 'x-wirepact-identity';
export const WIREPACT_AUDIENCE = 'WirePact';

export type WirePactResult = { readonly ok: true; readonly sub: string; readonly iss: string | undefined } | TokenFailure;

const fail = failWith('wirepact');
const RS256 = new Set(['RS256'] as const);
const JWT = new Set(['JWT']);

export interface WirePactRules {
  readonly roots: readonly X509Certificate[];
  readonly maxBytes: number;
  /** Most certificates and base64 characters in x5c (limits.maxChainLength, limits.maxChainBytes). */
  readonly maxX5cCertificates: number;
  readonly maxX5cBytes: number;
  /** Most certificate signatures the path search may check (limits.maxSignatureChecks). */
  readonly maxSignatureChecks: number;
  readonly skewSeconds: number;
  readonly maxLifetimeSeconds: number;
  /** Accepted iss values (WirePact translators' configured issuer); empty: any. */
  readonly issuers: ReadonlySet<string>;
}

const profile = (rules: WirePactRules): CompactRules => ({
  name: 'wirepact',
  maxBytes: rules.maxBytes,
  algorithms: RS256,
  typ: { allowed: JWT },
  x5c: { maxCertificates: rules.maxX5cCertificates, maxBytes: rules.maxX5cBytes },
  decode: 'first',
});

/** The x5c certificates, one per element (RFC 7515 §4.1.6), parsed on every request: no cache. */
function x5cCertificates(x5c: readonly string[]): X509Certificate[] {
  const ders = x5cDers(x5c, fail);
  try {
    return ders.map((der) => parseCertificates(der, { maxCertificates: 1 })[0]!);
  } catch (err) {
    return fail('ERR_TOKEN_X5C', (err as Error).message);
  }
}

/**
 * The signing certificate: named by x5t, every key strong enough, the leaf rules of X509-SVIDs
 * without the SPIFFE ID (not a CA, digitalSignature), a path to a configured root.
 */
function signingCertificate(x5c: readonly string[], x5t: unknown, rules: WirePactRules, nowMs: number): X509Certificate {
  const chain = x5cCertificates(x5c);
  const signer = chain[0]!;
  const thumb = sha256(signer.raw, 'base64');
  if (x5t !== undefined && x5t !== thumb) fail('ERR_TOKEN_X5C', 'x5t does not match the signing certificate');
  for (const [i, c] of chain.entries()) {
    const weak = keyWeakness(c.publicKey);
    if (weak) fail('ERR_KEY_TOO_WEAK', `x5c[${i}] has a ${weak}`);
  }
  try {
    checkSigningLeaf(signer);
    verifyPath(chain, rules.roots, {
      now: nowMs,
      skewSeconds: rules.skewSeconds,
      maxChainLength: rules.maxX5cCertificates,
      maxSignatureChecks: rules.maxSignatureChecks,
      subject: 'the WirePact signing certificate',
      anchors: 'the configured WirePact CA',
    });
  } catch (err) {
    chainFailure(err, fail);
  }
  return signer;
}

/** Verifies a WirePact identity token. */
export function verifyWirePact(token: string, rules: WirePactRules, nowMs: number): WirePactResult {
  try {
    const t = parseCompact(token, profile(rules));
    const signer = signingCertificate(t.x5c, t.header.x5t, rules, nowMs);
    checkSignature(t, signer.publicKey, 'the signing certificate', fail);
    const claims = t.claims;
    const subProblem = subjectProblem(claims.sub);
    if (subProblem) fail('ERR_TOKEN_CLAIMS', subProblem);
    // iat is optional in WirePact tokens: without it, the time left must still fit the lifetime
    checkTime(timeClaims(claims, false, fail), nowMs, rules, fail);
    if (!audienceList(claims.aud).includes(WIREPACT_AUDIENCE)) fail('ERR_TOKEN_AUDIENCE', 'aud must contain "WirePact"');
    const iss = typeof claims.iss === 'string' ? claims.iss : undefined;
    if (rules.issuers.size > 0 && (iss === undefined || !rules.issuers.has(iss))) fail('ERR_TOKEN_ISSUER_MISMATCH', 'iss is not an accepted WirePact issuer');
    return { ok: true, sub: claims.sub as string, iss };
  } catch (err) {
    return failure(err);
  }
}

/** Emits a WirePact identity token for `sub`, signed with a WirePact translator certificate's RSA key. */
export function mintWirePact(o: { key: KeyObject; chain: readonly X509Certificate[]; issuer: string; sub: string; ttlSeconds: number; now: number }): string {
  const iat = Math.floor(o.now / 1000);
  const header = {
    alg: 'RS256',
    typ: 'JWT',
    x5c: o.chain.map((c) => c.raw.toString('base64')),
    x5t: sha256(o.chain[0]!.raw, 'base64'),
  };
  return signCompact(header, { sub: o.sub, iss: o.issuer, aud: [WIREPACT_AUDIENCE], iat, exp: iat + o.ttlSeconds }, 'RS256', o.key);
}
