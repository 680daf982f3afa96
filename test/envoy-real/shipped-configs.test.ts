/**
 * The Envoy configs shipped in envoy/ carry traffic under real Envoy, on every version in the
 * matrix: the single-zone envoy.yaml with envoy/zonegate.yaml, and the two zones of
 * docker-compose.yaml (zone-a/, zone-b/: each Envoy with its zonegate and the shipped echo app).
 * The real files are parsed and re-pointed in memory at loopback ports and at the trust material
 * the README's own setup line makes (examples/make-certs.sh, run from envoy/ as the README says);
 * the calls are the README's own `curl` lines, and each must print what the README says.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envoyMatrix, startEnvoy, type RunningEnvoy } from '../helpers/envoy.js';
import { MAKE_CERTS, requireTool } from '../helpers/tools.js';
import { startWith, type Started } from '../helpers/zonegate.js';
import { until } from '../helpers/wait.js';
import { freePorts } from '../helpers/http.js';
import { missingPromises, opensslAndCurl, pointEnvoyAt, readmeCalls, readmeSteps, runShell, shippedYaml, startEcho } from './shipped.js';

const matrix = envoyMatrix();
const run = matrix.length > 0 && requireTool(opensslAndCurl());

/** The README's "Run it" steps: the trust material, then Docker (which these tests stand in for). */
const setup = readmeSteps('### Run it', '**A cross-zone call that is allowed.**');

/** A copy of envoy/ and examples/ as far as the setup line touches them; `certs` is where that line writes. */
let dir: string;
let certs: string;
beforeAll(async () => {
  if (!run) return;
  const repo = mkdtempSync(join(tmpdir(), 'zg-shipped-'));
  mkdirSync(join(repo, 'envoy'));
  mkdirSync(join(repo, 'examples'));
  copyFileSync(MAKE_CERTS, join(repo, 'examples', 'make-certs.sh'));
  const step = setup.find((s) => s.command.includes('make-certs.sh'))!;
  const r = await runShell(step.command, join(repo, 'envoy'));
  expect(r.code, `${step.command}\n${r.stdout}${r.stderr}`).toBe(0);
  dir = join(repo, 'envoy');
  certs = join(dir, 'certs');
}, 60_000);
afterAll(() => {
  if (dir) rmSync(join(dir, '..'), { recursive: true, force: true });
});

describe('the README sets the two zones up as the compose file expects', () => {
  it('certificates into ./certs from envoy/ (where docker-compose.yaml mounts them from), then compose', () => {
    expect(setup.map((s) => s.command)).toEqual(['../examples/make-certs.sh certs', 'docker compose up --build -d', 'docker compose ps']);
    expect(shippedYaml('docker-compose.yaml').services['zonegate-a'].volumes).toContain('${ZONEGATE_CERTS:-./certs}/zone-a:/etc/zonegate/certs:ro');
  });
});

/** The README's host ports of the compose setup (docker-compose.yaml's defaults). */
const COMPOSE_HOST_PORTS = { aIngress: 10001, aEgress: 15001, bIngress: 10002, bEgress: 15002 };

/** A README command with its host ports replaced by where this run listens. */
function localize(command: string, ports: Record<number, number>): string {
  return command.replace(/\b(?:localhost|127\.0\.0\.1):(\d+)\b/g, (m, p: string) => {
    const to = ports[Number(p)];
    if (to === undefined) throw new Error(`no port for ${m} in: ${command}`);
    return `127.0.0.1:${to}`;
  });
}

