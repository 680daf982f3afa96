/**
 * `zonegate bundle fetch URL …` fetches a SPIFFE bundle endpoint once, with the same code and
 * checks the server uses, and prints the bundle. `zonegate bundle show FILE` lists what a bundle
 * file holds.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parseBundle, serializeSpiffeBundle, type Bundle } from '../bundle/bundle.js';
import { TrustDomain } from '../spiffe/id.js';
import { certInfo } from '../cert/certinfo.js';
import { createSource, SourceError } from '../federation/sources.js';
import { fetchLimits, type SourceConfig } from '../federation/schema.js';
import { configDefaults } from '../config/schema.js';
import { UsageError } from './errors.js';

export interface FetchOptions {
  trustDomain: string;
  profile: string;
  ca?: string;
  endpointSpiffeId?: string;
  bootstrap?: string;
  timeout: string;
}

function td(name: string, command: string): TrustDomain {
  try {
    return TrustDomain.parse(name);
  } catch (err) {
    throw new UsageError(`${command}: --trust-domain: ${(err as Error).message}`);
  }
}

/** Fetches once; prints the bundle (exit 0) or {"reason", "message"} (exit 1). */
export async function runBundleFetch(url: string, o: FetchOptions, out: (s: string) => void): Promise<number> {
  const trustDomain = td(o.trustDomain, 'bundle fetch');
  let cfg: SourceConfig;
  if (o.profile === 'https_web') {
    if (o.endpointSpiffeId || o.bootstrap) throw new UsageError('bundle fetch: --endpoint-spiffe-id and --bootstrap belong to --profile https_spiffe');
    cfg = { https_web: { url, ...(o.ca ? { ca: o.ca } : {}) } };
  } else if (o.profile === 'https_spiffe') {
    if (!o.endpointSpiffeId || !o.bootstrap) throw new UsageError('bundle fetch: --profile https_spiffe needs --endpoint-spiffe-id and --bootstrap');
    if (o.ca) throw new UsageError('bundle fetch: --ca belongs to --profile https_web');
    cfg = { https_spiffe: { url, endpointSpiffeId: o.endpointSpiffeId, bootstrap: o.bootstrap } };
  } else throw new UsageError(`bundle fetch: --profile must be https_web or https_spiffe, not "${o.profile}"`);
  const ms = Number(o.timeout) * 1000;
  if (!(ms > 0)) throw new UsageError('bundle fetch: --timeout must be a positive number of seconds');
  // the files first, each named by its option: a bare ENOENT would not say which one
  for (const [flag, f] of [['--ca', o.ca], ['--bootstrap', o.bootstrap]] as const) {
    if (f === undefined) continue;
    try {
      readFileSync(f);
    } catch (err) {
      throw new UsageError(`bundle fetch: ${flag} ${f}: cannot read: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  }
  let source;
  try {
    // the limits serve applies with the default config, but the command's own timeout
    source = createSource(cfg, trustDomain, { ...fetchLimits(configDefaults()), connectTimeoutMs: ms, totalTimeoutMs: ms }, { current: () => undefined });
  } catch (err) {
    throw new UsageError(`bundle fetch: ${(err as Error).message}`);
  }
  try {
    out(JSON.stringify(JSON.parse(serializeSpiffeBundle(await source.fetch())), null, 2));
    return 0;
  } catch (err) {
    if (!(err instanceof SourceError)) throw err;
    const reason = err.kind === 'parse' ? 'ERR_BUNDLE_INVALID' : err.kind === 'identity' ? 'ERR_BUNDLE_ENDPOINT_IDENTITY' : 'ERR_BUNDLE_FETCH';
    out(JSON.stringify({ reason, message: err.message }, null, 2));
    return 1;
  }
}

interface AuthorityRow {
  kind: 'x509' | 'jwt';
  subject: string;
  spiffeId: string | null;
  notAfter: string | null;
  keyId: string | null;
  /** The SHA-256 fingerprint in the colon form `openssl x509 -fingerprint -sha256` prints (of the DER certificate; of the SPKI for a JWT key). */
  sha256: string;
}

/** `AB:CD:…`, as openssl prints a fingerprint: compare it over a second channel. */
export const fingerprint = (der: Uint8Array): string =>
  createHash('sha256').update(der).digest('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:');

function rows(b: Bundle): AuthorityRow[] {
  const x509 = b.x509Authorities.map((c): AuthorityRow => {
    let spiffeId: string | null;
    try {
      spiffeId = certInfo(c).uris.find((u) => u.startsWith('spiffe://')) ?? null;
    } catch {
      spiffeId = null; // an authority with unreadable extensions still gets listed
    }
    return {
      kind: 'x509',
      subject: c.subject.replace(/\n/g, ', '),
      spiffeId,
      notAfter: new Date(c.validTo).toISOString(),
      keyId: null,
      sha256: fingerprint(c.raw),
    };
  });
  const jwt = [...b.jwtAuthorities.values()].map(
    (a): AuthorityRow => ({
      kind: 'jwt',
      subject: `${a.jwk.kty}${a.jwk.crv ? ` ${a.jwk.crv}` : ''}`,
      spiffeId: null,
      notAfter: null,
      keyId: a.kid,
      sha256: fingerprint(a.key.export({ format: 'der', type: 'spki' })),
    }),
  );
  return [...x509, ...jwt];
}

/** Prints the authorities of a bundle file as a table, or JSON. */
export function runBundleShow(file: string, o: { json?: boolean; trustDomain?: string }, out: (s: string) => void): number {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new UsageError(`bundle show: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  // Parsing needs a trust domain; without --trust-domain a stand-in is used that no message names.
  const standIn = 'bundle-show.invalid';
  let b: Bundle;
  try {
    b = parseBundle(bytes, td(o.trustDomain ?? standIn, 'bundle show'), { maxKeys: configDefaults().limits.maxBundleKeys });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const m = (err as Error).message.replace(` trust domain "${standIn}":`, '').replace(`"${standIn}"`, 'the bundle');
    throw new UsageError(`bundle show: ${file}: ${m}`);
  }
  const list = rows(b);
  if (o.json) {
    out(JSON.stringify({ sequence: b.sequence ?? null, refreshHintSeconds: b.refreshHintSeconds ?? null, authorities: list }, null, 2));
    return 0;
  }
  const head = ['KIND', 'SUBJECT / KEY', 'SPIFFE ID', 'NOT AFTER', 'KEY ID', 'SHA-256 FINGERPRINT'];
  const table = [head, ...list.map((r) => [r.kind, r.subject, r.spiffeId ?? '-', r.notAfter ?? '-', r.keyId ?? '-', r.sha256])];
  const widths = head.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const hint = b.refreshHintSeconds === undefined ? 'none' : `${b.refreshHintSeconds} s`;
  out(`sequence: ${b.sequence ?? 'none'}   refresh hint: ${hint}   authorities: ${list.length}${b.revoked ? ' (revoked: empty bundle)' : ''}`);
  for (const row of table) out(row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  return 0;
}
