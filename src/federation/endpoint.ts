/**
 * Our own SPIFFE bundle endpoint: serves the local trust domain's bundle (X.509 authorities and
 * JWT authorities) in the SPIFFE bundle format, on its own port, over the https_web profile (a
 * configured certificate) or the https_spiffe profile (the local X509-SVID, swapped in place when
 * it rotates, without dropping connections, and when a config reload names other SVID files:
 * `useIdentity`).
 *
 * `spiffe_sequence` is the time (seconds) the served content last changed: it only grows, also
 * across restarts, which consumers require.
 */
import { createServer, type Server } from 'node:https';
import { readFileSync } from 'node:fs';
import { listen, type Listening } from '../net/listen.js';
import type { SecureContextOptions } from 'node:tls';
import { Bundle, serializeSpiffeBundle } from '../bundle/bundle.js';
import type { BundleSet } from '../bundle/set.js';
import type { TrustDomain } from '../spiffe/id.js';
import type { LocalIdentity } from '../svid/local-identity.js';

export interface BundleEndpoint extends Listening {
  /**
   * https_spiffe: serve this identity from now on, and follow its rotations (a config reload that
   * names other SVID files builds a new LocalIdentity). New handshakes get it; open connections
   * keep theirs. No-op for https_web, or when it is the identity already served.
   */
  useIdentity(identity: LocalIdentity): void;
}

export interface EndpointOptions {
  readonly trustDomain: TrustDomain;
  readonly address: string;
  readonly port: number;
  /** The live bundles; a function when a config reload may replace the set. */
  readonly bundles: BundleSet | (() => BundleSet);
  /** Served as spiffe_refresh_hint, in seconds. */
  readonly refreshHintSeconds: number;
  readonly tls: { profile: 'https_web'; cert: string; key: string } | { profile: 'https_spiffe'; identity: LocalIdentity };
}

const TLS_BASE: SecureContextOptions = { minVersion: 'TLSv1.2' };

/** Starts the endpoint. GET on any path returns the bundle; 503 while the trust domain has none. */
export async function startBundleEndpoint(o: EndpointOptions): Promise<BundleEndpoint> {
  let identity = o.tls.profile === 'https_spiffe' ? o.tls.identity : undefined;
  const tlsFor = (): SecureContextOptions =>
    o.tls.profile === 'https_web'
      ? { ...TLS_BASE, cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) }
      : { ...TLS_BASE, cert: identity!.current.certPem, key: identity!.current.keyPem };

  let served: { set: BundleSet; generation: number; body: string } | undefined;
  let sequence = 0;
  const body = (): string | undefined => {
    const set = typeof o.bundles === 'function' ? o.bundles() : o.bundles;
    const gen = set.generation(o.trustDomain);
    if (served?.set === set && served.generation === gen) return served.body;
    const b = set.get(o.trustDomain);
    if (!b || set.isStale(o.trustDomain)) return undefined;
    sequence = Math.max(sequence + 1, Math.floor(Date.now() / 1000));
    const out = new Bundle(o.trustDomain, {
      x509Authorities: b.x509Authorities,
      jwtAuthorities: [...b.jwtAuthorities.values()],
      sequence,
      refreshHintSeconds: o.refreshHintSeconds,
    });
    served = { set, generation: gen, body: serializeSpiffeBundle(out) };
    return served.body;
  };

  const server: Server = createServer(tlsFor(), (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const b = body();
    if (b === undefined) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end(`no bundle for ${o.trustDomain.name}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : b);
  });
  const onChange = () => server.setSecureContext(tlsFor());
  identity?.on('change', onChange);
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  let listening: Listening;
  try {
    listening = await listen(server, o.port, o.address);
  } catch (err) {
    identity?.off('change', onChange);
    throw err;
  }
  return {
    port: listening.port,
    useIdentity(next) {
      if (!identity || next === identity) return;
      identity.off('change', onChange);
      identity = next;
      identity.on('change', onChange);
      onChange();
    },
    close: () => {
      identity?.off('change', onChange);
      return listening.close();
    },
  };
}
