/**
 * The one front end for compact JWS/JWT (RFC 7515 §7.1, RFC 7519) that every token zonegate reads
 * goes through — the common identity, JWT-SVIDs, OIDC bearer JWTs and WirePact tokens: one parse
 * step with the header guards they share, one set of time checks with the configured skew, one
 * key-and-signature step, and one failure type carrying the stable reason code of the deny.
 *
 * A profile states only what differs (algorithms, typ, kid or x5c, limits); the guards run in one
 * order for all of them:
 *   size → three parts → header JSON → alg → typ → no key URL → no crit → kid | x5c
 *   → payload JSON → (the profile's claims) → time → the key's JWK allows alg → key fits alg → signature.
 * Header rules every profile gets:
 * - `alg` from the profile's allowlist only: `none` and HS* exist nowhere in jws.ts.
 * - `jku`, `x5u`, `jwk` are refused, never followed (ERR_TOKEN_KEY_URL).
 * - `crit` is refused whatever it lists: zonegate implements no extension (ERR_TOKEN_CRIT). So
 *   `b64: false` (RFC 7797), which only takes effect when listed in `crit`, can never change
 *   what was signed: the signing input is always the base64url header and payload, as RFC 7797
 *   §6 prescribes for an implementation that does not take part.
 */
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { ZonegateError, type ReasonCode } from '../errors.js';
import { keyWeakness } from '../cert/strength.js';
import { b64urlDecode, isAlgorithm, keyFits, verifySignature, type Algorithm } from './jws.js';

/** A refused token. Every profile throws this one type; its code is the deny's reason. */
export class TokenError extends ZonegateError {
  constructor(code: ReasonCode, message: string) {
    super(code, message);
    this.name = 'TokenError';
  }
}

/** How a refused token is returned where results are returned rather than thrown. */
export interface TokenFailure {
  readonly ok: false;
  readonly code: ReasonCode;
  readonly message: string;
}

/** A thrower whose messages start with the profile's name ("jwtsvid: …"). */
export type Fail = (code: ReasonCode, message: string) => never;
export const failWith =
  (name: string): Fail =>
  (code, message) => {
    throw new TokenError(code, `${name}: ${message}`);
  };

/** The failure a thrown ZonegateError stands for; anything else is a bug and is thrown on. */
export function failure(err: unknown): TokenFailure {
  if (err instanceof ZonegateError) return { ok: false, code: err.code, message: err.message };
  throw err;
}

export interface TypRule {
  /** A token without typ is refused (the common identity names its kind). */
  readonly required?: boolean;
  /** typ, when present, must be one of these exactly. */
  readonly allowed?: ReadonlySet<string>;
  /**
   * typ must not be one of these, compared in lower case without "application/" (RFC 8725
   * §3.11): JWTs of other kinds that must never pass as this one.
   */
  readonly refused?: ReadonlySet<string>;
}

export interface CompactRules {
  /** The profile as messages name it: "token", "jwt", "jwtsvid", "wirepact". */
  readonly name: string;
  /** Longest token, in characters (ERR_TOKEN_TOO_LARGE). */
  readonly maxBytes: number;
  readonly algorithms: ReadonlySet<Algorithm>;
  readonly typ?: TypRule;
  /** A non-empty `kid` is required: keys are looked up by it (ERR_TOKEN_KEY_UNKNOWN). */
  readonly kid?: boolean;
  /** `x5c` is required: a non-empty array of base64 certificates within these bounds. */
  readonly x5c?: { readonly maxCertificates: number; readonly maxBytes: number };
  /** Largest decoded payload, checked before it is parsed (ERR_CLAIMS_TOO_LARGE). */
  readonly maxPayloadBytes?: number;
  /**
   * When the payload and signature parts are decoded. 'first' (bearer tokens): all three parts
   * before any header rule, a bad one is ERR_TOKEN_MALFORMED. 'header-first' (the common
   * identity): a token the header refuses costs no payload parsing, and a signature part that is
   * not base64url is reported where the signature is checked (ERR_TOKEN_SIGNATURE).
   */
  readonly decode: 'first' | 'header-first';
  /**
   * Headers these rules accepted before, by their text (see HeaderCache). Only for rules that
   * never change: a cache belongs to one rules object.
   */
  readonly headers?: HeaderCache;
}

/** The part of a Compact the header decides: a function of the header text and the rules only. */
interface AcceptedHeader {
  readonly header: Readonly<Record<string, unknown>>;
  readonly alg: Algorithm;
  readonly kid: string;
  readonly x5c: readonly string[];
}

