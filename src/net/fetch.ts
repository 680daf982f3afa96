/**
 * One bounded HTTPS GET for a trust source: connect and total timeouts, a response size cap,
 * and TLS per the source's profile. Redirects are not followed here; the caller decides (an
 * https_spiffe endpoint may only redirect to one presenting the same SPIFFE ID).
 *
 * - https_web: Web PKI (the system roots) or a configured CA, with normal host name checks.
 * - https_spiffe: the server must present an X509-SVID with exactly the expected SPIFFE ID,
 *   chaining to the current X.509 authorities of the endpoint's trust domain; host names are
 *   not checked (SPIFFE_Federation.md §5.2.2).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { ReasonCode } from '../errors.js';
import { certInfo } from '../cert/certinfo.js';
import { keyWeakness } from '../cert/strength.js';
import { checkX509SvidLeaf } from '../svid/x509.js';

export interface FetchLimits {
  readonly connectTimeoutMs: number;
  readonly totalTimeoutMs: number;
  readonly maxBytes: number;
  /** Most keys (or certificates) in one bundle document or JWKS (limits.maxBundleKeys). */
  readonly maxKeys: number;
}

export type TlsProfile =
  | { readonly kind: 'http' }
  | { readonly kind: 'https_web'; readonly ca?: readonly string[] }
  | { readonly kind: 'https_spiffe'; readonly endpointId: string; readonly roots: () => readonly string[] };

export interface FetchResult {
  readonly status: number;
  readonly body: Buffer;
  readonly location?: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

export class FetchError extends Error {
  constructor(
    readonly kind: 'timeout' | 'too_large' | 'tls' | 'network' | 'identity',
    message: string,
    /** A more specific reason than the kind's, for logs (ERR_KEY_TOO_WEAK). */
    readonly code?: ReasonCode,
  ) {
    super(message);
    this.name = 'FetchError';
  }
}

/** Mozilla "intermediate" TLS: TLS 1.2+ with forward-secret AEAD suites (1.3 suites are always on). */
const INTERMEDIATE_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
].join(':');

type TlsOptions = { ca?: string[]; checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined };

/** The TLS options of an https profile: the roots, and for https_spiffe the endpoint's identity check instead of the host name's. */
function tlsOptions(profile: Exclude<TlsProfile, { kind: 'http' }>): TlsOptions {
  if (profile.kind === 'https_web') return profile.ca ? { ca: [...profile.ca] } : {};
  return {
    ca: [...profile.roots()],
    // Identity is the SPIFFE ID, not the host name.
    checkServerIdentity: (_host, cert) => spiffeEndpointRefusal(cert, profile.endpointId),
  };
}

/**
 * Why an https_spiffe endpoint's certificate is refused, after TLS verified its chain against the
 * trust domain's roots; undefined when it is accepted. Its one URI SAN is read by the same DER
 * reader every SVID is read with (cert/certinfo.ts), not from Node's subjectaltname text.
 */
function spiffeEndpointRefusal(cert: PeerCertificate, endpointId: string): FetchError | undefined {
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert.raw);
  } catch {
    return new FetchError('tls', 'fetch: endpoint certificate cannot be parsed');
  }
  let uris: readonly string[];
  try {
    uris = certInfo(x).uris;
  } catch (err) {
    return new FetchError('identity', `fetch: endpoint certificate is not an X509-SVID leaf: ${(err as Error).message}`);
  }
  if (uris.length !== 1 || uris[0] !== endpointId)
    return new FetchError('identity', `fetch: endpoint presented ${uris.join(', ') || 'no URI SAN'}, expected ${endpointId}`);
  // The leaf must also be an X509-SVID (no CA flag, digitalSignature and no certificate signing,
  // no unknown critical extension), as any other SVID zonegate accepts.
  try {
    checkX509SvidLeaf(x);
  } catch (err) {
    const code = (err as { code?: ReasonCode }).code;
    if (code === 'ERR_KEY_TOO_WEAK') return new FetchError('identity', `fetch: endpoint certificate refused: ${(err as Error).message}`, code);
    return new FetchError('identity', `fetch: endpoint certificate is not an X509-SVID leaf: ${(err as Error).message}`);
  }
  return weakIntermediate(cert as DetailedPeerCertificate);
}

/**
 * The intermediates an endpoint sent are held to the same key rules as a peer's (the root came
 * from the bundle, whose parser left weak ones out).
 */
function weakIntermediate(leaf: DetailedPeerCertificate): FetchError | undefined {
  for (let c = leaf.issuerCertificate, n = 1; c && c !== leaf && c.raw && n <= 16; c = c.issuerCertificate, n++) {
    let weak: string | undefined;
    try {
      weak = keyWeakness(new X509Certificate(c.raw).publicKey);
    } catch {
      return new FetchError('tls', 'fetch: an endpoint chain certificate cannot be parsed');
    }
    if (weak) return new FetchError('identity', `fetch: endpoint chain certificate ${n} refused: it has a ${weak}`, 'ERR_KEY_TOO_WEAK');
    if (c.issuerCertificate === c) break;
  }
  return undefined;
}

