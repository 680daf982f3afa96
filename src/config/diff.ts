/**
 * Comparing two configs: what a reload changed, so each part of the running process is kept
 * when its settings are the same (no refetch, no lost cache, the same watchers) and rebuilt when
 * they are not, and which changes need a restart. The one place two configs are compared.
 */
import type { Config } from './schema.js';
import { trustSlice } from '../federation/schema.js';
import { identitySlice } from '../identity/schema.js';

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Config keys bound once, at startup (the listeners): a change there needs a restart. */
const LISTENER_KEYS: ReadonlyArray<[string, (c: Config) => unknown]> = [
  ['server.grpc', (c) => c.server.grpc],
  ['server.ops', (c) => c.server.ops],
  ['server.http', (c) => c.server.http],
  ['federation.endpoint', (c) => c.federation.endpoint],
];

export interface ConfigChanges {
  /**
   * Anything the trust manager reads (federation/schema.ts trustSlice: trust domains, federation
   * settings, limits.maxBundleKeys): a new trust manager, which adopts unchanged domains (trustSourceKey).
   */
  readonly trust: boolean;
  /** Other local SVID files: a new watcher. */
  readonly identity: boolean;
  /**
   * Anything the carried-identity phase reads (identity/schema.ts identitySlice: commonIdentity,
   * fetch settings, the chain and bundle limits, the cache sizes): a new phase (new OIDC keys, new caches).
   */
  readonly carried: boolean;
  /** Listener keys that changed: applied at the next restart only. */
  readonly restartNeeded: readonly string[];
}

/** What changed from `before` (running) to `after` (being loaded). */
export function configChanges(before: Config, after: Config): ConfigChanges {
  return {
    trust: !same(trustSlice(before), trustSlice(after)),
    identity: before.identity?.cert !== after.identity?.cert || before.identity?.key !== after.identity?.key,
    carried: !same(identitySlice(before), identitySlice(after)),
    restartNeeded: LISTENER_KEYS.filter(([, get]) => !same(get(before), get(after))).map(([k]) => k),
  };
}
