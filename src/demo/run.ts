/**
 * `zonegate demo`: two zonegates, two trust domains made in memory, federated over loopback;
 * a scripted set of cross-zone calls; a table of verdicts; then both keep serving until stop().
 * With an Envoy binary, each zone runs behind its own Envoy and the calls are real HTTPS requests
 * through them; without, they are Checks over gRPC, as Envoy would send them. Uses only what
 * ships in the package (and the Envoy binary, when given).
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import { launchEnvoy, type EnvoyBinary, type LaunchedEnvoy } from '../envoy-binary.js';
import { createLogger } from '../log.js';
import { startZonegate, type Zonegate } from '../main.js';
import { checkRequestJson, demoCalls, issueWorkloads, type DemoCall } from './calls.js';
import { checkClient, type CheckClient } from './client.js';
import { envoyBootstrap } from './envoy.js';
import { send, startApp, type DemoApp } from './http.js';
import { curlText, expectedOf, notesText, outcomeOf, tableText, tryMoreText, zonesText, type Row } from './report.js';
import { freePorts } from './ports.js';
import { prepareZones, type PreparedZone } from './setup.js';
import { DEMO_ADDRESS, PORT_COUNT, portLayout, zones as makeZones, type ZoneKey, type ZonePorts } from './zones.js';

/** Written requests carry tokens of 10 minutes: re-mint them well before they run out. */
const REFRESH_MS = 5 * 60_000;
const READY_TIMEOUT_MS = 20_000;

export class DemoError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DemoError';
  }
}

export interface DemoOptions {
  /** undefined: the default ports; 0: free ports; N: N … N+9. */
  readonly portBase?: number | undefined;
  /** Put each zone behind its own Envoy, this binary (none: Checks straight over gRPC). */
  readonly envoy?: EnvoyBinary | undefined;
  readonly print: (text: string) => void;
  /** How often the written requests get fresh tokens (default 5 minutes). */
  readonly refreshMs?: number;
}

export interface RunningDemo {
  readonly root: string;
  readonly zones: Record<ZoneKey, PreparedZone>;
  readonly zonegates: Record<ZoneKey, Zonegate>;
  readonly rows: readonly Row[];
  /** Whether the calls went through Envoy. */
  readonly behindEnvoy: boolean;
  /** Stops both Envoys and zonegates and removes the temporary directory. Safe to call more than once. */
  stop(): Promise<void>;
}

/** Ports the apps and the Envoys' admin APIs take: a free one each, or any (0). */
interface AuxPorts {
  readonly app: Record<ZoneKey, number>;
  readonly admin: Record<ZoneKey, number>;
}

/**
 * Ports nothing listens on now, held open together so they differ, in the layout of --port-base,
 * and four more for the apps and the Envoys' admin APIs: chosen in one go, so that nothing the
 * demo binds to "any port" later can land on a port the layout promised to another listener.
 */
async function freeLayout(): Promise<{ layout: Record<ZoneKey, ZonePorts>; aux: AuxPorts }> {
  const ports = await freePorts(PORT_COUNT + 4, DEMO_ADDRESS);
  const [ag, ao, ab, bg, bo, bb, ai, ae, bi, be, appA, appB, adminA, adminB] = ports as number[] as [number, number, number, number, number, number, number, number, number, number, number, number, number, number];
  return {
    layout: { a: { grpc: ag, ops: ao, bundle: ab, ingress: ai, egress: ae }, b: { grpc: bg, ops: bo, bundle: bb, ingress: bi, egress: be } },
    aux: { app: { a: appA, b: appB }, admin: { a: adminA, b: adminB } },
  };
}

/** A pino destination writing synchronously to a file (one decision line per Check). */
function fileSink(path: string) {
  const fd = openSync(path, 'a', 0o600);
  return { sink: { write: (line: string) => void writeSync(fd, line) }, close: () => closeSync(fd) };
}

