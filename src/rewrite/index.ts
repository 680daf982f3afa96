/**
 * Phase 4, the rewrite: what the upstream receives on an allow, chosen per destination.
 * The route names its destination in context_extensions (`destination: billing`);
 * `upstream.destinations.billing` says how that upstream learns who called, and routes without a
 * destination (or with one not listed) get `upstream.default`. Modes (docs/rewrite.md):
 *   headers      identity headers (peer SPIFFE ID, trust domain, canonical zone/namespace/service,
 *                actor, act chain, roles, decision id)
 *   jwt          a short-lived JWT signed by a local key (JWKS on the ops server)
 *   hmac         the identity headers plus an HMAC proof over them and a timestamp
 *   basic        `authorization: Basic …` from a secret file, actor → username:password
 *   passthrough  the verified token itself, as received
 * In every mode the carried token header is removed (passthrough keeps it) and so is any
 * client copy of a header zonegate sets in any mode or guards. Envoy applies the sets first and
 * then the removals, so nothing set is ever listed for removal.
 * At egress the upstream is another zone: it gets the minted common identity, not a rewrite.
 */
import { readFileSync } from 'node:fs';
import type { ReasonCode } from '../errors.js';
import type { AuthRequest, CarriedIdentity, HeaderToSet, PeerIdentity } from '../request/types.js';
import { BasicCredentials } from './basic.js';
import { identityClaims, identityHeaders, identityNames, identityValues, isHeaderValue, rolesOf } from './identity.js';
import { KeyRing } from './keys.js';
import { Reissuer } from './reissue.js';
import type { DestinationConfig, RewriteConfig, RewriteMode } from './schema.js';
import { formatProof, proofSignature } from './verify.js';
import { egressGuard, ingressGuard } from './guard.js';

export interface RewriteInput {
  readonly req: AuthRequest;
  readonly direction: 'ingress' | 'egress';
  readonly peer: PeerIdentity;
  readonly carried?: CarriedIdentity | undefined;
  /** From the carried phase: egress sets the minted token; ingress removes a consumed bearer token. */
  readonly set?: readonly HeaderToSet[] | undefined;
  readonly remove?: readonly string[] | undefined;
  readonly now: number;
}

export type RewriteResult =
  | { readonly ok: true; readonly set: HeaderToSet[]; readonly remove: string[]; readonly destination?: string; readonly mode: RewriteMode | 'egress' }
  | { readonly ok: false; readonly code: ReasonCode; readonly message: string };

export interface Rewriter {
  apply(input: RewriteInput): RewriteResult;
  /** The re-issue keys (their JWKS is served on the ops server). */
  readonly keys: KeyRing;
}

interface Plan {
  readonly mode: RewriteMode;
  readonly audience?: string;
  readonly identity: boolean;
}

const plan = (d: DestinationConfig): Plan => ({
  mode: d.mode,
  ...(d.audience ? { audience: d.audience } : {}),
  identity: d.identityHeaders ?? (d.mode === 'headers' || d.mode === 'hmac' || d.mode === 'passthrough'),
});

/** The re-issue key ring for a config: made once per process, so reloads keep the published keys. */
export function createKeyRing(config: RewriteConfig, now = Date.now()): KeyRing {
  const j = config.upstream.jwt;
  return new KeyRing(
    {
      algorithm: j.algorithm,
      ...(j.keyFile ? { keyFile: j.keyFile } : {}),
      everyMs: j.rotation.everySeconds * 1000,
      publishAheadMs: j.rotation.publishAheadSeconds * 1000,
      // a token signed just before the switch lives ttl more; 30 s covers upstream clock skew
      retainMs: (j.ttlSeconds + 30) * 1000,
    },
    now,
  );
}

function readSecret(file: string): Buffer {
  let s: Buffer;
  try {
    s = readFileSync(file);
  } catch (err) {
    throw new Error(`upstream.hmac.secretFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).name}`, { cause: err });
  }
  while (s.length > 0 && (s[s.length - 1] === 0x0a || s[s.length - 1] === 0x0d)) s = s.subarray(0, s.length - 1);
  if (s.length < 32) throw new Error(`upstream.hmac.secretFile: ${file} holds ${s.length} bytes; at least 32 are needed`);
  return s;
}