describe.skipIf(!run)('the two-zone setup of envoy/ (docker-compose.yaml) under real Envoy', () => {
  const calls = readmeCalls('**A cross-zone call that is allowed.**', '**Rotation without restarts.**');

  it('the README shows the allowed call, the denied /admin call and the forged certificate, each with its promised output', () => {
    expect(calls.map((c) => c.command)).toEqual([
      'curl -s localhost:15001/api/orders',
      'curl -si localhost:15001/admin/users | grep -i x-zonegate-reason',
      "curl -sik --cert certs/clients/forged.pem --key certs/clients/forged.key https://127.0.0.1:10002/api/orders | grep -iE '^HTTP|x-zonegate-reason'",
    ]);
    expect(calls.map((c) => c.expect)).toEqual([
      [
        '"zone":"zone-b"',
        '"method":"GET"',
        '"path":"/api/orders"',
        '"x-zonegate-peer":"spiffe://zone-a.example/ns/shop/sa/frontend"', '"x-zonegate-peer-trust-domain":"zone-a.example"', '"x-zonegate-actor":"spiffe://zone-a.example/ns/shop/sa/frontend"'],
      ['ERR_POLICY_DENIED'],
      ['HTTP/1.1 401 Unauthorized', 'x-zonegate-reason: ERR_SVID_UNTRUSTED'],
    ]);
  });

  for (const bin of matrix) {
    it(`envoy ${bin.version}: the README's calls reach the verdicts it promises`, async () => {
      const [aIngress, bIngress, aEcho, bEcho, aBundle, bBundle] = await freePorts(6);
      const stops: (() => unknown)[] = [];
      try {
        // each zonegate reads its zone's directory as certs/, as the compose file mounts it
        const started: Partial<Record<'a' | 'b', Started>> = {};
        const bundlePort = { a: aBundle!, b: bBundle! };
        for (const z of ['a', 'b'] as const) {
          const base = join(dir, `zonegate-${z}-${bin.version}`);
          mkdirSync(base, { recursive: true });
          symlinkSync(join(certs, `zone-${z}`), join(base, 'certs'));
          const cfg = shippedYaml(`zone-${z}/zonegate.yaml`);
          const other = z === 'a' ? 'b' : 'a';
          cfg.federation.endpoint = { ...cfg.federation.endpoint, address: '127.0.0.1', port: bundlePort[z] };
          const peerTrust = (cfg.trust as { source?: { https_spiffe?: { url: string } } }[]).find((t) => t.source?.https_spiffe)!.source!.https_spiffe!;
          expect(peerTrust.url).toBe(`https://zonegate-${other}:8443/`);
          peerTrust.url = `https://127.0.0.1:${bundlePort[other]}/`;
          started[z] = await startWith(cfg, base);
          stops.push(() => started[z]!.close());
        }
        const zg = started as Record<'a' | 'b', Started>;
        // zone A came up before zone B's bundle endpoint: fetch it now rather than at the next refresh
        await zg.a.zg.trust.refresh('zone-b.example');
        await until(() => zg.a.zg.readiness.ready && zg.b.zg.readiness.ready, 20_000, 'both zonegates ready');
        for (const [zone, port] of [['zone-a', aEcho!], ['zone-b', bEcho!]] as const) {
          const app = await startEcho(zone, port);
          stops.push(() => app.stop());
        }

        const envoys: Partial<Record<'a' | 'b', RunningEnvoy>> = {};
        for (const z of ['a', 'b'] as const) {
          const other = z === 'a' ? 'b' : 'a';
          const config = pointEnvoyAt(shippedYaml(`zone-${z}/envoy.yaml`), {
            certDir: join(certs, `zone-${z}`),
            addresses: {
              '0.0.0.0:10000': z === 'a' ? aIngress! : bIngress!,
              '0.0.0.0:15001': 0,
              [`app-${z}:8080`]: z === 'a' ? aEcho! : bEcho!,
              [`zonegate-${z}:50051`]: zg[z].zg.grpc.port,
              [`envoy-${other}:10000`]: other === 'a' ? aIngress! : bIngress!,
            },
          });
          envoys[z] = await startEnvoy(bin, config);
          stops.push(() => envoys[z]!.stop());
        }
        const ports = {
          [COMPOSE_HOST_PORTS.aIngress]: envoys.a!.ports.ingress!,
          [COMPOSE_HOST_PORTS.aEgress]: envoys.a!.ports.egress!,
          [COMPOSE_HOST_PORTS.bIngress]: envoys.b!.ports.ingress!,
          [COMPOSE_HOST_PORTS.bEgress]: envoys.b!.ports.egress!,
        };
        for (const call of calls) {
          const r = await runShell(localize(call.command, ports), dir);
          expect(missingPromises(r.stdout, call.expect), `${call.command}\n→ ${r.stdout}${r.stderr}\nenvoy A:\n${envoys.a!.log()}\nenvoy B:\n${envoys.b!.log()}`).toEqual([]);
        }
        // and the allowed call's body is zone B's app, reached with the verified identity only
        const body = JSON.parse((await runShell(localize(calls[0]!.command, ports), dir)).stdout) as { zone: string; headers: Record<string, string> };
        expect(body.zone).toBe('zone-b');
        expect(body.headers['x-common-identity']).toBeUndefined();
        // the other direction too: zone B's egress reaches zone A, where no rule lets billing write
        const back = await runShell(`curl -si -X POST 127.0.0.1:${ports[COMPOSE_HOST_PORTS.bEgress]}/api/orders`, dir);
        expect(back.stdout).toMatch(/^HTTP\/1\.1 403/);
        expect(back.stdout.toLowerCase()).toContain('x-zonegate-reason: err_policy_no_match');
        const reads = JSON.parse((await runShell(`curl -s 127.0.0.1:${ports[COMPOSE_HOST_PORTS.bEgress]}/api/orders/17`, dir)).stdout) as { zone: string; headers: Record<string, string> };
        expect([reads.zone, reads.headers['x-zonegate-peer']]).toEqual(['zone-a', 'spiffe://zone-b.example/ns/default/dc/dc1/svc/billing']);
        // each ingress asks for a client certificate: a caller without one is refused in the
        // handshake and never reaches ext_authz (curl exits non-zero, no HTTP status line)
        for (const port of [ports[COMPOSE_HOST_PORTS.aIngress], ports[COMPOSE_HOST_PORTS.bIngress]]) {
          const none = await runShell(`curl -sik https://127.0.0.1:${port}/api/orders; echo "exit=$?"`, dir);
          expect(none.stdout).not.toMatch(/^HTTP\//m);
          expect(none.stdout).toMatch(/exit=(35|55|56)/); // TLS alert: handshake failed, or send/recv failed after it
        }
      } finally {
        for (const stop of stops.reverse()) await stop();
      }
    }, 120_000);
  }
});

describe.skipIf(!run)('the single-zone envoy/envoy.yaml with envoy/zonegate.yaml under real Envoy', () => {
  for (const bin of matrix) {
    it(`envoy ${bin.version}: zone A's frontend is allowed, zone A's forged zone-B certificate and /admin are refused`, async () => {
      const [echo] = await freePorts(1);
      const stops: (() => unknown)[] = [];
      try {
        const zg = await startWith(shippedYaml('zonegate.yaml'), dir);
        stops.push(() => zg.close());
        await until(() => zg.zg.readiness.ready, 20_000, 'zonegate ready');
        const app = await startEcho('local', echo!);
        stops.push(() => app.stop());
        // what the README copies into /etc/envoy/certs, here into a directory of the test's own
        const etc = join(dir, `etc-${bin.version}`);
        mkdirSync(etc);
        const steps = [
          `cp certs/zone-b/svid.pem certs/zone-b/svid.key ${etc}/`,
          `cat certs/zone-a/bundle.pem certs/zone-b/bundle.pem > ${etc}/federated-roots.pem`,
        ];
        for (const s of steps) expect((await runShell(s, dir)).code).toBe(0);
        const envoy = await startEnvoy(
          bin,
          pointEnvoyAt(shippedYaml('envoy.yaml'), { certDir: etc, addresses: { '0.0.0.0:10000': 0, '127.0.0.1:8080': echo!, '127.0.0.1:50051': zg.zg.grpc.port } }),
        );
        stops.push(() => envoy.stop());
        const url = `https://127.0.0.1:${envoy.ports.ingress}`;
        const allowed = await runShell(`curl -sk --cert certs/zone-a/svid.pem --key certs/zone-a/svid.key ${url}/api/orders`, dir);
        expect(allowed.stdout, `${allowed.code} ${allowed.stderr}\n${envoy.log()}`).toContain("x-zonegate-peer");
        expect(JSON.parse(allowed.stdout)).toMatchObject({ zone: 'local', headers: { 'x-zonegate-peer': 'spiffe://zone-a.example/ns/shop/sa/frontend' } });
        const forged = await runShell(`curl -sik --cert certs/clients/forged.pem --key certs/clients/forged.key ${url}/api/orders`, dir);
        expect(forged.stdout).toMatch(/^HTTP\/1\.1 401/);
        expect(forged.stdout.toLowerCase()).toContain('x-zonegate-reason: err_svid_untrusted');
        const admin = await runShell(`curl -sik --cert certs/zone-a/svid.pem --key certs/zone-a/svid.key ${url}/admin/users`, dir);
        expect(admin.stdout).toMatch(/^HTTP\/1\.1 403/);
        expect(admin.stdout.toLowerCase()).toContain('x-zonegate-reason: err_policy_denied');
        // no client certificate: Envoy's TLS refuses before anyone is asked
        expect((await runShell(`curl -sk ${url}/api/orders`, dir)).code).not.toBe(0);
      } finally {
        for (const stop of stops.reverse()) await stop();
      }
    }, 90_000);
  }
});
