/**
 * Policy files: a rule set in a file of its own, included by `policy.include` or checked by
 * `zonegate policy lint`. Validated with the same schema as inline rules; errors name the file,
 * the line and the key path.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { describeIssues } from './issues.js';
import type { z } from 'zod';
import { PolicyFile, type PolicyFileConfig, type RuleConfig } from '../policy/schema.js';

/** Thrown with one message per problem (the config loader wraps them in a ConfigError). */
export class PolicyFileError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`policy: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
    this.name = 'PolicyFileError';
  }
}


/** Parses YAML text and validates it with `schema`; problems name `name:line: key.path`. */
export function parseYamlWith<S extends z.ZodType>(schema: S, text: string, name: string): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0)
    throw new PolicyFileError(doc.errors.map((e) => `${name}:${lineCounter.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`));
  const result = schema.safeParse(doc.toJS() ?? {});
  if (result.success) return result.data;
  throw new PolicyFileError(describeIssues(result.error.issues, doc, lineCounter, name, schema));
}

/** Reads and validates one policy file. */
export function readPolicyFile(file: string, where = file): PolicyFileConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PolicyFileError([`${where}: cannot read${where === file ? '' : ` ${file}`}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  return parseYamlWith(PolicyFile, text, file);
}

/**
 * The rules of the included files, in order, each marked dry-run when its file is. The paths
 * are the config's, already resolved against its directory (src/paths.ts configPath).
 */
export function includedRules(include: readonly string[], at?: (i: number) => string): RuleConfig[] {
  const rules: RuleConfig[] = [];
  const problems: string[] = [];
  for (const [i, f] of include.entries()) {
    try {
      const file = readPolicyFile(f, at?.(i) ?? f);
      for (const r of file.rules) rules.push(file.dryRun ? { ...r, dryRun: true } : r);
    } catch (err) {
      if (err instanceof PolicyFileError) problems.push(...err.problems);
      else throw err;
    }
  }
  if (problems.length > 0) throw new PolicyFileError(problems);
  return rules;
}
