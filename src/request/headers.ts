/**
 * Request headers read into the request model within the configured limits: lower-cased names,
 * repeats joined with "," and flagged, values that are not UTF-8 flagged. Every entry point
 * reads its headers through this one reader (the gRPC Check in src/envoy/request.ts, the HTTP
 * mode in src/http/authz.ts), so the limits count the same headers the same way and a value
 * means the same text whichever way it came.
 */
import type { ReasonCode } from '../errors.js';

export interface RequestLimits {
  /** Most headers accepted in one request (headers or header_map entries). */
  readonly maxHeaders: number;
  /** Most bytes of header names plus values accepted in one request. */
  readonly maxHeaderBytes: number;
}

/** The request's `malformed` when its headers are past the limits. */
export function headersTooLarge(limits: RequestLimits): { code: ReasonCode; message: string } {
  return { code: 'ERR_HEADERS_TOO_LARGE', message: `request: more than ${limits.maxHeaders} headers or ${limits.maxHeaderBytes} header bytes` };
}

/** RFC 9110 §5.6.2 token: one or more tchar (ASCII only). Methods and auth-schemes are tokens. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * An RFC 9110 §9.1 method as zonegate matches it: a token (ASCII tchar only), upper-cased — ASCII
 * letters only, so no other character can fold into one (`poﬆ` is no `POST`). undefined when the
 * text is not a token.
 */
export function methodToken(method: string): string | undefined {
  return TOKEN.test(method) ? method.replace(/[a-z]+/g, (l) => l.toUpperCase()) : undefined;
}

/** RFC 9110 §11.2 token68: the value of an auth-scheme that carries one opaque credential. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const CREDENTIALS = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) +(.*)$/s;

/**
 * An `authorization` value as RFC 9110 §11.4 credentials with a token68: an auth-scheme (a token,
 * returned in lower case: schemes are case-insensitive), one or more spaces (SP only), and one
 * token68. Leading and trailing OWS are not part of a field value (§5.5). undefined for anything
 * else — a scheme followed by another character (`BearerX`, a tab), no credentials, a value that
 * is not a token68 (`Bearer a b`): such a value names no scheme zonegate could verify.
 */
export function authCredentials(value: string): { readonly scheme: string; readonly token: string } | undefined {
  const m = CREDENTIALS.exec(value.replace(/^[ \t]+|[ \t]+$/g, ''));
  if (!m || !TOKEN68.test(m[2]!)) return undefined;
  return { scheme: m[1]!.toLowerCase(), token: m[2]! };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Lossy = new TextDecoder('utf-8');
/** A character past ASCII; node:http gives header bytes one character each (latin1), so none is past 0xff. */
const NON_ASCII = /[\u0080-\u00ff]/;

export class HeaderReader {
  readonly headers = new Map<string, string>();
  nonUtf8: Set<string> | undefined;
  duplicates: Set<string> | undefined;
  private count = 0;
  private bytes = 0;
  overLimit = false;

  /**
   * `skip`: lower-case names that are not the request's at all, neither read nor counted (the HTTP
   * mode: the hop-by-hop headers of the proxy's own connection to zonegate).
   */
  constructor(
    private readonly limits: RequestLimits,
    private readonly skip?: ReadonlySet<string>,
  ) {}

  /** A header whose value is text; `valid` false when its bytes were not UTF-8 (the text is then lossy). */
  add(rawName: string, value: string, valid = true): void {
    const name = rawName.toLowerCase();
    if (this.skip?.has(name)) return;
    this.count += 1;
    this.bytes += rawName.length + value.length;
    if (this.count > this.limits.maxHeaders || this.bytes > this.limits.maxHeaderBytes) {
      this.overLimit = true;
      return;
    }
    if (!valid) (this.nonUtf8 ??= new Set()).add(name);
    const prev = this.headers.get(name);
    if (prev === undefined) this.headers.set(name, value);
    else {
      // joined as Envoy's own `headers` map joins repeats; the policy reads every element (compile.ts)
      (this.duplicates ??= new Set()).add(name);
      this.headers.set(name, `${prev},${value}`);
    }
  }

  /** A header whose value is bytes (Envoy's header_map raw_value): read as UTF-8, flagged when it is not. */
  addBytes(rawName: string, bytes: Uint8Array): void {
    let value: string;
    let valid = true;
    try {
      value = utf8.decode(bytes);
    } catch {
      value = utf8Lossy.decode(bytes);
      valid = false;
    }
    this.add(rawName, value, valid);
  }

  /** A header as node:http gives it: one character per byte (latin1), read as UTF-8 like addBytes. */
  addLatin1(rawName: string, value: string): void {
    if (NON_ASCII.test(value)) this.addBytes(rawName, Buffer.from(value, 'latin1'));
    else this.add(rawName, value);
  }
}