/**
 * Headers that passed one profile's rules, by their exact base64url text. The tokens of one
 * signer share one header (alg, typ, x5c: about 1.5 KB with a two-certificate chain), so a new
 * token of a known signer decodes only its payload and signature. The verdict on a header is a
 * function of its text and the rules alone; a refused header is not kept (it is decided again,
 * with the same reason). Entries are frozen: every token with this header shares them.
 *
 * Bounded by count and by the characters of the header texts kept: a header is accepted before
 * anything in it is verified, so any client can have one kept, up to the token size limit each
 * (a header text bigger than maxBytes is not kept at all).
 */
export class HeaderCache {
  private readonly entries: LRUCache<string, AcceptedHeader>;
  constructor(max: number, maxBytes: number) {
    this.entries = new LRUCache({ max: Math.max(1, max), maxSize: Math.max(1, maxBytes), sizeCalculation: (_h, text) => Math.max(1, text.length) });
  }
  /** Characters of the header texts kept (each also kept decoded, about as large). */
  get bytes(): number {
    return this.entries.calculatedSize;
  }
  get(text: string): AcceptedHeader | undefined {
    return this.entries.get(text);
  }
  set(text: string, h: AcceptedHeader): AcceptedHeader {
    const frozen = Object.freeze({ header: Object.freeze({ ...h.header }), alg: h.alg, kid: h.kid, x5c: Object.freeze([...h.x5c]) });
    this.entries.set(text, frozen);
    return frozen;
  }
}

/** A compact JWS that passed the header rules. Nothing in it is verified yet. */
export interface Compact {
  readonly header: Readonly<Record<string, unknown>>;
  readonly claims: Record<string, unknown>;
  readonly alg: Algorithm;
  /** Set when the rules require a kid. */
  readonly kid: string;
  /** Set when the rules require x5c: the base64 certificates, leaf first. */
  readonly x5c: readonly string[];
  readonly signingInput: string;
  /** undefined: the signature part is not base64url (only with decode 'header-first'). */
  readonly signature: Buffer | undefined;
}

