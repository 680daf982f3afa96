/**
 * Every failure zonegate reports has one stable `code`. Callers switch on `err.code`;
 * docs/reasons.md lists every code and a test keeps the two in step.
 *
 * One table maps each code to what the boundaries need: the gRPC status of a deny or error,
 * the HTTP status of the denied response, and whether it is a deny (a verdict) or an error
 * (something zonegate could not do, which Envoy's `failure_mode_allow: false` turns into a deny).
 */

/** gRPC status codes used by zonegate (google.rpc.Code). */
export const GrpcCode = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

export interface ReasonInfo {
  /** `deny`: a verdict on the request. `error`: zonegate could not decide (never an allow). */
  readonly kind: 'deny' | 'error';
  /** google.rpc.Status code carried in CheckResponse.status. */
  readonly grpc: GrpcCode;
  /** HTTP status of the DeniedHttpResponse (deny) or of the HTTP authorization mode (error). */
  readonly http: number;
  readonly summary: string;
}

const deny = (grpc: GrpcCode, http: number, summary: string): ReasonInfo => ({ kind: 'deny', grpc, http, summary });
const unauth = (summary: string) => deny(GrpcCode.UNAUTHENTICATED, 401, summary);
const forbid = (summary: string) => deny(GrpcCode.PERMISSION_DENIED, 403, summary);

