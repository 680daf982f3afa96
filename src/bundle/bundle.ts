/**
 * The bundle of one trust domain and its codecs: the SPIFFE bundle format (a JWK Set with
 * `use` = x509-svid / jwt-svid, spiffe_sequence, spiffe_refresh_hint) and plain PEM.
 * Consumer rules (SPIFFE_Trust_Domain_and_Bundle.md §4, X509-SVID.md §6, JWT-SVID.md §6):
 * elements with an unknown `kty` or `use` are ignored; of `x5c` only the first certificate
 * counts; an x509-svid element without a certificate is ignored; `keys: []` is a valid, revoked
 * bundle. Where go-spiffe is stricter than the spec, zonegate follows the spec (docs/spiffe.md).
 * A JWT authority that carries its own private key is refused: a published private key is no
 * authority at all. Plain RFC 7517 JWK Sets (OIDC-style, no SPIFFE `use`) have their own parser.
 * An X.509 authority whose key has no JWK form (RSA-PSS-restricted, DSA, Brainpool curves) is
 * ignored with a note on the bundle: a SPIFFE bundle can only carry an authority as a JWK, so
 * such a key could never be republished or compared by zonegate's bundle endpoint. A weak X.509
 * authority (RSA under 2048 bits, a curve other than P-256/P-384/P-521: cert/strength.ts) is
 * ignored the same way, so it never becomes a trust anchor (nor a TLS root of an https_spiffe
 * fetch). A weak JWT authority is kept, with a note, and every token it signs is refused with
 * ERR_KEY_TOO_WEAK, so the deny names the cause.
 */
