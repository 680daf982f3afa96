/**
 * `zonegate demo` (what `npm start` runs): the two-zone demo in the foreground until SIGINT or
 * SIGTERM, or until the process that started it goes away (npm does not forward SIGTERM), which
 * stop both zonegates (and their Envoys) and remove the demo's temporary directory.
 * With an Envoy binary found (ZONEGATE_ENVOY_BIN, the project's .envoy venvs, PATH) each zone runs
 * behind its own Envoy; without one, one line says how to get it.
 */
import { ENVOY_HINT, findEnvoy, type EnvoyBinary } from '../envoy-binary.js';
import { DemoError, runDemo, type RunningDemo } from '../demo/run.js';
import { parsePortBase } from '../demo/zones.js';
import { UsageError } from './errors.js';
import { watchParent } from './parent.js';

export interface DemoCliOptions {
  portBase?: string;
}

/** Starts the demo; resolves once the table is printed (the servers keep the process alive). */
export async function runDemoCommand(opts: DemoCliOptions, print: (s: string) => void): Promise<void> {
  const raw = opts.portBase ?? process.env.ZONEGATE_DEMO_PORT_BASE;
  let portBase: number | undefined;
  try {
    portBase = raw === undefined || raw === '' ? undefined : parsePortBase(raw);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  // Installed before the zones start, so a Ctrl-C during startup still stops them and cleans up.
  let demo: RunningDemo | undefined;
  let signalled: string | undefined;
  const shutdown = () => {
    if (!demo || !signalled) return;
    process.stderr.write(`demo: ${signalled}: stopping both zones\n`);
    void demo.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`demo: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: string) => {
    signalled ??= signal;
    shutdown();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const envoy = demoEnvoy(print);
  watchParent(() => onSignal('parent process gone'));
  try {
    demo = await runDemo({ portBase, print, envoy });
  } catch (err) {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    if (err instanceof DemoError) throw new UsageError(err.message);
    throw err;
  }
  shutdown();
}

/** The Envoy the demo runs its zones behind, or undefined after one line saying how to get one. */
function demoEnvoy(print: (s: string) => void): EnvoyBinary | undefined {
  const envoy = findEnvoy();
  if (!envoy) print(`No Envoy found, so the demo sends its Checks to zonegate over gRPC; to run it through real Envoy: ${ENVOY_HINT}.\n`);
  return envoy;
}
