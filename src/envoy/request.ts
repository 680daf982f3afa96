/**
 * CheckRequest (as decoded by grpc-js with keepCase, longs and enums as strings, or by decode.ts,
 * whose maps are Maps) → AuthRequest.
 * The only place that reads Envoy's request wire shape. Never throws: a request that cannot be
 * read comes back with `malformed` set, and the pipeline denies it with that code.
 */
import { randomUUID } from 'node:crypto';
import type { AuthRequest, PeerAttributes } from '../request/types.js';
import type { ReasonCode } from '../errors.js';
import { HeaderReader, headersTooLarge, methodToken, type RequestLimits } from '../request/headers.js';
import { splitPath } from '../request/path.js';

/* Loose views of the decoded message: every field may be absent or of the wrong type. */
interface WireHeaderValue { key?: unknown; value?: unknown; raw_value?: unknown }
interface WirePeer {
  principal?: unknown;
  certificate?: unknown;
  address?: { socket_address?: { address?: unknown; port_value?: unknown } };
}
interface WireHttp {
  id?: unknown; method?: unknown; path?: unknown; host?: unknown; scheme?: unknown;
  query?: unknown; protocol?: unknown;
  headers?: unknown;
  header_map?: { headers?: unknown };
}
interface WireCheckRequest {
  attributes?: {
    source?: WirePeer;
    destination?: WirePeer;
    request?: { http?: WireHttp };
    context_extensions?: unknown;
  };
}

const EMPTY_PEER: PeerAttributes = { principal: '', certificate: '', address: '', port: 0 };

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function peer(p: WirePeer | undefined): PeerAttributes {
  if (!p || typeof p !== 'object') return EMPTY_PEER;
  const sock = p.address?.socket_address;
  const port = Number(sock?.port_value ?? 0);
  return {
    principal: str(p.principal),
    certificate: str(p.certificate),
    address: str(sock?.address),
    port: Number.isInteger(port) ? port : 0,
  };
}

/* Shared empties: most requests have no context extensions, no duplicate and no non-UTF-8 header. */
const NO_STRINGS: ReadonlyMap<string, string> = new Map();
const NO_NAMES: ReadonlySet<string> = new Set();

function stringMap(v: unknown): ReadonlyMap<string, string> {
  if (!v || typeof v !== 'object') return NO_STRINGS;
  if (v instanceof Map) return v.size === 0 ? NO_STRINGS : (v as Map<string, string>); // decode.ts: strings only
  let out: Map<string, string> | undefined;
  for (const k of Object.keys(v)) (out ??= new Map()).set(k, str((v as Record<string, unknown>)[k]));
  return out ?? NO_STRINGS;
}

function readHeaders(http: WireHttp, limits: RequestLimits): HeaderReader {
  const reader = new HeaderReader(limits);
  // Envoy sends header_map (with raw bytes) instead of headers when encode_raw_headers is set.
  const list = http.header_map?.headers;
  if (Array.isArray(list)) {
    for (const h of list as WireHeaderValue[]) {
      if (reader.overLimit) break;
      const key = str(h?.key);
      if (h?.raw_value instanceof Uint8Array && h.raw_value.length > 0) reader.addBytes(key, h.raw_value);
      else reader.add(key, str(h?.value));
    }
  } else if (http.headers instanceof Map) {
    for (const [k, v] of http.headers as Map<string, string>) {
      if (reader.overLimit) break;
      reader.add(k, v);
    }
  } else if (http.headers && typeof http.headers === 'object') {
    const map = http.headers as Record<string, unknown>;
    for (const k of Object.keys(map)) {
      if (reader.overLimit) break;
      reader.add(k, str(map[k]));
    }
  }
  return reader;
}

/** Reads a decoded CheckRequest into an AuthRequest. `wire` may be anything (even undefined). */
export function toAuthRequest(wire: unknown, limits: RequestLimits): AuthRequest {
  const req = (wire && typeof wire === 'object' ? wire : {}) as WireCheckRequest;
  const attrs = req.attributes && typeof req.attributes === 'object' ? req.attributes : undefined;
  const http = attrs?.request?.http && typeof attrs.request.http === 'object' ? attrs.request.http : undefined;
  const reader = http ? readHeaders(http, limits) : undefined;
  const { path, query } = splitPath(str(http?.path));
  const id = str(http?.id) || reader?.headers.get('x-request-id') || randomUUID();

  const sent = str(http?.method);
  // an RFC 9110 token, upper-cased in ASCII only (no method is written with other letters)
  const method = sent === '' ? '' : methodToken(sent);

  let malformed: { code: ReasonCode; message: string } | undefined;
  if (!attrs) malformed = { code: 'ERR_REQUEST_MALFORMED', message: 'request: CheckRequest has no attributes' };
  else if (!http) malformed = { code: 'ERR_REQUEST_MALFORMED', message: 'request: attributes.request.http is missing' };
  else if (reader?.overLimit) malformed = headersTooLarge(limits);
  else if (method === undefined) malformed = { code: 'ERR_REQUEST_MALFORMED', message: 'request: the method is not an RFC 9110 token' };

  return {
    id,
    method: method ?? '',
    path,
    query: str(http?.query) || query,
    host: str(http?.host),
    scheme: str(http?.scheme),
    protocol: str(http?.protocol),
    headers: reader?.headers ?? new Map(),
    nonUtf8Headers: reader?.nonUtf8 ?? NO_NAMES,
    duplicateHeaders: reader?.duplicates ?? NO_NAMES,
    source: peer(attrs?.source),
    destination: peer(attrs?.destination),
    contextExtensions: stringMap(attrs?.context_extensions),
    ...(malformed ? { malformed } : {}),
  };
}
