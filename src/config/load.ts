/**
 * Loads a YAML config file into a validated, frozen Config. Errors name the key path and the
 * line of the file, e.g. `config.yaml:12: rules[0].action: expected one of allow, deny`.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { describeIssues, formatPath, lineOf } from './issues.js';
import { ConfigSchema, type Config } from './schema.js';
import { serverWarnings } from './server.js';
import { EMBEDDED_DEFAULT } from './default.js';
import { PolicyFileError, includedRules } from './include.js';
import { resolvingConfigPaths } from '../paths.js';

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`config: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  readonly config: Config;
  /** Where it came from: a file path or "<embedded default>". */
  readonly origin: string;
  /** Warnings worth a log line at startup (insecure but valid choices). */
  readonly warnings: readonly string[];
  /** `file:line: key.path` of a key of the file (for problems found after parsing). */
  readonly at?: (path: readonly (string | number)[]) => string;
}

/** Where a key is: `file:line: key.path`. */
export type Locate = (path: readonly (string | number)[]) => string;

const ENV_OVERRIDES: ReadonlyArray<[string, (string | number)[], 'string' | 'port' | 'boolean']> = [
  ['ZONEGATE_GRPC_ADDRESS', ['server', 'grpc', 'address'], 'string'],
  ['ZONEGATE_GRPC_INSECURE', ['server', 'grpc', 'insecure'], 'boolean'],
  ['ZONEGATE_GRPC_PORT', ['server', 'grpc', 'port'], 'port'],
  ['ZONEGATE_GRPC_UNIX_SOCKET', ['server', 'grpc', 'unixSocket'], 'string'],
  ['ZONEGATE_GRPC_TRANSPORT', ['server', 'grpc', 'transport'], 'string'],
  ['ZONEGATE_OPS_ADDRESS', ['server', 'ops', 'address'], 'string'],
  ['ZONEGATE_OPS_PORT', ['server', 'ops', 'port'], 'port'],
  ['ZONEGATE_HTTP_PORT', ['server', 'http', 'port'], 'port'],
  ['ZONEGATE_LOG_LEVEL', ['log', 'level'], 'string'],
];

function setIn(obj: Record<string, unknown>, path: readonly (string | number)[], value: unknown): void {
  let cur: Record<string, unknown> = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (next === undefined || next === null) cur[key] = {};
    else if (typeof next !== 'object') return; // the schema will report the wrong type
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1] as string] = value;
}

/** Applies the ZONEGATE_* environment overrides to a raw (not yet validated) config object. */
export function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): string[] {
  const problems: string[] = [];
  for (const [name, path, kind] of ENV_OVERRIDES) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (kind === 'port') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) problems.push(`${name}: "${v}" is not a port number`);
      else setIn(raw, path, n);
    } else if (kind === 'boolean') {
      if (v !== 'true' && v !== 'false') problems.push(`${name}: "${v}" is not true or false`);
      else setIn(raw, path, v === 'true');
    } else setIn(raw, path, v);
  }
  return problems;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

function crossChecks(cfg: Config, at: Locate): { problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  if (cfg.rules.length > cfg.limits.maxRules) problems.push(`${at(['rules'])}: ${cfg.rules.length} rules (limit limits.maxRules = ${cfg.limits.maxRules})`);
  const ruleAt = new Map<string, number>();
  cfg.rules.forEach((r, i) => {
    const first = ruleAt.get(r.name);
    if (first !== undefined) problems.push(`${at(['rules', i, 'name'])}: duplicate rule name "${r.name}" (first at ${at(['rules', first, 'name'])})`);
    else ruleAt.set(r.name, i);
  });
  const tds = new Set<string>();
  const tdAt = new Map<string, number>();
  cfg.trust.forEach((t, i) => {
    const first = tdAt.get(t.trustDomain);
    if (first !== undefined) problems.push(`${at(['trust', i, 'trustDomain'])}: "${t.trustDomain}" is listed twice (first at ${at(['trust', first, 'trustDomain'])})`);
    else tdAt.set(t.trustDomain, i);
    tds.add(t.trustDomain);
  });
  if (cfg.peer.source === 'principal')
    warnings.push(
      'peer.source is "principal": zonegate trusts the principal the proxy reports without verifying an X509-SVID',
    );
  if (cfg.peer.source === 'xfcc')
    warnings.push(
      'peer.source is "xfcc": the proxy must sanitize x-forwarded-client-cert (Envoy: forward_client_cert_details SANITIZE_SET)',
    );
  if (cfg.peer.source !== 'principal' && cfg.trust.length === 0)
    warnings.push(`peer.source is "${cfg.peer.source}" but no trust domain is configured: every peer will be denied`);
  if (cfg.rules.length === 0) warnings.push('no rules are configured: every request will be denied');
  warnings.push(...serverWarnings(cfg.server));
  const r = cfg.federation.refresh;
  if (r.minSeconds > r.maxSeconds) problems.push(`${at(['federation', 'refresh', 'minSeconds'])}: minSeconds is greater than maxSeconds`);
  const ep = cfg.federation.endpoint;
  if (ep && !tds.has(ep.trustDomain))
    problems.push(`${at(['federation', 'endpoint', 'trustDomain'])}: "${ep.trustDomain}" is not a trust domain under trust[]`);
  if (cfg.commonIdentity && !cfg.identity && cfg.commonIdentity.audiences.length === 0)
    problems.push(`${at(['commonIdentity'])}.audiences: set it, or configure identity (the default audience is derived from our SVID)`);
  if (ep?.profile === 'https_spiffe' && !cfg.identity)
    problems.push(`${at(['federation', 'endpoint', 'profile'])}: the https_spiffe profile serves with the local SVID: configure identity.cert and identity.key`);
  return { problems, warnings };
}

/** Parses and validates config text. `name` is used in messages; `baseDir` resolves relative paths. */
export function parseConfig(text: string, name: string, baseDir: string, env: NodeJS.ProcessEnv = {}): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => `${name}:${lineCounter.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`),
    );
  }
  let raw: unknown;
  try {
    // toJS resolves aliases: an unknown anchor or an alias bomb (yaml's maxAliasCount) throws here
    raw = (doc.toJS() ?? {}) as unknown;
  } catch (err) {
    throw new ConfigError([`${name}:1: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError([`${name}:1: the config must be a mapping at the top level`]);
  const envProblems = applyEnv(raw as Record<string, unknown>, env);
  if (envProblems.length > 0) throw new ConfigError(envProblems);

  // every file path the config names is resolved against baseDir as it is parsed (src/paths.ts)
  const result = resolvingConfigPaths(baseDir, () => ConfigSchema.safeParse(raw));
  if (!result.success) {
    throw new ConfigError(describeIssues(result.error.issues, doc, lineCounter, name, ConfigSchema));
  }
  const at: Locate = (path) => `${name}:${lineOf(doc, lineCounter, path)}: ${formatPath(path)}`;
  const config = result.data;
  if (config.policy.include.length > 0) {
    try {
      config.rules.push(...includedRules(config.policy.include, (i) => at(['policy', 'include', i])));
    } catch (err) {
      if (err instanceof PolicyFileError) throw new ConfigError(err.problems);
      throw err;
    }
  }
  const { problems, warnings } = crossChecks(config, at);
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: deepFreeze(config), origin: name, warnings, at };
}

/** Loads a config file, or the embedded default when `file` is undefined. */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  if (file === undefined) return parseConfig(EMBEDDED_DEFAULT.text, '<embedded default>', EMBEDDED_DEFAULT.dir, env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  return parseConfig(text, file, dirname(resolve(file)), env);
}
