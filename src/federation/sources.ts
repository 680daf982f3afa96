/**
 * Trust sources: where one trust domain's bundle comes from. Each is configured explicitly and
 * never inferred from a URL; none falls back to another (SPIFFE_Federation.md).
 *   file          SPIFFE bundle JSON, PEM or DER, watched (ConfigMap/Secret symlink swaps included)
 *   https_web     a SPIFFE bundle endpoint authenticated by Web PKI or a configured CA
 *   https_spiffe  a SPIFFE bundle endpoint authenticated by its SPIFFE ID: the first fetch trusts
 *                 the bootstrap bundle, every later one the most recent bundle of that trust domain
 *   consul        Consul's CA roots API (GET /v1/connect/ca/roots)
 *   istio         Istio's root certificate (istio-ca-root-cert ConfigMap / root-cert.pem file)
 */
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { Bundle, parseBundle, parseSpiffeBundle, usableAuthorities } from '../bundle/bundle.js';
import { ZonegateError, type ReasonCode } from '../errors.js';
import { SpiffeId, TrustDomain } from '../spiffe/id.js';
import { parseCertificates } from '../cert/parse.js';
import { boundedGet, FetchError, type FetchLimits, type FetchResult, type TlsProfile } from '../net/fetch.js';
import { FileWatch } from '../watch.js';
import type { SourceConfig } from './schema.js';

export interface BundleSource {
  readonly kind: 'file' | 'https_web' | 'https_spiffe' | 'consul' | 'istio';
  /** For logs and metrics: where the bundle comes from (no credentials). */
  readonly describe: string;
  fetch(): Promise<Bundle>;
  /** Calls `onChange` (debounced) when the source may have changed (files); returns a stop function. */
  watch?(onChange: () => void): () => void;
}

export class SourceError extends Error {
  constructor(
    readonly kind: 'fetch' | 'status' | 'parse' | 'identity',
    message: string,
    /** The reason code, for logs: ERR_BUNDLE_FETCH, ERR_BUNDLE_TOO_LARGE, ERR_BUNDLE_INVALID, … */
    readonly code: ReasonCode = kind === 'parse' ? 'ERR_BUNDLE_INVALID' : kind === 'identity' ? 'ERR_BUNDLE_ENDPOINT_IDENTITY' : 'ERR_BUNDLE_FETCH',
  ) {
    super(message);
    this.name = 'SourceError';
  }
}

const MAX_REDIRECTS = 3;

/**
 * Follows redirects only within the same TLS profile (so an https_spiffe hop must present the same
 * ID). `credentials` (e.g. Consul's ACL token) go to the configured origin only: a redirect to
 * another origin is followed without them, as browsers drop Authorization across origins.
 */
async function getFollowing(url: string, profile: TlsProfile, limits: FetchLimits, credentials?: Record<string, string>): Promise<FetchResult> {
  const origin = new URL(url).origin;
  let current = url;
  for (let i = 0; i <= MAX_REDIRECTS; i++) {
    let res: FetchResult;
    try {
      res = await boundedGet(current, profile, limits, new URL(current).origin === origin ? credentials : undefined);
    } catch (err) {
      if (err instanceof FetchError)
        throw new SourceError(err.kind === 'identity' ? 'identity' : 'fetch', err.message, err.code ?? (err.kind === 'too_large' ? 'ERR_BUNDLE_TOO_LARGE' : undefined));
      throw err;
    }
    if ([301, 302, 303, 307, 308].includes(res.status) && res.location) {
      current = res.location;
      continue;
    }
    if (res.status !== 200) throw new SourceError('status', `${current}: HTTP ${res.status}`);
    return res;
  }
  throw new SourceError('fetch', `${url}: more than ${MAX_REDIRECTS} redirects`);
}

const parseError = (err: unknown) =>
  new SourceError('parse', err instanceof Error ? err.message : String(err), err instanceof ZonegateError && err.code === 'ERR_BUNDLE_TOO_LARGE' ? err.code : undefined);