/** The code table. Adding a code here without documenting it in docs/reasons.md fails a test. */
export const REASONS = {
  // request shape and limits
  ERR_REQUEST_MALFORMED: forbid("the CheckRequest lacks what a decision needs (attributes, request, http), or its method is not an RFC 9110 token (ASCII letters, digits and !#$%&'*+-.^_`|~ only)"),
  ERR_HEADERS_TOO_LARGE: forbid('request headers exceed the configured count or size limit'),
  ERR_HEADER_NOT_UTF8: forbid('a header zonegate reads is not valid UTF-8'),
  ERR_DUPLICATE_HEADER: forbid('a header zonegate reads appears more than once'),
  ERR_PATH_INVALID: forbid('the request path cannot be given one meaning (no leading "/", "#", control or non-ASCII characters, a bad or control percent escape, ";" unless allowed)'),
  ERR_PATH_NOT_NORMALIZED: forbid('the request path differs from its normalized form and the proxy in front is not declared to normalize (policy.paths)'),
  ERR_PATH_TOO_LONG: forbid('the request path is longer than policy.paths.maxLength'),
  ERR_POLICY_TOO_COSTLY: forbid("the policy's glob and regex patterns would scan more than limits.maxPatternCharacters of this request"),
  ERR_HOST_INVALID: forbid('the request host is not name[:port] (a port that is not a number up to 65535, a character no host name has, two hosts joined)'),
  // peer identity
  ERR_NO_IDENTITY: unauth('no peer identity was presented (no principal, certificate or trusted XFCC)'),
  ERR_PEER_PRINCIPAL_INVALID: unauth('the peer principal is not a valid SPIFFE ID'),
  ERR_PEER_CERT_MALFORMED: unauth('the peer certificate could not be decoded'),
  ERR_XFCC_MALFORMED: unauth('the x-forwarded-client-cert header could not be parsed'),
  ERR_XFCC_MISMATCH: unauth('the XFCC certificate does not match the URI= the header reports for it, or its Chain starts with another certificate'),
  // SPIFFE IDs and bundles
  ERR_SPIFFE_ID_INVALID: unauth('a SPIFFE ID is not valid per the SPIFFE ID specification'),
  ERR_TRUST_DOMAIN_UNKNOWN: unauth('no bundle is held for the trust domain of the identity'),
  ERR_TRUST_DOMAIN_REVOKED: unauth('the bundle of the trust domain has no authorities (revoked)'),
  ERR_TRUST_DOMAIN_STALE: unauth('the trust domain\'s bundle could not be refreshed for longer than the maximum staleness'),
  ERR_BUNDLE_FETCH: { kind: 'error', grpc: GrpcCode.UNAVAILABLE, http: 503, summary: 'a bundle source could not be fetched (network, timeout, size limit, HTTP status)' },
  ERR_BUNDLE_ENDPOINT_IDENTITY: { kind: 'error', grpc: GrpcCode.UNAVAILABLE, http: 503, summary: 'an https_spiffe bundle endpoint did not present the configured SPIFFE ID' },
  ERR_BUNDLE_INVALID: { kind: 'error', grpc: GrpcCode.INTERNAL, http: 500, summary: 'a trust bundle document is not valid' },
  ERR_BUNDLE_TOO_LARGE: { kind: 'error', grpc: GrpcCode.UNAVAILABLE, http: 503, summary: 'a bundle document or response exceeds the size or key count limit (the last good bundle is kept)' },
  // X509-SVID verification
  ERR_SVID_MALFORMED: unauth('a certificate of the X509-SVID chain could not be parsed'),
  ERR_SVID_TOO_LARGE: unauth('the X509-SVID chain exceeds the configured size or length limit'),
  ERR_SVID_NO_SPIFFE_ID: unauth('the leaf has no URI SAN, several, or one that is not a SPIFFE ID with a path'),
  ERR_SVID_LEAF_CONSTRAINTS: unauth('the leaf violates X509-SVID leaf rules (CA flag, key usage)'),
  ERR_SVID_SIGNER_CONSTRAINTS: unauth('a signing certificate violates X509-SVID rules (CA flag, keyCertSign, path length)'),
  ERR_SVID_CRITICAL_EXTENSION: unauth('a certificate carries an unsupported critical extension'),
  ERR_SVID_EXPIRED: unauth('a certificate of the chain has expired'),
  ERR_SVID_NOT_YET_VALID: unauth('a certificate of the chain is not yet valid'),
  ERR_SVID_UNTRUSTED: unauth('the chain does not lead to an authority of the bundle of the leaf\'s own trust domain'),
  ERR_SVID_SIGNATURE: unauth('a certificate signature in the chain does not verify'),
  ERR_KEY_TOO_WEAK: unauth('a certificate or token signing key is too weak or unsafe to verify (RSA under 2048 or over 8192 bits, an RSA exponent that is even or outside 3..2^31-1, an EC curve other than P-256, P-384, P-521)'),
  ERR_SIGNATURE_LIMIT: unauth('building a certificate path needed more signature checks than limits.maxSignatureChecks (same-name issuers)'),
  // carried identity (common identity tokens, JWT-SVIDs)
  ERR_NO_CARRIED_IDENTITY: unauth('no carried identity token on a route that requires one'),
  ERR_USER_CREDENTIAL: unauth('the user credential on an outgoing request (Basic or Bearer) could not be verified'),
  ERR_OIDC_KEYS_STALE: { kind: 'error', grpc: GrpcCode.UNAVAILABLE, http: 503, summary: "the OIDC issuer's signing keys could not be refreshed for longer than their maximum age plus the stale limit" },
  ERR_TOKEN_MULTIPLE: unauth('more than one identity token was presented'),
  ERR_TOKEN_TOO_LARGE: unauth('the identity token exceeds the size limit'),
  ERR_TOKEN_MALFORMED: unauth('the identity token is not a well-formed compact JWS'),
  ERR_TOKEN_ALG: unauth("the token algorithm is not allowed (none, HS*, outside the allowlist, not fitting the key, or not the `alg` of the key's JWK), or the key's JWK is not for verifying signatures (`use`, `key_ops`)"),
  ERR_TOKEN_TYPE: unauth('the token typ is not the expected one'),
  ERR_TOKEN_KEY_URL: unauth('the token header names a key location (jku, x5u): never followed'),
  ERR_TOKEN_CRIT: unauth('the token header has a crit extension zonegate does not understand'),
  ERR_TOKEN_X5C: unauth('the token x5c chain is missing or not decodable'),
  ERR_TOKEN_X5C_TOO_LARGE: unauth('the token x5c chain exceeds the configured length or size limit'),
  ERR_TOKEN_CHAIN: unauth('the token x5c chain is not a valid X509-SVID of its trust domain'),
  ERR_TOKEN_ISSUER_MISMATCH: unauth('the token iss is not the SPIFFE ID of the x5c leaf'),
  ERR_TOKEN_KEY_UNKNOWN: unauth('no JWT authority of the issuer\'s trust domain has the token\'s kid'),
  ERR_TOKEN_SIGNATURE: unauth('the token signature does not verify with the signer\'s key'),
  ERR_TOKEN_CLAIMS: unauth('a required token claim is missing or has the wrong type'),
  ERR_CLAIMS_TOO_LARGE: unauth('token claims are nested deeper or are larger than commonIdentity.maxClaimDepth / maxClaimBytes (at ingress, or before minting at egress)'),
  ERR_TOKEN_EXPIRED: unauth('the token has expired'),
  ERR_TOKEN_NOT_YET_VALID: unauth('the token is not valid yet (nbf or iat in the future)'),
  ERR_TOKEN_LIFETIME: unauth('the token lifetime exceeds the maximum accepted'),
  ERR_TOKEN_AUDIENCE: unauth('the token audience does not name this zone or service'),
  ERR_TOKEN_PEER_MISMATCH: unauth('the token signer is not the mTLS peer'),
  ERR_TOKEN_CNF_MISMATCH: unauth('the token cnf thumbprint does not match the peer certificate'),
  ERR_TOKEN_ACT_DEPTH: unauth('the token act chain is deeper than allowed'),
  ERR_TOKEN_ACT_INVALID: unauth('an act hop is not a valid SPIFFE ID'),
  ERR_TOKEN_REPLAYED: unauth('the token jti was seen before'),
  // policy
  ERR_POLICY_NO_MATCH: forbid('no allow rule matched (default deny)'),
  ERR_POLICY_DENIED: forbid('a deny rule matched'),
  // rewrite for the upstream
  ERR_UPSTREAM_NO_CREDENTIAL: forbid('the upstream takes Basic credentials and the credentials file has none for the actor'),
  ERR_UPSTREAM_HEADER_VALUE: forbid('an identity value for the upstream is not a valid header value (control characters, or a role with a comma in the comma-separated roles header)'),
  // could not decide
  ERR_NOT_READY: { kind: 'error', grpc: GrpcCode.UNAVAILABLE, http: 503, summary: 'configuration or trust material is not loaded yet' },
  ERR_OVERLOADED: { kind: 'error', grpc: GrpcCode.UNAVAILABLE, http: 503, summary: 'server.grpc.maxInFlight checks are already waiting; answered at once instead of queued' },
  ERR_DEADLINE_EXCEEDED: { kind: 'error', grpc: GrpcCode.DEADLINE_EXCEEDED, http: 504, summary: "the call's deadline had passed when its turn came; not decided" },
  ERR_INTERNAL: { kind: 'error', grpc: GrpcCode.INTERNAL, http: 500, summary: 'an unexpected internal failure; never an allow' },
} as const satisfies Record<string, ReasonInfo>;

export type ReasonCode = keyof typeof REASONS;

/** Base class of every typed zonegate failure. */
export class ZonegateError extends Error {
  readonly code: ReasonCode;
  constructor(code: ReasonCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'ZonegateError';
  }
}

export const isReasonCode = (s: string): s is ReasonCode => Object.hasOwn(REASONS, s);

export function reasonInfo(code: ReasonCode): ReasonInfo {
  return REASONS[code];
}
