/**
 * test/ mirrors src/: every module has test/<path>.test.ts or an entry in test/mirror.ts naming
 * the tests that cover it, every entry names a module and test files that exist, and every other
 * top-level folder of test/ is a kind listed there. Each failure says which line to change.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { COVERED_BY, KINDS } from '../mirror.js';

const SRC = join(PACKAGE_ROOT, 'src');
const TEST = join(PACKAGE_ROOT, 'test');
const MAP = 'test/mirror.ts';

/** Every file under `dir` ending in `suffix`, as paths relative to `dir`, sorted. */
function files(dir: string, suffix: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(suffix)) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

const modules = files(SRC, '.ts').filter((m) => !m.endsWith('.d.ts'));
const mirrorOf = (module: string) => module.replace(/\.ts$/, '.test.ts');
const hasMirror = (module: string) => existsSync(join(TEST, mirrorOf(module)));
/** Folders holding at least one file (git leaves emptied folders behind on checkout). */
const dirs = (dir: string) => readdirSync(dir).filter((n) => statSync(join(dir, n)).isDirectory() && files(join(dir, n), '').length > 0);

describe('test/ mirrors src/', () => {
  it('every src module has its mirror test or an entry in test/mirror.ts', () => {
    const missing = modules.filter((m) => !hasMirror(m) && COVERED_BY[m] === undefined);
    expect(missing.map((m) => `src/${m}: write test/${mirrorOf(m)}, or add to ${MAP}: '${m}': ['<the test files that cover it>'],`)).toEqual([]);
  });

  it('test/mirror.ts lists only modules that exist and have no mirror test of their own', () => {
    const stale = Object.keys(COVERED_BY).flatMap((m) => {
      if (!modules.includes(m)) return [`${MAP}: '${m}' is not in src/ (moved or removed? rename or remove the entry)`];
      if (hasMirror(m)) return [`${MAP}: '${m}' has test/${mirrorOf(m)}: remove the entry`];
      return [];
    });
    expect(stale).toEqual([]);
  });

  it('every test file test/mirror.ts points to exists', () => {
    const dangling = Object.entries(COVERED_BY).flatMap(([m, tests]) => [
      ...(tests.length === 0 ? [`${MAP}: '${m}' names no test file`] : []),
      ...tests.filter((t) => !t.endsWith('.test.ts') || !existsSync(join(TEST, t))).map((t) => `${MAP}: '${m}' points to test/${t}, which is not a test file`),
    ]);
    expect(dangling).toEqual([]);
  });

  it('every top-level folder of test/ is a src folder or a kind test/mirror.ts describes', () => {
    const srcDirs = new Set(dirs(SRC));
    const unknown = dirs(TEST).filter((d) => !srcDirs.has(d) && KINDS[d] === undefined);
    expect(unknown.map((d) => `test/${d}/: name it after a src folder, or add the kind to ${MAP}'s KINDS`)).toEqual([]);
    expect(Object.keys(KINDS).filter((k) => !existsSync(join(TEST, k)) || srcDirs.has(k))).toEqual([]);
  });

  it('the test files at the top of test/ are mirror tests of modules at the top of src/', () => {
    const top = readdirSync(TEST).filter((n) => n.endsWith('.test.ts'));
    expect(top.filter((t) => !existsSync(join(SRC, t.replace(/\.test\.ts$/, '.ts'))))).toEqual([]);
  });

  it('the check sees the tree: modules in several folders, mirror tests and entries both in use', () => {
    expect(modules.length).toBeGreaterThan(50);
    expect(modules.filter(hasMirror).length).toBeGreaterThan(20);
    expect(Object.keys(COVERED_BY).length).toBeGreaterThan(10);
  });
});