/**
 * Reads a response body up to `maxBytes` (declared or streamed), then hands over the result;
 * a redirect's Location is resolved against the request URL, and one that is not a URL fails.
 */
function readBody(res: IncomingMessage, url: string, base: URL, maxBytes: number, done: (r: FetchResult) => void, fail: (e: FetchError) => void): void {
  const declared = Number(res.headers['content-length'] ?? NaN);
  if (declared > maxBytes) return fail(new FetchError('too_large', `fetch: ${url} declares ${declared} bytes (limit ${maxBytes})`));
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (c: Buffer) => {
    size += c.length;
    if (size > maxBytes) fail(new FetchError('too_large', `fetch: ${url} sent more than ${maxBytes} bytes`));
    else chunks.push(c);
  });
  res.on('end', () => {
    let location: string | undefined;
    if (res.headers.location) {
      // thrown inside this event handler, a malformed Location would end the process
      try {
        location = new URL(res.headers.location, base).toString();
      } catch {
        return fail(new FetchError('network', `fetch: ${url} redirects to a Location that is not a URL`));
      }
    }
    done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers, ...(location ? { location } : {}) });
  });
  res.on('error', (e) => fail(new FetchError('network', `fetch: ${url}: ${e.message}`)));
}

/** The URL to fetch, of the profile's protocol. Throws FetchError. */
function target(url: string, profile: TlsProfile): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FetchError('network', `fetch: "${url}" is not a URL`);
  }
  const wantProtocol = profile.kind === 'http' ? 'http:' : 'https:';
  if (u.protocol !== wantProtocol) throw new FetchError('tls', `fetch: ${url} is not ${wantProtocol.slice(0, -1)} (profile ${profile.kind})`);
  return u;
}

/** GETs `url` with the profile's TLS rules and the limits. Never follows redirects. */
export function boundedGet(url: string, profile: TlsProfile, limits: FetchLimits, headers: Record<string, string> = {}): Promise<FetchResult> {
  let u: URL;
  try {
    u = target(url, profile);
  } catch (err) {
    return Promise.reject(err as FetchError);
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (e: FetchError) => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(e);
    };
    const done = (r: FetchResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(totalTimer);
      resolve(r);
    };
    const onResponse = (res: IncomingMessage) => {
      clearTimeout(connectTimer);
      readBody(res, url, u, limits.maxBytes, done, fail);
    };
    const options = {
      method: 'GET',
      headers: { accept: 'application/json, application/x-pem-file, */*', ...headers },
      agent: false as const,
    };
    const req =
      profile.kind === 'http'
        ? httpRequest(u, options, onResponse)
        : httpsRequest(u, { ...options, minVersion: 'TLSv1.2', ciphers: INTERMEDIATE_CIPHERS, rejectUnauthorized: true, ...tlsOptions(profile) }, onResponse);
    const connectTimer = setTimeout(
      () => fail(new FetchError('timeout', `fetch: ${url}: no response within ${limits.connectTimeoutMs} ms`)),
      limits.connectTimeoutMs,
    );
    const totalTimer = setTimeout(
      () => fail(new FetchError('timeout', `fetch: ${url}: not complete within ${limits.totalTimeoutMs} ms`)),
      limits.totalTimeoutMs,
    );
    req.on('error', (e: Error & { code?: string }) => {
      clearTimeout(connectTimer);
      clearTimeout(totalTimer);
      // From OpenSSL 3.2 on (Node 24's 3.5) the default security level refuses a weak key in
      // the chain before checkServerIdentity sees it; Node names that error only by its message.
      // It is the same refusal as ours above, with the same reason.
      if (profile.kind === 'https_spiffe' && /^(EE|CA) certificate key too weak$/.test(e.message)) {
        fail(new FetchError('identity', `fetch: endpoint ${e.message.startsWith('EE') ? 'certificate' : 'chain certificate'} refused by TLS: ${e.message}`, 'ERR_KEY_TOO_WEAK'));
        return;
      }
      const kind = e instanceof FetchError ? e.kind : /CERT|SSL|TLS|UNABLE_TO|SELF_SIGNED|ERR_TLS/.test(e.code ?? e.message) ? 'tls' : 'network';
      fail(e instanceof FetchError ? e : new FetchError(kind, `fetch: ${url}: ${e.message}`));
    });
    req.on('close', () => {
      clearTimeout(connectTimer);
      clearTimeout(totalTimer);
    });
    req.end();
  });
}
