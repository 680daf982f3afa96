/**
 * Request headers read into the request model within the configured limits: lower-cased names,
 * repeats joined with "," and flagged, values that are not UTF-8 flagged (src/envoy/request.ts
 * reads a CheckRequest's headers through it).
 */

export interface RequestLimits {
  /** Most headers accepted in one request (headers or header_map entries). */
  readonly maxHeaders: number;
  /** Most bytes of header names plus values accepted in one request. */
  readonly maxHeaderBytes: number;
}

export class HeaderReader {
  readonly headers = new Map<string, string>();
  nonUtf8: Set<string> | undefined;
  duplicates: Set<string> | undefined;
  private count = 0;
  private bytes = 0;
  overLimit = false;

  constructor(private readonly limits: RequestLimits) {}

  add(rawName: string, value: string, valid = true): void {
    this.count += 1;
    this.bytes += rawName.length + value.length;
    if (this.count > this.limits.maxHeaders || this.bytes > this.limits.maxHeaderBytes) {
      this.overLimit = true;
      return;
    }
    const name = rawName.toLowerCase();
    if (!valid) (this.nonUtf8 ??= new Set()).add(name);
    const prev = this.headers.get(name);
    if (prev === undefined) this.headers.set(name, value);
    else {
      // joined as Envoy's own `headers` map joins repeats; the policy reads every element (compile.ts)
      (this.duplicates ??= new Set()).add(name);
      this.headers.set(name, `${prev},${value}`);
    }
  }
}
