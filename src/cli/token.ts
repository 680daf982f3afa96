/**
 * `zonegate token mint` signs a common identity with an SVID and key; `zonegate token verify`
 * checks one against per-trust-domain bundles exactly as the ingress does.
 */
import { readFileSync } from 'node:fs';
import { sha256 } from '../hash.js';
import { ConfigSchema } from '../config/schema.js';
import { tokenRules, verifierOptions } from '../identity/carried.js';
import { mintCommonIdentity } from '../identity/mint.js';
import { CommonIdentityVerifier, type Act } from '../identity/verify.js';
import { parseCertificates } from '../cert/parse.js';
import { loadX509Svid } from '../svid/local.js';
import { certInfo } from '../cert/certinfo.js';
import { bundlesFromOptions } from './svid.js';
import { UsageError } from './errors.js';

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file === '-' ? 0 : file);
  } catch (err) {
    throw new UsageError(`token: cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

/** "60", "60s", "5m", "1h" → seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+)(s|m|h)?$/.exec(s.trim());
  if (!m) throw new UsageError(`token: "${s}" is not a duration (e.g. 60s, 5m)`);
  return Number(m[1]) * ({ s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'] ?? 1);
}

export interface MintCliOptions {
  key: string;
  cert: string;
  sub: string;
  aud: string[];
  ttl: string;
  maxLifetime?: string;
  actFrom?: string;
}

/** Prints a token; exit 0. */
export function runTokenMint(o: MintCliOptions, out: (s: string) => void): number {
  // A token the verifiers would refuse is refused here, where the mistake is made.
  const ttl = parseDuration(o.ttl);
  const max = parseDuration(o.maxLifetime ?? '10m');
  if (ttl < 1) throw new UsageError('token mint: --ttl must be at least 1s');
  if (ttl > max)
    throw new UsageError(`token mint: --ttl ${o.ttl} (${ttl} s) is longer than verifiers accept (${max} s: commonIdentity.maxLifetimeSeconds); raise --max-lifetime if yours accept more`);
  let svid;
  try {
    svid = loadX509Svid(read(o.cert, 'certificate'), read(o.key, 'key'));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`token mint: ${(err as Error).message}`);
  }
  let onBehalfOf: { iss: string; act?: Act } | undefined;
  if (o.actFrom) {
    // The caller's token whose hops we chain. Its claims are read, not verified: verify it first.
    const payload = o.actFrom.split('.')[1];
    let claims: { iss?: unknown; act?: Act } | undefined;
    try {
      claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as { iss?: unknown; act?: Act };
    } catch {
      claims = undefined;
    }
    if (typeof claims?.iss !== 'string') throw new UsageError('token mint: --act-from is not a token with an iss claim');
    onBehalfOf = { iss: claims.iss, ...(claims.act ? { act: claims.act } : {}) };
  }
  out(mintCommonIdentity(svid, { sub: o.sub, aud: o.aud.length === 1 ? o.aud[0]! : o.aud, ttlSeconds: ttl, ...(onBehalfOf ? { onBehalfOf } : {}) }));
  return 0;
}

export interface VerifyCliOptions {
  bundle: string[];
  audience: string[];
  peer?: string;
  peerCert?: string;
  maxLifetime: string;
  skew: string;
}

/** Prints {"valid", "reason", "claims"}; exit 0 valid, 1 invalid. */
export function runTokenVerify(tokenArg: string, o: VerifyCliOptions, out: (s: string) => void): number {
  const token = (tokenArg === '-' ? read('-', 'token').toString('utf8') : tokenArg).trim();
  if (o.audience.length === 0) throw new UsageError('token verify: at least one --audience is required');
  const bundles = bundlesFromOptions(o.bundle, 'token verify');
  let peerId = o.peer;
  let peerThumbprint: string | undefined;
  if (o.peerCert) {
    const leaf = parseCertificates(read(o.peerCert, 'peer certificate'))[0]!;
    peerThumbprint = sha256(leaf.raw, 'base64url');
    peerId ??= certInfo(leaf).uris[0];
  }
  // everything not given on the command line is the configuration's default
  const config = ConfigSchema.parse({ commonIdentity: {} });
  const rules = {
    ...tokenRules(config, config.commonIdentity!, undefined),
    maxLifetimeSeconds: parseDuration(o.maxLifetime),
    skewSeconds: parseDuration(o.skew),
    audiences: new Set(o.audience),
    // Without a peer there is nothing to bind to: say so by giving --peer or --peer-cert.
    bindToPeer: peerId !== undefined,
    requireCnf: false,
  };
  const verifier = new CommonIdentityVerifier(bundles, rules, verifierOptions(config, 0));
  const r = verifier.verify(token, { now: Date.now(), ...(peerId ? { peerId } : {}), ...(peerThumbprint ? { peerThumbprint } : {}) });
  out(JSON.stringify(r.ok ? { valid: true, reason: null, claims: r.claims } : { valid: false, reason: r.code, message: r.message, claims: null }, null, 2));
  return r.ok ? 0 : 1;
}

