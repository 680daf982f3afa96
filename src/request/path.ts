/**
 * The path the upstream will act on: zonegate decides on this, never on the bytes as received
 * (docs/policy.md "Paths"). Pure: no config reading, no I/O; the pipeline calls it once per
 * request, before the policy phase, for every entry point (gRPC, the HTTP mode, `zonegate check`).
 *
 * The levels are Istio's (which set Envoy's http_connection_manager options):
 *   NONE                      the path as received (still refused when it cannot have one meaning)
 *   BASE                      Envoy's normalize_path: percent-encoded unreserved characters
 *                             decoded (%61 → a, %2E → .), other escapes upper-cased, `\` → `/`,
 *                             RFC 3986 dot segments removed
 *   MERGE_SLASHES             BASE with runs of `/` merged (Envoy's merge_slashes), before the
 *                             dot segments are removed
 *   DECODE_AND_MERGE_SLASHES  %2F and %5C decoded first (Envoy's path_with_escaped_slashes_action
 *                             UNESCAPE_*), then MERGE_SLASHES
 * Always refused (ERR_PATH_INVALID), at every level: a path not starting with `/`, a `#`, a raw
 * control character, space or non-ASCII byte, an encoded control character (%00–%1F, %7F), a `%`
 * not followed by two hex digits; and, unless `semicolons` says otherwise, a `;` (Tomcat, Jetty
 * and Spring strip `;params` from each segment, Envoy and Node do not: the same bytes name two
 * different resources, so the only safe reading is none).
 */
import type { ReasonCode } from '../errors.js';

export const PATH_LEVELS = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const;
export type PathLevel = (typeof PATH_LEVELS)[number];

export interface PathOptions {
  readonly level: PathLevel;
  /**
   * `;` in a path: reject (ERR_PATH_INVALID); strip each segment's `;params` before anything else,
   * as Tomcat does (decide on what such an upstream acts on); keep it as an ordinary character
   * (the upstream gives `;` no meaning).
   */
  readonly semicolons: 'reject' | 'strip' | 'keep';
  /** Longest path accepted, in characters (the query is not counted). */
  readonly maxLength: number;
}

export type PathResult =
  | { readonly ok: true; readonly path: string; readonly changed: boolean }
  | { readonly ok: false; readonly code: ReasonCode; readonly message: string };

const HEX = '0123456789ABCDEF';
const hexValue = (c: number): number =>
  c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
const unreserved = (b: number): boolean =>
  (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;

const invalid = (message: string): PathResult => ({ ok: false, code: 'ERR_PATH_INVALID', message: `path: ${message}` });

/** `;params` removed from every segment: `/a;x=1/b;y` → `/a/b`. */
function stripParams(p: string): string {
  let out = '';
  let inParam = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '/') inParam = false;
    else if (c === ';') inParam = true;
    if (!inParam) out += c;
  }
  return out;
}

/** RFC 3986 section 5.2.4 on an absolute path, one pass over its segments. */
export function removeDotSegments(p: string): string {
  const segs = p.split('/');
  const out: string[] = [];
  const last = segs.length - 1;
  for (let i = 1; i <= last; i++) {
    const s = segs[i]!;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      if (i === last) out.push(''); // `/a/b/..` → `/a/`
    } else out.push(s);
  }
  return `/${out.join('/')}`;
}

/**
 * Normalizes `raw` (the path without its query) to `opts.level`, or says why it cannot have one
 * meaning. `changed` tells whether the result differs from what was received.
 *
 *   normalizePath('/api/orders/%2e%2e/..%2F..%2Fadmin', { level: 'DECODE_AND_MERGE_SLASHES', semicolons: 'reject', maxLength: 8192 })
 *   // { ok: true, path: '/admin', changed: true }
 */
export function normalizePath(raw: string, opts: PathOptions): PathResult {
  if (raw.length > opts.maxLength)
    return { ok: false, code: 'ERR_PATH_TOO_LONG', message: `path: ${raw.length} characters, more than the limit of ${opts.maxLength}` };
  if (raw.charCodeAt(0) !== 0x2f) return invalid(raw === '' ? 'empty' : 'does not start with "/"');
  let p = raw;
  if (p.includes(';')) {
    if (opts.semicolons === 'reject') return invalid('contains ";" (path parameters mean different things to different servers)');
    if (opts.semicolons === 'strip') p = stripParams(p);
  }
  const normalize = opts.level !== 'NONE';
  const decodeSlashes = opts.level === 'DECODE_AND_MERGE_SLASHES';
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hi = hexValue(p.charCodeAt(i + 1));
      const lo = hexValue(p.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return invalid(`invalid percent escape at ${i}`);
      const b = hi * 16 + lo;
      if (b < 0x20 || b === 0x7f) return invalid(`encoded control character %${HEX[hi]}${HEX[lo]}`);
      i += 2;
      if (!normalize) out += p.slice(i - 2, i + 1);
      else if (unreserved(b)) out += String.fromCharCode(b);
      else if (decodeSlashes && (b === 0x2f || b === 0x5c)) out += '/'; // `\` becomes `/` below anyway
      else out += `%${HEX[hi]}${HEX[lo]}`;
    } else if (c <= 0x20 || c >= 0x7f) return invalid(c === 0x20 ? 'contains a space' : c > 0x7f ? 'contains a non-ASCII character' : 'contains a control character');
    else if (c === 0x23 /* # */) return invalid('contains "#" (a fragment is never sent to a server)');
    else if (c === 0x5c /* \ */ && normalize) out += '/';
    else out += p[i];
  }
  if (normalize) {
    // Slashes merged before dot segments are removed, as nginx (merge_slashes) and Go's path.Clean
    // do: `/api//..//admin` is `/admin` to them, and so to us. Envoy removes dot segments first
    // (`/api/admin`); with the proxy normalizing, zonegate sees its output, on which both orders agree.
    if (opts.level !== 'BASE') out = out.replace(/\/\/+/g, '/');
    out = removeDotSegments(out);
  }
  return { ok: true, path: out, changed: out !== raw };
}

/**
 * Splits a request target (Envoy's `path`, the HTTP mode's original URI) into path and query. A
 * `#` before the query stays in the path, where the pipeline refuses it (ERR_PATH_INVALID); one
 * after it ends the query: a fragment is never sent to a server, and `/public#/../admin` must not
 * be read as `/public`.
 */
export function splitPath(raw: string): { path: string; query: string } {
  const q = raw.indexOf('?');
  const noFragment = (s: string) => {
    const f = s.indexOf('#');
    return f === -1 ? s : s.slice(0, f);
  };
  if (q === -1) return { path: raw, query: '' };
  return { path: raw.slice(0, q), query: noFragment(raw.slice(q + 1)) };
}
