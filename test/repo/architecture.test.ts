/**
 * The folder layering of src/: every import (static, dynamic, `import type`, `export … from`,
 * `import('…')` in a type) goes from a layer to a strictly lower one, and the folder graph has
 * no cycle. A folder of src/ is one node; a file directly in src/ is a node of its own.
 * A new folder or root file must be placed in LAYERS before anything may import it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';

const SRC = resolve(PACKAGE_ROOT, 'src');

/**
 * Bottom to top. A node may import nodes of lower lines only: not its own line's neighbours
 * (siblings do not know each other), never a higher line.
 */
const LAYERS: ReadonlyArray<readonly [nodes: readonly string[], what: string]> = [
  [['paths.ts'], 'where the package itself is installed (proto, docs, package.json)'],
  [['errors.ts', 'hash.ts', 'log.ts', 'metrics.ts', 'version.ts', 'readiness.ts', 'envoy-binary.ts', 'schema-parts.ts', 'watch.ts'], 'process-wide utilities: reason codes, hashing, logger, Prometheus metrics, version, serving state, the Envoy binary, config schema parts, watching a file'],
  [['spiffe'], 'SPIFFE ID and trust domain value types'],
  [['request'], 'the request model every phase reads (AuthRequest, Outcome), its header reader, path and host normalization'],
  [['cert'], 'certificate primitives: DER, PEM, parsing, the facts node:crypto does not give, key strength, signature checks'],
  [['bundle'], 'trust bundles (X.509 and JWT authorities per trust domain) and the bundle set'],
  [['svid'], 'X509-SVID verification against a bundle source, the local SVID files'],
  [['net'], 'bounded outgoing HTTPS fetches (bundle endpoints, Consul, OIDC)'],
  [['federation'], 'trust sources, the refresh loop, our bundle endpoint, our own identity'],
  [['peer', 'policy', 'identity'], 'the concepts: peer identity, the policy language, carried identity (tokens, user credentials)'],
  [['rewrite'], 'what the upstream receives (signs with the identity JWS primitives)'],
  [['config'], 'the validated Config: composes the concepts\' schema slices; preflight and cross-checks'],
  [['pipeline'], 'the engine: authorize() and the decision state built from a Config'],
  [['envoy', 'http'], 'the adapters: Envoy ext_authz gRPC wire, the HTTP authorization mode and the ops server'],
  [['runtime.ts', 'lifecycle.ts'], 'one config\'s trust material, identity and decision state, rebuilt on reload; drain, signals and the startup line'],
  [['main.ts'], 'wiring: config → runtime → servers; signals'],
  [['cluster.ts'], 'serve --workers N: the primary and its workers'],
  [['demo'], 'the two-zone demo'],
  [['cli'], 'the command line'],
];

interface Edge {
  readonly from: string;
  readonly to: string;
  /** The importing file and the specifier, for the message. */
  readonly where: string;
}

/** Every module specifier `source` imports, whatever the form; comments and strings are not imports. */
function importsOf(source: string, fileName = 'x.ts'): string[] {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
      out.push(node.moduleSpecifier.text);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression))
      out.push(node.moduleReference.expression.text);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteralLike(node.arguments[0]))
      out.push(node.arguments[0].text);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal))
      out.push(node.argument.literal.text);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The node a file of src/ belongs to: its top folder, or the file itself when it sits in src/. */
function nodeOf(srcRelative: string): string {
  return srcRelative.split(/[\\/]/)[0]!;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The folder-level import edges of src/ (relative specifiers only; packages and node: are not nodes). */
function srcEdges(): { edges: Edge[]; nodes: Set<string>; outside: string[] } {
  const edges: Edge[] = [];
  const nodes = new Set<string>();
  const outside: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const rel = relative(SRC, file);
    const from = nodeOf(rel);
    nodes.add(from);
    for (const spec of importsOf(readFileSync(file, 'utf8'), file)) {
      if (!spec.startsWith('.')) continue;
      const target = relative(SRC, resolve(dirname(file), spec));
      if (target.startsWith('..') || target.startsWith(sep)) {
        outside.push(`${rel} imports ${spec}`);
        continue;
      }
      const to = nodeOf(target.replace(/\.js$/, '.ts'));
      if (to !== from) edges.push({ from, to, where: `${rel} → ${spec}` });
    }
  }
  return { edges, nodes, outside };
}

/** The cycles of a directed graph (its strongly connected components with more than one node), Tarjan. */
function cyclesOf(edges: readonly Edge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!next.has(e.from)) next.set(e.from, new Set());
    if (!next.has(e.to)) next.set(e.to, new Set());
    next.get(e.from)!.add(e.to);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let i = 0;
  const connect = (v: string): void => {
    index.set(v, i);
    low.set(v, i);
    i++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) connect(v);
  return out;
}

