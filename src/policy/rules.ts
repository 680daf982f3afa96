/**
 * The rule set: compiled once from the config, evaluated per request without allocation-heavy
 * work. Any matching deny rule wins; otherwise the first matching allow rule allows; otherwise
 * the request is denied by default.
 */
import type { RuleConfig } from '../config/schema.js';
import type { ReasonCode } from '../errors.js';
import { compileMatchers, type CompiledMatcher } from './match.js';

export interface PolicyInput {
  readonly principal: string;
  readonly trustDomain: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly context: ReadonlyMap<string, string>;
  /** The actor of a verified common identity, if any. */
  readonly actor?: string | undefined;
}

export type Decision =
  | { readonly allowed: true; readonly rule: string }
  | { readonly allowed: false; readonly reason: ReasonCode; readonly rule?: string; readonly message: string };

interface CompiledRule {
  readonly name: string;
  readonly action: 'allow' | 'deny';
  readonly test: (input: PolicyInput) => boolean;
}

function compileRule(rule: RuleConfig): CompiledRule {
  const checks: Array<(input: PolicyInput) => boolean> = [];
  if (rule.from.principals) {
    const m: CompiledMatcher = compileMatchers(rule.from.principals);
    checks.push((i) => m(i.principal));
  }
  if (rule.from.trustDomains) {
    const tds = new Set(rule.from.trustDomains);
    checks.push((i) => i.trustDomain !== undefined && tds.has(i.trustDomain));
  }
  if (rule.from.actors) {
    const m = compileMatchers(rule.from.actors);
    checks.push((i) => i.actor !== undefined && m(i.actor));
  }
  if (rule.to.methods) {
    const methods = new Set(rule.to.methods);
    checks.push((i) => methods.has(i.method));
  }
  if (rule.to.paths) {
    const m = compileMatchers(rule.to.paths);
    checks.push((i) => m(i.path));
  }
  if (rule.to.context) {
    const entries = Object.entries(rule.to.context);
    checks.push((i) => entries.every(([k, v]) => i.context.get(k) === v));
  }
  return {
    name: rule.name,
    action: rule.action,
    test: (input) => {
      for (const c of checks) if (!c(input)) return false;
      return true;
    },
  };
}

export interface Policy {
  evaluate(input: PolicyInput): Decision;
  readonly ruleCount: number;
}

/** Compiles the configured rules into a Policy. */
export function compilePolicy(rules: readonly RuleConfig[]): Policy {
  const compiled = rules.map(compileRule);
  const denies = compiled.filter((r) => r.action === 'deny');
  const allows = compiled.filter((r) => r.action === 'allow');
  return {
    ruleCount: compiled.length,
    evaluate(input) {
      for (const r of denies)
        if (r.test(input))
          return { allowed: false, reason: 'ERR_POLICY_DENIED', rule: r.name, message: `policy: deny rule "${r.name}" matched` };
      for (const r of allows) if (r.test(input)) return { allowed: true, rule: r.name };
      return {
        allowed: false,
        reason: 'ERR_POLICY_NO_MATCH',
        message: `policy: no allow rule matched ${input.method} ${input.path} from "${input.principal}"`,
      };
    },
  };
}
