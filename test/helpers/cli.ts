/** Runs the installed command (bin/zonegate.js over the compiled dist/) as a user would. */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/paths.js';

export const BIN = join(PACKAGE_ROOT, 'bin/zonegate.js');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `zonegate args…` to completion. */
export function zonegate(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    input: opts.input ?? '',
    env: { ...process.env, ...opts.env },
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface Served {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly grpcPort: number;
  readonly opsPort: number;
  readonly lines: Record<string, unknown>[];
  exited(): Promise<number | null>;
  /** Signals the whole process group (npm does not pass signals on to the script it runs). */
  signal(sig: NodeJS.Signals): void;
}

/** Starts a long-running command and waits for its "zonegate started" log line. */
export function serve(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const proc = spawn(cmd, args, {
    cwd: PACKAGE_ROOT,
    detached: true, // its own process group, so signal() reaches npm's child too
    env: { ...process.env, ZONEGATE_GRPC_PORT: '0', ZONEGATE_OPS_PORT: '0', ZONEGATE_GRPC_ADDRESS: '127.0.0.1', ZONEGATE_OPS_ADDRESS: '127.0.0.1', ...env },
  });
  const lines: Record<string, unknown>[] = [];
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let buf = '';
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`no ready line in 20 s; stderr: ${stderr}`)), 20_000);
    proc.stderr.on('data', (d) => (stderr += d));
    proc.stdout.on('data', (d) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue; // npm's own banner lines
        }
        lines.push(obj);
        if (obj.msg === 'zonegate started') {
          clearTimeout(timer);
          resolve({
            proc,
            grpcPort: obj.grpcPort as number,
            opsPort: obj.opsPort as number,
            lines,
            exited: () => exit,
            signal: (sig) => {
              try {
                process.kill(-proc.pid!, sig);
              } catch {
                // already gone
              }
            },
          });
        }
      }
    });
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before ready; stderr: ${stderr}`));
    });
  });
}
