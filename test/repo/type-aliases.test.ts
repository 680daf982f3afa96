/**
 * One name for each type: no module in src/ exports another name for a named type
 * (`export type DenyOptions = DenyConfig;`). A second name hides that two places speak of one
 * thing; the users import the type under its own name (a config slice's type from its schema).
 * Aliases that derive a type (`z.output<typeof S>`, `Config['deny']`, unions) are not renames,
 * nor is a module's private shorthand (`type CryptoKey = webcrypto.CryptoKey;`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';

const SRC = join(PACKAGE_ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** `file:line: Alias = Target` for every exported type alias that is a bare reference to another type. */
export function renames(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    const exported = ts.canHaveModifiers(node) && ts.getModifiers(node)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    if (ts.isTypeAliasDeclaration(node) && exported && !node.typeParameters && ts.isTypeReferenceNode(node.type) && !node.type.typeArguments) {
      const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
      found.push(`${relative(PACKAGE_ROOT, file)}:${line}: ${node.name.text} = ${node.type.typeName.getText(sf)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

describe('type aliases', () => {
  it('finds a rename and leaves derived types alone (the check can fail)', () => {
    expect(renames('a.ts', 'export type DenyOptions = DenyConfig;\n')).toEqual([expect.stringContaining('a.ts:1: DenyOptions = DenyConfig')]);
    expect(renames('a.ts', 'export type A = ns.B;\n')).toEqual([expect.stringContaining('A = ns.B')]);
    expect(renames('a.ts', 'type CryptoKey = webcrypto.CryptoKey;\nexport type C = z.output<typeof S>;\nexport type F = C["fetch"];\nexport type U = A | B;\nexport type G<T> = T;\n')).toEqual([]);
  });

  it('no module in src/ exports another name for a named type', () => {
    const files = sources(SRC);
    expect(files.length).toBeGreaterThan(50);
    expect(files.flatMap((f) => renames(f, readFileSync(f, 'utf8')))).toEqual([]);
  });
});
