/**
 * `zonegate demo` behind real Envoy, on every version in the matrix: the process a user starts,
 * with ZONEGATE_ENVOY_BIN naming the binary. Its table shows each call as the client saw it
 * through the Envoys; the curl commands it prints are run with this machine's curl and do what
 * they say; SIGTERM takes its Envoys with it, and so does the demo being killed outright.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { until } from '../helpers/wait.js';
import { BIN } from '../helpers/cli.js';
import { envoyMatrix } from '../helpers/envoy.js';
import { probe, requireTool } from '../helpers/tools.js';
import { runShell } from './shipped.js';

const matrix = envoyMatrix();
const run = matrix.length > 0 && requireTool(probe('curl', 'curl', ['--version']));

/** [call, via, verdict, reason] of every row, in order. */
const EXPECTED = [
  ['allowed', 'app A → Envoy A egress → Envoy B ingress', 'allow', 'HTTP 200'],
  ['allowed, other way', 'app B → Envoy B egress → Envoy A ingress', 'allow', 'HTTP 200'],
  ['forged identity', 'mTLS straight to Envoy A ingress', 'deny', 'HTTP 401 ERR_SVID_UNTRUSTED'],
  ['wrong zone', 'mTLS straight to Envoy A ingress', 'deny', 'HTTP 403 ERR_POLICY_NO_MATCH'],
  ['no rule allows', 'mTLS straight to Envoy B ingress', 'deny', 'HTTP 403 ERR_POLICY_NO_MATCH'],
  ['deny rule', 'app A → Envoy A egress → Envoy B ingress', 'deny', 'HTTP 403 ERR_POLICY_DENIED'],
  ['expired SVID', 'mTLS straight to Envoy B ingress', 'deny', 'HTTP 401 ERR_SVID_EXPIRED'],
  ['expired token', 'mTLS straight to Envoy B ingress', 'deny', 'HTTP 401 ERR_TOKEN_EXPIRED'],
  ['stolen token', 'mTLS straight to Envoy B ingress', 'deny', 'HTTP 401 ERR_TOKEN_PEER_MISMATCH'],
  ['no common identity', 'mTLS straight to Envoy B ingress', 'deny', 'HTTP 401 ERR_NO_CARRIED_IDENTITY'],
];

/** Pids of processes whose command line names `text` (the demo's temporary directory). */
function processesNaming(text: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text)) pids.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return pids;
}