/** Builds the rewrite phase; everything derivable from the config is computed here, once. */
export function createRewriter(config: RewriteConfig, opts: { carriedHeader?: string | undefined; keys?: KeyRing } = {}): Rewriter {
  const u = config.upstream;
  const names = u.headers;
  const plans = new Map(Object.entries(u.destinations).map(([name, d]) => [name, plan(d)]));
  const fallback = plan(u.default);
  const modes = new Set([fallback.mode, ...[...plans.values()].map((p) => p.mode)]);
  const keys = opts.keys ?? createKeyRing(config);
  const reissuer = modes.has('jwt')
    ? new Reissuer(keys, { issuer: u.jwt.issuer, ttlSeconds: u.jwt.ttlSeconds, reuseFraction: u.jwt.reuseFraction, cacheSize: u.jwt.cacheSize })
    : undefined;
  const hmac = u.hmac && modes.has('hmac') ? { ...u.hmac, secret: readSecret(u.hmac.secretFile) } : undefined;
  const basic = u.basic && modes.has('basic') ? new BasicCredentials(u.basic.credentialsFile) : undefined;
  const signed = identityNames(names);
  const proofNames = hmac?.bindRequest ? [':method', ':path', ...signed] : signed;

  // At egress the local app's own headers go out as before (the carried phase decides about
  // authorization); only the identity headers and the guard list are cleared. At ingress every
  // header zonegate may set for some destination is guarded for all of them (src/rewrite/guard.ts).
  const egressGuarded = egressGuard(u);
  const guarded = ingressGuard(u, { jwt: reissuer !== undefined, hmac: hmac !== undefined, basic: basic !== undefined });
  const carriedHeader = opts.carriedHeader;

  const finish = (set: HeaderToSet[], remove: string[], mode: RewriteMode | 'egress', destination?: string): RewriteResult => {
    for (const h of set)
      if (!isHeaderValue(h.value)) return { ok: false, code: 'ERR_UPSTREAM_HEADER_VALUE', message: `rewrite: the value for ${h.name} is not a valid header value` };
    const setNames = new Set(set.map((h) => h.name));
    return { ok: true, set, remove: [...new Set(remove)].filter((h) => !setNames.has(h)), mode, ...(destination ? { destination } : {}) };
  };

  return {
    keys,
    apply({ req, direction, peer, carried, set: extraSet, remove: extraRemove, now }) {
      if (direction === 'egress') {
        const set = [...(extraSet ?? [])];
        if (names.decisionId) set.push({ name: names.decisionId, value: req.id });
        return finish(set, [...egressGuarded, ...(extraRemove ?? [])], 'egress');
      }
      const destination = req.contextExtensions.get('destination');
      const p = (destination !== undefined ? plans.get(destination) : undefined) ?? fallback;
      const values = identityValues(req, peer, carried);
      // ["a,b"] and ["a", "b"] would be one header value: a role with a comma has no spelling there
      if (names.roles !== '' && p.identity && rolesOf(carried)?.some((r) => r.includes(',')))
        return { ok: false, code: 'ERR_UPSTREAM_HEADER_VALUE', message: `rewrite: a role holds ",", which the comma-separated ${names.roles} cannot tell from two roles` };
      const set = identityHeaders(names, values, p.identity);
      // The verified token's own header(s): consumed here, except in passthrough.
      const tokenHeaders = extraRemove && extraRemove.length > 0 ? extraRemove : carriedHeader ? [carriedHeader] : [];
      const keep = p.mode === 'passthrough' && carried ? new Set(tokenHeaders) : undefined;
      const remove = [...guarded, ...(carriedHeader ? [carriedHeader] : []), ...tokenHeaders].filter((h) => !keep?.has(h));
      switch (p.mode) {
        case 'jwt': {
          const aud = p.audience ?? destination ?? req.host;
          const token = reissuer!.token(identityClaims(peer, carried), aud, now);
          set.push({ name: u.jwt.header, value: u.jwt.header === 'authorization' ? `Bearer ${token}` : token });
          break;
        }
        case 'hmac': {
          const t = Math.floor(now / 1000);
          const byName = new Map(set.map((h) => [h.name, h.value]));
          const target = req.query ? `${req.path}?${req.query}` : req.path;
          const lines = proofNames.map((n): [string, string] => [n, n === ':method' ? req.method : n === ':path' ? target : (byName.get(n) ?? '')]);
          set.push({ name: hmac!.header, value: formatProof(hmac!.keyId, t, proofNames, proofSignature(hmac!.secret, hmac!.keyId, t, lines)) });
          break;
        }
        case 'basic': {
          const actor = carried?.actor ?? peer.principal;
          const value = basic!.header(actor);
          if (!value) return { ok: false, code: 'ERR_UPSTREAM_NO_CREDENTIAL', message: `rewrite: no upstream credentials for actor "${actor}"` };
          set.push({ name: 'authorization', value });
          break;
        }
        case 'headers':
        case 'passthrough':
          break;
      }
      return finish(set, remove, p.mode, destination);
    },
  };
}
