/**
 * The WirePact profile, so WirePact translators can be replaced one at a time: read and emit its
 * identity token (`x-wirepact-identity`: RS256, `typ` JWT, `x5c` = [signing cert, WirePact CA],
 * `x5t` = base64(SHA-256(signing cert)), `aud` ["WirePact"], `sub` the user) — but verified fully:
 * the x5c chain must lead to the configured WirePact CA, x5t must match, and the signature, time
 * and audience are checked (WirePact's own translators skip some of these). A WirePact token
 * names no workload, so it cannot be bound to the mTLS peer: use it for migration only.
 */
import { createHash, type X509Certificate, type KeyObject } from 'node:crypto';
import type { ReasonCode } from '../errors.js';
import { certInfo } from '../cert/certinfo.js';
import { parseCertificates } from '../cert/parse.js';
import { b64urlDecode, decodeJsonPart, keyFits, signCompact, verifySignature } from './jws.js';
import { keyWeakness } from '../cert/strength.js';
import { subjectProblem } from './subject.js';

export const WIREPACT_HEADER = 'x-wirepact-identity';
export const WIREPACT_AUDIENCE = 'WirePact';

export type WirePactResult =
  | { readonly ok: true; readonly sub: string; readonly iss: string | undefined }
  | { readonly ok: false; readonly code: ReasonCode; readonly message: string };

const no = (code: ReasonCode, message: string) => ({ ok: false as const, code, message: `wirepact: ${message}` });


const inWindow = (c: X509Certificate, now: number, skewMs: number) => Date.parse(c.validFrom) - skewMs <= now && now <= Date.parse(c.validTo) + skewMs;

/** A signature algorithm zonegate accepts (no SHA-1 or MD5: such signatures can be forged). */
function strongSignature(c: X509Certificate): boolean {
  try {
    return certInfo(c).signature !== undefined;
  } catch {
    return false;
  }
}

const signs = (child: X509Certificate, issuer: X509Certificate, now: number, skewMs: number): boolean =>
  issuer.ca && child.issuer === issuer.subject && inWindow(issuer, now, skewMs) && strongSignature(child) && child.verify(issuer.publicKey);

/**
 * The chain as presented (RFC 7515 §4.1.6: each certificate certifies the one before it) leads to
 * one of `roots`: chain[i+1] signed chain[i], and the last one is a configured root or was signed
 * by one. No search: a chain of n certificates costs at most n + roots signature checks, whatever
 * names and keys an attacker repeats in it.
 */
function chainsTo(chain: readonly X509Certificate[], roots: readonly X509Certificate[], now: number, skewMs: number): boolean {
  if (!inWindow(chain[0]!, now, skewMs)) return false;
  for (let i = 0; i + 1 < chain.length; i++) if (!signs(chain[i]!, chain[i + 1]!, now, skewMs)) return false;
  const last = chain[chain.length - 1]!;
  if (roots.some((r) => r.raw.equals(last.raw))) return true;
  return roots.some((r) => signs(last, r, now, skewMs));
}

export interface WirePactRules {
  readonly roots: readonly X509Certificate[];
  readonly maxBytes: number;
  /** Most certificates and base64 characters in x5c (limits.maxChainLength, limits.maxChainBytes). */
  readonly maxX5cCertificates?: number;
  readonly maxX5cBytes?: number;
  readonly skewSeconds: number;
  readonly maxLifetimeSeconds: number;
  /** Accepted iss values (WirePact translators' configured issuer); empty: any. */
  readonly issuers: ReadonlySet<string>;
}

