/**
 * What the demo prints: the zones, the table of verdicts, what the upstream of an allowed call
 * receives, and how to try more while it keeps serving. Plain text, columns separated by at least
 * two spaces (no cell holds two spaces in a row), so a person and a script can both read it.
 */
import type { DemoCall } from './calls.js';
import type { Verdict } from './client.js';
import type { PreparedZone } from './setup.js';
import { DEMO_ADDRESS, type ZoneKey } from './zones.js';

export interface Row {
  readonly index: number;
  readonly call: DemoCall;
  readonly verdict: Verdict;
}

/** Aligns rows of cells into columns, two spaces apart. */
export function alignColumns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** "allow" or the reason code, as the scenario expects and as a row shows ("refused": Envoy's TLS said no). */
export const outcomeOf = (v: Verdict): string => (v.refused ? 'refused' : v.error ? 'error' : v.allowed ? 'allow' : (v.reason ?? ''));

/** What the scenario expects of a call, directly over gRPC or behind Envoy. */
export const expectedOf = (call: DemoCall, behindEnvoy: boolean): string => (behindEnvoy ? (call.envoy?.expect ?? call.expect) : call.expect);

/** Where a call went behind Envoy. */
const viaOf = (call: DemoCall) => {
  const to = call.to.toUpperCase();
  return call.viaEgress ? `app ${to === 'A' ? 'B' : 'A'} → Envoy ${to === 'A' ? 'B' : 'A'} egress → Envoy ${to} ingress` : `mTLS straight to Envoy ${to} ingress`;
};

/** The two zones: naming, trust domain and where each listens (and its Envoy, when there is one). */
export function zonesText(zones: Record<ZoneKey, PreparedZone>, envoy?: { readonly version: string }): string {
  const lines = alignColumns(
    (['a', 'b'] as const).map((k) => {
      const z = zones[k].zone;
      return [z.label, `${z.naming} names`, z.trustDomain, `gRPC ${DEMO_ADDRESS}:${z.ports.grpc}`, `ops http://${DEMO_ADDRESS}:${z.ports.ops}`, `bundle https://${DEMO_ADDRESS}:${z.ports.bundle}/`];
    }),
  );
  return [
    'zonegate demo: two trust zones, each with its own root CA made in memory for this run.',
    'Each zonegate publishes its zone\'s bundle (SPIFFE bundle endpoint, https_spiffe) and has fetched',
    'the other zone\'s over loopback; no zone trusts the other\'s CA for its own names.',
    '',
    ...lines.map((l) => `  ${l}`),
    ...(envoy
      ? [
          '',
          `Each zone runs behind its own Envoy ${envoy.version}: ingress with mTLS (client certificate required) and`,
          "ext_authz to the zone's zonegate; egress where the zone's app calls out (zonegate mints the common identity).",
          '',
          ...alignColumns(
            (['a', 'b'] as const).map((k) => {
              const z = zones[k].zone;
              return [`Envoy ${z.label.slice(-1)}`, `ingress https://${DEMO_ADDRESS}:${z.ports.ingress}`, `egress http://${DEMO_ADDRESS}:${z.ports.egress}`, `config ${quote(`${zones[k].files.dir}/envoy.yaml`)}`];
            }),
          ).map((l) => `  ${l}`),
        ]
      : []),
  ].join('\n');
}

/**
 * The table: one row per call with its verdict and reason (or the rule that allowed it). Behind
 * Envoy, as the client sees it: the status and x-zonegate-reason, and the way the call went.
 */
export function tableText(rows: readonly Row[], behindEnvoy = false): string {
  const cells = rows.map(({ index, call, verdict }) => {
    const verdictCell = verdict.refused ? 'refused' : verdict.error ? 'error' : verdict.allowed ? 'allow' : 'deny';
    const reason = behindEnvoy
      ? verdict.refused
        ? `TLS: ${verdict.reason ?? ''}`
        : `HTTP ${verdict.status ?? '?'}${verdict.allowed ? '' : ` ${verdict.reason ?? ''}`}`
      : verdict.allowed
        ? `rule ${verdict.rule ?? '?'}`
        : `${verdict.reason ?? ''}${verdict.rule ? `, rule ${verdict.rule}` : ''}`;
    const expected = expectedOf(call, behindEnvoy);
    const flag = outcomeOf(verdict) === expected ? '' : `  (expected ${expected})`;
    const to = `${call.service} (zone ${call.to.toUpperCase()}) ${call.method} ${call.path}`;
    return [String(index), call.title, call.from, to, ...(behindEnvoy ? [viaOf(call)] : []), verdictCell, reason + flag];
  });
  const head = ['#', 'call', 'from', 'to', ...(behindEnvoy ? ['via'] : []), 'verdict', 'reason'];
  const [header, ...body] = alignColumns([head, ...cells]);
  const dashes = header!.replace(/\S+/g, (w) => '-'.repeat(w.length));
  const title = behindEnvoy
    ? 'Cross-zone calls: each a real HTTPS request through Envoy, verdicts as the client sees them:'
    : 'Cross-zone calls: each a real Check over gRPC, as Envoy sends it:';
  return [title, '', `  ${header}`, `  ${dashes}`, ...body.map((l) => `  ${l}`)].join('\n');
}

/**
 * Why each call got its verdict, and what the upstream of the first allowed call receives (behind
 * Envoy: the identity headers each allowed call's app received).
 */
export function notesText(rows: readonly Row[], behindEnvoy = false): string {
  const lines = alignColumns(rows.map(({ index, call }) => [String(index), (behindEnvoy ? call.envoy?.note : undefined) ?? call.note]));
  const allowed = rows.find((r) => r.verdict.allowed);
  const out = ['Why:', ...lines.map((l) => `  ${l}`)];
  if (behindEnvoy) {
    for (const r of rows.filter((x) => x.verdict.allowed)) {
      out.push('', `What ${r.call.service}'s app in zone ${r.call.to.toUpperCase()} received for call ${r.index} (set by zonegate through Envoy):`);
      out.push(...alignColumns(r.verdict.headers.map(([k, v]) => [`${k}:`, v])).map((l) => `  ${l}`));
    }
  } else if (allowed) {
    out.push(
      '',
      `What ${allowed.call.service}'s upstream receives for call ${allowed.index} (zonegate sets these, overwriting any copy the client sent):`,
      ...alignColumns(allowed.verdict.headers.map(([k, v]) => [`${k}:`, v])).map((l) => `  ${l}`),
      `and these are removed before it: ${allowed.verdict.removed.join(', ') || '(none)'}`,
    );
  }
  return out.join('\n');
}

export interface CurlExamples {
  readonly zones: Record<ZoneKey, PreparedZone>;
  /** The forged certificate and key the demo wrote (zone A's CA signing zone B's billing ID). */
  readonly forged: { readonly cert: string; readonly key: string };
}

/** `curl` commands a person can paste while the demo runs: an allow and denies, through the Envoys. */
export function curlText(c: CurlExamples): string {
  const a = c.zones.a.zone.ports;
  return [
    'Try it with curl (the demo keeps running):',
    '',
    "  As zone A's app: through Envoy A's egress to billing in zone B, allowed; zone B's app answers with the identity it received:",
    `    curl -s -X POST http://${DEMO_ADDRESS}:${a.egress}/api/invoices`,
    "  The same way to zone B's admin API: denied by zone B's deny rule (403, x-zonegate-reason: ERR_POLICY_DENIED):",
    `    curl -si http://${DEMO_ADDRESS}:${a.egress}/admin/users`,
    "  Straight to Envoy A's ingress with zone B's billing ID forged by zone A's CA: Envoy's TLS takes it, zonegate A does not",
    "  (401, x-zonegate-reason: ERR_SVID_UNTRUSTED; -k because Envoy's certificate names a SPIFFE ID, not a host):",
    `    curl -sik --cert ${quote(c.forged.cert)} --key ${quote(c.forged.key)} https://${DEMO_ADDRESS}:${a.ingress}/api/orders/17`,
  ].join('\n');
}

export interface TryMore {
  readonly root: string;
  readonly zones: Record<ZoneKey, PreparedZone>;
  /** The written request of the first allowed call and its zone. */
  readonly example: { readonly zone: ZoneKey; readonly file: string };
  readonly refreshEvery: number;
}

const every = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000} minutes` : `${ms / 1000} seconds`);

/** How to try more while both zones keep serving. */
export function tryMoreText(t: TryMore): string {
  const { a, b } = t.zones;
  const ex = t.zones[t.example.zone].files;
  const other = t.example.zone === 'a' ? b : a;
  return [
    'Both zones keep serving. To try more:',
    '',
    '  Decide a written request without Envoy, with the same config the zone runs (exit 0 allowed, 1 denied):',
    `    npx zonegate check --config ${quote(ex.config)} --request ${quote(t.example.file)} --explain`,
    `  Every call above is written out as a CheckRequest (proto3 JSON) under ${quote(a.files.requests)} and`,
    `  ${quote(b.files.requests)}; their tokens are re-minted every ${every(t.refreshEvery)} while the demo runs.`,
    `  Point an Envoy's ext_authz grpc_service at ${DEMO_ADDRESS}:${a.zone.ports.grpc} (zone A) or ${DEMO_ADDRESS}:${b.zone.ports.grpc} (zone B).`,
    '',
    '  Health and metrics:',
    `    curl http://${DEMO_ADDRESS}:${a.zone.ports.ops}/healthz  curl http://${DEMO_ADDRESS}:${a.zone.ports.ops}/readyz  curl http://${DEMO_ADDRESS}:${b.zone.ports.ops}/metrics`,
    '  A bundle endpoint, fetched as the other zone does:',
    `    npx zonegate bundle fetch https://${DEMO_ADDRESS}:${t.zones[t.example.zone].zone.ports.bundle}/ --profile https_spiffe --trust-domain ${t.zones[t.example.zone].zone.trustDomain} \\`,
    `      --endpoint-spiffe-id ${t.zones[t.example.zone].zone.zonegateId} --bootstrap ${quote(other.files.bootstrap)}`,
    '  Decision logs (one JSON line per Check):',
    `    tail -f ${quote(a.files.log)} ${quote(b.files.log)}`,
    '',
    `Ctrl-C stops both zones and removes ${quote(t.root)}.`,
    'In production run `zonegate serve --config FILE` (see the README).',
  ].join('\n');
}
