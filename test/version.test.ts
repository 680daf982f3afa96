import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { VERSION } from '../src/version.js';
import { zonegate } from './helpers/cli.js';

describe('VERSION', () => {
  it("is package.json's version, and what `zonegate --version` prints", () => {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+(-[\w.]+)?$/);
    expect(zonegate(['--version'])).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
  });
});
