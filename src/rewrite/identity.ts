/**
 * The verified identity as the upstream sees it: which header carries which fact, and the same
 * facts as JWT claims. Every mode draws from here, so a header and a claim never disagree.
 */
import type { AuthRequest, CarriedIdentity, HeaderToSet, PeerIdentity } from '../request/types.js';
import type { UpstreamConfig } from './schema.js';

export type HeaderNames = UpstreamConfig['headers'];

/** Fixed order of the identity headers: the order they are set in and signed in (mode hmac). */
export const IDENTITY_KEYS = ['principal', 'trustDomain', 'zone', 'namespace', 'service', 'actor', 'actors', 'roles', 'decisionId'] as const;

/** The configured identity header names, in IDENTITY_KEYS order, without the ones turned off. */
export function identityNames(names: HeaderNames): string[] {
  return IDENTITY_KEYS.map((k) => names[k]).filter((n) => n !== '');
}

/** The roles claim of a verified carried identity, when it is a string or a list of strings. */
export function rolesOf(carried: CarriedIdentity | undefined): string[] | undefined {
  const r = carried?.claims?.roles;
  if (typeof r === 'string') return r === '' ? undefined : [r];
  if (Array.isArray(r) && r.length > 0 && r.every((x) => typeof x === 'string')) return r as string[];
  return undefined;
}

/** One value per identity fact that is known for this request. */
export function identityValues(req: AuthRequest, peer: PeerIdentity, carried: CarriedIdentity | undefined): Partial<Record<(typeof IDENTITY_KEYS)[number], string>> {
  const c = peer.canonical;
  const roles = rolesOf(carried);
  return {
    principal: peer.principal,
    ...(peer.trustDomain ? { trustDomain: peer.trustDomain } : {}),
    ...(c ? { zone: c.zone } : {}),
    ...(c?.namespace ? { namespace: c.namespace } : {}),
    ...(c?.service ? { service: c.service } : {}),
    ...(carried ? { actor: carried.actor } : {}),
    ...(carried && carried.actors.length > 0 ? { actors: carried.actors.join(',') } : {}),
    ...(roles ? { roles: roles.join(',') } : {}),
    decisionId: req.id,
  };
}

/** The identity headers to set, in IDENTITY_KEYS order; `withIdentity: false` keeps the decision id only. */
export function identityHeaders(names: HeaderNames, values: ReturnType<typeof identityValues>, withIdentity: boolean): HeaderToSet[] {
  const out: HeaderToSet[] = [];
  for (const k of IDENTITY_KEYS) {
    const name = names[k];
    const value = values[k];
    if (name === '' || value === undefined || (!withIdentity && k !== 'decisionId')) continue;
    out.push({ name, value });
  }
  return out;
}

/** CR, LF, NUL and the other controls (HTAB aside) have no place in a header value (RFC 9110 §5.5). */
export function isHeaderValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

/** The identity as JWT claims (mode jwt): stable for one caller, so a signed token can be reused. */
export function identityClaims(peer: PeerIdentity, carried: CarriedIdentity | undefined): Record<string, unknown> {
  const c = peer.canonical;
  const roles = rolesOf(carried);
  let act: Record<string, unknown> | undefined;
  for (let i = (carried?.actors.length ?? 0) - 1; i >= 0; i--) act = { sub: carried!.actors[i], ...(act ? { act } : {}) };
  return {
    sub: carried?.actor ?? peer.principal,
    peer: peer.principal,
    ...(peer.trustDomain ? { trust_domain: peer.trustDomain } : {}),
    ...(c ? { zone: c.zone } : {}),
    ...(c?.namespace ? { namespace: c.namespace } : {}),
    ...(c?.service ? { service: c.service } : {}),
    ...(roles ? { roles } : {}),
    ...(act ? { act } : {}),
  };
}
