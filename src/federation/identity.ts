/**
 * zonegate's own X509-SVID and key, read from files and reloaded when they change (SPIRE's
 * spiffe-helper, cert-manager and meshes rotate them in place). A half-written or mismatched
 * pair is never used: the last good identity stays until a complete, matching pair appears.
 * Emits 'change' with the new identity.
 */
import { EventEmitter } from 'node:events';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { loadX509Svid, type LocalSvid } from '../svid/local.js';

export class LocalIdentity extends EventEmitter {
  private svid: LocalSvid;
  private watchers: FSWatcher[] = [];
  private debounce?: NodeJS.Timeout;
  private poll?: NodeJS.Timeout;
  lastError: string | undefined;

  /** Loads the pair now; throws when it is not usable at startup. */
  constructor(
    readonly certPath: string,
    readonly keyPath: string,
    private readonly onError: (message: string) => void = () => undefined,
  ) {
    super();
    this.svid = this.read();
  }

  get current(): LocalSvid {
    return this.svid;
  }

  private read(): LocalSvid {
    return loadX509Svid(readFileSync(this.certPath), readFileSync(this.keyPath));
  }

  /** Re-reads the files; keeps the current identity when they are not (yet) a valid pair. */
  reload(): boolean {
    let next: LocalSvid;
    try {
      next = this.read();
    } catch (err) {
      this.lastError = (err as Error).message;
      this.onError(this.lastError);
      return false;
    }
    this.lastError = undefined;
    if (next.certPem === this.svid.certPem && next.keyPem === this.svid.keyPem) return true;
    this.svid = next;
    this.emit('change', next);
    return true;
  }

  /** Watches both files' directories, and polls every `pollMs` as a backstop. */
  watch(pollMs = 30_000): void {
    const kick = () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.reload(), 50);
      this.debounce.unref();
    };
    for (const p of new Set([this.certPath, this.keyPath])) {
      try {
        const w = watch(dirname(p), { persistent: false }, (_e, name) => {
          if (!name || name === basename(p) || name.startsWith('..')) kick();
        });
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch {
        // polling covers it
      }
    }
    this.poll = setInterval(() => this.reload(), pollMs);
    this.poll.unref();
  }

  stop(): void {
    for (const w of this.watchers) w.close();
    clearTimeout(this.debounce);
    clearInterval(this.poll);
  }
}
