/**
 * The host a request names, in one form (docs/policy.md "Hosts"): lower case, the port split off,
 * trailing dots removed. `Admin.Zone-A.Example.:8443` and `admin.zone-a.example` are the same
 * name to DNS, to TLS SNI checks and to most virtual-host routing, so they must be the same name
 * to a host rule. Pure; the pipeline calls it once per request, before the policy phase.
 *
 * An authority that is not `name[:port]` is refused (ERR_HOST_INVALID) rather than matched as
 * text: upstreams read such values their own way (nginx cuts `admin.example:abc` and
 * `admin.example:80:80` at the first colon, Go's ServeMux drops a non-numeric port, WHATWG URL
 * parsers decode `admin%2eexample`), so a host rule would see one name and the upstream route on
 * another. Envoy joins two Host headers into `a.example,b.example`, which is no name either.
 */
import type { ReasonCode } from '../errors.js';

export interface Host {
  /** Lower case, no port, no trailing dot; an IPv6 literal keeps its brackets (`[::1]`). Empty when none was sent. */
  readonly name: string;
  /** The port written after the name, if any. */
  readonly port?: number;
}

export type HostResult = ({ readonly ok: true } & Host) | { readonly ok: false; readonly code: ReasonCode; readonly message: string };

/** A registered name: letters, digits, `-`, `.`, `_`, `~` (RFC 3986 unreserved; no escapes, no sub-delims). */
const REG_NAME = /^[a-z0-9._~-]*$/;
/** An IPv6 (or IPvFuture-free) literal in brackets: hex digits, colons, and dots for an embedded IPv4. */
const IP_LITERAL = /^\[[0-9a-f:.]+\]$/;
const PORT = /^[0-9]{1,5}$/;
const NON_ASCII = /[\u0080-\uffff]/;

/**
 * Splits and normalizes an :authority / Host value, or says why it names no single host.
 *
 *   normalizeHost('Admin.Zone-A.Example.:8443') // { ok: true, name: 'admin.zone-a.example', port: 8443 }
 *   normalizeHost('[::1]:80')                   // { ok: true, name: '[::1]', port: 80 }
 *   normalizeHost('admin.example:abc')          // { ok: false, code: 'ERR_HOST_INVALID', … }
 */
export function normalizeHost(raw: string): HostResult {
  const invalid = (why: string): HostResult => ({ ok: false, code: 'ERR_HOST_INVALID', message: `host: ${why}` });
  // before lower-casing: toLowerCase maps U+212A KELVIN SIGN to "k" and U+0130 to "i̇", so a name
  // sent as other bytes would match a rule for an ASCII name that the upstream never routes to
  if (NON_ASCII.test(raw)) return invalid('contains a character no host name has (":", ",", "%", "@", non-ASCII…)');
  let h = raw.trim().toLowerCase();
  let port: number | undefined;
  // the port follows the last colon, outside an IPv6 literal's brackets
  const colon = h.lastIndexOf(':');
  if (colon >= 0 && colon > h.lastIndexOf(']')) {
    const digits = h.slice(colon + 1);
    if (digits !== '') {
      // "host:" names the default port
      if (!PORT.test(digits) || Number(digits) > 65535) return invalid('the port is not a number from 0 to 65535');
      port = Number(digits);
    }
    h = h.slice(0, colon);
  }
  if (h.startsWith('[')) {
    if (!IP_LITERAL.test(h)) return invalid('not a valid IP literal in brackets');
  } else {
    if (!REG_NAME.test(h)) return invalid('contains a character no host name has (":", ",", "%", "@", non-ASCII…)');
    // Every trailing dot: "a.example." is the fully qualified a.example; "a.example.." is no other name.
    let end = h.length;
    while (end > 0 && h.charCodeAt(end - 1) === 0x2e) end--;
    h = h.slice(0, end);
  }
  return port === undefined ? { ok: true, name: h } : { ok: true, name: h, port };
}
