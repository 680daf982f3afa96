/**
 * Where the HTTP authorization mode reads the original request line (method, URI, host, scheme,
 * request id): only from headers the configured proxy itself sets, or from the authorization
 * request's own line when the proxy forwards the original there (Envoy's http_service). Never
 * from a header a client can send through: nginx passes every client header into the
 * auth_request subrequest, so a client-written X-Forwarded-Uri must not decide anything.
 *
 *   nginx    X-Original-Method / -URI / -Host / -Proto, X-Request-Id, each set by the recipe's
 *            proxy_set_header (which replaces any client copy of that name)
 *   traefik  X-Forwarded-Method / -Uri / -Host / -Proto (ForwardAuth sets them; keep
 *            trustForwardHeader off so it overwrites the client's), X-Request-Id unread
 *   envoy    the authorization request itself: Envoy's http_service sends the original method,
 *            path_prefix + the original path, and the original Host
 *
 * Resolved once at startup into a RequestLineSource (the presets, PROXY_PRESETS, are in
 * src/config/server.ts, which validates server.http.proxy against them); per request, a header named here must
 * appear exactly once (twice → ERR_DUPLICATE_HEADER; missing → ERR_REQUEST_MALFORMED: the proxy
 * is not configured as the docs say, and deciding on the subrequest's own "/" would be wrong).
 */
import type { IncomingMessage } from 'node:http';
import type { RequestLineSource } from '../config/server.js';
import type { ReasonCode } from '../errors.js';
import { methodToken } from '../request/headers.js';
import { splitPath } from '../request/path.js';

export type RequestLine =
  | { readonly ok: true; readonly method: string; readonly path: string; readonly query: string; readonly host: string; readonly scheme: string; readonly id: string | undefined }
  | { readonly ok: false; readonly code: ReasonCode; readonly message: string };

/**
 * Reads the original request line from `headers` (lower-cased names, repeats joined; `repeated`
 * holds the names that appeared more than once) as `src` says.
 */
export function readRequestLine(req: IncomingMessage, headers: ReadonlyMap<string, string>, repeated: ReadonlySet<string>, src: RequestLineSource): RequestLine {
  let failure: { code: ReasonCode; message: string } | undefined;
  const one = (name: string, own: string | undefined, required: boolean): string | undefined => {
    if (name === '') return own;
    if (repeated.has(name)) failure ??= { code: 'ERR_DUPLICATE_HEADER', message: `http: ${name} appears more than once` };
    const v = headers.get(name);
    if (v === undefined && required) failure ??= { code: 'ERR_REQUEST_MALFORMED', message: `http: the proxy did not set ${name}` };
    return v;
  };
  const method = one(src.method, req.method, true) ?? '';
  let uri = one(src.uri, req.url, true) ?? '';
  const host = one(src.host, req.headers.host, true) ?? '';
  // Node keeps the first of two Host headers: two are no request line to decide on
  if (src.host === '' && repeated.has('host')) failure ??= { code: 'ERR_DUPLICATE_HEADER', message: 'http: host appears more than once' };
  const scheme = one(src.scheme, undefined, false) ?? 'http';
  const id = src.id === '' ? undefined : one(src.id, undefined, false);
  if (failure) return { ok: false, ...failure };
  if (src.uri === '' && src.pathPrefix !== '') {
    // Envoy sends path_prefix + the original path; anything else did not come from Envoy
    if (!uri.startsWith(src.pathPrefix)) return { ok: false, code: 'ERR_REQUEST_MALFORMED', message: `http: the path does not start with the configured prefix` };
    uri = uri.slice(src.pathPrefix.length);
  }
  // origin-form only: an absolute URI or "*" would be matched against path rules as text
  if (!uri.startsWith('/')) return { ok: false, code: 'ERR_REQUEST_MALFORMED', message: 'http: the original URI is not a path' };
  if (method === '') return { ok: false, code: 'ERR_REQUEST_MALFORMED', message: 'http: the original method is empty' };
  const token = methodToken(method);
  if (token === undefined) return { ok: false, code: 'ERR_REQUEST_MALFORMED', message: 'http: the original method is not an RFC 9110 token' };
  return { ok: true, method: token, ...splitPath(uri), host, scheme, id };
}
