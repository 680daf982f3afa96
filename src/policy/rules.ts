/**
 * The rule set: compiled once from the config, evaluated per request without parsing anything.
 * Any matching deny rule wins; otherwise a matching allow rule allows; otherwise the request is
 * denied by default. A deny rule in dry run, or any deny while the whole rule set is in dry run,
 * does not deny: the request goes on, and the would-be deny is reported (logged and counted by
 * the caller's `onDryRun`, named by `--explain`).
 */
import type { ReasonCode } from '../errors.js';
import { compileRuleTest, type PolicyInput, type Predicate } from './compile.js';
import { PATTERN_BUDGET_EXCEEDED, withPatternBudget } from './match.js';
import type { RuleConfig } from './schema.js';

export type { PolicyInput } from './compile.js';

/** A deny that dry run turned into an allow. */
export interface DryRunDeny {
  readonly reason: ReasonCode;
  /** The deny rule that would have denied (absent for the default deny). */
  readonly rule?: string;
  readonly message: string;
}

export type Decision =
  | { readonly allowed: true; readonly rule?: string; readonly dryRun?: DryRunDeny }
  | { readonly allowed: false; readonly reason: ReasonCode; readonly rule?: string; readonly message: string };

interface CompiledRule {
  readonly name: string;
  readonly dryRun: boolean;
  readonly test: Predicate;
  /** A rule scoped to `destinations`: its test without that scope, and the scope as written. */
  readonly scoped?: { readonly rest: Predicate; readonly destinations: string };
}

/**
 * Why the default deny happened although an allow rule matched everything but its destination
 * scope: a route that sends no `destination` (Consul's extension, Istio's CUSTOM action) never
 * matches a destination-scoped rule, and the deny alone does not say so. Computed on the deny
 * path only.
 */
function skippedByDestination(allows: readonly CompiledRule[], input: PolicyInput): string {
  const skipped = allows.filter((r) => r.scoped && r.scoped.rest(input));
  if (skipped.length === 0) return '';
  const sent = input.context.get('destination');
  const why = sent === undefined ? 'this check sent no destination (context_extensions "destination")' : `this check's destination is "${sent}"`;
  return `; skipped because of its destination: ${skipped.map((r) => `rule "${r.name}" (destinations ${r.scoped!.destinations})`).join(', ')}: ${why}`;
}

export interface PolicyOptions {
  /** The whole rule set is in dry run: no policy deny is enforced. */
  readonly dryRun?: boolean;
  /** Called for every would-be deny that dry run allowed (log it, count it). */
  readonly onDryRun?: (deny: DryRunDeny, input: PolicyInput) => void;
  /**
   * Characters the glob and regex patterns of one decision may scan in all (limits.
   * maxPatternCharacters); past it the request is denied ERR_POLICY_TOO_COSTLY. Unbounded when unset.
   */
  readonly maxPatternCharacters?: number;
}

export interface Policy {
  evaluate(input: PolicyInput): Decision;
  readonly ruleCount: number;
}

/** Compiles the configured rules into a Policy. */
export function compilePolicy(rules: readonly RuleConfig[], opts: PolicyOptions = {}): Policy {
  const all = opts.dryRun === true;
  const compile = (r: RuleConfig): CompiledRule => ({
    name: r.name,
    dryRun: all || r.dryRun,
    test: compileRuleTest(r),
    ...(r.destinations ? { scoped: { rest: compileRuleTest({ ...r, destinations: undefined }), destinations: JSON.stringify(r.destinations) } } : {}),
  });
  const denies = rules.filter((r) => r.action === 'deny').map(compile);
  const allows = rules.filter((r) => r.action === 'allow').map(compile);
  const onDryRun = opts.onDryRun;
  const allowed = (input: PolicyInput, rule: string | undefined, dryRun: DryRunDeny | undefined): Decision => {
    if (!dryRun) return { allowed: true, ...(rule !== undefined ? { rule } : {}) };
    onDryRun?.(dryRun, input);
    return { allowed: true, ...(rule !== undefined ? { rule } : {}), dryRun };
  };
  const decide = (input: PolicyInput): Decision => {
    let wouldDeny: DryRunDeny | undefined;
    for (const r of denies) {
      if (!r.test(input)) continue;
      const message = `policy: deny rule "${r.name}" matched`;
      if (!r.dryRun) return { allowed: false, reason: 'ERR_POLICY_DENIED', rule: r.name, message };
      wouldDeny ??= { reason: 'ERR_POLICY_DENIED', rule: r.name, message };
    }
    for (const r of allows) if (r.test(input)) return allowed(input, r.name, wouldDeny);
    const message = `policy: no allow rule matched ${input.method} ${input.path} from "${input.principal}"${skippedByDestination(allows, input)}`;
    if (wouldDeny) {
      // The dry-run deny is not what denies here: the default deny is, and it is enforced
      // unless the whole rule set is in dry run.
      if (!all) return { allowed: false, reason: 'ERR_POLICY_NO_MATCH', message };
      return allowed(input, undefined, wouldDeny);
    }
    if (all) return allowed(input, undefined, { reason: 'ERR_POLICY_NO_MATCH', message });
    return { allowed: false, reason: 'ERR_POLICY_NO_MATCH', message };
  };
  const maxChars = opts.maxPatternCharacters;
  if (maxChars === undefined) return { ruleCount: rules.length, evaluate: decide };
  const tooCostly: Decision = {
    allowed: false,
    reason: 'ERR_POLICY_TOO_COSTLY',
    message: `policy: this request would make the policy's glob and regex patterns scan more than ${maxChars} characters (limits.maxPatternCharacters)`,
  };
  return {
    ruleCount: rules.length,
    evaluate(input) {
      try {
        return withPatternBudget(maxChars, () => decide(input));
      } catch (err) {
        // fail closed, dry run or not: the request's shape, not a rule, decided
        if (err === PATTERN_BUDGET_EXCEEDED) return tooCostly;
        throw err;
      }
    },
  };
}
