/**
 * `npm ci` refuses a lock file that lacks an optional dependency of any locked package, even one
 * for another platform. The registry these machines use does not serve @bufbuild/buf's non-Linux
 * binaries, so `npm install` drops their entries; this test catches that before CI does.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as {
  packages: Record<string, { optionalDependencies?: Record<string, string> }>;
};

describe('package-lock.json', () => {
  it('has an entry for every optional dependency of every locked package', () => {
    const missing: string[] = [];
    const checked: string[] = [];
    for (const [path, pkg] of Object.entries(lock.packages)) {
      for (const dep of Object.keys(pkg.optionalDependencies ?? {})) {
        checked.push(dep);
        // resolved like node does: nested first, then hoisted
        if (!(`${path}/node_modules/${dep}` in lock.packages) && !(`node_modules/${dep}` in lock.packages)) missing.push(`${path || '(root)'} → ${dep}`);
      }
    }
    // the case this test exists for is among those checked (an empty lock or a format change checks nothing)
    expect(checked).toEqual(expect.arrayContaining(['@bufbuild/buf-darwin-arm64', '@bufbuild/buf-linux-x64', '@bufbuild/buf-win32-x64']));
    expect(missing, 'restore the entries (version, os, cpu, optional: true) that npm install dropped').toEqual([]);
  });
});
