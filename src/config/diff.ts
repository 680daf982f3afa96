/**
 * Comparing two configs: what a reload changed, so each part of the running process is kept
 * when its settings are the same (no refetch, no lost cache, the same watchers) and rebuilt when
 * they are not, and which changes need a restart. The one place two configs are compared.
 */
import type { Config } from './schema.js';

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Config keys bound once, at startup (the listeners): a change there needs a restart. */
const LISTENER_KEYS: ReadonlyArray<[string, (c: Config) => unknown]> = [
  ['server.grpc', (c) => c.server.grpc],
  ['server.ops', (c) => c.server.ops],
  ['server.http', (c) => c.server.http],
  ['federation.endpoint', (c) => c.federation.endpoint],
];

export interface ConfigChanges {
  /** Trust domains or federation settings: a new trust manager (which adopts unchanged domains: federation/schema.ts trustSourceKey). */
  readonly trust: boolean;
  /** Other local SVID files: a new watcher. */
  readonly identity: boolean;
  /** Common identity, fetch, limits or cache settings: a new carried-identity phase (new OIDC keys, new caches). */
  readonly carried: boolean;
  /** Listener keys that changed: applied at the next restart only. */
  readonly restartNeeded: readonly string[];
}

/** What changed from `before` (running) to `after` (being loaded). */
export function configChanges(before: Config, after: Config): ConfigChanges {
  return {
    trust: !same([before.trust, before.federation], [after.trust, after.federation]),
    identity: before.identity?.cert !== after.identity?.cert || before.identity?.key !== after.identity?.key,
    // the token verifiers' limits and caches come from limits and cache (identity/carried.ts)
    carried: !same([before.commonIdentity, before.federation.fetch, before.limits, before.cache], [after.commonIdentity, after.federation.fetch, after.limits, after.cache]),
    restartNeeded: LISTENER_KEYS.filter(([, get]) => !same(get(before), get(after))).map(([k]) => k),
  };
}
