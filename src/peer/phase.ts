/**
 * Phase 1: who is on the other end of the mTLS connection. Depending on `peer.source`, the
 * identity is an X509-SVID that zonegate verifies itself (from Envoy's peer certificate or a
 * sanitized XFCC header) or, in principal-only mode, the principal the proxy reports.
 */
import type { ReasonCode } from '../errors.js';
import { ZonegateError } from '../errors.js';
import type { AuthRequest, PeerIdentity } from '../pipeline/types.js';
import { SpiffeId } from '../spiffe/id.js';
import { parseXfcc } from './xfcc.js';

export type PeerResult =
  | { readonly ok: true; readonly peer: PeerIdentity; readonly detail: string }
  | { readonly ok: false; readonly code: ReasonCode; readonly message: string };

/** Verifies a certificate chain as received (URL-encoded or plain PEM, leaf first). */
export interface SvidVerifier {
  verifyPem(
    received: string,
  ): { ok: true; id: SpiffeId; thumbprint: string } | { ok: false; code: ReasonCode; message: string };
}

export type PeerSource = 'certificate' | 'xfcc' | 'principal';

const XFCC = 'x-forwarded-client-cert';

function decodeXfccPem(v: string): string | undefined {
  try {
    return decodeURIComponent(v);
  } catch {
    return undefined;
  }
}

/** Builds the peer phase for the configured source. */
export function createPeerPhase(source: PeerSource, verifier: SvidVerifier | undefined) {
  const fromVerified = (received: string, via: 'certificate' | 'xfcc'): PeerResult => {
    if (!verifier) return { ok: false, code: 'ERR_TRUST_DOMAIN_UNKNOWN', message: 'peer: no trust domain is configured' };
    const r = verifier.verifyPem(received);
    if (!r.ok) return r;
    return {
      ok: true,
      peer: { principal: r.id.value, spiffeId: r.id, trustDomain: r.id.trustDomain.name, verified: true, source: via, thumbprint: r.thumbprint },
      detail: `verified X509-SVID ${r.id.value} (${via})`,
    };
  };

  return function peerPhase(req: AuthRequest): PeerResult {
    switch (source) {
      case 'principal': {
        const principal = req.source.principal;
        if (!principal) return { ok: false, code: 'ERR_NO_IDENTITY', message: 'peer: source.principal is empty' };
        if (!principal.startsWith('spiffe://'))
          return {
            ok: true,
            peer: { principal, verified: false, source: 'principal' },
            detail: `principal "${principal}" reported by the proxy (not a SPIFFE ID, not verified)`,
          };
        try {
          const id = SpiffeId.parse(principal);
          return {
            ok: true,
            peer: { principal: id.value, spiffeId: id, trustDomain: id.trustDomain.name, verified: false, source: 'principal' },
            detail: `principal ${id.value} reported by the proxy (not verified)`,
          };
        } catch (err) {
          const message = err instanceof ZonegateError ? err.message : String(err);
          return { ok: false, code: 'ERR_PEER_PRINCIPAL_INVALID', message: `peer: ${message}` };
        }
      }
      case 'certificate': {
        const cert = req.source.certificate;
        if (!cert)
          return {
            ok: false,
            code: 'ERR_NO_IDENTITY',
            message: 'peer: no peer certificate (is include_peer_certificate set and mTLS required?)',
          };
        return fromVerified(cert, 'certificate');
      }
      case 'xfcc': {
        const header = req.headers.get(XFCC);
        if (!header) return { ok: false, code: 'ERR_NO_IDENTITY', message: `peer: no ${XFCC} header` };
        if (req.duplicateHeaders.has(XFCC))
          return { ok: false, code: 'ERR_DUPLICATE_HEADER', message: `peer: ${XFCC} appears more than once` };
        if (req.nonUtf8Headers.has(XFCC))
          return { ok: false, code: 'ERR_HEADER_NOT_UTF8', message: `peer: ${XFCC} is not valid UTF-8` };
        const entries = parseXfcc(header);
        // The last element was added by the proxy nearest to us: that is our peer.
        const last = entries?.[entries.length - 1];
        if (!last) return { ok: false, code: 'ERR_XFCC_MALFORMED', message: `peer: ${XFCC} cannot be parsed` };
        if (!last.cert) return { ok: false, code: 'ERR_XFCC_MALFORMED', message: `peer: ${XFCC} has no Cert field` };
        const cert = decodeXfccPem(last.cert);
        const chain = last.chain === undefined ? '' : decodeXfccPem(last.chain);
        if (cert === undefined || chain === undefined)
          return { ok: false, code: 'ERR_XFCC_MALFORMED', message: `peer: ${XFCC} Cert or Chain is not URL-encoded PEM` };
        // Chain, when present, starts with the leaf again (Envoy's set_current_client_cert_details.chain).
        return fromVerified(chain.includes(cert.trim()) ? chain : `${cert}\n${chain}`, 'xfcc');
      }
    }
  };
}
