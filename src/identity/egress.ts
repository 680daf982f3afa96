/**
 * Egress of the carried-identity phase: the actor of an outgoing call is established from the
 * local request — a verified common identity the app forwards (we call on behalf of our caller:
 * its hops go into act), else a user credential in `authorization` (users.ts), else the workload
 * itself — and a common identity is minted for it with the local SVID, for the destination (and,
 * with commonIdentity.wirepact.emit, a WirePact token beside it).
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IdentityConfig as Config } from './schema.js';
import type { X509BundleSource } from '../bundle/set.js';
import type { LocalIdentity } from '../svid/local-identity.js';
import { ZonegateError } from '../errors.js';
import { SpiffeId } from '../spiffe/id.js';
import type { LocalSvid } from '../svid/local.js';
import { parseCertificates } from '../cert/parse.js';
import { checkSigningLeaf } from '../svid/x509.js';
import type { AuthRequest } from '../request/types.js';
import { readToken, tokenRules, verifierOptions, type CarriedResult, type CommonIdentityConfig } from './carried.js';
import { mintCommonIdentity, RESERVED } from './mint.js';
import type { UserCredentials } from './users.js';
import { CommonIdentityVerifier, type Act } from './verify.js';
import { mintWirePact, WIREPACT_HEADER } from './wirepact.js';

export interface Egress {
  /** A forwarded token's signatures, or a Basic password, checked on the thread pool. */
  prepare(req: AuthRequest, now: number): Promise<void> | undefined;
  mint(req: AuthRequest, now: number): CarriedResult;
}

/** On whose behalf the outgoing call is made, and the claims that go into the minted token. */
interface Actor {
  readonly actor: string;
  readonly actors: readonly string[];
  readonly extra: Record<string, unknown>;
  readonly onBehalfOf?: { iss: string; act?: Act; copied?: Record<string, unknown> };
}

type WirePactSigner = { readonly key: ReturnType<typeof createPrivateKey>; readonly chain: ReturnType<typeof parseCertificates>; readonly issuer: string };

function wirepactSigner(ci: CommonIdentityConfig): WirePactSigner | undefined {
  const emit = ci.wirepact?.emit;
  if (!emit) return undefined;
  const chain = parseCertificates(readFileSync(emit.cert));
  // a certificate WirePact verification (ours included) would refuse must not sign what we emit
  try {
    checkSigningLeaf(chain[0]!);
  } catch (err) {
    throw new Error(`commonIdentity.wirepact.emit.cert: ${(err as Error).message}`, { cause: err });
  }
  return { key: createPrivateKey(readFileSync(emit.key)), chain, issuer: emit.issuer };
}

/** The common identity (and WirePact token) for `actor`, signed with the local SVID. */
function minted(svid: LocalSvid, a: Actor, aud: string, ci: CommonIdentityConfig, wirepact: WirePactSigner | undefined, now: number): CarriedResult {
  if (!SpiffeId.tryParse(svid.id.value)) return { ok: false, code: 'ERR_INTERNAL', message: 'carried: local SVID has no SPIFFE ID' };
  let token: string;
  try {
    token = mintCommonIdentity(svid, {
      sub: a.actor,
      aud,
      ttlSeconds: ci.egress.ttlSeconds,
      now,
      extra: a.extra,
      ...(a.onBehalfOf ? { onBehalfOf: a.onBehalfOf } : {}),
      ...(ci.egress.bindCnf ? { cnfCertDer: svid.chain[0]!.raw } : {}),
      limits: { maxClaimDepth: ci.maxClaimDepth, maxClaimBytes: ci.maxClaimBytes },
    });
  } catch (err) {
    if (err instanceof ZonegateError) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
  return {
    ok: true,
    carried: { actor: a.actor, actors: a.actors, issuer: svid.id.value },
    detail: `minted a common identity of "${a.actor}" for ${aud}${a.actors.length ? ` on behalf of ${a.actors.join(' ← ')}` : ''}`,
    set: [
      { name: ci.header, value: token },
      ...(wirepact ? [{ name: WIREPACT_HEADER, value: mintWirePact({ ...wirepact, sub: a.actor, ttlSeconds: ci.egress.ttlSeconds, now }) }] : []),
    ],
    remove: ci.egress.keepAuthorization ? [] : ['authorization'],
  };
}

/** The egress half of the phase; `users` verifies the user credentials it enables. */
export function createEgress(config: Config, ci: CommonIdentityConfig, bundles: X509BundleSource, identity: LocalIdentity | undefined, users: UserCredentials): Egress {
  const ownId = identity?.current.id;
  // The forwarded token was minted for us by our caller: its signer is not our peer. Its hop
  // binding (peer, cnf) was checked when it came in; what is checked again here is that it is
  // genuine, current and addressed to us.
  const rules = { ...tokenRules(config, ci, ownId), bindToPeer: false, requireCnf: false, ignoreCnf: true, maxActDepth: Math.max(0, ci.maxActDepth - 1) };
  const forwarded = new CommonIdentityVerifier(bundles, rules, verifierOptions(config, 0));
  /** Reserved claims are never copied, whatever the list says. */
  const copyClaims = ci.egress.copyClaims.filter((c) => !RESERVED.has(c));
  const wirepact = wirepactSigner(ci);

  /** The actor: the forwarded token's subject, the user, or the workload; or why there is none. */
  const actorOf = (req: AuthRequest, token: string | undefined, svid: LocalSvid, now: number): Actor | CarriedResult => {
    // A forwarded token, when forwarding is on, is the identity; otherwise it is not used, and
    // a user credential beside it is verified as if the token were absent (never skipped).
    if (token !== undefined && ci.egress.forward) {
      const r = forwarded.verify(token, { now });
      if (!r.ok) return r;
      // Only the configured claims: the caller's signer asserted them, not us. Its hop in act
      // names them, so the next hop can tell who asserted what.
      const extra = Object.fromEntries(copyClaims.filter((c) => Object.hasOwn(r.claims, c)).map((c) => [c, r.claims[c]]));
      return { actor: r.claims.sub, actors: [r.claims.iss, ...r.actors], extra, onBehalfOf: { iss: r.claims.iss, ...(r.claims.act ? { act: r.claims.act } : {}), copied: extra } };
    }
    const u = users.user(req, now);
    if (u && 'error' in u) return u.error;
    if (u) return { actor: u.actor, actors: [], extra: u.extra };
    if (ci.egress.workload) return { actor: svid.id.value, actors: [], extra: {} };
    return { ok: false, code: 'ERR_NO_CARRIED_IDENTITY', message: 'carried: no actor could be established for the outgoing call' };
  };

  return {
    prepare(req, now) {
      const { token } = readToken(req, ci.header);
      if (token !== undefined && ci.egress.forward) return forwarded.prepare(token, { now });
      return users.prepare(req);
    },
    mint(req, now) {
      if (!identity) return { ok: false, code: 'ERR_INTERNAL', message: 'carried: egress needs identity (the local SVID) to mint' };
      const svid = identity.current;
      const aud = req.contextExtensions.get('audience') ?? ci.egress.defaultAudience;
      if (!aud) return { ok: false, code: 'ERR_REQUEST_MALFORMED', message: 'carried: no audience (route context_extensions audience or commonIdentity.egress.defaultAudience)' };
      const { token, error } = readToken(req, ci.header);
      if (error) return error;
      const a = actorOf(req, token, svid, now);
      if ('ok' in a) return a;
      return minted(svid, a, aud, ci, wirepact, now);
    },
  };
}
