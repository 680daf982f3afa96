/**
 * Real Envoy in the tests: which binaries to run (every version in envoy/versions.txt that .ci/run
 * installed, or ZONEGATE_ENVOY_BIN), and one Envoy process per call of startEnvoy(), on loopback,
 * with ephemeral ports read back from its admin API (the process itself is the demo's launcher,
 * src/envoy-binary.ts). Under CI=true no Envoy fails the suite; elsewhere the suite is skipped
 * with one line saying how to get Envoy.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENVOY_HINT, findEnvoyBinaries, launchEnvoy, type EnvoyBinary, type LaunchedEnvoy } from '../../src/envoy-binary.js';
import { IN_CI } from './tools.js';

let cached: EnvoyBinary[] | undefined;

/**
 * The Envoy binaries every Envoy suite runs on. Empty (with one warning) when there is none and
 * this is not CI; under CI=true a missing Envoy throws, so the suite fails.
 */
export function envoyMatrix(): EnvoyBinary[] {
  cached ??= findEnvoyBinaries();
  if (cached.length > 0) return cached;
  if (IN_CI) throw new Error(`CI=true and no Envoy binary was found: .ci/run must install envoy/versions.txt (${ENVOY_HINT})`);
  console.warn(`skipping the Envoy suites: no Envoy binary found; to run them: ${ENVOY_HINT}`);
  return [];
}

export interface RunningEnvoy {
  readonly version: string;
  /** The Envoy process (for its CPU time, e.g. in the benchmarks). */
  readonly pid: number;
  /** http://127.0.0.1:PORT of the admin API. */
  readonly admin: string;
  /** Port of each named listener, as Envoy bound it (listeners may ask for port 0). */
  readonly ports: Readonly<Record<string, number>>;
  /** What Envoy logged so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra command-line arguments (e.g. ['--component-log-level', 'ext_authz:debug']). */
  readonly args?: readonly string[];
  /** How long to wait for the listeners; default 20 s. */
  readonly timeoutMs?: number;
  /** Directory for the config and the admin address file; default a fresh temporary one. */
  readonly dir?: string;
}

/**
 * Starts Envoy with `config` (a Bootstrap as an object or YAML text, without an admin block) on
 * src/envoy-binary.ts's launchEnvoy, which adds the admin API on 127.0.0.1:0. Resolves once Envoy
 * reports ready and every static listener is bound; rejects with Envoy's log if it exits or does
 * not get there in time.
 */
export async function startEnvoy(bin: EnvoyBinary, config: object | string, opts: StartOptions = {}): Promise<RunningEnvoy> {
  const own = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'zg-envoy-'));
  const cleanup = () => {
    if (own) rmSync(dir, { recursive: true, force: true });
  };
  let envoy: LaunchedEnvoy;
  try {
    const name = `envoy-${process.pid}-${Math.random().toString(36).slice(2)}`;
    envoy = await launchEnvoy(bin, config, { dir, name, timeoutMs: opts.timeoutMs ?? 20_000, ...(opts.args ? { args: opts.args } : {}) });
  } catch (err) {
    cleanup();
    throw err;
  }
  const stop = async () => {
    await envoy.stop();
    cleanup();
  };
  try {
    const listeners = (await (await fetch(`${envoy.admin}/listeners?format=json`)).json()) as {
      listener_statuses?: { name: string; local_address?: { socket_address?: { port_value?: number } } }[];
    };
    const ports: Record<string, number> = {};
    for (const l of listeners.listener_statuses ?? []) {
      const p = l.local_address?.socket_address?.port_value;
      if (p !== undefined) ports[l.name] = p;
    }
    if (envoy.pid === undefined) throw new Error('envoy: its pid is unknown');
    return { version: bin.version, pid: envoy.pid, admin: envoy.admin, ports, log: envoy.log, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** One counter or gauge from Envoy's admin /stats (undefined when Envoy does not have it). */
export async function envoyStat(envoy: RunningEnvoy, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${envoy.admin}/stats?filter=${encodeURIComponent(`^${name.replace(/[.]/g, '\\.')}$`)}`)).text();
  const m = /: (\d+)\s*$/.exec(text.trim());
  return m ? Number(m[1]) : undefined;
}
