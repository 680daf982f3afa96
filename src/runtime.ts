/**
 * Everything one config builds besides the listeners: trust material, zonegate's own identity,
 * the carried-identity phase and the decision state. Startup builds the first Runtime; a config
 * reload builds the next one beside it with the same function and swaps it in only once it is
 * complete, so a Check sees the old state or the new one, never a mix. Parts whose configuration
 * did not change are carried over (bundles, the local SVID watcher, OIDC keys), so a reload costs
 * no refetch and loses no cached key.
 */
import type { Config } from './config/schema.js';
import type { DecisionState } from './pipeline/state.js';
import { LocalIdentity } from './federation/identity.js';
import { TrustManager, type TrustManagerOptions } from './federation/manager.js';
import { createCarriedPhase, type CarriedPhase } from './identity/phase.js';
import type { Logger } from './log.js';

export interface Runtime {
  readonly config: Config;
  readonly trust: TrustManager;
  readonly identity?: LocalIdentity | undefined;
  readonly carried?: CarriedPhase | undefined;
  readonly state: DecisionState;
}

/** Builds the decision state from the parts (pipeline/state.ts's buildDecisionState, for startup and reload alike). */
export type BuildState = (config: Config, trust: TrustManager, identity?: LocalIdentity, carried?: CarriedPhase) => DecisionState;

export interface RuntimeDeps {
  readonly log: Logger;
  readonly build: BuildState;
  readonly trustOptions?: TrustManagerOptions;
  /** The running runtime, on a reload. */
  readonly previous?: Runtime | undefined;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Builds a Runtime for a validated config. Throws (having stopped whatever it started) when a file
 * cannot be read or parsed, or — on a reload — when a required trust domain it had to fetch has no
 * bundle: the running runtime then stays as it is.
 */
export async function buildRuntime(config: Config, deps: RuntimeDeps): Promise<Runtime> {
  const { log, previous } = deps;
  const started: Array<{ stop(): void }> = [];
  try {
    // zonegate's own SVID: the same files keep the same watcher (and the rotation it follows)
    let identity: LocalIdentity | undefined;
    if (config.identity) {
      const p = previous?.identity;
      if (p && p.certPath === config.identity.cert && p.keyPath === config.identity.key) identity = p;
      else {
        identity = new LocalIdentity(config.identity.cert, config.identity.key, (message) =>
          log.warn({ detail: message }, 'local SVID not reloaded: keeping the current one'),
        );
        started.push(identity);
        identity.on('change', (svid: { id: { value: string } }) => log.info({ spiffeId: svid.id.value }, 'local SVID rotated'));
        identity.watch();
        log.info({ spiffeId: identity.current.id.value }, 'local SVID loaded');
      }
    }

    let trust: TrustManager;
    if (previous && same([previous.config.trust, previous.config.federation], [config.trust, config.federation])) trust = previous.trust;
    else {
      trust = new TrustManager(config, deps.trustOptions);
      started.push(trust);
      if (previous) trust.adopt(previous.trust);
      await trust.start();
      if (previous) {
        const missing = trust.fetched.filter((d) => d.required && !d.hasBundle);
        if (missing.length > 0)
          throw new Error(`trust: no bundle could be loaded for ${missing.map((d) => `"${d.trustDomain}" (${d.lastError ?? 'loading'})`).join(', ')}`);
      }
    }

    let carried: CarriedPhase | undefined;
    if (
      previous &&
      trust === previous.trust &&
      identity === previous.identity &&
      same([previous.config.commonIdentity, previous.config.federation.fetch], [config.commonIdentity, config.federation.fetch])
    )
      carried = previous.carried;
    else {
      carried = createCarriedPhase(config, trust.bundles, identity, (message) => log.warn({ detail: message }, 'identity keys not refreshed'));
      if (carried) started.push(carried);
      await carried?.start();
    }

    return { config, trust, identity, carried, state: deps.build(config, trust, identity, carried) };
  } catch (err) {
    for (const s of started) s.stop();
    throw err;
  }
}

/** Stops the parts of `old` that `next` did not carry over (after the swap). */
export function retireRuntime(old: Runtime, next: Runtime): void {
  if (old.trust !== next.trust) old.trust.stop();
  if (old.carried !== next.carried) old.carried?.stop();
  if (old.identity && old.identity !== next.identity) old.identity.stop();
}

/** Stops every part (shutdown). */
export function stopRuntime(r: Runtime): void {
  r.trust.stop();
  r.carried?.stop();
  r.identity?.stop();
}
