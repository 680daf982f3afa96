/** Locations inside the installed package, found from src/ (tests, tsx) or dist/ (built). */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
