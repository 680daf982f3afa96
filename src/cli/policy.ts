/**
 * `zonegate policy lint FILE` and `zonegate policy import istio|consul FILE`.
 * lint: exit 0 no findings, 1 findings, 2 the file is not a valid config or policy file.
 * import: prints the policy file on stdout; exit 0 when everything was expressed, 1 when
 * something was not (each loss is on stderr and in the output's comments), 2 unreadable input.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ConfigError, loadConfig } from '../config/load.js';
import { PolicyFileError, readPolicyFile } from '../config/include.js';
import { lintRules, type LintContext } from '../policy/lint.js';
import type { RuleConfig } from '../policy/schema.js';
import { ImportError, formatPolicy, type ImportOptions, type ImportResult } from '../policy/import/common.js';
import { importIstio } from '../policy/import/istio.js';
import { importConsul } from '../policy/import/consul.js';
import { UsageError } from './errors.js';

const POLICY_FILE_KEYS = new Set(['rules', 'dryRun']);

function read(file: string, what: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** A policy file holds only `rules` and `dryRun`; anything else is read as a whole config. */
function loadRules(file: string): { rules: readonly RuleConfig[]; ctx: LintContext } {
  let top: unknown;
  try {
    top = parse(read(file, 'policy lint'));
  } catch {
    top = undefined; // the loaders below report the YAML error with its line
  }
  const isPolicyFile = typeof top === 'object' && top !== null && Object.keys(top).every((k) => POLICY_FILE_KEYS.has(k));
  try {
    if (isPolicyFile) {
      const p = readPolicyFile(file);
      return { rules: p.dryRun ? p.rules.map((r) => ({ ...r, dryRun: true })) : p.rules, ctx: {} };
    }
    const { config } = loadConfig(file);
    return {
      rules: config.policy.dryRun ? config.rules.map((r) => ({ ...r, dryRun: true })) : config.rules,
      ctx: {
        naming: config.trust.some((t) => t.naming !== undefined),
        zones: config.trust.some((t) => t.naming !== undefined || t.zone !== undefined),
      },
    };
  } catch (err) {
    if (err instanceof PolicyFileError || err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}

/** Lints the rules of a config or policy file and prints one line per finding. */
export function runPolicyLint(file: string, out: (s: string) => void): number {
  const { rules, ctx } = loadRules(file);
  const findings = lintRules(rules, ctx);
  for (const f of findings) out(`${file}: ${f.message}`);
  out(findings.length === 0 ? `${file}: ${rules.length} rule(s), no findings` : `${file}: ${findings.length} finding(s) in ${rules.length} rule(s)`);
  return findings.length === 0 ? 0 : 1;
}

export interface ImportCliOptions {
  destination?: string;
  zone?: string | string[];
  rootNamespace?: string;
}

/** Converts an Istio or Consul document into a zonegate policy file on stdout. */
export function runPolicyImport(kind: string, file: string, o: ImportCliOptions, out: (s: string) => void, err: (s: string) => void): number {
  const text = read(file, `policy import ${kind}`);
  const opts: ImportOptions = { destination: o.destination, zone: o.zone };
  let result: ImportResult;
  try {
    if (kind === 'istio') result = importIstio(text, file, { ...opts, ...(o.rootNamespace ? { rootNamespace: o.rootNamespace } : {}) });
    else if (kind === 'consul') result = importConsul(text, file, opts);
    else throw new UsageError(`policy import: unknown source "${kind}" (istio or consul)`);
  } catch (e) {
    if (e instanceof ImportError) throw new UsageError(`policy import ${kind}: ${e.message}`);
    throw e;
  }
  out(formatPolicy(kind, file, result).trimEnd());
  for (const u of result.unsupported) err(`${file}: not expressible: ${u}`);
  return result.unsupported.length === 0 ? 0 : 1;
}
