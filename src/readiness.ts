/**
 * Whether this process is ready to decide: NOT_SERVING until configuration and trust material are
 * loaded, and again while draining. gRPC health (src/envoy/health.ts), /readyz and the Check
 * handlers all read the one Readiness of the process.
 */
export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/**
 * The process-wide serving state that gRPC health, /readyz and the Check handler share. Changes
 * go to a set of watchers, not EventEmitter listeners: every open Health/Watch stream is one, and
 * their number has no bound an EventEmitter's leak warning (past 10) could know.
 */
export class Readiness {
  private status: ServingStatus = 'NOT_SERVING';
  private why = 'starting';
  private readonly watchers = new Set<(status: ServingStatus) => void>();

  get ready(): boolean {
    return this.status === 'SERVING';
  }
  get reason(): string {
    return this.why;
  }
  get current(): ServingStatus {
    return this.status;
  }

  set(status: ServingStatus, why: string): void {
    this.why = why;
    if (status === this.status) return;
    this.status = status;
    for (const watcher of this.watchers) watcher(status);
  }

  /** Calls `watcher` with each change of status (not the current one); returns the unsubscribe. */
  watch(watcher: (status: ServingStatus) => void): () => void {
    // a wrapper per call: the same function watched twice is two subscriptions, each removed by its own unsubscribe
    const entry = (status: ServingStatus) => watcher(status);
    this.watchers.add(entry);
    return () => void this.watchers.delete(entry);
  }
}
