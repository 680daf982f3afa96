/**
 * `config validate` and `serve` agree: one broken config per check serve performs before it
 * binds (test/config/broken/*.yaml, each naming on its first line the problem it must produce).
 * Both run as real processes; serve must exit 2 with the same problems and never start.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';

const DIR = join(import.meta.dirname, 'broken');
const CASES = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end (killed after 30 s: a serve that started would run forever). */
function run(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      cwd: DIR,
      env: { ...process.env, ZONEGATE_GRPC_PORT: '0', ZONEGATE_OPS_PORT: '0', ZONEGATE_GRPC_ADDRESS: '127.0.0.1', ZONEGATE_OPS_ADDRESS: '127.0.0.1' },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    // 'close', not 'exit': the output may still be in the pipes when the process has exited
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The problem lines of a ConfigError message ("  file:line: key: …"). */
const problems = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('  '))
    .map((l) => l.trim());

describe.concurrent('config validate and serve agree on broken configs', () => {
  it('the corpus covers the checks serve performs', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(25);
  });

  it.each(CASES)('%s', { timeout: 90_000 }, async (file) => {
    // the first line: "# expect: " and the problem's text, where ".*" stands for anything
    const want = readFileSync(join(DIR, file), 'utf8').split('\n')[0]!.replace(/^# expect: /, '');
    const expected = new RegExp(`^${want.split('.*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}`);
    const [validate, serve] = await Promise.all([run(['config', 'validate', file]), run(['serve', '--workers', '1', '--config', file])]);
    expect(validate.stdout).not.toMatch(/valid/);
    expect(validate.code).toBe(2);
    const found = problems(validate.stderr);
    expect(found.some((p) => expected.test(p)), `${file}: ${validate.stderr}`).toBe(true);
    // every problem names the file and a line (the policy file's own problems name that file)
    for (const p of found) expect(p).toMatch(/^[^:]+:\d+: /);
    expect(serve.code, serve.stderr).toBe(2);
    expect(serve.stdout).not.toMatch(/zonegate started/);
    expect(problems(serve.stderr)).toEqual(found);
  });

  it('--no-files leaves out only the files (a config for another machine): the other checks still run', async () => {
    expect(await run(['config', 'validate', '--no-files', 'bundle-missing.yaml'])).toMatchObject({ code: 0, stdout: 'bundle-missing.yaml: valid\n' });
    const dup = await run(['config', 'validate', '--no-files', 'duplicate-rule.yaml']);
    expect(dup.code).toBe(2);
    expect(problems(dup.stderr)).toEqual([expect.stringMatching(/^duplicate-rule\.yaml:6: rules\[1\]\.name: duplicate rule name "a"/)]);
  });

  it('the example config is valid for both', async () => {
    const v = await run(['config', 'validate', join(import.meta.dirname, '../../examples/zonegate.yaml')]);
    expect(v).toMatchObject({ code: 0, stdout: expect.stringMatching(/: valid\n$/) });
  });
});