import { createHash, createPublicKey, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto';
import { ZonegateError } from '../errors.js';
import type { TrustDomain } from '../spiffe/id.js';
import { parseCertificates } from '../cert/parse.js';
import { keyFacts, keyWeakness } from '../cert/strength.js';

export interface JwtAuthority {
  readonly kid: string;
  /** The public JWK as published (private members never kept). */
  readonly jwk: JsonWebKey;
  readonly key: KeyObject;
}

export interface BundleInit {
  readonly x509Authorities?: readonly X509Certificate[];
  readonly jwtAuthorities?: readonly JwtAuthority[];
  readonly sequence?: number;
  readonly refreshHintSeconds?: number;
  /** Why elements of the document were left out (for logs). */
  readonly ignored?: readonly string[];
}

/** The trust material of one trust domain. Immutable: a change is a new Bundle. */
export class Bundle {
  readonly x509Authorities: readonly X509Certificate[];
  readonly jwtAuthorities: ReadonlyMap<string, JwtAuthority>;
  readonly sequence: number | undefined;
  readonly refreshHintSeconds: number | undefined;
  /** Why elements of the source document were left out or will refuse tokens (for logs); empty when none. */
  readonly ignored: readonly string[];

  constructor(
    readonly trustDomain: TrustDomain,
    init: BundleInit = {},
  ) {
    this.x509Authorities = Object.freeze([...(init.x509Authorities ?? [])]);
    this.jwtAuthorities = new Map((init.jwtAuthorities ?? []).map((a) => [a.kid, a]));
    this.sequence = init.sequence;
    this.refreshHintSeconds = init.refreshHintSeconds;
    this.ignored = Object.freeze([...(init.ignored ?? [])]);
  }

  /** No authorities at all: every SVID of this trust domain is invalid. */
  get revoked(): boolean {
    return this.x509Authorities.length === 0 && this.jwtAuthorities.size === 0;
  }

  /** The X.509 authorities as DER, in bundle order. */
  get x509Der(): Buffer[] {
    return this.x509Authorities.map((c) => c.raw);
  }

  /** The X.509 authorities as one PEM text (e.g. for a proxy's trusted_ca). */
  get x509Pem(): string {
    return this.x509Authorities.map((c) => c.toString()).join('');
  }
}

/** Why an X.509 authority's key has no JWK form, or is too weak; undefined when it is usable. */
function jwkProblem(cert: X509Certificate): string | undefined {
  // a JWK export of an EC key node:crypto cannot encode aborts the process: refused before it
  if (keyFacts(cert.publicKey).unusable) return `its ${keyWeakness(cert.publicKey)} is too weak (ERR_KEY_TOO_WEAK)`;
  try {
    cert.publicKey.export({ format: 'jwk' });
  } catch (err) {
    return `its ${cert.publicKey.asymmetricKeyType ?? 'unknown'} key has no JWK form (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  const weak = keyWeakness(cert.publicKey);
  return weak ? `its ${weak} is too weak (ERR_KEY_TOO_WEAK)` : undefined;
}

/** Splits authorities into those a SPIFFE bundle can carry and notes on the others. */
export function usableAuthorities(certs: readonly X509Certificate[], where: (i: number) => string): { x509: X509Certificate[]; ignored: string[] } {
  const x509: X509Certificate[] = [];
  const ignored: string[] = [];
  certs.forEach((c, i) => {
    const problem = jwkProblem(c);
    if (problem) ignored.push(`${where(i)}: X.509 authority ignored: ${problem}`);
    else x509.push(c);
  });
  return { x509, ignored };
}

/**
 * A digest of the bundle's content as received (certificate DER, JWKs as published, sequence,
 * refresh hint): equal digests mean nothing changed. Never re-exports a key, so it cannot throw.
 */
export function bundleDigest(bundle: Bundle): string {
  const h = createHash('sha256');
  for (const c of bundle.x509Authorities) h.update('x509\0').update(c.raw);
  for (const a of bundle.jwtAuthorities.values()) h.update('jwt\0').update(JSON.stringify([a.kid, a.jwk]));
  h.update(`seq\0${bundle.sequence ?? ''}\0hint\0${bundle.refreshHintSeconds ?? ''}`);
  return h.digest('base64url');
}

const invalid = (td: TrustDomain, msg: string) => new ZonegateError('ERR_BUNDLE_INVALID', `bundle: trust domain "${td.name}": ${msg}`);

export interface BundleParseOptions {
  /** Refuse (ERR_BUNDLE_TOO_LARGE) a document with more keys or certificates than this (limits.maxBundleKeys). */
  readonly maxKeys: number;
}

/** Every element is parsed (certificates cost ≈ 0.3 ms each): count them before parsing any. */
function checkCount(n: number, td: TrustDomain, opts: BundleParseOptions): void {
  const max = opts.maxKeys;
  if (n > max) throw new ZonegateError('ERR_BUNDLE_TOO_LARGE', `bundle: trust domain "${td.name}": ${Number.isFinite(n) ? n : `more than ${max}`} keys (limit ${max})`);
}

const KNOWN_KTY = new Set(['EC', 'RSA', 'OKP']);
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalInteger(doc: Record<string, unknown>, name: string, td: TrustDomain): number | undefined {
  const v = doc[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(td, `${name} must be a non-negative integer`);
  return v;
}

/** A published private key is compromised by definition: refuse the bundle rather than trust it. */
function refusePrivate(el: Record<string, unknown>, td: TrustDomain, where: string): void {
  const secret = PRIVATE_MEMBERS.filter((k) => k in el);
  if (secret.length > 0) throw invalid(td, `${where}: carries private key material (${secret.join(', ')}); a published private key cannot be trusted`);
}

/** Imports a JWK as a public JWT authority. Throws ERR_BUNDLE_INVALID when the key is unusable. */
export function importJwtAuthority(el: Record<string, unknown>, td: TrustDomain, where: string): JwtAuthority {
  const kid = el.kid;
  if (typeof kid !== 'string' || kid === '') throw invalid(td, `${where}: keyID cannot be empty`);
  refusePrivate(el, td, `${where} (kid "${kid}")`);
  const jwk = { ...el } as JsonWebKey;
  try {
    return { kid, jwk, key: createPublicKey({ key: jwk, format: 'jwk' }) };
  } catch (err) {
    throw invalid(td, `${where} (kid "${kid}"): invalid key: ${(err as Error).message}`);
  }
}

/** Text of a document, without a UTF-8 byte order mark (some editors write one). */
function textOf(input: string | Uint8Array): string {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function parseJson(input: string | Uint8Array, td: TrustDomain): unknown {
  try {
    return JSON.parse(textOf(input));
  } catch (err) {
    throw invalid(td, `unable to parse JWKS: ${(err as Error).message}`);
  }
}

/** Parses a SPIFFE bundle document (JSON) for `td`. Throws ZonegateError(ERR_BUNDLE_INVALID). */
export function parseSpiffeBundle(input: string | Uint8Array, td: TrustDomain, opts: BundleParseOptions): Bundle {
  return bundleFromDocument(parseJson(input, td), td, opts);
}

/**
 * Parses a plain RFC 7517 JWK Set (e.g. an OIDC `jwks_uri` document) as the JWT authorities of
 * `td`: elements without `use` or with `use: "sig"` (or `jwt-svid`) count, unknown `kty` or any
 * other `use` are ignored, `kid` is required. No X.509 authorities come from a plain JWK Set.
 */
export function parseJwtBundle(input: string | Uint8Array, td: TrustDomain, opts: BundleParseOptions): Bundle {
  const doc = parseJson(input, td);
  if (!isObject(doc) || !Array.isArray(doc.keys)) throw invalid(td, '"keys" is missing or not an array');
  checkCount(doc.keys.length, td, opts);
  const jwt: JwtAuthority[] = [];
  const kids = new Set<string>();
  doc.keys.forEach((el: unknown, i: number) => {
    const where = `keys[${i}]`;
    if (!isObject(el)) throw invalid(td, `${where} is not a JSON object`);
    if (typeof el.kty !== 'string') throw invalid(td, `${where}: "kty" must be set`);
    if (!KNOWN_KTY.has(el.kty)) return;
    if (el.use !== undefined && el.use !== 'sig' && el.use !== 'jwt-svid') return;
    jwt.push(addJwt(el, td, where, kids));
  });
  return new Bundle(td, { jwtAuthorities: jwt });
}

function addJwt(el: Record<string, unknown>, td: TrustDomain, where: string, kids: Set<string>): JwtAuthority {
  const a = importJwtAuthority(el, td, where);
  if (kids.has(a.kid)) throw invalid(td, `${where}: duplicate kid "${a.kid}"`);
  kids.add(a.kid);
  return a;
}

/** Builds a Bundle from an already-parsed SPIFFE bundle document (also used for bundle maps). */
export function bundleFromDocument(doc: unknown, td: TrustDomain, opts: BundleParseOptions): Bundle {
  if (!isObject(doc)) throw invalid(td, 'the document is not a JSON object');
  if (!Array.isArray(doc.keys)) throw invalid(td, '"keys" is missing or not an array (no authorities found)');
  checkCount(doc.keys.length, td, opts);
  const sequence = optionalInteger(doc, 'spiffe_sequence', td);
  const refreshHintSeconds = optionalInteger(doc, 'spiffe_refresh_hint', td);
  const x509: X509Certificate[] = [];
  const jwt: JwtAuthority[] = [];
  const kids = new Set<string>();
  const ignored: string[] = [];
  doc.keys.forEach((el: unknown, i: number) => {
    const where = `keys[${i}]`;
    if (!isObject(el)) throw invalid(td, `${where} is not a JSON object`);
    if (typeof el.kty !== 'string') throw invalid(td, `${where}: "kty" must be set`);
    if (!KNOWN_KTY.has(el.kty)) return; // unknown key type: ignore the element
    if (el.use === 'x509-svid') {
      refusePrivate(el, td, where);
      const x5c = el.x5c;
      if (!Array.isArray(x5c) || x5c.length === 0) return; // no certificate: ignore the element
      if (typeof x5c[0] !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(x5c[0]))
        throw invalid(td, `${where}: x5c[0] is not base64`);
      let certs: X509Certificate[];
      try {
        certs = parseCertificates(Buffer.from(x5c[0], 'base64'));
      } catch (err) {
        throw invalid(td, `${where}: cannot parse certificate: ${(err as Error).message}`);
      }
      if (certs.length !== 1) throw invalid(td, `${where}: x5c[0] holds ${certs.length} certificates, not one`);
      const problem = jwkProblem(certs[0]!);
      if (problem) ignored.push(`${where}: X.509 authority ignored: ${problem}`);
      else x509.push(certs[0]!);
    } else if (el.use === 'jwt-svid') {
      const a = addJwt(el, td, where, kids);
      const weak = keyWeakness(a.key);
      if (weak) ignored.push(`${where} (kid "${a.kid}"): JWT authority refuses every token: its ${weak} is too weak (ERR_KEY_TOO_WEAK)`);
      jwt.push(a);
    }
    // any other (or no) "use": ignore the element
  });
  return new Bundle(td, { x509Authorities: x509, jwtAuthorities: jwt, sequence, refreshHintSeconds, ignored });
}

/** Parses a PEM bundle (X.509 authorities only). An empty file is a valid, revoked bundle. */
export function parsePemBundle(input: string | Uint8Array, td: TrustDomain, opts: BundleParseOptions): Bundle {
  const text = textOf(input);
  if (text.trim() === '') return new Bundle(td);
  let certs: X509Certificate[];
  try {
    certs = parseCertificates(text, { maxCertificates: opts.maxKeys });
  } catch (err) {
    if (err instanceof ZonegateError && err.code === 'ERR_SVID_TOO_LARGE') checkCount(Infinity, td, opts);
    throw invalid(td, `cannot parse certificate: ${(err as Error).message}`);
  }
  return pemAuthorities(td, certs);
}

function pemAuthorities(td: TrustDomain, certs: readonly X509Certificate[]): Bundle {
  const { x509, ignored } = usableAuthorities(certs, (i) => `certificate ${i}`);
  return new Bundle(td, { x509Authorities: x509, ignored });
}

/** Parses any format: JSON ("{…") is a SPIFFE bundle; DER (a SEQUENCE) or PEM are X.509 authorities. */
export function parseBundle(input: string | Uint8Array, td: TrustDomain, opts: BundleParseOptions): Bundle {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input);
  if (bytes[0] === 0x30) {
    let certs: X509Certificate[];
    try {
      certs = parseCertificates(bytes, { maxCertificates: opts.maxKeys });
    } catch (err) {
      if (err instanceof ZonegateError && err.code === 'ERR_SVID_TOO_LARGE') checkCount(Infinity, td, opts);
      throw invalid(td, `cannot parse certificate: ${(err as Error).message}`);
    }
    return pemAuthorities(td, certs);
  }
  const text = textOf(bytes);
  return text.trimStart().startsWith('{') ? parseSpiffeBundle(text, td, opts) : parsePemBundle(text, td, opts);
}

/** Serializes a bundle in the SPIFFE bundle format. */
export function serializeSpiffeBundle(bundle: Bundle): string {
  const keys: object[] = [];
  for (const cert of bundle.x509Authorities)
    keys.push({ use: 'x509-svid', ...cert.publicKey.export({ format: 'jwk' }), x5c: [cert.raw.toString('base64')] });
  for (const a of bundle.jwtAuthorities.values()) keys.push({ ...a.jwk, use: 'jwt-svid', kid: a.kid });
  return JSON.stringify({
    keys,
    ...(bundle.sequence !== undefined ? { spiffe_sequence: bundle.sequence } : {}),
    ...(bundle.refreshHintSeconds !== undefined ? { spiffe_refresh_hint: bundle.refreshHintSeconds } : {}),
  });
}
