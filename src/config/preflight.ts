/**
 * Everything `serve` checks before it binds a port or fetches over the network, as one function
 * that `serve`, `check`, `config validate` and a config reload all call, so what `validate` calls
 * valid is what `serve` starts on. After the schema and the cross checks (load.ts), it reads every
 * file the config names with the code that uses it at runtime: bundle files parsed as bundles of
 * their trust domain, certificates and keys as TLS would load them, user stores, secrets and
 * credentials, and the policy compiled. Each problem names `file:line: key.path`.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { BundleSet } from '../bundle/set.js';
import { LocalIdentity } from '../svid/local-identity.js';
import { createSource } from '../federation/sources.js';
import { fetchLimits } from '../federation/schema.js';
import { createCarriedPhase } from '../identity/phase.js';
import { compilePolicy } from '../policy/rules.js';
import { createRewriter } from '../rewrite/index.js';
import { reissuesJwt } from '../rewrite/schema.js';
import { TrustDomain } from '../spiffe/id.js';
import { parseCertificates } from '../cert/parse.js';
import { loadX509Svid } from '../svid/local.js';
import { ConfigError, loadConfig, type LoadedConfig, type Locate } from './load.js';
import type { Config } from './schema.js';

type Path = (string | number)[];

export interface PreflightOptions {
  /** serve --workers N: what N worker processes need besides (a re-issue key they all share). */
  readonly workers?: number;
  /**
   * false: leave out the files the config names (a config written for another machine, such as
   * a ConfigMap checked in CI); serve never does.
   */
  readonly files?: boolean;
}

/** The files of one trust domain entry: its bundle or source files, its intermediates. */
function trustFiles(t: Config['trust'][number], i: number): Array<[Path, string]> {
  const out: Array<[Path, string]> = [];
  const add = (path: Path, file: string | undefined) => file !== undefined && out.push([['trust', i, ...path], file]);
  add(['bundle'], t.bundle);
  add(['intermediates'], t.intermediates);
  const s = t.source;
  if (s && 'file' in s) add(['source', 'file'], s.file);
  if (s && 'istio' in s) add(['source', 'istio', 'rootCert'], s.istio.rootCert);
  if (s && 'https_web' in s) add(['source', 'https_web', 'ca'], s.https_web.ca);
  if (s && 'https_spiffe' in s) add(['source', 'https_spiffe', 'bootstrap'], s.https_spiffe.bootstrap);
  if (s && 'consul' in s) add(['source', 'consul', 'ca'], s.consul.ca);
  return out;
}

/** Where a trust domain's source is configured: the file of a local source, else the source's kind. */
function sourcePath(t: Config['trust'][number], i: number): Path {
  const s = t.source;
  if (!s) return ['trust', i, 'bundle'];
  if ('file' in s) return ['trust', i, 'source', 'file'];
  if ('istio' in s) return ['trust', i, 'source', 'istio', 'rootCert'];
  return ['trust', i, 'source', Object.keys(s)[0]!];
}

/** Every file the config names that serve reads at startup, with its key path. */
function namedFiles(c: Config): Array<[Path, string]> {
  const out: Array<[Path, string]> = [];
  const add = (path: Path, file: string | undefined) => file !== undefined && out.push([path, file]);
  const tls = c.server.grpc.tls;
  add(['server', 'grpc', 'tls', 'cert'], tls?.cert);
  add(['server', 'grpc', 'tls', 'key'], tls?.key);
  add(['server', 'grpc', 'tls', 'clientCa'], tls?.clientCa);
  c.trust.forEach((t, i) => out.push(...trustFiles(t, i)));
  const ep = c.federation.endpoint;
  if (ep?.profile === 'https_web') {
    add(['federation', 'endpoint', 'cert'], ep.cert);
    add(['federation', 'endpoint', 'key'], ep.key);
  }
  add(['identity', 'cert'], c.identity?.cert);
  add(['identity', 'key'], c.identity?.key);
  const ci = c.commonIdentity;
  add(['commonIdentity', 'wirepact', 'ca'], ci?.wirepact?.ca);
  add(['commonIdentity', 'wirepact', 'emit', 'cert'], ci?.wirepact?.emit?.cert);
  add(['commonIdentity', 'wirepact', 'emit', 'key'], ci?.wirepact?.emit?.key);
  add(['commonIdentity', 'egress', 'basic', 'usersFile'], ci?.egress.basic?.usersFile);
  add(['commonIdentity', 'egress', 'oidc', 'ca'], ci?.egress.oidc?.ca);
  add(['upstream', 'jwt', 'keyFile'], c.upstream.jwt.keyFile);
  add(['upstream', 'hmac', 'secretFile'], c.upstream.hmac?.secretFile);
  add(['upstream', 'basic', 'credentialsFile'], c.upstream.basic?.credentialsFile);
  return out;
}

