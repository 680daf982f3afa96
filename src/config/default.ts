/**
 * The embedded default: what `zonegate serve` runs without --config. It is the
 * example config shipped in examples/, so the README, the examples and the default never drift.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXAMPLES_DIR } from '../paths.js';

export const EMBEDDED_DEFAULT = {
  get text(): string {
    return readFileSync(join(EXAMPLES_DIR, 'zonegate.yaml'), 'utf8');
  },
  dir: EXAMPLES_DIR,
};
