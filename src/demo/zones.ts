/**
 * The demo's two trust zones: zone A names its workloads the way Istio does
 * (spiffe://<td>/ns/<namespace>/sa/<service-account>), zone B the way Consul does
 * (spiffe://<cluster-uuid>.consul/ns/<namespace>/dc/<datacenter>/svc/<service>).
 * Names and ports only; nothing here does I/O.
 */

export type ZoneKey = 'a' | 'b';

export interface Zone {
  readonly key: ZoneKey;
  /** "zone A", for people. */
  readonly label: string;
  readonly naming: 'Istio' | 'Consul';
  /** The zone name policy rules use (canonical naming, docs/policy.md). */
  readonly zone: string;
  readonly trustDomain: string;
  /** zonegate's own SPIFFE ID: it serves the bundle endpoint (https_spiffe) with this SVID. */
  readonly zonegateId: string;
  readonly ports: ZonePorts;
}

export interface ZonePorts {
  readonly grpc: number;
  readonly ops: number;
  readonly bundle: number;
  /** The zone's Envoy (when the demo runs one): mTLS ingress in front of the zone's app. */
  readonly ingress: number;
  /** The zone's Envoy: plain HTTP egress where the zone's app calls out. */
  readonly egress: number;
}

/** The demo listens on loopback only. */
export const DEMO_ADDRESS = '127.0.0.1';

/** Istio's trust domain is cluster.local unless set; a second mesh gets a name of its own. */
export const ISTIO_TRUST_DOMAIN = 'mesh-a.example';
/** Consul's trust domain is "<cluster id>.consul"; a fixed id keeps the demo's names stable. */
export const CONSUL_TRUST_DOMAIN = '7c9e6679-7425-40de-944b-e07fc1f90ae7.consul';

/** An Istio-style SPIFFE ID in zone A. */
export const istioId = (namespace: string, serviceAccount: string) => `spiffe://${ISTIO_TRUST_DOMAIN}/ns/${namespace}/sa/${serviceAccount}`;
/** A Consul-style SPIFFE ID in zone B. */
export const consulId = (service: string, namespace = 'default', datacenter = 'dc1') =>
  `spiffe://${CONSUL_TRUST_DOMAIN}/ns/${namespace}/dc/${datacenter}/svc/${service}`;

/**
 * Default ports: zone A keeps zonegate's usual 50051 (gRPC) and 8181 (ops) and the bundle
 * endpoint's 8443; zone B is one up for gRPC and a hundred up for HTTP. The Envoys take the host
 * ports of envoy/docker-compose.yaml: ingress 10001 and 10002, egress 15001 and 15002.
 */
export const DEFAULT_PORTS: Readonly<Record<ZoneKey, ZonePorts>> = {
  a: { grpc: 50051, ops: 8181, bundle: 8443, ingress: 10001, egress: 15001 },
  b: { grpc: 50052, ops: 8281, bundle: 8543, ingress: 10002, egress: 15002 },
};

/** How many ports `--port-base N` takes: N … N+9. */
export const PORT_COUNT = 10;

/**
 * The port layout for `--port-base N`: zone A gets N, N+1, N+2 (gRPC, ops, bundle endpoint) and
 * zone B N+3, N+4, N+5; the Envoys N+6, N+7 (zone A ingress, egress) and N+8, N+9 (zone B).
 * Without a base, the defaults. Base 0 is handled by the caller (free ports).
 */
export function portLayout(base: number | undefined): Record<ZoneKey, ZonePorts> {
  if (base === undefined) return { a: { ...DEFAULT_PORTS.a }, b: { ...DEFAULT_PORTS.b } };
  return {
    a: { grpc: base, ops: base + 1, bundle: base + 2, ingress: base + 6, egress: base + 7 },
    b: { grpc: base + 3, ops: base + 4, bundle: base + 5, ingress: base + 8, egress: base + 9 },
  };
}

const MAX_BASE = 65535 - (PORT_COUNT - 1);

/** Parses a --port-base value: 0 (free ports) or a base leaving room for the ten ports. */
export function parsePortBase(value: string): number {
  const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(n === 0 || (n >= 1024 && n <= MAX_BASE)))
    throw new Error(`demo: --port-base "${value}" must be 0 (free ports) or a port from 1024 to ${MAX_BASE}`);
  return n;
}

/**
 * Both zones with their names and ports. Behind Envoy, each zonegate's SVID is its zone's calling
 * workload's (zone A's frontend, zone B's billing): the egress Envoy presents that SVID on the
 * hop to the other zone, so the common identity zonegate signs with it is bound to the mTLS peer
 * (as in envoy/zone-a and zone-b). Without Envoy, zonegate has an ID of its own.
 */
export function zones(ports: Record<ZoneKey, ZonePorts>, behindEnvoy = false): Record<ZoneKey, Zone> {
  return {
    a: { key: 'a', label: 'zone A', naming: 'Istio', zone: 'mesh-a', trustDomain: ISTIO_TRUST_DOMAIN, zonegateId: behindEnvoy ? WORKLOADS.frontend : istioId('zonegate-system', 'zonegate'), ports: ports.a },
    b: { key: 'b', label: 'zone B', naming: 'Consul', zone: 'mesh-b', trustDomain: CONSUL_TRUST_DOMAIN, zonegateId: behindEnvoy ? WORKLOADS.billing : consulId('zonegate'), ports: ports.b },
  };
}

/** The workloads the demo's calls come from and go to. */
export const WORKLOADS = {
  /** zone A's shop frontend: calls billing in zone B. */
  frontend: istioId('shop', 'frontend'),
  /** zone A's cart: no rule lets it call billing. */
  cart: istioId('shop', 'cart'),
  /** zone A's orders service, which zone A's zonegate protects. */
  orders: istioId('shop', 'orders'),
  /** zone B's billing service, which zone B's zonegate protects; it reads orders in zone A. */
  billing: consulId('billing'),
  /** A zone-A workload that happens to be called billing too: same name, wrong zone. */
  billingInZoneA: istioId('default', 'billing'),
} as const;
