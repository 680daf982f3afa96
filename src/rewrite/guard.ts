/**
 * The guarded headers: every header zonegate can set for an upstream, or refuses to let a client
 * send through. One list, used for Envoy's headers_to_remove, the HTTP mode's x-zonegate-remove
 * and the proxy recipes (a test compares the README's nginx recipe with it).
 *
 * A header is guarded under its default name AND its configured name, whatever the config says:
 * turning an identity header off ("") or renaming it must not let a client's copy of the old name
 * reach an upstream that still trusts it (an upstream written for the default names does not know
 * the config changed).
 */
import { IDENTITY_KEYS } from './identity.js';
import type { UpstreamConfig } from './schema.js';
import { DEFAULT_IDENTITY_HEADERS, DEFAULT_JWT_HEADER, DEFAULT_PROOF_HEADER } from './schema.js';

/** The rewrite modes some destination of the config uses (they add the headers those modes set). */
export interface ModesInUse {
  readonly jwt: boolean;
  readonly hmac: boolean;
  readonly basic: boolean;
}

/** The identity headers' default and configured names (none of them ""), in IDENTITY_KEYS order. */
function identityGuard(u: UpstreamConfig): string[] {
  return IDENTITY_KEYS.flatMap((k) => (u.headers[k] === '' ? [DEFAULT_IDENTITY_HEADERS[k]] : [DEFAULT_IDENTITY_HEADERS[k], u.headers[k]]));
}

/**
 * Headers removed from (or overwritten on) every allowed request at ingress: the identity
 * headers (default and configured names), the re-issued JWT and HMAC proof headers where a
 * destination uses those modes (both are signed: an upstream verifies them), `authorization`
 * where mode basic sets it, and `upstream.guard`.
 */
export function ingressGuard(u: UpstreamConfig, modes: ModesInUse): string[] {
  return [
    ...new Set([
      ...identityGuard(u),
      ...u.guard,
      ...(modes.jwt ? [u.jwt.header] : []),
      ...(modes.hmac ? [u.hmac?.header ?? DEFAULT_PROOF_HEADER] : []),
      ...(modes.basic ? ['authorization'] : []),
    ]),
  ];
}

/**
 * Headers cleared at egress, where the local app's own headers (authorization included) go out
 * as before: the identity headers (default and configured names) and `upstream.guard`.
 */
export function egressGuard(u: UpstreamConfig): string[] {
  return [...new Set([...identityGuard(u), ...u.guard])];
}

/**
 * Every header a proxy in front of the HTTP mode must clear or overwrite with zonegate's value on
 * an allowed request: the ingress guard as if modes jwt and hmac were in use (a recipe serves
 * every destination), plus the carried token header (cleared: the token stops at the proxy).
 * Mode basic sets `authorization`, which the recipe must then overwrite too (docs say how); it is
 * not listed here, so the recipe does not drop the app's own credentials in the other modes.
 * The nginx recipes name each of these headers (test/guides/nginx-recipe.test.ts compares them).
 */
export function proxyGuard(u: UpstreamConfig, carriedHeader: string | undefined): string[] {
  return [
    ...new Set([
      ...ingressGuard(u, { jwt: true, hmac: true, basic: false }),
      DEFAULT_JWT_HEADER,
      DEFAULT_PROOF_HEADER,
      ...(carriedHeader ? [carriedHeader] : []),
    ]),
  ];
}
