/**
 * Phase 1: who is on the other end of the mTLS connection. Depending on `peer.source`, the
 * identity is an X509-SVID that zonegate verifies itself (from Envoy's peer certificate or a
 * sanitized XFCC header) or, in principal-only mode, the principal the proxy reports.
 */
import type { ReasonCode } from '../errors.js';
import { ZonegateError } from '../errors.js';
import type { AuthRequest, PeerIdentity } from '../request/types.js';
import { SpiffeId } from '../spiffe/id.js';
import { parseXfcc } from './xfcc.js';
import { pemBlocks } from '../cert/pem.js';

export type PeerResult =
  | { readonly ok: true; readonly peer: PeerIdentity; readonly detail: string }
  | { readonly ok: false; readonly code: ReasonCode; readonly message: string };

/** Verifies a certificate chain as received (URL-encoded or plain PEM, leaf first). */
export interface SvidVerifier {
  verifyPem(
    received: string,
  ): { ok: true; id: SpiffeId; thumbprint: string } | { ok: false; code: ReasonCode; message: string };
  /** Checks a new chain's signatures off the event loop before verifyPem (X509SvidVerifier.prepare). */
  prepare?(received: string): Promise<void> | undefined;
}

/** The peer phase, and the work that can run off the event loop before it. */
export interface PeerPhase {
  (req: AuthRequest): PeerResult;
  /** Verifies the signatures of a chain not seen before on the thread pool; undefined when nothing waits. */
  prepare(req: AuthRequest): Promise<void> | undefined;
}

export type PeerSource = 'certificate' | 'xfcc' | 'principal';

const XFCC = 'x-forwarded-client-cert';

/** The base64 bodies of the PEM CERTIFICATE blocks in `pem`, whitespace removed, in order. */
function pemBodies(pem: string): string[] {
  return pemBlocks(pem, 'CERTIFICATE').map((b) => b.body.replace(/\s+/g, ''));
}

/**
 * The chain to verify from an XFCC element: Cert, then Chain without its leading copy of Cert
 * (Envoy's Chain starts with the leaf). A Chain that holds Cert anywhere but first would make
 * another certificate the leaf: refused.
 */
function xfccChain(cert: string, chain: string): { pem: string } | { error: string } {
  if (chain === '') return { pem: cert };
  const leaf = pemBodies(cert);
  const blocks = pemBodies(chain);
  if (leaf.length !== 1) return { pem: `${cert}\n${chain}` }; // not one PEM certificate: the verifier reports why
  const at = blocks.indexOf(leaf[0]!);
  if (at === 0) return { pem: chain };
  if (at > 0) return { error: 'Chain holds Cert, but not as its first certificate' };
  return { pem: `${cert}\n${chain}` };
}

function decodeXfccPem(v: string): string | undefined {
  try {
    return decodeURIComponent(v);
  } catch {
    return undefined;
  }
}

/** The certificate chain to verify, as received, from an XFCC header; or why there is none. */
function fromXfcc(req: AuthRequest): { received: string; uri: readonly string[] } | { ok: false; code: ReasonCode; message: string } {
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
  const full = xfccChain(cert, chain);
  if ('error' in full) return { ok: false, code: 'ERR_XFCC_MISMATCH', message: `peer: ${XFCC}: ${full.error}` };
  return { received: full.pem, uri: last.uri };
}

/** Builds the peer phase for the configured source. */
export function createPeerPhase(source: PeerSource, verifier: SvidVerifier | undefined): PeerPhase {
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

  const prepare = (req: AuthRequest): Promise<void> | undefined => {
    if (!verifier?.prepare) return undefined;
    if (source === 'certificate') return req.source.certificate ? verifier.prepare(req.source.certificate) : undefined;
    if (source !== 'xfcc') return undefined;
    const x = fromXfcc(req);
    return 'received' in x ? verifier.prepare(x.received) : undefined;
  };

  const peerPhase = function peerPhase(req: AuthRequest): PeerResult {
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
        const x = fromXfcc(req);
        if (!('received' in x)) return x;
        const r = fromVerified(x.received, 'xfcc');
        // URI= is the proxy's reading of the same certificate: when present it must name the verified ID.
        if (r.ok && x.uri.length > 0 && !(x.uri.length === 1 && x.uri[0] === r.peer.principal))
          return { ok: false, code: 'ERR_XFCC_MISMATCH', message: `peer: ${XFCC} URI=${x.uri.join(',').slice(0, 200)} is not the certificate's ${r.peer.principal}` };
        return r;
      }
    }
  };
  return Object.assign(peerPhase, { prepare });
}
