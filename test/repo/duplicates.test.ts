/**
 * One of each: no function body is written twice in different files of src/, bench/ and
 * test/helpers/ (bench/ and the tests import what src/ or Node already has: src/demo/ports.ts
 * freePorts, node:timers/promises setTimeout). Bodies are compared without comments and
 * whitespace, from MIN_CHARS characters on, so a one-word arrow does not count. A copy inside
 * one file is left to review. KNOWN lists the copies there are today; it only shrinks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';

const MIN_CHARS = 30;
const SCANNED = ['src', 'bench', 'test/helpers'];

/** Copies there are today, by their normalized body, each with why it is not one function yet. */
const KNOWN: Readonly<Record<string, string>> = {
  // config/include.ts parseYamlWith and config/load.ts each parse YAML and word its syntax errors
  "`${name}:${lineCounter.linePos(e.pos[0]).line}:${e.message.split('\\n')[0]}`": 'two error types (PolicyFileError, ConfigError)',
  // the plain-object test of policy/import/common.ts, again in two test helpers
  "typeofv==='object'&&v!==null&&!Array.isArray(v)": 'test helpers do not import the policy importer for one predicate',
  // bench fixtures, phases and run each issue the bench peer
  "pki.inter.issue(PEER_ID,{keyType:'P-256'})": 'a one-line call, not a helper',
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every function body of at least MIN_CHARS (normalized) in `text` → where it starts. */
export function bodies(file: string, text: string): Array<[string, string]> {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: Array<[string, string]> = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const body = (node.body as ts.Node).getText(sf).replace(/\/\/[^\n]*|\/\*[\s\S]*?\*\//g, '').replace(/\s+/g, '');
      if (body.length >= MIN_CHARS) found.push([body, `${relative(PACKAGE_ROOT, file)}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}`]);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** Bodies found in more than one file → their places. */
export function copies(files: ReadonlyArray<[string, string]>): Map<string, string[]> {
  const where = new Map<string, string[]>();
  for (const [file, text] of files) for (const [body, at] of bodies(file, text)) where.set(body, [...(where.get(body) ?? []), at]);
  const fileCount = (places: string[]) => new Set(places.map((p) => p.replace(/:\d+$/, ''))).size;
  return new Map([...where].filter(([, places]) => fileCount(places) > 1));
}

describe('duplicate function bodies', () => {
  it('finds a body written in two files, whatever its layout, and not one written twice in one file (the check can fail)', () => {
    const freePort = (layout: string) => `export const freePort = () =>${layout}new Promise<number>((resolve) => { const s = createServer().listen(0, '127.0.0.1', () => s.close(() => resolve(1))); });\n`;
    const found = copies([
      ['bench/a.ts', freePort(' ')],
      ['test/helpers/b.ts', `// a copy\n${freePort('\n  ')}`],
      ['src/c.ts', 'const f = (x: number) => x + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8;\nconst g = (x: number) => x + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8;\n'],
    ]);
    // the arrow and the callback inside it; src/c.ts's two copies in one file are not reported
    expect([...found.values()]).toEqual([
      ['bench/a.ts:1', 'test/helpers/b.ts:2'],
      ['bench/a.ts:1', 'test/helpers/b.ts:3'],
    ]);
  });

  it('no function body is written in two files of src/, bench/ or test/helpers/ beyond the known ones', () => {
    const files = SCANNED.flatMap((d) => sources(join(PACKAGE_ROOT, d))).map((f): [string, string] => [f, readFileSync(f, 'utf8')]);
    expect(files.length).toBeGreaterThan(100);
    const found = copies(files);
    expect([...found].filter(([body]) => !(body in KNOWN)).map(([body, places]) => `${places.join(' ')}: ${body.slice(0, 120)}`)).toEqual([]);
    // a known copy that is gone leaves the list too
    expect(Object.keys(KNOWN).filter((body) => !found.has(body))).toEqual([]);
  });
});
