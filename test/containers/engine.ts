/**
 * Whether a Docker engine (and the compose plugin testcontainers drives) is reachable. The
 * containers suite runs only then; otherwise it reports itself as not run, with the reason —
 * it is never counted as passing.
 */
import { spawnSync } from 'node:child_process';
import { getContainerRuntimeClient } from 'testcontainers';

export interface Engine {
  readonly available: boolean;
  readonly why: string;
}

export async function dockerEngine(): Promise<Engine> {
  try {
    const client = await Promise.race([
      getContainerRuntimeClient(),
      new Promise<never>((_r, reject) => setTimeout(() => reject(new Error('no answer within 20 s')), 20_000)),
    ]);
    const compose = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8', timeout: 20_000 });
    if (compose.status !== 0) return { available: false, why: `"docker compose" is not available (${compose.error?.message ?? compose.stderr.trim()})` };
    return { available: true, why: `Docker engine ${client.info.containerRuntime.serverVersion} at ${client.info.containerRuntime.host}` };
  } catch (err) {
    return { available: false, why: `no Docker engine is reachable (${(err as Error).message.split('\n')[0]})` };
  }
}
