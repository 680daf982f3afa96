/**
 * What every zonegate process does the same way, whether it serves alone (`serve --workers 1`) or
 * is the primary or a worker of `serve --workers N`: the startup line, how a stop is asked for
 * (signals), and the order of a drain.
 */
import type { LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import type { Readiness } from './readiness.js';
import type { Logger } from './log.js';

/** Why a process stops: a signal, or (a worker) its primary going away. */
export type StopCause = NodeJS.Signals | 'disconnect';

/**
 * How long a stop keeps answering while health says NOT_SERVING. SIGTERM is an orchestrator's
 * "stop": proxies and load balancers need the configured delay to move traffic away. SIGINT is a
 * person at a terminal, and a worker whose primary is gone is routed nothing more: no delay.
 */
export function drainDelayMs(cause: StopCause, config: Config): number {
  return cause === 'SIGTERM' ? config.server.drainDelaySeconds * 1000 : 0;
}

export interface DrainSteps {
  readonly readiness: Readiness;
  readonly log: Logger;
  readonly delayMs: number;
  /** Stops taking calls and waits for those in flight (up to the grace). */
  calls(): Promise<void>;
  /** Closes what is left (ops server, other listeners). */
  rest(): Promise<unknown>;
}

/**
 * The one shutdown order: NOT_SERVING (health and /readyz, so traffic moves away), the drain
 * delay during which calls are still answered, then no new calls and the wait for those in
 * flight, then everything else; "zonegate stopped" once all is closed.
 */
export async function drain(s: DrainSteps): Promise<void> {
  s.readiness.set('NOT_SERVING', 'shutting down');
  if (s.delayMs > 0) await new Promise((r) => setTimeout(r, s.delayMs));
  await s.calls();
  await s.rest();
  s.log.info('zonegate stopped');
}

export interface SignalHandling {
  readonly log: Logger;
  /** The config running now (its drain delay). */
  config(): Config;
  /** Drains (src/lifecycle.ts drain); the process exits when it resolves. */
  stop(delayMs: number, cause: StopCause): Promise<void>;
  /** SIGHUP: reload the config (absent: started without --config, nothing to reload). */
  reload?: (() => void) | undefined;
  /** More fields for the "draining in-flight calls" line. */
  fields?: () => Record<string, unknown>;
}

/** Stops the process once, for whatever cause; later calls do nothing. */
export type Stop = (cause: StopCause, exitCode?: number) => void;

/**
 * Installs the process's signal handling: SIGTERM and SIGINT drain and exit 0 (a second one ends
 * the process at once: the handler is installed once, then the default action applies), SIGHUP
 * reloads. Returns the same stop for the causes that are not signals (a worker's primary going
 * away or asking by message, a crash loop).
 */
export function handleSignals(h: SignalHandling): Stop {
  let stopping = false;
  const stop: Stop = (cause, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    const delayMs = drainDelayMs(cause, h.config());
    h.log.info({ signal: cause, drainDelayMs: delayMs, ...h.fields?.() }, 'draining in-flight calls');
    void h.stop(delayMs, cause).then(() => process.exit(exitCode));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // SIGHUP would end the process by default: reload instead
  process.on('SIGHUP', () => (h.reload ? h.reload() : h.log.warn('SIGHUP: started without --config, nothing to reload')));
  return stop;
}

/** Where a process listens once started (null: that listener is not configured). */
export interface Started {
  readonly grpcPort: number;
  readonly opsPort: number;
  readonly bundleEndpointPort: number | null;
  readonly httpAuthzPort: number | null;
  readonly ready: boolean;
  /** The primary of serve --workers N: how many. */
  readonly workers?: number;
}

/** The startup line: the config, where each listener is, what was loaded, ready or not. */
export function logStarted(log: Logger, msg: 'zonegate started' | 'worker started', loaded: LoadedConfig, s: Started): void {
  const { config } = loaded;
  log.info(
    {
      config: loaded.origin,
      ...(s.workers !== undefined ? { workers: s.workers } : {}),
      grpcPort: s.grpcPort,
      unixSocket: config.server.grpc.unixSocket ?? null,
      opsPort: s.opsPort,
      bundleEndpointPort: s.bundleEndpointPort,
      httpAuthzPort: s.httpAuthzPort,
      rules: config.rules.length,
      peerSource: config.peer.source,
      ready: s.ready,
    },
    msg,
  );
}
