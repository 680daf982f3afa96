/**
 * Config reload for `zonegate serve --config FILE`: on SIGHUP and when the file changes (a watch
 * on its directory, so Kubernetes' ConfigMap "..data" symlink swap is seen; debounced; a slow poll
 * as a backstop), the file is loaded and validated in full, then handed to `apply`, which builds
 * the new pipeline beside the running one and swaps it in only when complete. Anything that
 * fails keeps the running config: the error is logged with the key path and line (never a value
 * of a secret), `zonegate_config_reload_total{result="error"}` counts it, and readiness does not
 * change. Listener settings are not rebound: a change there is reported as needing a restart.
 *
 * The files the config names that are read once, when the decision state or the carried phase is
 * built — the upstream secrets (upstream.hmac.secretFile, upstream.basic.credentialsFile) and the
 * carried phase's files (the WirePact CA, signing certificate and key, the Basic user store, the
 * OIDC issuer's CA) — are watched here like the config file (their directories, symlink swaps
 * included, and the poll), and a change of their contents reloads the config. Such a file that
 * cannot be read or is invalid fails that reload like an invalid config: the running values stay,
 * the error is logged (file and reason, never the contents). Files with a watcher of their own
 * (bundles, the local SVID) are not here.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { sha256 } from '../hash.js';
import { resolve } from 'node:path';
import type { Counter, Gauge } from 'prom-client';
import type { Logger } from '../log.js';
import { FileWatch } from '../watch.js';
import { configChanges } from './diff.js';
import { ConfigError, type LoadedConfig } from './load.js';
import { validateConfig } from './preflight.js';
import type { Config } from './schema.js';

export type ReloadResult =
  | { readonly result: 'ok'; readonly restartNeeded: readonly string[] }
  | { readonly result: 'unchanged' }
  | { readonly result: 'error'; readonly problems: readonly string[] };

export interface ReloadMetrics {
  readonly reloads: Counter<'result'>;
  readonly lastSuccess: Gauge;
}

export interface ReloaderOptions {
  readonly file: string;
  readonly log: Logger;
  readonly metrics: ReloadMetrics;
  /** The config running now (listener settings are compared against it). */
  readonly current: () => Config;
  /** Builds and swaps in the new config; throws to keep the running one. */
  readonly apply: (loaded: LoadedConfig) => Promise<void>;
  readonly env?: NodeJS.ProcessEnv;
  readonly debounceMs?: number;
  readonly pollMs?: number;
  /** The files besides the config whose change reloads it (default: namedFiles). */
  readonly files?: (c: Config) => readonly string[];
}

/** The upstream secrets a config names, read when the decision state is built: the HMAC secret and Basic credentials. */
export function secretFiles(c: Config): string[] {
  return [c.upstream.hmac?.secretFile, c.upstream.basic?.credentialsFile].filter((f): f is string => f !== undefined);
}

/**
 * The files the carried-identity phase reads once, when it is built: the WirePact CA, the WirePact
 * signing certificate and key, the Basic user store, the OIDC issuer's CA.
 */
export function carriedFiles(config: Config): string[] {
  const ci = config.commonIdentity;
  if (!ci) return [];
  const wp = ci.wirepact;
  return [wp?.ca, wp?.emit?.cert, wp?.emit?.key, ci.egress.basic?.usersFile, ci.egress.oidc?.ca].filter((f): f is string => f !== undefined);
}

/** Every file besides the config that only a reload re-reads: the upstream secrets and the carried phase's files. */
export function namedFiles(c: Config): string[] {
  return [...secretFiles(c), ...carriedFiles(c)];
}

const digest = (text: string) => sha256(text, 'hex');

/** The last reload tried, for `zonegate status` (problems name file, line and key, never a value). */
export interface ReloadState {
  readonly at: number;
  readonly reason: string;
  readonly result: 'ok' | 'error';
  readonly problems: readonly string[];
}

