/**
 * `zonegate explain` and `zonegate status`: ask a running server through its ops port, so the
 * answer is the one it would give now, with its live bundles and its running config. Both print
 * a readable table, or with --json what the server sent.
 */
import { readFileSync } from 'node:fs';
import type { StatusReport } from '../http/status.js';
import { UsageError } from './errors.js';
import { alignColumns } from '../demo/report.js';

export interface OpsCliOptions {
  ops?: string;
  json?: boolean;
}

const DEFAULT_OPS = 'http://127.0.0.1:8181';

function opsUrl(o: OpsCliOptions, path: string, command: string): URL {
  const base = o.ops ?? process.env.ZONEGATE_OPS_URL ?? DEFAULT_OPS;
  try {
    return new URL(path, /^https?:\/\//.test(base) ? base : `http://${base}`);
  } catch {
    throw new UsageError(`${command}: --ops "${base}" is not a URL (e.g. http://127.0.0.1:8181)`);
  }
}

async function call(url: URL, command: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new UsageError(`${command}: cannot reach the ops server at ${url.origin}: ${cause} (--ops URL, env ZONEGATE_OPS_URL)`);
  }
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    throw new UsageError(`${command}: ${url.href} answered ${res.status} without JSON (is this a zonegate ops port?)`);
  }
}

/** Aligns rows of cells into columns, two spaces apart. */
interface Step {
  phase: string;
  direction?: string;
  result: string;
  detail: string;
  reason?: string;
  rule?: string;
}

/** POST /explain; exit 0 allowed, 1 denied (2: usage, unreachable, explain off). */
export async function runExplain(o: OpsCliOptions & { request: string }, out: (s: string) => void): Promise<number> {
  let text: string;
  try {
    text = readFileSync(o.request === '-' ? 0 : o.request, 'utf8');
  } catch (err) {
    throw new UsageError(`explain: cannot read request ${o.request}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const { status, body } = await call(opsUrl(o, '/explain', 'explain'), 'explain', { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
  if (status !== 200) throw new UsageError(`explain: the server answered ${status}: ${String(body.error ?? JSON.stringify(body))}`);
  if (o.json) out(JSON.stringify(body, null, 2));
  else {
    const steps = (body.steps ?? []) as Step[];
    out(`verdict: ${body.allowed ? 'allow' : 'deny'}${body.reason ? `  reason: ${String(body.reason)}` : ''}  (decided by the server, with its live bundles)`);
    out('');
    for (const l of alignColumns([['PHASE', 'RESULT', 'REASON / RULE', 'DETAIL'], ...steps.map((s) => [s.phase, s.result, s.reason ?? s.rule ?? '-', s.detail])])) out(`  ${l}`);
  }
  return body.allowed === true ? 0 : 1;
}

const ago = (iso: string | null, now: number) => {
  if (!iso) return '-';
  const s = Math.round((Date.parse(iso) - now) / 1000);
  const span = (n: number) => (n >= 3600 ? `${Math.floor(n / 3600)}h${Math.floor((n % 3600) / 60)}m` : n >= 60 ? `${Math.floor(n / 60)}m${n % 60}s` : `${n}s`);
  return s < 0 ? `${span(-s)} ago` : `in ${span(s)}`;
};

/** GET /status; exit 0 ready, 1 not ready (2: usage, unreachable). */
export async function runStatus(o: OpsCliOptions, out: (s: string) => void): Promise<number> {
  const { status, body } = await call(opsUrl(o, '/status', 'status'), 'status');
  if (status !== 200) throw new UsageError(`status: the server answered ${status}: ${String(body.error ?? JSON.stringify(body))}`);
  const r = body as unknown as StatusReport;
  if (o.json) out(JSON.stringify(r, null, 2));
  else {
    const now = Date.parse(r.now);
    const last = r.config.reload.last;
    out(`zonegate ${r.version}  ${r.ready ? 'ready' : 'NOT READY'}: ${r.readiness}`);
    out(`config: ${r.config.origin}`);
    out(
      `reload: ${!r.config.reload.watching ? 'not watched (started without --config)' : !last ? 'watched, none yet' : `last ${last.result} ${ago(last.at, now)} (${last.reason})`}`,
    );
    for (const p of last?.problems ?? []) out(`  ${p}`);
    out('');
    const rows = r.trustDomains.map((t) => [
      t.trustDomain,
      String(t.generation),
      t.sequence === null ? '-' : String(t.sequence),
      t.lastResult,
      ago(t.lastRefresh, now),
      ago(t.nextRefresh, now),
      t.stale ? 'STALE' : `fails closed ${ago(t.staleAt, now)}`,
      t.source,
    ]);
    for (const l of alignColumns([['TRUST DOMAIN', 'GENERATION', 'SEQUENCE', 'LAST RESULT', 'LAST REFRESH', 'NEXT REFRESH', 'STALENESS', 'SOURCE'], ...rows])) out(`  ${l}`);
    for (const t of r.trustDomains.filter((x) => x.lastError)) out(`  ${t.trustDomain}: last error: ${t.lastError}`);
  }
  return r.ready ? 0 : 1;
}
