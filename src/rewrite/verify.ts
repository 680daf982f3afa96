/**
 * The HMAC proof of origin, as an upstream checks it. This file depends on node:crypto only, so
 * an upstream written in Node can import it (`zonegate/proof`) and one written in another
 * language can follow it line by line (docs/rewrite.md has the recipe).
 *
 * The proof header (default `x-zonegate-proof`) reads
 *   v1;kid=<key id>;t=<unix seconds>;h=<name>,<name>,…;sig=<base64url HMAC-SHA256>
 * and the signature is over the canonical string: these lines joined by "\n" (no trailing one)
 *   zonegate-proof/v1
 *   <key id>
 *   <t>
 *   <name>:<value>        one line per name of h, in the order of h
 * where `:method` is the request method, `:path` the request target (path and query) as the
 * client sent it, and any other name is a request header (lower case), its value as received,
 * or empty when the request does not carry it (zonegate never sets an empty value).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const PROOF_CONTEXT = 'zonegate-proof/v1';
export const PROOF_HEADER = 'x-zonegate-proof';

/** The string the HMAC is computed over. `lines` are [name, value] in the order of h. */
export function proofString(kid: string, t: number, lines: readonly (readonly [string, string])[]): string {
  let s = `${PROOF_CONTEXT}\n${kid}\n${t}`;
  for (const [name, value] of lines) s += `\n${name}:${value}`;
  return s;
}

/** base64url HMAC-SHA256 of the canonical string. */
export function proofSignature(secret: Uint8Array | string, kid: string, t: number, lines: readonly (readonly [string, string])[]): string {
  return createHmac('sha256', secret).update(proofString(kid, t, lines), 'utf8').digest('base64url');
}

/** The proof header value. */
export function formatProof(kid: string, t: number, names: readonly string[], sig: string): string {
  return `v1;kid=${kid};t=${t};h=${names.join(',')};sig=${sig}`;
}

export interface ParsedProof {
  readonly kid: string;
  readonly t: number;
  readonly names: readonly string[];
  readonly sig: string;
}

/** Parses a proof header value; undefined when it is not exactly the v1 format. */
export function parseProof(value: string): ParsedProof | undefined {
  const parts = value.trim().split(';');
  if (parts.length !== 5 || parts[0] !== 'v1') return undefined;
  const f = new Map<string, string>();
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq <= 0 || f.has(p.slice(0, eq))) return undefined;
    f.set(p.slice(0, eq), p.slice(eq + 1));
  }
  const kid = f.get('kid');
  const t = f.get('t');
  const h = f.get('h');
  const sig = f.get('sig');
  if (!kid || !t || !/^\d{1,12}$/.test(t) || h === undefined || !sig || !/^[A-Za-z0-9_-]{43}$/.test(sig)) return undefined;
  const names = h === '' ? [] : h.split(',');
  if (names.some((n) => !/^:?[a-z0-9!#$%&'*+.^_`|~-]+$/.test(n)) || new Set(names).size !== names.length) return undefined;
  return { kid, t: Number(t), names, sig };
}

export interface VerifyProofOptions {
  /** The request headers by lower-case name (Node's `req.headers` fits). */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The request method and target (path and query) as received. */
  readonly method: string;
  readonly path: string;
  /** Key id → shared secret; hold two during a rotation. */
  readonly secrets: Readonly<Record<string, Uint8Array | string>>;
  /** Names the proof must cover (e.g. [':method', ':path', 'x-zonegate-peer']). */
  readonly required?: readonly string[];
  readonly header?: string;
  /** Largest accepted age, and tolerance for a timestamp ahead of our clock (default 30 s). */
  readonly maxAgeSeconds?: number;
  /** Milliseconds since the epoch (default: now). */
  readonly now?: number;
}

export type ProofFailure = 'missing' | 'malformed' | 'duplicate' | 'unknown-key' | 'stale' | 'not-covered' | 'signature';
export type ProofResult =
  | { readonly ok: true; readonly kid: string; readonly t: number; readonly headers: Readonly<Record<string, string>> }
  | { readonly ok: false; readonly reason: ProofFailure };

/**
 * Checks that a request came through zonegate: the proof parses, names a known key, is fresh,
 * covers every required name and its signature matches. On success `headers` holds the covered
 * headers' values — read identity only from there.
 */
export function verifyProof(o: VerifyProofOptions): ProofResult {
  const one = (name: string): string | undefined | null => {
    const v = o.headers[name];
    if (Array.isArray(v)) return v.length === 1 ? (v[0] as string) : v.length === 0 ? undefined : null;
    return v as string | undefined;
  };
  const raw = one(o.header ?? PROOF_HEADER);
  if (raw === null) return { ok: false, reason: 'duplicate' };
  if (raw === undefined || raw === '') return { ok: false, reason: 'missing' };
  const p = parseProof(raw);
  if (!p) return { ok: false, reason: 'malformed' };
  const secret = Object.hasOwn(o.secrets, p.kid) ? o.secrets[p.kid] : undefined;
  if (secret === undefined) return { ok: false, reason: 'unknown-key' };
  const maxAge = o.maxAgeSeconds ?? 30;
  const now = Math.floor((o.now ?? Date.now()) / 1000);
  if (Math.abs(now - p.t) > maxAge) return { ok: false, reason: 'stale' };
  for (const r of o.required ?? []) if (!p.names.includes(r)) return { ok: false, reason: 'not-covered' };
  const lines: [string, string][] = [];
  for (const name of p.names) {
    const v = name === ':method' ? o.method : name === ':path' ? o.path : one(name);
    if (v === null) return { ok: false, reason: 'duplicate' };
    lines.push([name, v ?? '']);
  }
  const expected = Buffer.from(proofSignature(secret, p.kid, p.t, lines));
  const got = Buffer.from(p.sig);
  if (expected.length !== got.length || !timingSafeEqual(expected, got)) return { ok: false, reason: 'signature' };
  return { ok: true, kid: p.kid, t: p.t, headers: Object.fromEntries(lines.filter(([n]) => !n.startsWith(':'))) };
}
