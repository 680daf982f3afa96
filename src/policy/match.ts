/**
 * String matchers compiled once: exact values go into a Set, prefixes and suffixes into arrays,
 * globs and regexes into one anchored RegExp each. Nothing is parsed per request.
 */
import type { StringMatch } from './schema.js';

export interface CompiledMatcher {
  (value: string): boolean;
}

/**
 * Compiles a glob into an anchored RegExp: `**` any run of characters, `*` any run without `/`,
 * `?` one character other than `/`; everything else is literal.
 *
 *   globToRegExp('spiffe://*.consul/ns/*\/dc/*\/svc/web').test('spiffe://1a.consul/ns/default/dc/dc1/svc/web') // true
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\/-]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

/** The one RegExp a matcher is equivalent to (for lint and tests), or undefined for exact/prefix/suffix. */
export function matcherRegExp(m: StringMatch): RegExp | undefined {
  if (typeof m === 'string') return undefined;
  if ('glob' in m) return globToRegExp(m.glob);
  if ('regex' in m) return new RegExp(`^(?:${m.regex})$`, 'u');
  return undefined;
}

/** Compiles a list of matchers into one predicate that is true when any of them matches. */
export function compileMatchers(list: readonly StringMatch[]): CompiledMatcher {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  const patterns: RegExp[] = [];
  for (const m of list) {
    if (typeof m === 'string') exact.add(m);
    else if ('exact' in m) exact.add(m.exact);
    else if ('prefix' in m) prefixes.push(m.prefix);
    else if ('suffix' in m) suffixes.push(m.suffix);
    else patterns.push(matcherRegExp(m)!);
  }
  if (prefixes.length === 0 && suffixes.length === 0 && patterns.length === 0) return (value) => exact.has(value);
  return (value) => {
    if (exact.has(value)) return true;
    for (const p of prefixes) if (value.startsWith(p)) return true;
    for (const s of suffixes) if (value.endsWith(s)) return true;
    for (const r of patterns) if (r.test(value)) return true;
    return false;
  };
}

/** Does matcher `m` match the string `v`? (Single-matcher form, for lint and importers.) */
export function matches(m: StringMatch, v: string): boolean {
  return compileMatchers([m])(v);
}