/** A JWS part as a JSON object (what: "header", "payload"). */
function jsonPart(part: string, what: string, fail: Fail, maxBytes = Infinity): Record<string, unknown> {
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

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const typName = (typ: string) => typ.toLowerCase().replace(/^application\//, '');

function checkTyp(typ: unknown, rule: TypRule, fail: Fail): void {
  if (typ === undefined) {
    if (rule.required) fail('ERR_TOKEN_TYPE', 'typ is missing');
    return;
  }
  if (rule.allowed && !(typeof typ === 'string' && rule.allowed.has(typ))) fail('ERR_TOKEN_TYPE', `typ "${String(typ).slice(0, 20)}" is not ${[...rule.allowed].join(' or ')}`);
  if (rule.refused && typeof typ === 'string' && rule.refused.has(typName(typ))) fail('ERR_TOKEN_TYPE', `typ "${typ.slice(0, 20)}" is not a bearer token`);
}

/** The x5c member: a non-empty array of base64 strings, bounded before any of it is decoded. */
function checkX5c(x5c: unknown, max: { maxCertificates: number; maxBytes: number }, fail: Fail): string[] {
  if (!Array.isArray(x5c) || x5c.length === 0 || x5c.some((c) => typeof c !== 'string' || !BASE64.test(c)))
    return fail('ERR_TOKEN_X5C', 'x5c must be a non-empty array of base64 certificates');
  // every certificate is parsed and its signature checked: bound the work before doing any
  const bytes = (x5c as string[]).reduce((n, c) => n + c.length, 0);
  if (x5c.length > max.maxCertificates || bytes > max.maxBytes)
    fail('ERR_TOKEN_X5C_TOO_LARGE', `x5c holds ${x5c.length} certificates, ${bytes} bytes (limits ${max.maxCertificates}, ${max.maxBytes})`);
  return x5c as string[];
}

/** The header rules every profile shares, in their one order; returns the accepted alg. */
function checkHeader(header: Record<string, unknown>, rules: CompactRules, fail: Fail): Algorithm {
  const alg = header.alg;
  if (!isAlgorithm(alg) || !rules.algorithms.has(alg)) fail('ERR_TOKEN_ALG', `alg "${String(alg).slice(0, 20)}" is not allowed`);
  if (rules.typ) checkTyp(header.typ, rules.typ, fail);
  if ('jku' in header || 'x5u' in header || 'jwk' in header) fail('ERR_TOKEN_KEY_URL', 'jku, x5u and jwk are never followed');
  if ('crit' in header) fail('ERR_TOKEN_CRIT', 'crit names an extension zonegate does not implement');
  if (rules.kid && (typeof header.kid !== 'string' || header.kid === '')) fail('ERR_TOKEN_KEY_UNKNOWN', 'the header has no kid');
  return alg as Algorithm;
}

/** The size bound every profile checks first (also before a token is hashed for a cache). */
export function checkSize(token: string, maxBytes: number, fail: Fail): void {
  if (token.length > maxBytes) fail('ERR_TOKEN_TOO_LARGE', `${token.length} bytes (limit ${maxBytes})`);
}

/**
 * The parse step: a compact JWS whose header passed the profile's rules, with its JSON payload.
 * Throws TokenError.
 */
export function parseCompact(token: string, rules: CompactRules): Compact {
  const fail = failWith(rules.name);
  checkSize(token, rules.maxBytes, fail);
  const parts = token.split('.');
  if (parts.length !== 3) fail('ERR_TOKEN_MALFORMED', 'not three dot-separated parts');
  const [h, p, s] = parts as [string, string, string];
  // a header accepted before passes every header rule again: only the payload is left to decode
  const known = rules.headers?.get(h);
  const header = known?.header ?? jsonPart(h, 'header', fail);
  let claims: Record<string, unknown> | undefined;
  let signature: Buffer | undefined;
  if (rules.decode === 'first') {
    claims = jsonPart(p, 'payload', fail, rules.maxPayloadBytes);
    signature = b64urlDecode(s) ?? fail('ERR_TOKEN_MALFORMED', 'signature is not base64url');
  }
  const accepted = known ?? acceptHeader(h, header, rules, fail);
  if (rules.decode === 'header-first') {
    claims = jsonPart(p, 'payload', fail, rules.maxPayloadBytes);
    signature = b64urlDecode(s);
  }
  return { header: accepted.header, claims: claims!, alg: accepted.alg, kid: accepted.kid, x5c: accepted.x5c, signingInput: `${h}.${p}`, signature };
}

/** The header rules on a decoded header; an accepted header is remembered by its text when the rules keep a cache. */
function acceptHeader(text: string, header: Record<string, unknown>, rules: CompactRules, fail: Fail): AcceptedHeader {
  const alg = checkHeader(header, rules, fail);
  const x5c = rules.x5c ? checkX5c(header.x5c, rules.x5c, fail) : [];
  const accepted = { header, alg, kid: rules.kid ? (header.kid as string) : '', x5c };
  return rules.headers ? rules.headers.set(text, accepted) : accepted;
}

/** One DER certificate per x5c element (RFC 7515 §4.1.6), canonical base64 only: one spelling per certificate. */
export function x5cDers(x5c: readonly string[], fail: Fail): Buffer[] {
  return x5c.map((c) => {
    const der = Buffer.from(c, 'base64');
    if (der.toString('base64') !== c) fail('ERR_TOKEN_X5C', 'x5c holds a certificate that is not canonical base64');
    return der;
  });
}

/**
 * A failure of the x5c chain's path validation (svid/x509.ts) as the token's reason:
 * ERR_TOKEN_CHAIN, unless the cause has a code of its own (a key too weak, too many signature
 * checks). The certificate reason stays in the message.
 */
export function chainFailure(err: unknown, fail: Fail): never {
  if (!(err instanceof ZonegateError)) throw err;
  const code = err.code;
  return fail(code === 'ERR_KEY_TOO_WEAK' || code === 'ERR_SIGNATURE_LIMIT' ? code : 'ERR_TOKEN_CHAIN', `x5c: ${code}: ${err.message}`);
}

/** The audience claim as a list: a string is a list of one; anything else is empty. */
export const audienceList = (aud: unknown): readonly unknown[] => (typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []);

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/** A NumericDate for a message: far outside what a Date can hold it stays a number (toISOString would throw). */
const when = (t: number): string => (Math.abs(t) < 8.64e12 ? new Date(t * 1000).toISOString() : `${t}`);

/** The time claims as checkTime reads them. */
export interface Times {
  readonly exp: number;
  readonly nbf?: number | undefined;
  readonly iat?: number | undefined;
}

/**
 * The time claims' types (RFC 7519 NumericDate, so a finite number): exp always, iat when
 * required or present, nbf when present. Throws ERR_TOKEN_CLAIMS.
 */
export function timeClaims(claims: Record<string, unknown>, requireIat: boolean, fail: Fail): Times {
  const { exp, nbf, iat } = claims;
  if (!isTime(exp)) fail('ERR_TOKEN_CLAIMS', 'exp is not a number');
  if (requireIat ? !isTime(iat) : iat !== undefined && !isTime(iat)) fail('ERR_TOKEN_CLAIMS', `iat is ${requireIat && iat === undefined ? 'missing' : 'not a number'}`);
  if (nbf !== undefined && !isTime(nbf)) fail('ERR_TOKEN_CLAIMS', 'nbf is not a number');
  return claims as unknown as Times;
}

export interface TimeRules {
  readonly skewSeconds: number;
  /**
   * Longest lifetime: exp − iat, or without iat exp − now (+ skew): a token cannot make itself
   * long-lived by leaving iat out. Undefined: no bound (the issuer's choice).
   */
  readonly maxLifetimeSeconds?: number;
}

/** exp, nbf, iat and the lifetime at `nowMs`, with the skew, in this order. Throws TokenError. */
export function checkTime(t: Times, nowMs: number, rules: TimeRules, fail: Fail): void {
  const now = nowMs / 1000;
  const skew = rules.skewSeconds;
  if (now - skew >= t.exp) fail('ERR_TOKEN_EXPIRED', `expired at ${when(t.exp)}`);
  if (t.nbf !== undefined && now + skew < t.nbf) fail('ERR_TOKEN_NOT_YET_VALID', 'nbf is in the future');
  if (t.iat !== undefined && now + skew < t.iat) fail('ERR_TOKEN_NOT_YET_VALID', 'iat is in the future');
  const max = rules.maxLifetimeSeconds;
  if (max === undefined) return;
  if (t.iat !== undefined ? t.exp - t.iat > max : t.exp - now > max + skew)
    fail('ERR_TOKEN_LIFETIME', `lifetime ${Math.round(t.exp - (t.iat ?? now))} s exceeds ${max} s`);
}

/** The signature check: in place, or recorded to be done off the event loop (common identity). */
export type SignatureCheck = (alg: Algorithm, key: KeyObject, signingInput: string, signature: Buffer) => boolean;

/**
 * What a JWK itself says about its use (RFC 7517 §4.2–4.4, RFC 8725 §3.1): a JWK with `alg`
 * verifies only tokens of that alg; one with `use` other than `sig` (`jwt-svid` in a SPIFFE
 * bundle) or with `key_ops` that do not include `verify` verifies none. ERR_TOKEN_ALG, as for an
 * alg that does not fit the key. A key without a JWK (an x5c leaf) has nothing to add.
 */
export function checkJwk(t: Compact, jwk: JsonWebKey | undefined, what: string, fail: Fail): void {
  if (!jwk) return;
  if (jwk.use !== undefined && jwk.use !== 'sig' && jwk.use !== 'jwt-svid') fail('ERR_TOKEN_ALG', `${what} is for use "${String(jwk.use).slice(0, 20)}", not for verifying signatures`);
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) fail('ERR_TOKEN_ALG', `${what} has key_ops without "verify"`);
  if (jwk.alg !== undefined && jwk.alg !== t.alg) fail('ERR_TOKEN_ALG', `alg ${t.alg} is not the alg of ${what} (${String(jwk.alg).slice(0, 20)})`);
}

/**
 * The key and the signature, once the key is trusted (by kid, or by a verified x5c chain): a key
 * zonegate accepts (ERR_KEY_TOO_WEAK), that fits alg (ERR_TOKEN_ALG: a token cannot choose how a
 * key is used), and a signature that verifies with it (ERR_TOKEN_SIGNATURE). `key` names the key in
 * messages.
 */
export function checkSignature(t: Compact, key: KeyObject, what: string, fail: Fail, check: SignatureCheck = verifySignature): void {
  const weak = keyWeakness(key);
  if (weak) fail('ERR_KEY_TOO_WEAK', `${what} is refused: ${weak}`);
  if (!keyFits(t.alg, key)) fail('ERR_TOKEN_ALG', `alg ${t.alg} does not fit ${what} (${key.asymmetricKeyType})`);
  if (!t.signature || !check(t.alg, key, t.signingInput, t.signature)) fail('ERR_TOKEN_SIGNATURE', `signature does not verify with ${what}`);
}
