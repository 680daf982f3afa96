/**
 * The plain types the decision pipeline works on, below every phase that reads them (peer,
 * identity, policy, rewrite) and the pipeline that returns them. Nothing here knows gRPC or protobuf:
 * src/envoy/request.ts builds an AuthRequest from a CheckRequest, src/envoy/response.ts turns an
 * Outcome into a CheckResponse, and the HTTP mode and the CLI use the same two types.
 */
import type { ReasonCode } from '../errors.js';
import type { SpiffeId } from '../spiffe/id.js';

/** Lower-cased header name → value. A repeated header is joined with "," as HTTP/1.1 allows. */
export type Headers = ReadonlyMap<string, string>;

export interface AuthRequest {
  /** Envoy's request id (x-request-id), or one we make up; used as the decision id. */
  readonly id: string;
  readonly method: string;
  /** Path without the query string, as received (the pipeline normalizes it: src/request/path.ts). */
  readonly path: string;
  readonly query: string;
  readonly host: string;
  readonly scheme: string;
  readonly protocol: string;
  readonly headers: Headers;
  /** Names of headers whose bytes were not valid UTF-8 (their value in `headers` is lossy). */
  readonly nonUtf8Headers: ReadonlySet<string>;
  /** Headers received more than once, before joining. */
  readonly duplicateHeaders: ReadonlySet<string>;
  readonly source: PeerAttributes;
  readonly destination: PeerAttributes;
  /** Envoy's per-route `context_extensions` (e.g. direction, destination). */
  readonly contextExtensions: ReadonlyMap<string, string>;
  /** Set when the request could not be read: the pipeline denies with this code. */
  readonly malformed?: { code: ReasonCode; message: string };
}

export interface PeerAttributes {
  /** Envoy's `principal`: first URI SAN, else first DNS SAN, else Subject. Not SPIFFE-aware. */
  readonly principal: string;
  /** URL-encoded PEM of the leaf (Envoy's `include_peer_certificate`), or "". */
  readonly certificate: string;
  readonly address: string;
  readonly port: number;
}

/** The identity of the workload on the other end of the mTLS connection. */
export interface PeerIdentity {
  /** The principal string rules match on: the SPIFFE ID when there is one. */
  readonly principal: string;
  readonly spiffeId?: SpiffeId;
  readonly trustDomain?: string;
  /** true when zonegate verified an X509-SVID itself; false when it trusts what the proxy said. */
  readonly verified: boolean;
  readonly source: 'principal' | 'certificate' | 'xfcc' | 'local';
  /** base64url SHA-256 of the verified leaf (for RFC 8705 cnf binding). */
  readonly thumbprint?: string;
  /** Mesh-independent names from the naming template of the peer's trust domain, if one matched. */
  readonly canonical?: Canonical;
}

/**
 * What a naming template makes of a SPIFFE ID, whatever mesh named it: Istio's
 * /ns/<ns>/sa/<sa> and Consul's /ns/<ns>/dc/<dc>/svc/<svc> both give a namespace and a service.
 */
export interface Canonical {
  /** The trust domain's configured zone name (the trust domain name when none is configured). */
  readonly zone: string;
  readonly namespace?: string;
  readonly service?: string;
  /** Every variable the template captured (namespace and service included). */
  readonly vars: Readonly<Record<string, string>>;
}

/** On whose behalf: the verified (ingress) or established (egress) actor. */
export interface CarriedIdentity {
  readonly actor: string;
  /** Previous hops, most recent first (RFC 8693 act). */
  readonly actors: readonly string[];
  /** The signer of a verified common identity (ingress) or our own ID (egress). */
  readonly issuer?: string;
  /** All claims of the verified token (roles, email… as the minting side mapped them). */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/** A header the upstream receives; zonegate always overwrites a client's copy. */
export interface HeaderToSet {
  readonly name: string;
  readonly value: string;
}

/** One phase's account of what it saw and decided (for `zonegate check --explain`). */
export interface Step {
  readonly phase: 'request' | 'peer' | 'carried' | 'policy' | 'rewrite';
  readonly direction?: 'ingress' | 'egress';
  readonly result: 'ok' | 'skip' | 'deny' | 'error';
  readonly detail: string;
  readonly reason?: ReasonCode;
  readonly rule?: string;
}

interface OutcomeBase {
  readonly id: string;
  readonly direction: 'ingress' | 'egress';
  readonly peer?: PeerIdentity;
  readonly carried?: CarriedIdentity;
  readonly steps: readonly Step[];
}

export interface Allowed extends OutcomeBase {
  readonly allowed: true;
  readonly rule?: string;
  readonly headersToSet: readonly HeaderToSet[];
  readonly headersToRemove: readonly string[];
  /** The route's destination (context_extensions) and the rewrite it got (docs/rewrite.md). */
  readonly destination?: string;
  readonly rewrite?: string;
  /**
   * Allowed only because the rule (or default deny) that would have denied is in dry run: the
   * reason and rule it would have denied with (absent rule: the default deny).
   */
  readonly dryRun?: { readonly reason: ReasonCode; readonly rule?: string };
}

export interface Denied extends OutcomeBase {
  readonly allowed: false;
  readonly reason: ReasonCode;
  readonly message: string;
  readonly rule?: string;
}

export type Outcome = Allowed | Denied;
