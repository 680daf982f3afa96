/**
 * Loads the trust domains configured under `trust:` from files into a BundleSet, and builds the
 * X509-SVID verifier over it. Startup (and reload) only.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { ZonegateError } from '../errors.js';
import { TrustDomain } from '../spiffe/id.js';
import { parseCertificates } from '../svid/parse.js';
import { X509SvidVerifier } from '../svid/verifier.js';
import { parseBundle } from './bundle.js';
import { BundleSet } from './set.js';

export interface TrustSummary {
  readonly trustDomain: string;
  readonly x509Authorities: number;
  readonly jwtAuthorities: number;
  readonly intermediates: number;
}

export interface Trust {
  readonly bundles: BundleSet;
  readonly verifier: X509SvidVerifier;
  readonly summary: readonly TrustSummary[];
}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ZonegateError('ERR_BUNDLE_INVALID', `${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

/** Loads every configured trust domain. Throws ZonegateError(ERR_BUNDLE_INVALID) naming the file. */
export function loadTrust(config: Config): Trust {
  const bundles = new BundleSet();
  const summary: TrustSummary[] = [];
  for (const t of config.trust) {
    const td = TrustDomain.parse(t.trustDomain);
    const what = `bundle: trust domain "${td.name}"`;
    const bytes = read(t.bundle, what);
    let bundle;
    try {
      bundle = parseBundle(bytes, td);
    } catch (err) {
      throw new ZonegateError('ERR_BUNDLE_INVALID', `${what}: ${t.bundle}: ${(err as Error).message}`, { cause: err });
    }
    bundles.set(bundle);
    let intermediates = 0;
    if (t.intermediates) {
      const raw = read(t.intermediates, what);
      try {
        const certs = parseCertificates(raw);
        bundles.setIntermediates(td, certs);
        intermediates = certs.length;
      } catch (err) {
        throw new ZonegateError('ERR_BUNDLE_INVALID', `${what}: intermediates ${t.intermediates}: ${(err as Error).message}`, { cause: err });
      }
    }
    summary.push({
      trustDomain: td.name,
      x509Authorities: bundle.x509Authorities.length,
      jwtAuthorities: bundle.jwtAuthorities.size,
      intermediates,
    });
  }
  const verifier = new X509SvidVerifier(bundles, {
    skewSeconds: config.peer.clockSkewSeconds,
    maxChainLength: config.limits.maxChainLength,
    maxBytes: config.limits.maxCertificateBytes * config.limits.maxChainLength,
  });
  return { bundles, verifier, summary };
}
