/**
 * Long-running commands end when what started them goes away. npm does not pass SIGTERM on to
 * the script it runs: `npm start` exits and leaves its child re-parented, so the demo watches its
 * parent. These run the real commands, signal the parent only (never the process group), and
 * check that the ports are free again and the temporary directory is gone.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { until } from '../helpers/wait.js';
import { BIN, serve } from '../helpers/cli.js';

/** True when nothing listens on 127.0.0.1:port (we can bind it ourselves). */
function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const killGroup = (pid: number | undefined) => {
  try {
    if (pid) process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
};

/** Starts the demo under `cmd args` in a process group of its own; resolves with its ports and temporary directory. */
function startDemo(cmd: string, args: string[]) {
  const proc = spawn(cmd, args, { cwd: PACKAGE_ROOT, detached: true, env: { ...process.env, ZONEGATE_DEMO_PORT_BASE: '0' } });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  return new Promise<{ pid: number; ports: number[]; dir: string; stderr: () => string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup(proc.pid);
      reject(new Error(`no instructions in 60 s: ${out}\n${err}`));
    }, 60_000);
    proc.stdout.on('data', (d) => {
      out += d;
      const dir = /stops both zones and removes (\S+?)\.?$/m.exec(out);
      if (!dir) return;
      clearTimeout(timer);
      const ports = [...new Set([...out.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])))];
      resolve({ pid: proc.pid!, ports, dir: dir[1]!, stderr: () => err });
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before serving: ${out}\n${err}`));
    });
  });
}

describe('stopping when the parent goes away', () => {
  it.each([
    ['npm start', 'npm', ['start']],
    ['a shell parent', 'sh', ['-c', `"${process.execPath}" "${BIN}" demo; echo the shell outlived it`]],
  ])('the demo under %s: SIGTERM to the parent alone frees its ports and removes its temporary directory', { timeout: 120_000 }, async (_, cmd, args) => {
    const demo = await startDemo(cmd, args);
    try {
      expect(demo.ports.length).toBeGreaterThanOrEqual(6);
      expect(existsSync(demo.dir)).toBe(true);
      for (const p of demo.ports) expect(await free(p)).toBe(false);
      process.kill(demo.pid, 'SIGTERM'); // the parent only, as `kill <pid of npm start>` does
      await until(async () => !existsSync(demo.dir), 30_000, 'the temporary directory removed');
      await until(async () => (await Promise.all(demo.ports.map(free))).every(Boolean), 30_000, 'every port free');
    } finally {
      killGroup(demo.pid);
    }
  });

  it('serve --exit-with-parent drains and exits when its parent goes away; without it, serve outlives its parent (nohup-style)', { timeout: 120_000 }, async () => {
    const run = (flag: string[]) => serve('sh', ['-c', `"${process.execPath}" "${BIN}" serve --workers 1 ${flag.join(' ')}; echo the shell outlived it`]);
    const watched = await run(['--exit-with-parent']);
    const detached = await run([]);
    try {
      process.kill(watched.proc.pid!, 'SIGTERM');
      process.kill(detached.proc.pid!, 'SIGTERM');
      await until(async () => (await free(watched.grpcPort)) && (await free(watched.opsPort)), 30_000, 'the watched server gone');
      // its last line may reach the pipe after its ports are closed: wait for it (until fails the test on timeout)
      await until(async () => watched.lines.some((l) => l.msg === 'zonegate stopped'), 10_000, 'the watched server logged "zonegate stopped"');
      expect((await fetch(`http://127.0.0.1:${detached.opsPort}/healthz`)).status).toBe(200);
    } finally {
      watched.signal('SIGKILL');
      detached.signal('SIGKILL');
    }
  });

  it('serve --workers 2: the workers end when the primary is killed outright', { timeout: 120_000 }, async () => {
    const s = await serve(process.execPath, [BIN, 'serve', '--workers', '2']);
    try {
      await until(async () => s.lines.filter((l) => l.msg === 'worker started').length === 2, 20_000, 'two workers');
      const workers = s.lines.filter((l) => l.msg === 'worker started').map((l) => l.pid as number);
      expect(workers.every(alive)).toBe(true);
      process.kill(s.proc.pid!, 'SIGKILL');
      await until(async () => !workers.some(alive), 30_000, 'both workers gone');
      expect(await free(s.grpcPort)).toBe(true);
    } finally {
      s.signal('SIGKILL');
    }
  });
});
