/** String matchers compiled once: exact values go into a Set, prefixes and suffixes into arrays. */
import type { StringMatch } from '../config/schema.js';

export interface CompiledMatcher {
  (value: string): boolean;
}

/** Compiles a list of matchers into one predicate that is true when any of them matches. */
export function compileMatchers(list: readonly StringMatch[]): CompiledMatcher {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  for (const m of list) {
    if (typeof m === 'string') exact.add(m);
    else if ('exact' in m) exact.add(m.exact);
    else if ('prefix' in m) prefixes.push(m.prefix);
    else suffixes.push(m.suffix);
  }
  return (value) => {
    if (exact.has(value)) return true;
    for (const p of prefixes) if (value.startsWith(p)) return true;
    for (const s of suffixes) if (value.endsWith(s)) return true;
    return false;
  };
}