/** Starts the demo behind `bin` and resolves with its output once it serves. */
function startDemo(binPath: string) {
  const proc = spawn(process.execPath, [BIN, 'demo', '--port-base', '0'], { cwd: PACKAGE_ROOT, detached: true, env: { ...process.env, ZONEGATE_ENVOY_BIN: binPath } });
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  const kill = (sig: NodeJS.Signals) => {
    try {
      process.kill(-proc.pid!, sig);
    } catch {
      /* gone */
    }
  };
  return new Promise<{ out: string; stderr: () => string; exited: Promise<number | null>; pid: number; kill: typeof kill }>((resolve, reject) => {
    const timer = setTimeout(() => {
      kill('SIGKILL');
      reject(new Error(`the demo printed no instructions in 120 s; stdout: ${out}\nstderr: ${err}`));
    }, 120_000);
    proc.stdout.on('data', (d) => {
      out += d;
      if (/^Ctrl-C stops both zones/m.test(out)) {
        clearTimeout(timer);
        resolve({ out, stderr: () => err, exited: exit, pid: proc.pid!, kill });
      }
    });
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited ${code} before serving; stdout: ${out}\nstderr: ${err}`));
    });
  });
}

const rootOf = (out: string) => /^Ctrl-C stops both zones and removes (\S+)\.$/m.exec(out)![1]!;

describe.skipIf(!run)('zonegate demo behind real Envoy', () => {
  for (const bin of matrix) {
    it(`envoy ${bin.version}: every call gets its verdict through the Envoys, the printed curl commands work, SIGTERM stops the Envoys too`, async () => {
      const d = await startDemo(bin.path);
      try {
        expect(d.out).toContain(`Each zone runs behind its own Envoy ${bin.version}`);
        expect(d.out).not.toMatch(/No Envoy found|warning:|expected /);
        const lines = d.out.split('\n');
        const start = lines.findIndex((l) => /^ {2}# +call +from +to +via +verdict +reason$/.test(l));
        expect(start, 'the table header').toBeGreaterThan(-1);
        const rows = lines.slice(start + 2, start + 13).map((l) => l.trim().split(/ {2,}/));
        expect(rows.slice(0, 10).map((r) => [r[1], r[4], r[5], r[6]])).toEqual(EXPECTED);
        // no client certificate: Envoy's TLS ends it; zonegate is never asked
        expect(rows[10]!.slice(1, 2)).toEqual(['no identity']);
        expect(rows[10]!.slice(5)).toEqual(['refused', expect.stringMatching(/^TLS: /)]);
        // what the apps received through the Envoys, as zonegate set it
        expect(d.out).toMatch(/^ {2}x-zonegate-peer: +spiffe:\/\/mesh-a\.example\/ns\/shop\/sa\/frontend$/m);
        expect(d.out).toMatch(/^ {2}x-zonegate-actor: +spiffe:\/\/7c9e6679-7425-40de-944b-e07fc1f90ae7\.consul\/ns\/default\/dc\/dc1\/svc\/billing$/m);

        // the curl commands, pasted as printed
        const curls = [...d.out.matchAll(/^ {4}(curl -s.*)$/gm)].map((m) => m[1]!);
        expect(curls).toHaveLength(3);
        const [allow, admin, forged] = await Promise.all(curls.map((c) => runShell(c, PACKAGE_ROOT)));
        expect(JSON.parse(allow!.stdout)).toMatchObject({
          zone: 'mesh-b',
          method: 'POST',
          path: '/api/invoices',
          headers: { 'x-zonegate-peer': 'spiffe://mesh-a.example/ns/shop/sa/frontend', 'x-zonegate-peer-trust-domain': 'mesh-a.example' },
        });
        expect(admin!.stdout).toMatch(/^HTTP\/1\.1 403 /);
        expect(admin!.stdout).toMatch(/^x-zonegate-reason: ERR_POLICY_DENIED\r?$/m);
        expect(forged!.stdout).toMatch(/^HTTP\/1\.1 401 /);
        expect(forged!.stdout).toMatch(/^x-zonegate-reason: ERR_SVID_UNTRUSTED\r?$/m);
        expect(curls[2]).toContain(`--cert ${rootOf(d.out)}/clients/forged-billing.pem`);

        const root = rootOf(d.out);
        const envoys = processesNaming(`${root}/zone-`);
        expect(envoys.length).toBeGreaterThanOrEqual(2);
        process.kill(d.pid, 'SIGTERM');
        expect(await d.exited).toBe(0);
        expect(existsSync(root)).toBe(false);
        expect(processesNaming(root)).toEqual([]);
      } finally {
        d.kill('SIGKILL');
      }
    }, 180_000);
  }

  it(`killed outright, the demo leaves no Envoy behind (envoy ${matrix[0]?.version})`, async () => {
    const d = await startDemo(matrix[0]!.path);
    const root = rootOf(d.out);
    try {
      expect(processesNaming(`${root}/zone-`).length).toBeGreaterThanOrEqual(2);
      // only the demo's own process: its Envoys get no signal, their watchdogs must notice
      process.kill(d.pid, 'SIGKILL');
      await d.exited;
      await until(() => processesNaming(`${root}/zone-`).length === 0, 15_000, 'the Envoys to exit after the demo was killed');
    } finally {
      d.kill('SIGKILL');
      await runShell(`rm -rf '${root}'`, PACKAGE_ROOT);
    }
  }, 180_000);
});
