/**
 * Everything one config builds besides the listeners: trust material, zonegate's own identity,
 * the carried-identity phase and the decision state. Startup builds the first Runtime; a config
 * reload builds the next one beside it with the same function and swaps it in only once it is
 * complete, so a Check sees the old state or the new one, never a mix. Parts whose configuration
 * did not change (config/diff.ts) are carried over (bundles, the local SVID watcher, OIDC keys),
 * so a reload costs no refetch and loses no cached key; the carried phase only while the files it
 * read are unchanged too (a reload is how a replaced WirePact CA or user store takes effect).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { configChanges } from './config/diff.js';
import { carriedFiles } from './config/reload.js';
import type { Config } from './config/schema.js';
import { buildDecisionState, type DecisionState } from './pipeline/state.js';
import { LocalIdentity } from './svid/local-identity.js';
import { TrustManager, type TrustManagerOptions } from './federation/manager.js';
import { createCarriedPhase, type CarriedPhase } from './identity/phase.js';
import type { Logger } from './log.js';
import type { PolicyOptions } from './policy/rules.js';
import type { KeyRing } from './rewrite/keys.js';

export interface Runtime {
  readonly config: Config;
  readonly trust: TrustManager;
  readonly identity?: LocalIdentity | undefined;
  readonly carried?: CarriedPhase | undefined;
  /** The contents of the files the carried phase read when it was built (carriedFilesDigest). */
  readonly carriedFiles?: string | undefined;
  readonly state: DecisionState;
}

/**
 * A digest of those files' contents (or why one cannot be read): a reload that finds them changed
 * builds a new phase, so a CA replaced or a user removed in place stops counting at once, as the
 * same change with a new file name would.
 */
function carriedFilesDigest(config: Config): string {
  const h = createHash('sha256');
  for (const f of carriedFiles(config)) {
    h.update(`\0${f}\0`);
    try {
      h.update(readFileSync(f));
    } catch (err) {
      h.update(`unreadable ${(err as NodeJS.ErrnoException).code ?? ''}`);
    }
  }
  return h.digest('hex');
}

/** What outlives one config: held by the process, handed to every runtime it builds. */
export interface RuntimeDeps {
  readonly log: Logger;
  readonly trustOptions?: TrustManagerOptions;
  /** Re-issue keys live as long as the process, not the config: a reload keeps what upstreams cached. */
  readonly keys?: KeyRing;
  /** Counts and logs a dry-run policy's would-be denies (one counter for the process). */
  readonly onDryRun?: PolicyOptions['onDryRun'];
  /** The running runtime, on a reload. */
  readonly previous?: Runtime | undefined;
}

/** zonegate's own SVID: the same files keep the same watcher (and the rotation it follows). */
function localIdentity(config: Config, deps: RuntimeDeps, keep: boolean, started: Array<{ stop(): void }>): LocalIdentity | undefined {
  if (!config.identity) return undefined;
  if (keep && deps.previous?.identity) return deps.previous.identity;
  const { log } = deps;
  const identity = new LocalIdentity(config.identity.cert, config.identity.key, (message) =>
    log.warn({ detail: message }, 'local SVID not reloaded: keeping the current one'),
  );
  started.push(identity);
  identity.on('change', (svid: { id: { value: string } }) => log.info({ spiffeId: svid.id.value }, 'local SVID rotated'));
  identity.watch();
  log.info({ spiffeId: identity.current.id.value }, 'local SVID loaded');
  return identity;
}

/** The trust manager: kept when trust and federation are unchanged; otherwise a new one that adopts unchanged domains. */
async function trustManager(config: Config, deps: RuntimeDeps, keep: boolean, started: Array<{ stop(): void }>): Promise<TrustManager> {
  const { previous } = deps;
  if (previous && keep) return previous.trust;
  const trust = new TrustManager(config, deps.trustOptions);
  started.push(trust);
  if (previous) trust.adopt(previous.trust);
  await trust.start();
  if (previous) {
    const missing = trust.fetched.filter((d) => d.required && !d.hasBundle);
    if (missing.length > 0)
      throw new Error(`trust: no bundle could be loaded for ${missing.map((d) => `"${d.trustDomain}" (${d.lastError ?? 'loading'})`).join(', ')}`);
  }
  return trust;
}

/**
 * Builds a Runtime for a validated config. Throws (having stopped whatever it started) when a file
 * cannot be read or parsed, or — on a reload — when a required trust domain it had to fetch has no
 * bundle: the running runtime then stays as it is.
 */
export async function buildRuntime(config: Config, deps: RuntimeDeps): Promise<Runtime> {
  const { log, previous } = deps;
  const changed = previous && configChanges(previous.config, config);
  const started: Array<{ stop(): void }> = [];
  try {
    const identity = localIdentity(config, deps, changed?.identity === false, started);
    const trust = await trustManager(config, deps, changed?.trust === false, started);
    let carried: CarriedPhase | undefined;
    const files = carriedFilesDigest(config);
    // the carried phase holds the trust manager's bundles, the identity and what its files said: kept only with all three
    if (previous && changed?.carried === false && trust === previous.trust && identity === previous.identity && files === previous.carriedFiles) carried = previous.carried;
    else {
      carried = createCarriedPhase(config, trust.bundles, identity, (message) => log.warn({ detail: message }, 'identity keys not refreshed'));
      if (carried) started.push(carried);
      await carried?.start();
    }
    return { config, trust, identity, carried, carriedFiles: files, state: buildDecisionState(config, trust, identity, carried, deps) };
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
