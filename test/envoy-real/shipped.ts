/**
 * Running the configs shipped in envoy/ as they are, on loopback: the parsed real file with its
 * certificate paths, host names and ports pointed at generated material and free ports (in
 * memory, never a copy kept in the repository), the trust material made by examples/make-certs.sh
 * as a user makes it, the shipped echo app, and the README's own example commands.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { probe, type Tool } from '../helpers/tools.js';

export const ENVOY_DIR = join(PACKAGE_ROOT, 'envoy');

/** openssl and curl: make-certs.sh needs the one, the README's calls the other. */
export const opensslAndCurl = (): Tool => {
  const o = probe('openssl', 'openssl', ['version']);
  const c = probe('curl', 'curl', ['--version']);
  return o.available ? c : o;
};

/** A shipped YAML file, parsed. */
export const shippedYaml = (rel: string): Record<string, any> => parse(readFileSync(join(ENVOY_DIR, rel), 'utf8')) as Record<string, any>;

export interface Pointing {
  /** "host:port" as the file names it → the loopback port it becomes. Every address must be mapped. */
  readonly addresses: Readonly<Record<string, number>>;
  /** The directory that stands for /etc/envoy/certs. */
  readonly certDir: string;
}

/**
 * The Envoy bootstrap with every socket address and certificate path re-pointed, and its admin
 * block dropped (the test helper adds one on an ephemeral port). Throws on an address the
 * mapping does not name, so a config that grows a new endpoint fails loudly here.
 */
export function pointEnvoyAt(config: Record<string, any>, p: Pointing): Record<string, any> {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return v.startsWith('/etc/envoy/certs/') ? join(p.certDir, v.slice('/etc/envoy/certs/'.length)) : v;
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    if (typeof o.address === 'string' && typeof o.port_value === 'number') {
      const key = `${o.address}:${o.port_value}`;
      const port = p.addresses[key];
      if (port === undefined) throw new Error(`pointEnvoyAt: no loopback port for ${key}`);
      return { ...o, address: '127.0.0.1', port_value: port };
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, walk(x)]));
  };
  const { admin: _admin, ...rest } = config;
  return walk(rest) as Record<string, any>;
}

/** The shipped echo app (envoy/app/echo.mjs) on `port`; resolves once it listens. */
export function startEcho(zone: string, port: number): Promise<{ stop(): void }> {
  const child: ChildProcess = spawn(process.execPath, [join(ENVOY_DIR, 'app/echo.mjs')], { env: { ...process.env, ZONE: zone, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening')) resolve({ stop: () => child.kill('SIGTERM') });
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`echo app exited (${code}): ${out}`)));
  });
}

export interface ReadmeCall {
  /** The command as the README prints it (continuation lines joined, trailing comment dropped). */
  readonly command: string;
  /** What the README says the output shows: header lines, JSON members, reason codes. */
  readonly expect: readonly string[];
}

/** The `curl` calls of the README between two markers, with what the README says each prints. */
export const readmeCalls = (from: string, to: string): ReadmeCall[] => readmeSteps(from, to).filter((c) => c.command.startsWith('curl '));

/**
 * Every command of the README's sh blocks between two markers, with what the README says each
 * prints: a trailing `# …` comment and the `# …` lines right below the command.
 */
export function readmeSteps(fromHeading: string, toHeading: string): ReadmeCall[] {
  const text = readFileSync(join(ENVOY_DIR, 'README.md'), 'utf8');
  const start = text.indexOf(fromHeading);
  const end = text.indexOf(toHeading, start + 1);
  if (start < 0 || end < 0) throw new Error(`envoy/README.md: no section from "${fromHeading}" to "${toHeading}"`);
  const calls: { command: string; expect: string[] }[] = [];
  for (const block of text.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = block[1]!.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (lines[i]!.trim() === '' || lines[i]!.startsWith('#')) continue;
      let command = lines[i]!;
      while (command.trimEnd().endsWith('\\')) command = `${command.trimEnd().slice(0, -1).trimEnd()} ${lines[++i]!.trim()}`;
      const expect: string[] = [];
      const trailing = /\s#\s+(.*)$/.exec(command);
      if (trailing) {
        command = command.slice(0, trailing.index).trimEnd();
        expect.push(...promises(trailing[1]!));
      }
      while (lines[i + 1]?.startsWith('# ')) expect.push(...promises(lines[++i]!.slice(2)));
      calls.push({ command, expect });
    }
  }
  return calls;
}

/** The checkable promises in one comment line: `"key":"value"` members, HTTP status lines, header lines, reason codes. */
function promises(comment: string): string[] {
  const members = [...comment.matchAll(/"[\w-]+":"[^"]*"/g)].map((m) => m[0]);
  if (members.length > 0) return members;
  if (/^HTTP\/|^[\w-]+: /.test(comment)) return [comment.trim()];
  return [...comment.matchAll(/\bERR_[A-Z_]+\b/g)].map((m) => m[0]);
}

/**
 * Runs a README command with bash in `cwd`. Asynchronous on purpose: the zonegates of these tests
 * run in this process, and a blocking spawn would keep them from answering Envoy.
 */
export function runShell(command: string, cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('bash', ['-o', 'pipefail', '-c', command], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** Whether `output` keeps each promise (header names and status lines compared case-insensitively). */
export function missingPromises(output: string, expect: readonly string[]): string[] {
  const flat = output.replace(/\r/g, '');
  return expect.filter((e) => !(flat.includes(e) || flat.toLowerCase().includes(e.toLowerCase())));
}
