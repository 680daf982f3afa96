/**
 * `zonegate svid verify CERT.pem --bundle TD=FILE … [--at RFC3339]`: verifies an X509-SVID (leaf
 * plus optional intermediates) against per-trust-domain bundles and prints
 * {"valid", "spiffeId", "trustDomain", "reason"}.
 */
import { readFileSync } from 'node:fs';
import { parseBundle } from '../bundle/bundle.js';
import { BundleSet } from '../bundle/set.js';
import { ZonegateError } from '../errors.js';
import { SpiffeId, TrustDomain } from '../spiffe/id.js';
import { certInfo } from '../cert/certinfo.js';
import { parseCertificates } from '../cert/parse.js';
import { verifyX509Svid } from '../svid/x509.js';
import { configDefaults } from '../config/schema.js';
import { UsageError } from './errors.js';

export interface SvidVerifyOptions {
  bundle: string[];
  at?: string;
  skew?: string;
}

function readFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`svid verify: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

/** Parses the repeated `--bundle TD=FILE` options into a BundleSet (usage errors exit 2). */
export function bundlesFromOptions(specs: readonly string[], command: string): BundleSet {
  if (specs.length === 0) throw new UsageError(`${command}: at least one --bundle TD=FILE is required`);
  const set = new BundleSet();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new UsageError(`${command}: --bundle "${spec}" is not TD=FILE`);
    let td: TrustDomain;
    try {
      td = TrustDomain.parse(spec.slice(0, eq));
    } catch (err) {
      throw new UsageError(`${command}: --bundle "${spec}": ${(err as Error).message}`);
    }
    if (set.get(td)) throw new UsageError(`${command}: trust domain "${td.name}" is given twice`);
    try {
      set.set(parseBundle(readFile(spec.slice(eq + 1)), td, { maxKeys: configDefaults().limits.maxBundleKeys }));
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`${command}: bundle for "${td.name}": ${(err as Error).message}`);
    }
  }
  return set;
}

/** The SPIFFE ID the leaf's URI SAN names, when the leaf can be read and names a valid one. */
function namedId(raw: Buffer): SpiffeId | undefined {
  try {
    const leaf = parseCertificates(raw)[0];
    const uri = leaf && certInfo(leaf).uris.find((u) => u.startsWith('spiffe://'));
    return uri ? SpiffeId.parse(uri) : undefined;
  } catch {
    return undefined;
  }
}

/** Runs the verification; returns the exit code (0 valid, 1 invalid). */
export function runSvidVerify(certFile: string, opts: SvidVerifyOptions, out: (s: string) => void): number {
  const bundles = bundlesFromOptions(opts.bundle, 'svid verify');
  let now: number | undefined;
  if (opts.at !== undefined) {
    now = Date.parse(opts.at);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(opts.at) || Number.isNaN(now))
      throw new UsageError(`svid verify: --at "${opts.at}" is not an RFC 3339 time`);
  }
  const skewSeconds = opts.skew === undefined ? 0 : Number(opts.skew);
  if (!Number.isInteger(skewSeconds) || skewSeconds < 0) throw new UsageError(`svid verify: --skew must be whole seconds`);
  const raw = readFile(certFile);
  let result: { valid: boolean; spiffeId: string | null; trustDomain: string | null; reason: string | null; message?: string };
  try {
    // the limits serve applies with the default config
    const { maxChainLength, maxSignatureChecks } = configDefaults().limits;
    const { id } = verifyX509Svid(parseCertificates(raw), bundles, { ...(now !== undefined ? { now } : {}), skewSeconds, maxChainLength, maxSignatureChecks });
    result = { valid: true, spiffeId: id.value, trustDomain: id.trustDomain.name, reason: null };
  } catch (err) {
    if (!(err instanceof ZonegateError)) throw err;
    // the ID the certificate names (unverified: the reason says why it is not trusted)
    const named = namedId(raw);
    result = { valid: false, spiffeId: named?.value ?? null, trustDomain: named?.trustDomain.name ?? null, reason: err.code, message: err.message };
  }
  out(JSON.stringify(result, null, 2));
  return result.valid ? 0 : 1;
}
