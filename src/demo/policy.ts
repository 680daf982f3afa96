/**
 * The demo's policy, in one place: the rules each zone's zonegate runs, written as raw SPIFFE-ID
 * principal rules. Each rule names the caller with its trust domain, so a workload of the same
 * name in another zone matches nothing.
 */
import type { ZoneKey } from './zones.js';
import { ISTIO_TRUST_DOMAIN, WORKLOADS } from './zones.js';

/** Rules as they appear in a zonegate config file (`rules:`). */
export type DemoRule = {
  readonly name: string;
  readonly action: 'allow' | 'deny';
  readonly from?: { readonly principals?: readonly string[]; readonly trustDomains?: readonly string[] };
  readonly to?: { readonly methods?: readonly string[]; readonly paths?: readonly (string | { readonly prefix: string })[] };
};

export const DEMO_RULES: Readonly<Record<ZoneKey, readonly DemoRule[]>> = {
  // zone A protects its orders service
  a: [
    {
      name: 'billing-reads-orders',
      action: 'allow',
      from: { principals: [WORKLOADS.billing] },
      to: { methods: ['GET'], paths: [{ prefix: '/api/orders/' }] },
    },
  ],
  // zone B protects its billing service; any matching deny rule wins over every allow rule
  b: [
    {
      name: 'no-admin-from-other-zones',
      action: 'deny',
      from: { trustDomains: [ISTIO_TRUST_DOMAIN] },
      to: { paths: [{ prefix: '/admin/' }] },
    },
    {
      name: 'frontend-creates-invoices',
      action: 'allow',
      from: { principals: [WORKLOADS.frontend] },
      to: { methods: ['GET', 'POST'], paths: [{ prefix: '/api/invoices' }] },
    },
  ],
};
