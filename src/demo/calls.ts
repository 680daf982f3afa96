/**
 * The demo's scripted calls: who calls whom, with which certificate and common identity, and what
 * zonegate should answer. Each becomes a CheckRequest in proto3 JSON, as Envoy sends it: the one
 * the demo sends over gRPC and writes out for `zonegate check`.
 */
import type { JsonValue } from '@bufbuild/protobuf';
import type { ReasonCode } from '../errors.js';
import { mintCommonIdentity } from '../identity/mint.js';
import { loadX509Svid } from '../svid/local.js';
import type { IssuedSvid, MemoryCA } from './pki.js';
import { issueDemoSvid } from './setup.js';
import { WORKLOADS, type Zone, type ZoneKey } from './zones.js';

const MINUTE = 60_000;
/** Tokens in requests live as long as an ingress accepts by default, so written files stay usable. */
const TOKEN_TTL_SECONDS = 600;

/** The workload SVIDs the calls present, issued once per run. */
export interface Workloads {
  readonly frontend: IssuedSvid;
  readonly cart: IssuedSvid;
  readonly billing: IssuedSvid;
  readonly billingInZoneA: IssuedSvid;
  /** zone A's CA signing zone B's billing ID. */
  readonly forgedBilling: IssuedSvid;
  readonly expiredFrontend: IssuedSvid;
}

export async function issueWorkloads(ca: Record<ZoneKey, MemoryCA>): Promise<Workloads> {
  const yesterday = new Date(Date.now() - 24 * 60 * MINUTE);
  return {
    frontend: await issueDemoSvid(ca.a, WORKLOADS.frontend),
    cart: await issueDemoSvid(ca.a, WORKLOADS.cart),
    billing: await issueDemoSvid(ca.b, WORKLOADS.billing),
    billingInZoneA: await issueDemoSvid(ca.a, WORKLOADS.billingInZoneA),
    forgedBilling: await issueDemoSvid(ca.a, WORKLOADS.billing),
    expiredFrontend: await issueDemoSvid(ca.a, WORKLOADS.frontend, { notBefore: new Date(yesterday.getTime() - 60 * MINUTE), notAfter: yesterday }),
  };
}

export interface TokenSpec {
  /** The workload whose egress signs the token (with its SVID); it must be the mTLS peer. */
  readonly signer: IssuedSvid;
  /** The actor: on whose behalf the call is made. */
  readonly sub: string;
  /** Minted this long ago (an expired token). */
  readonly ageMinutes?: number;
  readonly ttlSeconds?: number;
}

export interface DemoCall {
  /** File name of the written request, and the row's id. */
  readonly slug: string;
  /** The row's title. */
  readonly title: string;
  /** The SPIFFE ID the caller presents (claims, for a forged one). */
  readonly from: string;
  readonly to: ZoneKey;
  readonly service: string;
  readonly host: string;
  readonly method: string;
  readonly path: string;
  readonly expect: 'allow' | ReasonCode;
  /** Why, in one line. */
  readonly note: string;
  readonly cert?: IssuedSvid;
  readonly token?: TokenSpec;
  /**
   * Behind Envoy, how the call is made: from the caller zone's app through its Envoy's egress
   * (zonegate mints the common identity, Envoy presents the zone's SVID) — the way traffic flows;
   * otherwise straight to the callee's ingress over mTLS with `cert` and `token`, as a workload
   * whose Envoy does not go through zonegate, or an impostor, would.
   */
  readonly viaEgress?: boolean;
  /** Behind Envoy, where the outcome or its explanation differs. */
  readonly envoy?: { readonly expect?: 'refused'; readonly note: string };
}

const BILLING = { to: 'b' as const, service: 'billing', host: 'billing.service.consul' };
const ORDERS = { to: 'a' as const, service: 'orders', host: 'orders.shop.svc.cluster.local' };
const ALICE = 'user:alice';

