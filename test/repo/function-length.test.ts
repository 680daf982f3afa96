/**
 * No function in src/ is longer than 80 lines unless the comment above it says why, with
 * `Long because …`. Long functions are split along their phases; the few that read best whole
 * carry their reason where the next reader looks first.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';

const LIMIT = 80;
const SRC = join(PACKAGE_ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

interface Long {
  where: string;
  lines: number;
  reasoned: boolean;
}

/** Every function-like node longer than LIMIT lines in one file, with whether its comment gives a reason. */
export function longFunctions(file: string, text: string): Long[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: Long[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.end).line;
      const lines = end - start + 1;
      if (lines > LIMIT) {
        // The comment may sit on the function itself or on the statement that declares it.
        let holder: ts.Node = node;
        while (holder.parent && !ts.isSourceFile(holder.parent) && !ts.isBlock(holder.parent) && !ts.isClassLike(holder.parent))
          holder = holder.parent;
        const comments = [node, holder].flatMap((n) => ts.getLeadingCommentRanges(text, n.getFullStart()) ?? []);
        const reasoned = comments.some((c) => /Long because \S/.test(text.slice(c.pos, c.end)));
        found.push({ where: `${relative(PACKAGE_ROOT, file)}:${start + 1}`, lines, reasoned });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

describe('function length', () => {
  it('finds a long function and reads its reason (the check can fail)', () => {
    const body = Array.from({ length: LIMIT + 5 }, (_, i) => `  const v${i} = ${i};`).join('\n');
    expect(longFunctions('a.ts', `function f() {\n${body}\n}\n`)).toEqual([{ where: expect.stringContaining('a.ts:1'), lines: LIMIT + 7, reasoned: false }]);
    expect(longFunctions('a.ts', `/** Long because a table. */\nexport const f = () => {\n${body}\n};\n`)[0]?.reasoned).toBe(true);
    expect(longFunctions('a.ts', `function f() {\n  return 1;\n}\n`)).toEqual([]);
  });

  it(`no function in src/ is over ${LIMIT} lines without a stated reason`, () => {
    const files = sources(SRC);
    expect(files.length).toBeGreaterThan(50);
    const unreasoned = files.flatMap((f) => longFunctions(f, readFileSync(f, 'utf8'))).filter((l) => !l.reasoned);
    expect(unreasoned.map((l) => `${l.where} (${l.lines} lines)`)).toEqual([]);
  });
});