export class ConfigReloader {
  /** The last reload that ran (an unchanged file is not one); undefined before the first. */
  last: ReloadState | undefined;
  private watcher: FileWatch | undefined;
  private running: Promise<ReloadResult> | undefined;
  private again = false;
  private lastDigest: string | undefined;
  private readonly file: string;

  constructor(private readonly o: ReloaderOptions) {
    this.file = resolve(o.file);
    this.lastDigest = this.readDigest();
  }

  private namedFiles(): readonly string[] {
    return (this.o.files ?? namedFiles)(this.o.current());
  }

  /** A digest of the config text and of the named files' contents (or why they cannot be read). */
  private readDigest(): string | undefined {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return undefined;
    }
    const h = createHash('sha256').update(text);
    for (const f of this.namedFiles()) {
      h.update(`\0${f}\0`);
      try {
        h.update(digest(readFileSync(f, 'utf8')));
      } catch (err) {
        h.update(`unreadable ${(err as NodeJS.ErrnoException).code ?? ''}`);
      }
    }
    return h.digest('hex');
  }

  /**
   * Reloads now. `force` (SIGHUP) reloads even when the text did not change, since files it names
   * (bundles, keys, user stores) may have. One reload runs at a time; a request during one runs
   * once more after it.
   */
  reload(reason: string, force = true): Promise<ReloadResult> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.run(reason, force).finally(() => {
      this.running = undefined;
      // the files a config names may have changed with it
      this.watcher?.watch(this.watchedFiles());
      if (this.again) {
        this.again = false;
        void this.reload('change during a reload', false);
      }
    });
    return this.running;
  }

  private async run(reason: string, force: boolean): Promise<ReloadResult> {
    const { log, metrics } = this.o;
    const d = this.readDigest();
    if (!force && d !== undefined && d === this.lastDigest) return { result: 'unchanged' };
    let loaded: LoadedConfig;
    try {
      loaded = await validateConfig(this.o.file, this.o.env ?? process.env);
      this.lastDigest = d;
      const { restartNeeded } = configChanges(this.o.current(), loaded.config);
      await this.o.apply(loaded);
      for (const w of loaded.warnings) log.warn(w);
      metrics.reloads.inc({ result: 'ok' });
      metrics.lastSuccess.set(1);
      if (restartNeeded.length > 0)
        log.warn({ keys: restartNeeded }, `config reloaded, but ${restartNeeded.join(', ')} changed: listeners are not rebound, restart to apply`);
      log.info({ config: this.o.file, reason, rules: loaded.config.rules.length }, 'config reloaded');
      this.last = { at: Date.now(), reason, result: 'ok', problems: [] };
      return { result: 'ok', restartNeeded };
    } catch (err) {
      this.lastDigest = d;
      // ConfigError problems name the file, line and key path; other failures say which file or source.
      const problems = err instanceof ConfigError ? [...err.problems] : [(err as Error).message];
      metrics.reloads.inc({ result: 'error' });
      metrics.lastSuccess.set(0);
      log.error({ config: this.o.file, reason, problems }, 'config reload failed: keeping the running config');
      this.last = { at: Date.now(), reason, result: 'error', problems };
      return { result: 'error', problems };
    }
  }

  /** The files whose change reloads the config: the config file first, then the files it names. */
  private watchedFiles(): string[] {
    return [this.file, ...this.namedFiles()];
  }

  /**
   * Watches the config file and the files it names (src/watch.ts: their directories, so symlink
   * swaps are seen; debounced), and polls their digest as a backstop.
   */
  watch(): void {
    this.watcher ??= new FileWatch(
      this.watchedFiles(),
      (file) => void this.reload(file === undefined || file === this.file ? 'file changed' : carriedFiles(this.o.current()).includes(file) ? 'carried file changed' : 'secret file changed', false),
      { debounceMs: this.o.debounceMs ?? 200, pollMs: this.o.pollMs ?? 10_000, poll: () => this.readDigest() !== this.lastDigest },
    );
  }

  stop(): void {
    this.watcher?.close();
  }
}
