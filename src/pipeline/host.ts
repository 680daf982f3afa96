/**
 * The host a request names, in one form (docs/policy.md "Hosts"): lower case, the port split off,
 * trailing dots removed. `Admin.Zone-A.Example.:8443` and `admin.zone-a.example` are the same
 * name to DNS, to TLS SNI checks and to most virtual-host routing, so they must be the same name
 * to a host rule. Pure; the pipeline calls it once per request, before the policy phase.
 */

export interface Host {
  /** Lower case, no port, no trailing dot; an IPv6 literal keeps its brackets (`[::1]`). Empty when none was sent. */
  readonly name: string;
  /** The port written after the name, if any. */
  readonly port?: number;
}

/**
 * Splits and normalizes an :authority / Host value.
 *
 *   normalizeHost('Admin.Zone-A.Example.:8443') // { name: 'admin.zone-a.example', port: 8443 }
 *   normalizeHost('[::1]:80')                   // { name: '[::1]', port: 80 }
 */
export function normalizeHost(raw: string): Host {
  let h = raw.trim().toLowerCase();
  let port: number | undefined;
  const colon = h.lastIndexOf(':');
  // host:port, but not the colons inside a bare IPv6 literal ("[::1]" or an unbracketed "::1")
  if ((colon >= 0 && h.indexOf(':') === colon) || (colon > 0 && h[colon - 1] === ']')) {
    const digits = h.slice(colon + 1);
    if (/^[0-9]{1,5}$/.test(digits)) {
      port = Number(digits);
      h = h.slice(0, colon);
    } else if (digits === '') h = h.slice(0, colon); // "host:" names the default port
  }
  // Every trailing dot: "a.example." is the fully qualified a.example; "a.example.." is no other name.
  let end = h.length;
  while (end > 0 && h.charCodeAt(end - 1) === 0x2e) end--;
  h = h.slice(0, end);
  return port === undefined ? { name: h } : { name: h, port };
}
