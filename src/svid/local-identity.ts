/**
 * zonegate's own X509-SVID and key, read from files and reloaded when they change (SPIRE's
 * spiffe-helper, cert-manager and meshes rotate them in place). A half-written or mismatched
 * pair is never used: the last good identity stays until a complete, matching pair appears.
 * Emits 'change' with the new identity.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { FileWatch } from '../watch.js';
import { loadX509Svid, type LocalSvid } from './local.js';

export class LocalIdentity extends EventEmitter {
  private svid: LocalSvid;
  private watcher: FileWatch | undefined;
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

  /**
   * Watches both files (src/watch.ts), and re-reads them every `pollMs` as a backstop: reload()
   * compares the contents, so an unchanged pair costs two reads and changes nothing.
   */
  watch(pollMs = 30_000): void {
    this.watcher ??= new FileWatch([this.certPath, this.keyPath], () => this.reload(), { debounceMs: 50, pollMs });
  }

  stop(): void {
    this.watcher?.close();
  }
}
