/**
 * What both importers share: the result shape, reading several YAML (or JSON) documents, and
 * printing the result as a zonegate policy file.
 *
 * Fail closed when something cannot be expressed: an allow rule that would lose a condition is
 * left out (the import allows less than the source), a deny rule loses the condition (the import
 * denies more than the source). Either way the loss is reported, never silent.
 */
import { parseAllDocuments, stringify } from 'yaml';
import { Rule, UNSCOPED_CANONICAL, type RuleInput } from '../schema.js';

export interface ImportOptions {
  /** Scope every rule to this context_extensions destination instead of the one derived from the source. */
  readonly destination?: string | undefined;
  /**
   * Only callers of these zones (canonical zone of the caller's trust domain). Required when the
   * source matches on namespaces or services: a name means nothing without the zone whose CA
   * minted it (docs/policy.md "Canonical names").
   */
  readonly zone?: string | readonly string[] | undefined;
}

export interface ImportResult {
  readonly rules: RuleInput[];
  /** What could not be expressed, and what the import did instead. */
  readonly unsupported: string[];
  /** How the source was read (informational). */
  readonly notes: string[];
}

export class ImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportError';
  }
}

/** Every non-empty document of a YAML stream (JSON is YAML) as a plain value. */
export function readDocuments(text: string, name: string): unknown[] {
  const docs = parseAllDocuments(text, { prettyErrors: false });
  if (!Array.isArray(docs)) return [];
  const out: unknown[] = [];
  for (const [i, d] of docs.entries()) {
    if (d.errors.length > 0) throw new ImportError(`${name}: document ${i + 1}: ${d.errors[0]!.message.split('\n')[0]}`);
    const v = d.toJS() as unknown;
    if (v === null || v === undefined) continue;
    // A JSON array of config entries, or a Kubernetes List.
    if (Array.isArray(v)) out.push(...(v as unknown[]));
    else if (isObject(v) && v.kind === 'List' && Array.isArray(v.items)) out.push(...(v.items as unknown[]));
    else out.push(v);
  }
  return out;
}

/** The zones of ImportOptions as a list (empty when none). */
export const zonesOf = (o: ImportOptions): string[] => (o.zone === undefined ? [] : typeof o.zone === 'string' ? [o.zone] : [...o.zone]);

/**
 * Fails the import when a rule would match canonical names of any zone (the config refuses such
 * a rule): the source names namespaces or services, and no zone was given.
 */
export function requireZones(rules: readonly RuleInput[], name: string): void {
  for (const r of rules) {
    const parsed = Rule.safeParse(r);
    if (!parsed.success && parsed.error.issues.some((i) => i.message.includes(UNSCOPED_CANONICAL)))
      throw new ImportError(
        `${name}: rule "${r.name}" matches callers by namespace or service, which any federated CA can mint: give the zone(s) whose callers these are (--zone, repeatable)`,
      );
  }
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.length > 0 ? v.filter((x): x is string => typeof x === 'string' || typeof x === 'number').map(String) : undefined;

/** Makes rule names unique (and at most 128 characters). */
export function uniqueNames(rules: RuleInput[]): RuleInput[] {
  const seen = new Map<string, number>();
  return rules.map((r) => {
    let name = r.name.slice(0, 120);
    const n = seen.get(name) ?? 0;
    seen.set(name, n + 1);
    if (n > 0) name = `${name}~${n + 1}`;
    return { ...r, name };
  });
}

/** The import as a policy file: comments first (source, losses, notes), then `rules:`, plain YAML (no anchors and aliases for shared values). */
export function formatPolicy(kind: string, source: string, r: ImportResult): string {
  const lines = [`# zonegate policy imported from ${kind} ${source} (zonegate policy import ${kind})`];
  for (const u of r.unsupported) lines.push(`# NOT EXPRESSIBLE: ${u}`);
  for (const n of r.notes) lines.push(`# note: ${n}`);
  return `${lines.join('\n')}\n${stringify({ rules: r.rules }, { lineWidth: 0, aliasDuplicateObjects: false })}`;
}