/** The scenario, in the order the table shows it. */
export function demoCalls(w: Workloads): DemoCall[] {
  const asFrontend = { cert: w.frontend, token: { signer: w.frontend, sub: ALICE } };
  return [
    { slug: 'allowed', title: 'allowed', from: WORKLOADS.frontend, ...BILLING, method: 'POST', path: '/api/invoices', expect: 'allow', ...asFrontend,
      note: "zone A's frontend on behalf of user:alice: SVID and common identity verified against zone A's federated bundle", viaEgress: true,
      envoy: { note: "zone A's app (the frontend) calls out through Envoy A: zonegate A mints the common identity, Envoy A presents the frontend's SVID, zone B verifies both" } },
    { slug: 'allowed-reverse', title: 'allowed, other way', from: WORKLOADS.billing, ...ORDERS, method: 'GET', path: '/api/orders/17', expect: 'allow',
      cert: w.billing, token: { signer: w.billing, sub: WORKLOADS.billing },
      note: "zone B's billing reads an order in zone A: zone A verifies it against zone B's bundle", viaEgress: true,
      envoy: { note: "zone B's app (billing) calls out through Envoy B; zone A verifies its SVID and token against zone B's bundle" } },
    { slug: 'forged-identity', title: 'forged identity', from: WORKLOADS.billing, ...ORDERS, method: 'GET', path: '/api/orders/17', expect: 'ERR_SVID_UNTRUSTED',
      cert: w.forgedBilling, token: { signer: w.forgedBilling, sub: WORKLOADS.billing },
      note: "zone A's CA signed zone B's billing ID: an ID of zone B is only verified against zone B's bundle" },
    { slug: 'wrong-zone', title: 'wrong zone', from: WORKLOADS.billingInZoneA, ...ORDERS, method: 'GET', path: '/api/orders/17', expect: 'ERR_POLICY_NO_MATCH',
      cert: w.billingInZoneA, token: { signer: w.billingInZoneA, sub: WORKLOADS.billingInZoneA },
      note: 'a genuine zone-A workload also called billing: the rule names billing of zone B' },
    { slug: 'no-rule', title: 'no rule allows', from: WORKLOADS.cart, ...BILLING, method: 'POST', path: '/api/invoices', expect: 'ERR_POLICY_NO_MATCH',
      cert: w.cart, token: { signer: w.cart, sub: ALICE },
      note: "zone A's cart is verified, but no rule of zone B lets it call billing" },
    { slug: 'deny-rule', title: 'deny rule', from: WORKLOADS.frontend, ...BILLING, method: 'GET', path: '/admin/users', expect: 'ERR_POLICY_DENIED', ...asFrontend,
      note: 'rule no-admin-from-other-zones: a deny rule wins over every allow rule', viaEgress: true,
      envoy: { note: "rule no-admin-from-other-zones: zone B's deny rule wins over every allow rule; the 403 comes back through both Envoys" } },
    { slug: 'expired-svid', title: 'expired SVID', from: WORKLOADS.frontend, ...BILLING, method: 'POST', path: '/api/invoices', expect: 'ERR_SVID_EXPIRED',
      cert: w.expiredFrontend, token: { signer: w.frontend, sub: ALICE },
      note: "the frontend's certificate expired yesterday" },
    { slug: 'expired-token', title: 'expired token', from: WORKLOADS.frontend, ...BILLING, method: 'POST', path: '/api/invoices', expect: 'ERR_TOKEN_EXPIRED',
      cert: w.frontend, token: { signer: w.frontend, sub: ALICE, ageMinutes: 20, ttlSeconds: 60 },
      note: 'the common identity was minted 20 minutes ago for 60 seconds' },
    { slug: 'stolen-token', title: 'stolen token', from: WORKLOADS.cart, ...BILLING, method: 'POST', path: '/api/invoices', expect: 'ERR_TOKEN_PEER_MISMATCH',
      cert: w.cart, token: { signer: w.frontend, sub: ALICE },
      note: "the cart presents the frontend's token: a token is bound to the workload that signed it" },
    { slug: 'no-token', title: 'no common identity', from: WORKLOADS.frontend, ...BILLING, method: 'POST', path: '/api/invoices', expect: 'ERR_NO_CARRIED_IDENTITY',
      cert: w.frontend,
      note: 'a verified workload, but on whose behalf? The route requires a common identity' },
    { slug: 'no-identity', title: 'no identity', from: '(none)', ...BILLING, method: 'POST', path: '/api/invoices', expect: 'ERR_NO_IDENTITY',
      note: 'no client certificate: nothing to verify',
      envoy: { expect: 'refused', note: "no client certificate: Envoy's mTLS (require_client_certificate) ends the handshake before zonegate is asked" } },
  ];
}

/** The call's CheckRequest in proto3 JSON, with a common identity minted now (unless the call has none). */
export function checkRequestJson(call: DemoCall, index: number, zones: Record<ZoneKey, Zone>): JsonValue {
  const headers: Record<string, string> = { ':authority': call.host, ':method': call.method, ':path': call.path, 'user-agent': 'zonegate-demo' };
  if (call.token) {
    const t = call.token;
    const signer = loadX509Svid(Buffer.from(t.signer.certPem), Buffer.from(t.signer.keyPem));
    headers['x-common-identity'] = mintCommonIdentity(signer, {
      sub: t.sub,
      aud: `spiffe://${zones[call.to].trustDomain}`,
      ttlSeconds: t.ttlSeconds ?? TOKEN_TTL_SECONDS,
      now: Date.now() - (t.ageMinutes ?? 0) * MINUTE,
    });
  }
  return {
    attributes: {
      source: {
        address: { socketAddress: { address: '127.0.0.1', portValue: 40000 + index } },
        ...(call.cert ? { certificate: encodeURIComponent(call.cert.certPem) } : {}),
      },
      destination: { address: { socketAddress: { address: '127.0.0.1', portValue: zones[call.to].ports.grpc } } },
      request: {
        time: new Date().toISOString(),
        http: { id: `demo-${index}-${call.slug}`, method: call.method, path: call.path, host: call.host, scheme: 'https', protocol: 'HTTP/1.1', headers },
      },
    },
  };
}
