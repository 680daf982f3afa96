/** Schema problems as `file:line: key.path: message`, for config and policy files alike. */
import { isNode, type Document, type LineCounter } from 'yaml';
import type { z } from 'zod';

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(root)';
}

/** Each issue, pointed at the deepest node of its path that exists in the file. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], doc: Document, lineCounter: LineCounter, name: string): string[] {
  return issues.map((issue) => {
    const path = issue.path as PropertyKey[];
    let line: number | undefined;
    for (let n = path.length; n >= 0 && line === undefined; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true);
      if (isNode(node) && node.range) line = lineCounter.linePos(node.range[0]).line;
    }
    const keys = issue.code === 'unrecognized_keys' ? ` (${(issue as { keys: string[] }).keys.join(', ')})` : '';
    return `${name}:${line ?? 1}: ${formatPath(path)}: ${issue.message}${keys}`;
  });
}