async function waitReady(zg: Zonegate, label: string): Promise<void> {
  const until = Date.now() + READY_TIMEOUT_MS;
  while (!zg.readiness.ready) {
    if (Date.now() > until) throw new DemoError(`demo: ${label} is not ready after ${READY_TIMEOUT_MS / 1000} s: ${zg.readiness.reason}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Writes each call's CheckRequest where the zone it goes to keeps its requests; returns them in order. */
function writeRequests(calls: readonly DemoCall[], prepared: Record<ZoneKey, PreparedZone>) {
  const zones = { a: prepared.a.zone, b: prepared.b.zone };
  return calls.map((call, i) => {
    const json = checkRequestJson(call, i + 1, zones);
    const file = join(prepared[call.to].files.requests, `${String(i + 1).padStart(2, '0')}-${call.slug}.json`);
    // write then rename, so `zonegate check` never reads half a file
    writeFileSync(`${file}.tmp`, `${JSON.stringify(json, null, 2)}\n`);
    renameSync(`${file}.tmp`, file);
    return { call, json, file };
  });
}

/** Writes the forged certificate (zone A's CA signing zone B's billing ID) for the printed curl command. */
function writeForged(root: string, calls: readonly DemoCall[]): { cert: string; key: string } {
  const svid = calls.find((c) => c.slug === 'forged-identity')!.cert!;
  const dir = join(root, 'clients');
  mkdirSync(dir, { mode: 0o700 });
  const files = { cert: join(dir, 'forged-billing.pem'), key: join(dir, 'forged-billing.key') };
  writeFileSync(files.cert, svid.certPem);
  writeFileSync(files.key, svid.keyPem, { mode: 0o600 });
  return files;
}

/**
 * One call as an HTTP request through the Envoys: from the calling zone's app into its Envoy's
 * egress, or over mTLS straight to the callee's ingress with the call's certificate and the
 * common identity of its written request.
 */
function sendThroughEnvoy(call: DemoCall, json: unknown, zones: Record<ZoneKey, PreparedZone>) {
  const callee = zones[call.to];
  if (call.viaEgress) {
    const caller = zones[call.to === 'a' ? 'b' : 'a'];
    return send(caller.zone.ports.egress, { method: call.method, path: call.path });
  }
  const token = (json as { attributes: { request: { http: { headers: Record<string, string> } } } }).attributes.request.http.headers['x-common-identity'];
  return send(callee.zone.ports.ingress, {
    method: call.method,
    path: call.path,
    headers: { host: call.host, ...(token ? { 'x-common-identity': token } : {}) },
    tls: { ...(call.cert ? { cert: call.cert } : {}), rootPem: callee.ca.certPem, trustDomain: callee.zone.trustDomain },
  });
}

/**
 * What one run has started, stopped in reverse order of need: the Envoys first, so nothing new
 * reaches the apps and zonegates while they stop; the temporary directory (keys included) last.
 */
class Started {
  readonly clients: CheckClient[] = [];
  readonly envoys: LaunchedEnvoy[] = [];
  readonly apps: DemoApp[] = [];
  readonly zonegates: Partial<Record<ZoneKey, Zonegate>> = {};
  readonly sinks: (() => void)[] = [];
  timer: NodeJS.Timeout | undefined;
  private stopped: Promise<void> | undefined;
  // a last resort when the process ends another way (an uncaught error): no keys left behind
  private readonly onExit = () => rmSync(this.root, { recursive: true, force: true });

  constructor(readonly root: string) {
    process.once('exit', this.onExit);
  }

  /** Safe to call more than once. */
  stop(): Promise<void> {
    return (this.stopped ??= (async () => {
      clearInterval(this.timer);
      for (const c of this.clients) c.close();
      await Promise.all(this.envoys.map((e) => e.stop()));
      await Promise.all(this.apps.map((a) => a.close()));
      await Promise.all(Object.values(this.zonegates).map((zg) => zg.stop(0)));
      for (const close of this.sinks) close();
      rmSync(this.root, { recursive: true, force: true });
      process.removeListener('exit', this.onExit);
    })());
  }
}

/** Starts both zones' zonegates, each logging to its zone's file; resolves once both are ready. */
async function startZonegates(prepared: Record<ZoneKey, PreparedZone>, run: Started): Promise<Record<ZoneKey, Zonegate>> {
  for (const key of ['a', 'b'] as const) {
    const { zone, files } = prepared[key];
    const out = fileSink(files.log);
    run.sinks.push(out.close);
    try {
      run.zonegates[key] = await startZonegate(loadConfig(files.config, {}), { log: createLogger('info', out.sink) });
    } catch (err) {
      const why = (err as Error).message;
      const hint = /EADDRINUSE|address/i.test(why)
        ? ` (ports ${zone.ports.grpc}, ${zone.ports.ops}, ${zone.ports.bundle}: is something listening there? --port-base N uses N…N+9, --port-base 0 free ports)`
        : '';
      throw new DemoError(`demo: ${zone.label} did not start: ${why}${hint}`, { cause: err });
    }
  }
  const zg = run.zonegates as Record<ZoneKey, Zonegate>;
  // zone A came up before zone B's bundle endpoint existed: fetch it now, not at the next refresh
  await zg.a.trust.refresh(prepared.b.zone.trustDomain);
  await waitReady(zg.a, 'zone A');
  await waitReady(zg.b, 'zone B');
  return zg;
}

/** Puts each zone's app behind its own Envoy (ingress for callers, egress for the app's calls out). */
async function startEnvoys(bin: EnvoyBinary, prepared: Record<ZoneKey, PreparedZone>, calls: readonly DemoCall[], aux: AuxPorts, run: Started): Promise<void> {
  for (const key of ['a', 'b'] as const) {
    const self = prepared[key];
    const app = await startApp(self.zone.zone, aux.app[key]);
    run.apps.push(app);
    const other = prepared[key === 'a' ? 'b' : 'a'];
    // the host the caller's app asks for: the service of the other zone its calls go to
    const host = calls.find((c) => c.to === other.zone.key)!.host;
    const roots = join(self.files.dir, 'envoy-client-roots.pem');
    writeFileSync(roots, self.ca.certPem + other.ca.certPem);
    const label = `${self.zone.label}'s Envoy`;
    try {
      const bootstrap = envoyBootstrap(self, other.zone, app.port, host, roots);
      const comment = `${label} for this run of \`zonegate demo\`; removed when the demo stops.`;
      run.envoys.push(await launchEnvoy(bin, bootstrap, { dir: self.files.dir, label, comment, adminPort: aux.admin[key] }));
    } catch (err) {
      const z = self.zone;
      throw new DemoError(`demo: ${(err as Error).message} (ports ${z.ports.ingress}, ${z.ports.egress}: --port-base N uses N…N+9, --port-base 0 free ports)`, { cause: err });
    }
  }
}

type Written = ReturnType<typeof writeRequests>;

/** Makes every call, in order: as HTTP requests through the Envoys, or as Checks over gRPC. */
async function makeCalls(requests: Written, prepared: Record<ZoneKey, PreparedZone>, behindEnvoy: boolean, run: Started): Promise<Row[]> {
  const rows: Row[] = [];
  if (behindEnvoy) {
    for (const [i, r] of requests.entries()) rows.push({ index: i + 1, call: r.call, verdict: await sendThroughEnvoy(r.call, r.json, prepared) });
    return rows;
  }
  const client = { a: checkClient(DEMO_ADDRESS, prepared.a.zone.ports.grpc), b: checkClient(DEMO_ADDRESS, prepared.b.zone.ports.grpc) };
  run.clients.push(client.a, client.b);
  for (const [i, r] of requests.entries()) rows.push({ index: i + 1, call: r.call, verdict: await client[r.call.to].check(r.json) });
  return rows;
}

/** Prints the zones, the table of verdicts, the notes and what to try next; warns about unexpected verdicts. */
function printReport(o: DemoOptions, run: { root: string; prepared: Record<ZoneKey, PreparedZone>; requests: Written; rows: readonly Row[]; forged: { cert: string; key: string } | undefined; refreshMs: number }): void {
  const behindEnvoy = o.envoy !== undefined;
  const example = run.requests.find((r) => r.call.expect === 'allow') ?? run.requests[0]!;
  o.print(
    [
      zonesText(run.prepared, o.envoy),
      tableText(run.rows, behindEnvoy),
      notesText(run.rows, behindEnvoy),
      ...(run.forged ? [curlText({ zones: run.prepared, forged: run.forged })] : []),
      tryMoreText({ root: run.root, zones: run.prepared, example: { zone: example.call.to, file: example.file }, refreshEvery: run.refreshMs }),
    ].join('\n\n'),
  );
  const unexpected = run.rows.filter((r) => outcomeOf(r.verdict) !== expectedOf(r.call, behindEnvoy));
  if (unexpected.length > 0) o.print(`\nwarning: ${unexpected.length} call(s) did not get the verdict the scenario expects (marked above)`);
}

/** Runs the demo up to the point where both zones serve and the table is printed. */
export async function runDemo(o: DemoOptions): Promise<RunningDemo> {
  const root = mkdtempSync(join(tmpdir(), 'zonegate-demo-'));
  const run = new Started(root);
  try {
    const { layout, aux } = o.portBase === 0 ? await freeLayout() : { layout: portLayout(o.portBase), aux: { app: { a: 0, b: 0 }, admin: { a: 0, b: 0 } } };
    const prepared = await prepareZones(root, makeZones(layout, o.envoy !== undefined));
    const calls = demoCalls(await issueWorkloads({ a: prepared.a.ca, b: prepared.b.ca }));
    const zonegates = await startZonegates(prepared, run);
    const requests = writeRequests(calls, prepared);
    let forged: { cert: string; key: string } | undefined;
    if (o.envoy) {
      await startEnvoys(o.envoy, prepared, calls, aux, run);
      forged = writeForged(root, calls);
    }
    const rows = await makeCalls(requests, prepared, o.envoy !== undefined, run);
    // written requests carry tokens that expire: re-mint them while the demo runs
    const refreshMs = o.refreshMs ?? REFRESH_MS;
    run.timer = setInterval(() => writeRequests(calls, prepared), refreshMs);
    run.timer.unref();
    printReport(o, { root, prepared, requests, rows, forged, refreshMs });
    return { root, zones: prepared, zonegates, rows, behindEnvoy: o.envoy !== undefined, stop: () => run.stop() };
  } catch (err) {
    await run.stop();
    throw err;
  }
}
