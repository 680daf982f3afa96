/** Waiting in the tests: a pause, polling until something holds, and how long the event loop was held. */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** A pause of `ms`: Node's own (bench/ uses the same, not a copy). */
export { sleep };

/**
 * Polls `fn` every `every` ms until it returns a truthy value, and resolves with it; a throw counts
 * as "not yet". After `ms` it rejects naming `what` and the last value or error.
 *
 *   const port = await until(() => readPort(file), 5000, 'the port file');
 */
export async function until<T>(fn: () => Promise<T> | T, ms = 5000, what = 'condition', every = 50): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      last = await fn();
      if (last) return last as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await sleep(every);
  }
}

/**
 * The longest the event loop was held, in ms, while `work` ran (node:perf_hooks'
 * monitorEventLoopDelay at 1 ms resolution): what a server in this process could not answer
 * anyone else for. A loaded machine adds its own delay, so callers take the best of a few runs.
 */
export async function loopDelay(work: () => Promise<unknown>): Promise<number> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  try {
    await work();
    await sleep(3); // one more sample after the work
  } finally {
    h.disable();
  }
  return h.max / 1e6;
}