const errno = (err: unknown) => {
  const code = (err as NodeJS.ErrnoException).code;
  const why: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'is a directory' };
  return code ? `${code}${why[code] ? ` (${why[code]})` : ''}` : String(err);
};

const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!;

/** A message that starts with a key path ("upstream.hmac.secretFile: …") is located at that key. */
function located(at: Locate, fallback: Path, err: unknown): string {
  const m = message(err);
  const k = /^([a-zA-Z]\w*(?:\.[a-zA-Z]\w*|\[\d+\])+): (.*)$/.exec(m);
  if (!k) return `${at(fallback)}: ${m}`;
  const path: Path = k[1]!.split(/\.|(?=\[)/).map((p) => (p.startsWith('[') ? Number(p.slice(1, -1)) : p));
  return `${at(path)}: ${k[2]}`;
}

/**
 * The checks serve runs short of binding and fetching. Resolves with nothing; rejects with a
 * ConfigError listing every problem. Reads files; never opens a socket.
 */
export async function checkConfig(loaded: LoadedConfig, opts: PreflightOptions = {}): Promise<void> {
  const { config: c } = loaded;
  const at: Locate = loaded.at ?? ((path) => `${loaded.origin}: ${path.join('.')}`);
  const problems: string[] = [];
  if (opts.files !== false) await checkFiles(c, at, problems);
  tryAt(problems, at, ['rules'], () => compilePolicy(c.rules, { dryRun: c.policy.dryRun, maxPatternCharacters: c.limits.maxPatternCharacters }));
  // the primary publishes one JWKS for every worker, so they must all sign with one key from a file
  if ((opts.workers ?? 1) > 1 && !c.upstream.jwt.keyFile && reissuesJwt(c.upstream))
    problems.push(`${at(['upstream', 'jwt', 'keyFile'])}: serve --workers ${opts.workers} with re-issued JWTs needs a key file all workers share (or --workers 1)`);
  if (problems.length > 0) throw new ConfigError(byLine(problems));
}

/** Runs `f`; a failure becomes a problem located at `path` (or at the key path its message starts with). */
function tryAt(problems: string[], at: Locate, path: Path, f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch (err) {
    problems.push(located(at, path, err));
    return false;
  }
}

/** Every file the config names, read and parsed by the code serve uses for it. */
async function checkFiles(c: Config, at: Locate, problems: string[]): Promise<void> {
  const unreadable = new Set<string>();
  const files = new Map<string, Buffer>();
  for (const [path, file] of namedFiles(c)) {
    try {
      files.set(path.join('.'), readFileSync(file));
    } catch (err) {
      unreadable.add(path.join('.'));
      problems.push(`${at(path)}: cannot read ${file}: ${errno(err)}`);
    }
  }
  const ok = (...paths: Path[]) => paths.every((p) => !unreadable.has(p.join('.')));
  const attempt = (path: Path, f: () => unknown) => tryAt(problems, at, path, f);

  // listeners' certificates and keys, as the TLS stack loads them (a mismatched pair included)
  const tls = c.server.grpc.tls;
  const tlsPath: Path = ['server', 'grpc', 'tls'];
  if (tls && ok([...tlsPath, 'cert'], [...tlsPath, 'key'], [...tlsPath, 'clientCa'])) {
    if (tls.clientCa) attempt([...tlsPath, 'clientCa'], () => parseCertificates(files.get('server.grpc.tls.clientCa')!));
    attempt(tlsPath, () => createSecureContext({ cert: files.get('server.grpc.tls.cert'), key: files.get('server.grpc.tls.key') }));
  }
  const ep = c.federation.endpoint;
  if (ep?.profile === 'https_web' && ok(['federation', 'endpoint', 'cert'], ['federation', 'endpoint', 'key']))
    attempt(['federation', 'endpoint'], () => createSecureContext({ cert: files.get('federation.endpoint.cert'), key: files.get('federation.endpoint.key') }));

  // trust domains: each source built as the trust manager builds it; local files loaded once
  const limits = fetchLimits(c);
  for (const [i, t] of c.trust.entries()) {
    const td = TrustDomain.parse(t.trustDomain);
    if (t.intermediates && ok(['trust', i, 'intermediates']))
      attempt(['trust', i, 'intermediates'], () => parseCertificates(files.get(`trust.${i}.intermediates`)!));
    const src = t.source ?? { file: t.bundle! };
    const srcPath = sourcePath(t, i);
    if (!ok(...trustFiles(t, i).map(([p]) => p))) continue;
    let source: ReturnType<typeof createSource>;
    try {
      source = createSource(src, td, limits, { current: () => undefined });
    } catch (err) {
      // what building a source can refuse: a URL with credentials, or its CA / bootstrap file
      const kind = t.source ? Object.keys(t.source)[0]! : undefined;
      const file = trustFiles(t, i).find(([p]) => p[2] === 'source')?.[0];
      const where: Path = kind && /credentials/.test(message(err)) ? ['trust', i, 'source', kind, 'url'] : (file ?? srcPath);
      problems.push(`${at(where)}: ${message(err)}`);
      continue;
    }
    if (source.kind === 'file' || source.kind === 'istio') {
      try {
        await source.fetch();
      } catch (err) {
        problems.push(`${at(srcPath)}: ${message(err)}`);
      }
    }
  }
  // (consul.tokenFile is read at each fetch, not at startup: serve starts without it, and so does this)

  // zonegate's own SVID, then what depends on it (common identity), then the rewrite and policy
  let identity: LocalIdentity | undefined;
  if (c.identity && ok(['identity', 'cert'], ['identity', 'key'])) {
    if (attempt(['identity'], () => loadX509Svid(files.get('identity.cert')!, files.get('identity.key')!)))
      identity = new LocalIdentity(c.identity.cert, c.identity.key);
  }
  const ci = c.commonIdentity;
  const ciFiles: Path[] = [['commonIdentity', 'wirepact', 'ca'], ['commonIdentity', 'wirepact', 'emit', 'cert'], ['commonIdentity', 'wirepact', 'emit', 'key'], ['commonIdentity', 'egress', 'basic', 'usersFile'], ['commonIdentity', 'egress', 'oidc', 'ca']];
  if (ci && (identity || !c.identity) && ok(...ciFiles)) {
    if (ci.wirepact?.emit) attempt(['commonIdentity', 'wirepact', 'emit', 'key'], () => createPrivateKey(files.get('commonIdentity.wirepact.emit.key')!));
    attempt(['commonIdentity'], () => createCarriedPhase(c, new BundleSet(), identity));
  }
  if (ok(['upstream', 'jwt', 'keyFile'], ['upstream', 'hmac', 'secretFile'], ['upstream', 'basic', 'credentialsFile']))
    attempt(['upstream'], () => createRewriter(c));
}

/** Problems in the order of the file (a stable sort on `file:line:`). */
function byLine(problems: string[]): string[] {
  const line = (p: string) => Number(/^[^\n]*?:(\d+): /.exec(p)?.[1] ?? 0);
  return [...problems].sort((a, b) => line(a) - line(b));
}

/** Loads a config (the embedded default when `file` is undefined) and runs every check serve runs before binding. */
export async function validateConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env, opts: PreflightOptions = {}): Promise<LoadedConfig> {
  const loaded = loadConfig(file, env);
  await checkConfig(loaded, opts);
  return loaded;
}