/** Every edge that does not go to a strictly lower layer, and every node no layer names. */
function layerViolations(edges: readonly Edge[], nodes: Iterable<string>, layers: typeof LAYERS): string[] {
  const rank = new Map<string, number>();
  layers.forEach(([names], r) => names.forEach((n) => rank.set(n, r)));
  const out: string[] = [];
  for (const n of nodes) if (!rank.has(n)) out.push(`${n}: in no layer (add it to LAYERS)`);
  for (const e of edges) {
    const a = rank.get(e.from);
    const b = rank.get(e.to);
    if (a === undefined || b === undefined) continue;
    if (b > a) out.push(`${e.where}: ${e.from} (layer ${a}) imports the higher ${e.to} (layer ${b})`);
    else if (b === a) out.push(`${e.where}: ${e.from} imports its sibling ${e.to} (same layer ${a})`);
  }
  return out;
}

describe('architecture: src/ is layered', () => {
  const { edges, nodes, outside } = srcEdges();

  it('every layer names existing nodes once, and every node of src/ is in a layer', () => {
    const named = LAYERS.flatMap(([n]) => n);
    expect(new Set(named).size).toBe(named.length);
    expect(named.filter((n) => !nodes.has(n))).toEqual([]);
    expect([...nodes].filter((n) => !named.includes(n))).toEqual([]);
  });

  it('nothing in src/ imports a file outside src/', () => {
    expect(outside).toEqual([]);
  });

  it('no folder-level import cycle', () => {
    expect(cyclesOf(edges)).toEqual([]);
  });

  it('every import goes to a strictly lower layer', () => {
    expect(layerViolations(edges, nodes, LAYERS)).toEqual([]);
  });

  it('sees the graph it claims to: the request path crosses every layer it should', () => {
    const has = (from: string, to: string) => edges.some((e) => e.from === from && e.to === to);
    // one edge per kind of import the reader must see (a regression in importsOf empties the graph)
    expect(has('envoy', 'pipeline')).toBe(true);
    expect(has('pipeline', 'config')).toBe(true);
    expect(has('svid', 'cert')).toBe(true);
    expect(edges.length).toBeGreaterThan(50);
  });
});

describe('architecture: the checker itself', () => {
  it('reads static, type-only, re-export, dynamic and import-type specifiers, not comments or strings', () => {
    const src = [
      "import { a } from './a.js';",
      "import type { B } from '../b/b.js';",
      "import './side.js';",
      "export { c } from './c.js';",
      "export * from '../d/index.js';",
      "export type { E } from './e.js';",
      "const f = await import('./f.js');",
      "let g: import('../g/g.js').G;",
      "import h = require('./h.js');",
      "import {",
      "  i,",
      "} from './i.js';",
      "// import { no } from './comment.js';",
      "/* export * from './block.js'; */",
      "const s = \"import { no } from './string.js'\";",
    ].join('\n');
    expect(importsOf(src)).toEqual(['./a.js', '../b/b.js', './side.js', './c.js', '../d/index.js', './e.js', './f.js', '../g/g.js', './h.js', './i.js']);
  });

  it('maps files to nodes: the top folder, or the root file', () => {
    expect(nodeOf('svid/x509.ts')).toBe('svid');
    expect(nodeOf('policy/import/istio.ts')).toBe('policy');
    expect(nodeOf('main.ts')).toBe('main.ts');
  });

  const layers = [
    [['low'], 'bottom'],
    [['mid', 'side'], 'middle'],
    [['top'], 'top'],
  ] as const;
  const e = (from: string, to: string): Edge => ({ from, to, where: `${from}/x.ts → ../${to}/y.js` });

  it('accepts edges down the layers', () => {
    const edges = [e('top', 'mid'), e('top', 'low'), e('mid', 'low'), e('side', 'low')];
    expect(layerViolations(edges, ['low', 'mid', 'side', 'top'], layers)).toEqual([]);
    expect(cyclesOf(edges)).toEqual([]);
  });

  it('refuses an edge up, an edge between siblings and an undeclared node', () => {
    const v = layerViolations([e('low', 'top'), e('mid', 'side'), e('top', 'new')], ['low', 'mid', 'side', 'top', 'new'], layers);
    expect(v).toEqual([
      'new: in no layer (add it to LAYERS)',
      'low/x.ts → ../top/y.js: low (layer 0) imports the higher top (layer 2)',
      'mid/x.ts → ../side/y.js: mid imports its sibling side (same layer 1)',
    ]);
  });

  it('finds every cycle, direct and through other nodes', () => {
    expect(cyclesOf([e('a', 'b'), e('b', 'a'), e('c', 'd'), e('d', 'f'), e('f', 'c'), e('f', 'g')])).toEqual([['a', 'b'], ['c', 'd', 'f']]);
  });
});
