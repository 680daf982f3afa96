/**
 * The demo's policy, in one place: the rules each zone's zonegate runs. They name callers by
 * canonical names (zone, namespace, service) from each trust domain's naming template, so one
 * rule language covers zone A's Istio-style IDs and zone B's Consul-style IDs alike; a workload
 * of the same name in another zone matches nothing.
 */
import type { ZoneKey } from './zones.js';

/** Rules as they appear in a zonegate config file (`rules:`). */
export type DemoRule = {
  readonly name: string;
  readonly action: 'allow' | 'deny';
  readonly from?: { readonly zones?: readonly string[]; readonly namespaces?: readonly string[]; readonly services?: readonly string[] };
  readonly to?: {
    readonly methods?: readonly string[];
    readonly paths?: readonly (string | { readonly prefix: string })[];
    readonly context?: Readonly<Record<string, string>>;
  };
};

export const DEMO_RULES: Readonly<Record<ZoneKey, readonly DemoRule[]>> = {
  // zone A (mesh-a) protects its orders service
  a: [
    {
      name: 'billing-reads-orders',
      action: 'allow',
      from: { zones: ['mesh-b'], services: ['billing'] },
      to: { methods: ['GET'], paths: [{ prefix: '/api/orders/' }] },
    },
    // egress (behind Envoy): zone A's app, the frontend, calls out; zone B decides what it may do there
    { name: 'frontend-calls-out', action: 'allow', from: { zones: ['mesh-a'], namespaces: ['shop'], services: ['frontend'] }, to: { context: { direction: 'egress' } } },
  ],
  // zone B (mesh-b) protects its billing service; any matching deny rule wins over every allow rule
  b: [
    {
      name: 'no-admin-from-other-zones',
      action: 'deny',
      from: { zones: ['mesh-a'] },
      to: { paths: [{ prefix: '/admin/' }] },
    },
    {
      name: 'frontend-creates-invoices',
      action: 'allow',
      from: { zones: ['mesh-a'], namespaces: ['shop'], services: ['frontend'] },
      to: { methods: ['GET', 'POST'], paths: [{ prefix: '/api/invoices' }] },
    },
    // egress (behind Envoy): zone B's app, billing, calls out
    { name: 'billing-calls-out', action: 'allow', from: { zones: ['mesh-b'], services: ['billing'] }, to: { context: { direction: 'egress' } } },
  ],
};
