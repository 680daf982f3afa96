/**
 * Real Envoy in the tests: which binaries to run (every version in envoy/versions.txt that .ci/run
 * installed, or ZONEGATE_ENVOY_BIN), and one Envoy process per call of startEnvoy(), on loopback,
 * with ephemeral ports read back from its admin API. Under CI=true no Envoy fails the suite;
 * elsewhere the suite is skipped with one line saying how to get Envoy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ENVOY_HINT, findEnvoyBinaries, type EnvoyBinary } from '../../src/envoy-binary.js';
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
  /** What Envoy wrote to stderr so far (for failure messages). */
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts Envoy with `config` (a Bootstrap as an object or YAML text). Its `admin` block is
 * replaced with one on 127.0.0.1:0. Resolves once Envoy reports LIVE and every static listener
 * is bound; rejects with Envoy's log if it exits or does not get there in time.
 */
export async function startEnvoy(bin: EnvoyBinary, config: object | string, opts: StartOptions = {}): Promise<RunningEnvoy> {
  const own = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'zg-envoy-'));
  const file = join(dir, `envoy-${process.pid}-${Math.random().toString(36).slice(2)}.yaml`);
  const adminFile = `${file}.admin`;
  let text = typeof config === 'string' ? config : stringify(config);
  text += '\nadmin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: 0 }\n';
  if (typeof config === 'string' && /^admin:/m.test(config)) throw new Error('startEnvoy: leave admin out of the config; the helper adds it');
  writeFileSync(file, text);
  let stderr = '';
  const child: ChildProcess = spawn(
    bin.path,
    ['-c', file, '--admin-address-path', adminFile, '--disable-hot-restart', '--concurrency', '1', '-l', 'warning', ...(opts.args ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.on('exit', (code) => {
      exited = code;
      resolve();
    }),
  );
  const cleanup = () => {
    if (own) rmSync(dir, { recursive: true, force: true });
  };
  const stop = async () => {
    if (exited === undefined) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(t);
    }
    cleanup();
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  try {
    while (!existsSync(adminFile) || readFileSync(adminFile, 'utf8').trim() === '') {
      if (exited !== undefined) throw new Error(`envoy ${bin.version} exited (${exited}) before starting:\n${stderr}`);
      if (Date.now() > deadline) throw new Error(`envoy ${bin.version} did not start in time:\n${stderr}`);
      await sleep(50);
    }
    const admin = `http://${readFileSync(adminFile, 'utf8').trim()}`;
    for (;;) {
      if (exited !== undefined) throw new Error(`envoy ${bin.version} exited (${exited}):\n${stderr}`);
      if (Date.now() > deadline) throw new Error(`envoy ${bin.version} did not become ready in time:\n${stderr}`);
      try {
        const ready = await fetch(`${admin}/ready`);
        if (ready.ok) break;
      } catch {
        /* not yet */
      }
      await sleep(50);
    }
    const listeners = (await (await fetch(`${admin}/listeners?format=json`)).json()) as {
      listener_statuses?: { name: string; local_address?: { socket_address?: { port_value?: number } } }[];
    };
    const ports: Record<string, number> = {};
    for (const l of listeners.listener_statuses ?? []) {
      const p = l.local_address?.socket_address?.port_value;
      if (p !== undefined) ports[l.name] = p;
    }
    return { version: bin.version, pid: child.pid!, admin, ports, log: () => stderr, stop };
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
