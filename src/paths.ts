/**
 * Where files are: the installed package's own (found from src/ or dist/), and those a config
 * names (one schema type that resolves them against the config file's directory).
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'proto'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('zonegate: cannot find the package root (package.json beside proto/)');
}

export const PACKAGE_ROOT = findPackageRoot();
export const PROTO_DIR = join(PACKAGE_ROOT, 'proto');
export const EXAMPLES_DIR = join(PACKAGE_ROOT, 'examples');

/** The directory relative config paths resolve against, while parseConfig parses (schema parsing is synchronous). */
let configDir: string | undefined;

/**
 * A file path in the config. A relative one names a file beside the config file, wherever
 * zonegate was started from: it is resolved against the directory of the config being parsed
 * (parseConfig's `baseDir`) as the schema parses it, and kept as written outside parseConfig.
 * Every path a config names is this type, whichever section declares it (config/, rewrite/).
 */
export const configPath = z
  .string()
  .min(1)
  .transform((p) => (configDir === undefined || isAbsolute(p) ? p : resolve(configDir, p)));

/** Runs `parse` (synchronous) with relative config paths resolved against `dir`. */
export function resolvingConfigPaths<T>(dir: string, parse: () => T): T {
  const outer = configDir;
  configDir = dir;
  try {
    return parse();
  } finally {
    configDir = outer;
  }
}
