/** docs/ARCHITECTURE.md names files that exist: a move or a rename that forgets the map fails here. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';

/** Every file under `dir`, by its base name. */
const baseNames = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [`${e.name}/`, ...baseNames(join(dir, e.name))] : [e.name]));
const anywhere = new Set([...baseNames(join(PACKAGE_ROOT, 'src')), ...baseNames(join(PACKAGE_ROOT, 'test'))]);
const doc = readFileSync(join(PACKAGE_ROOT, 'docs/ARCHITECTURE.md'), 'utf8');

describe('docs/ARCHITECTURE.md', () => {
  it('every file and folder it names in code spans exists under src/ or test/ (a bare name: in the folder its row names)', () => {
    const named = [...doc.matchAll(/`([a-z0-9/-]+(?:\.ts|\/))`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(40);
    const missing = named.filter((n) => !['', 'src', 'test'].some((root) => existsSync(join(PACKAGE_ROOT, root, n))) && (n.slice(0, -1).includes('/') || !anywhere.has(n)));
    expect(missing).toEqual([]);
  });
});
