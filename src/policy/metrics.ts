/** The policy's own metrics: would-be denies that dry run allowed. */
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { PolicyOptions } from './rules.js';

/**
 * Registers `zonegate_policy_dry_run_denials_total{rule, reason}` and returns the `onDryRun`
 * observer that counts a would-be deny and logs it at info.
 */
export function dryRunObserver(registry: Registry, log: Logger): NonNullable<PolicyOptions['onDryRun']> {
  const counter = new Counter({
    name: 'zonegate_policy_dry_run_denials_total',
    help: 'Requests a policy deny would have denied but dry run allowed, by rule ("" for the default deny) and reason code',
    labelNames: ['rule', 'reason'],
    registers: [registry],
    aggregator: 'sum', // serve --workers N: every worker's would-be denies
  });
  return (deny, input) => {
    counter.inc({ rule: deny.rule ?? '', reason: deny.reason });
    log.info(
      { decisionId: input.requestId ?? null, rule: deny.rule ?? null, reason: deny.reason, peer: input.principal, method: input.method, path: input.path },
      'policy dry run: would deny',
    );
  };
}