/** Verifies a WirePact identity token. */
export function verifyWirePact(token: string, rules: WirePactRules, nowMs: number): WirePactResult {
  if (token.length > rules.maxBytes) return no('ERR_TOKEN_TOO_LARGE', `${token.length} bytes`);
  const parts = token.split('.');
  const header = decodeJsonPart(parts[0]);
  const claims = decodeJsonPart(parts[1]);
  const sig = parts.length === 3 ? b64urlDecode(parts[2]!) : undefined;
  if (!header || !claims || !sig) return no('ERR_TOKEN_MALFORMED', 'not a compact JWS of JSON objects');
  if (header.alg !== 'RS256') return no('ERR_TOKEN_ALG', 'the WirePact profile is RS256 only');
  if (header.typ !== undefined && header.typ !== 'JWT') return no('ERR_TOKEN_TYPE', 'typ must be JWT');
  if ('jku' in header || 'x5u' in header || 'jwk' in header) return no('ERR_TOKEN_KEY_URL', 'jku, x5u and jwk are never followed');
  if ('crit' in header) return no('ERR_TOKEN_CRIT', 'unknown crit extension');
  const x5c = header.x5c;
  if (!Array.isArray(x5c) || x5c.length === 0 || x5c.some((c) => typeof c !== 'string')) return no('ERR_TOKEN_X5C', 'x5c is missing');
  // each certificate is parsed on every request: bound the work first
  const x5cBytes = (x5c as string[]).reduce((n, c) => n + c.length, 0);
  if (x5c.length > (rules.maxX5cCertificates ?? 5) || x5cBytes > (rules.maxX5cBytes ?? 64 * 1024))
    return no('ERR_TOKEN_X5C_TOO_LARGE', `x5c holds ${x5c.length} certificates, ${x5cBytes} bytes`);
  let chain: X509Certificate[];
  try {
    // one certificate per element (RFC 7515 §4.1.6)
    chain = (x5c as string[]).map((c) => parseCertificates(Buffer.from(c, 'base64'), { maxCertificates: 1 })[0]!);
  } catch (err) {
    return no('ERR_TOKEN_X5C', (err as Error).message);
  }
  const signer = chain[0]!;
  const thumb = createHash('sha256').update(signer.raw).digest('base64');
  if (header.x5t !== undefined && header.x5t !== thumb) return no('ERR_TOKEN_X5C', 'x5t does not match the signing certificate');
  for (const [i, c] of chain.entries()) {
    const weak = keyWeakness(c.publicKey);
    if (weak) return no('ERR_KEY_TOO_WEAK', `x5c[${i}] has a ${weak}`);
  }
  if (!chainsTo(chain, rules.roots, nowMs, rules.skewSeconds * 1000))
    return no('ERR_TOKEN_CHAIN', 'x5c does not lead to the configured WirePact CA');
  if (!keyFits('RS256', signer.publicKey)) return no('ERR_TOKEN_ALG', 'the signing certificate has no RSA key of 2048 bits or more');
  if (!verifySignature('RS256', signer.publicKey, `${parts[0]}.${parts[1]}`, sig)) return no('ERR_TOKEN_SIGNATURE', 'signature does not verify');
  const now = nowMs / 1000;
  const subProblem = subjectProblem(claims.sub);
  if (subProblem) return no('ERR_TOKEN_CLAIMS', subProblem);
  if (typeof claims.exp !== 'number') return no('ERR_TOKEN_CLAIMS', 'exp is missing');
  if (now - rules.skewSeconds >= claims.exp) return no('ERR_TOKEN_EXPIRED', 'expired');
  // iat is optional in WirePact tokens: without it, the time left must still fit the lifetime
  if (claims.iat !== undefined && (typeof claims.iat !== 'number' || !Number.isFinite(claims.iat))) return no('ERR_TOKEN_CLAIMS', 'iat is not a number');
  if (claims.exp - now > rules.maxLifetimeSeconds + rules.skewSeconds) return no('ERR_TOKEN_LIFETIME', `expires more than ${rules.maxLifetimeSeconds} s from now`);
  if (typeof claims.iat === 'number' && claims.exp - claims.iat > rules.maxLifetimeSeconds) return no('ERR_TOKEN_LIFETIME', 'lifetime too long');
  if (typeof claims.nbf === 'number' && now + rules.skewSeconds < claims.nbf) return no('ERR_TOKEN_NOT_YET_VALID', 'nbf in the future');
  const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  if (!aud.includes(WIREPACT_AUDIENCE)) return no('ERR_TOKEN_AUDIENCE', 'aud must contain "WirePact"');
  const iss = typeof claims.iss === 'string' ? claims.iss : undefined;
  if (rules.issuers.size > 0 && (iss === undefined || !rules.issuers.has(iss))) return no('ERR_TOKEN_ISSUER_MISMATCH', 'iss is not an accepted WirePact issuer');
  return { ok: true, sub: claims.sub as string, iss };
}

/** Emits a WirePact identity token for `sub`, signed with a WirePact translator certificate's RSA key. */
export function mintWirePact(o: { key: KeyObject; chain: readonly X509Certificate[]; issuer: string; sub: string; ttlSeconds: number; now?: number }): string {
  const iat = Math.floor((o.now ?? Date.now()) / 1000);
  const header = {
    alg: 'RS256',
    typ: 'JWT',
    x5c: o.chain.map((c) => c.raw.toString('base64')),
    x5t: createHash('sha256').update(o.chain[0]!.raw).digest('base64'),
  };
  return signCompact(header, { sub: o.sub, iss: o.issuer, aud: [WIREPACT_AUDIENCE], iat, exp: iat + o.ttlSeconds }, 'RS256', o.key);
}
