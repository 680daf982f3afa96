/** Schema problems as `file:line: key.path: message`, for config and policy files alike. */
import { isMap, isNode, isScalar, type Document, type LineCounter } from 'yaml';
import type { z } from 'zod';

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(root)';
}

/**
 * The line of the deepest key of `path` that exists in the document (1 when none does): a key's
 * own line, so a mapping value points at its key rather than at its first child.
 */
export function lineOf(doc: Document, lineCounter: LineCounter, path: readonly PropertyKey[]): number {
  for (let n = path.length; n >= 0; n--) {
    const last = path[n - 1];
    const own = n > 0 && typeof last === 'string' ? keyLine(doc, lineCounter, path.slice(0, n - 1), last) : undefined;
    if (own !== undefined) return own;
    const node = doc.getIn(path.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
  }
  return 1;
}

/** The line of the key `key` in the mapping at `path` (an unknown key is best shown where it is written). */
function keyLine(doc: Document, lineCounter: LineCounter, path: readonly PropertyKey[], key: string): number | undefined {
  const map = path.length === 0 ? doc.contents : doc.getIn(path as unknown[], true);
  if (!isMap(map)) return undefined;
  const pair = map.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
  const range = isNode(pair?.key) ? pair.key.range : undefined;
  return range ? lineCounter.linePos(range[0]).line : undefined;
}

type Def = { type: string; shape?: Record<string, unknown>; innerType?: unknown; element?: unknown; options?: unknown[]; in?: unknown; getter?: () => unknown };
const defOf = (s: unknown): Def | undefined => (s as { _zod?: { def?: Def } } | undefined)?._zod?.def;

/** The keys a schema accepts at `path` (the union of every alternative's keys). */
function knownKeys(schema: unknown, path: readonly PropertyKey[], depth = 0): Set<string> {
  const out = new Set<string>();
  const def = defOf(schema);
  if (!def || depth > 64) return out;
  const add = (s: unknown, p: readonly PropertyKey[]) => knownKeys(s, p, depth + 1).forEach((k) => out.add(k));
  if (def.innerType) add(def.innerType, path);
  else if (def.type === 'pipe') add(def.in, path);
  else if (def.type === 'lazy' && def.getter) add(def.getter(), path);
  else if (def.type === 'union') for (const o of def.options ?? []) add(o, path);
  else if (def.type === 'array' && path.length > 0 && typeof path[0] === 'number') add(def.element, path.slice(1));
  else if (def.type === 'object' && def.shape) {
    if (path.length === 0) Object.keys(def.shape).forEach((k) => out.add(k));
    else if (typeof path[0] === 'string' && path[0] in def.shape) add(def.shape[path[0]], path.slice(1));
  }
  return out;
}

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The known key nearest to `key`, when one is near enough to be a typo of it. */
export function nearestKey(key: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0.5 : distance(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/**
 * Each issue, pointed at the deepest node of its path that exists in the file. An unknown key is
 * reported on its own line, one problem per key, with the nearest key `schema` accepts there.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], doc: Document, lineCounter: LineCounter, name: string, schema?: z.ZodType): string[] {
  // in the order of the file, as the later checks report theirs (a stable sort on the line)
  const line = (p: string) => Number(p.slice(name.length + 1).split(':', 1)[0]) || 0;
  return describeEach(issues, doc, lineCounter, name, schema).sort((a, b) => line(a) - line(b));
}

function describeEach(issues: readonly z.core.$ZodIssue[], doc: Document, lineCounter: LineCounter, name: string, schema?: z.ZodType): string[] {
  return issues.flatMap((issue) => {
    const path = issue.path as PropertyKey[];
    if (issue.code === 'unrecognized_keys') {
      const known = schema ? knownKeys(schema, path) : new Set<string>();
      return issue.keys.map((k) => {
        const near = nearestKey(k, known);
        const hint = near ? ` (did you mean ${near}?)` : '';
        return `${name}:${keyLine(doc, lineCounter, path, k) ?? lineOf(doc, lineCounter, path)}: ${formatPath([...path, k])}: unknown key${hint}`;
      });
    }
    return [`${name}:${lineOf(doc, lineCounter, path)}: ${formatPath(path)}: ${issue.message}`];
  });
}