function fileSource(kind: 'file' | 'istio', path: string, td: TrustDomain, limits: FetchLimits): BundleSource {
  return {
    kind,
    describe: `${kind}:${path}`,
    async fetch() {
      let bytes: Buffer;
      try {
        // a file is bounded like a response: never read a huge one into memory
        const size = (await stat(path)).size;
        if (size > limits.maxBytes) throw new SourceError('fetch', `${path}: ${size} bytes (limit ${limits.maxBytes})`, 'ERR_BUNDLE_TOO_LARGE');
        bytes = await readFile(path);
      } catch (err) {
        if (err instanceof SourceError) throw err;
        throw new SourceError('fetch', `${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
      try {
        return parseBundle(bytes, td, { maxKeys: limits.maxKeys });
      } catch (err) {
        throw parseError(err);
      }
    },
    watch(onChange) {
      // src/watch.ts: the directory, for Kubernetes' "..data" symlink swap; no poll: the
      // periodic refresh of every trust domain is this source's backstop
      const w = new FileWatch([path], () => onChange(), { debounceMs: 50 });
      return () => w.close();
    },
  };
}

/** Holds the X.509 roots the https_spiffe profile trusts for an endpoint's trust domain. */
export interface EndpointRoots {
  /** The most recent bundle of the endpoint's trust domain, when one is held. */
  current(td: TrustDomain): Bundle | undefined;
}

/** A source URL must not carry credentials: they would travel with every fetch and show in logs and status. */
function refuseUserinfo(url: string): void {
  const u = new URL(url);
  if (u.username !== '' || u.password !== '')
    throw new ZonegateError('ERR_BUNDLE_INVALID', `bundle: source URL ${u.protocol}//…@${u.host} carries credentials; use tokenFile or a CA instead`);
}

/** Creates the source of `td` from its configuration. Files named here are read lazily. */
export function createSource(cfg: SourceConfig, td: TrustDomain, limits: FetchLimits, roots: EndpointRoots): BundleSource {
  for (const c of Object.values(cfg) as unknown[]) if (typeof c === 'object' && c !== null && 'url' in c) refuseUserinfo(String(c.url));
  if ('file' in cfg) return fileSource('file', cfg.file, td, limits);
  if ('istio' in cfg) return fileSource('istio', cfg.istio.rootCert, td, limits);
  if ('https_web' in cfg) {
    const { url, ca } = cfg.https_web;
    const caPems = ca ? parseCertificates(readFileSync(ca)).map((c) => c.toString()) : undefined;
    return {
      kind: 'https_web',
      describe: `https_web:${url}`,
      async fetch() {
        const res = await getFollowing(url, { kind: 'https_web', ...(caPems ? { ca: caPems } : {}) }, limits);
        try {
          return parseSpiffeBundle(res.body, td, { maxKeys: limits.maxKeys });
        } catch (err) {
          throw parseError(err);
        }
      },
    };
  }
  if ('https_spiffe' in cfg) {
    const { url, endpointSpiffeId, bootstrap } = cfg.https_spiffe;
    const endpointId = SpiffeId.parse(endpointSpiffeId);
    const bootstrapBundle = parseBundle(readFileSync(bootstrap), endpointId.trustDomain, { maxKeys: limits.maxKeys });
    if (bootstrapBundle.x509Authorities.length === 0)
      throw new ZonegateError('ERR_BUNDLE_INVALID', `bundle: bootstrap ${bootstrap} has no X.509 authorities for "${endpointId.trustDomain.name}"`);
    return {
      kind: 'https_spiffe',
      describe: `https_spiffe:${url} (${endpointId.value})`,
      async fetch() {
        // First connection: the bootstrap bundle; afterwards the latest bundle of that trust domain.
        const anchor = roots.current(endpointId.trustDomain) ?? bootstrapBundle;
        const pems = anchor.x509Authorities.map((c) => c.toString());
        const res = await getFollowing(url, { kind: 'https_spiffe', endpointId: endpointId.value, roots: () => pems }, limits);
        try {
          return parseSpiffeBundle(res.body, td, { maxKeys: limits.maxKeys });
        } catch (err) {
          throw parseError(err);
        }
      },
    };
  }
  const { url, tokenFile, ca, datacenter } = cfg.consul;
  const base = new URL(url);
  const profile: TlsProfile =
    base.protocol === 'http:'
      ? { kind: 'http' }
      : { kind: 'https_web', ...(ca ? { ca: parseCertificates(readFileSync(ca)).map((c) => c.toString()) } : {}) };
  const rootsUrl = new URL('/v1/connect/ca/roots', base);
  if (datacenter) rootsUrl.searchParams.set('dc', datacenter);
  return {
    kind: 'consul',
    describe: `consul:${rootsUrl.origin}`,
    async fetch() {
      const headers: Record<string, string> = {};
      if (tokenFile) headers['x-consul-token'] = readFileSync(tokenFile, 'utf8').trim();
      const res = await getFollowing(rootsUrl.toString(), profile, limits, headers);
      try {
        return consulRootsToBundle(res.body, td, limits.maxKeys);
      } catch (err) {
        throw parseError(err);
      }
    },
  };
}

/**
 * Consul's `{"TrustDomain": "<uuid>.consul", "Roots": [{"RootCert": PEM, "IntermediateCerts": [...]}]}`
 * → the bundle of that trust domain (every root, active or not, so rotation overlaps).
 */
export function consulRootsToBundle(body: Buffer | string, td: TrustDomain, maxKeys: number): Bundle {
  const doc = JSON.parse(body.toString()) as { TrustDomain?: unknown; Roots?: unknown };
  if (typeof doc.TrustDomain !== 'string') throw new Error('consul: response has no TrustDomain');
  if (doc.TrustDomain !== td.name)
    throw new Error(`consul: the CA's trust domain is "${doc.TrustDomain}", configured "${td.name}"`);
  if (!Array.isArray(doc.Roots)) throw new Error('consul: response has no Roots');
  if (doc.Roots.length > maxKeys) throw new ZonegateError('ERR_BUNDLE_TOO_LARGE', `consul: ${doc.Roots.length} roots (limit ${maxKeys})`);
  const certs = doc.Roots.flatMap((r: { RootCert?: unknown }) => {
    if (typeof r?.RootCert !== 'string') throw new Error('consul: a root has no RootCert');
    return parseCertificates(r.RootCert);
  });
  const { x509, ignored } = usableAuthorities(certs, (i) => `root ${i}`);
  return new Bundle(td, { x509Authorities: x509, ignored });
}
