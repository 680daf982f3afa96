/**
 * Whether this process is ready to decide: NOT_SERVING until configuration and trust material are
 * loaded, and again while draining. gRPC health (src/envoy/health.ts), /readyz and the Check
 * handlers all read the one Readiness of the process.
 */
import { EventEmitter } from 'node:events';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';
/** The process-wide serving state that gRPC health, /readyz and the Check handler share. */
export class Readiness extends EventEmitter {
  private status: ServingStatus = 'NOT_SERVING';
  private why = 'starting';

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
    this.emit('change', status);
  }
}
