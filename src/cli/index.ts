/**
 * The `zonegate` command line. Exit codes: 0 success / allowed / valid, 1 denied / invalid,
 * 2 usage or configuration error.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig } from '../config/load.js';
import { validateConfig } from '../config/preflight.js';
import { startZonegate } from '../main.js';
import { runPrimary, runWorker, isWorker } from '../cluster.js';
import { availableParallelism } from 'node:os';
import { runCheck } from './check.js';
import { runSvidVerify } from './svid.js';
import { runBundleFetch, runBundleShow, type FetchOptions } from './bundle.js';
import { runTokenMint, runTokenVerify, type MintCliOptions, type VerifyCliOptions } from './token.js';
import { UsageError } from './errors.js';
import { watchParent } from './parent.js';
import { runExplain, runStatus, type OpsCliOptions } from './ops.js';
import { runPolicyImport, runPolicyLint, type ImportCliOptions } from './policy.js';
import { ZonegateError } from '../errors.js';
import { VERSION } from '../version.js';
import { readFileSync } from 'node:fs';
import { hashPassword } from '../identity/basic.js';

const print = (s: string) => process.stdout.write(`${s}\n`);

function parseWorkers(v: string | undefined): number {
  if (v === undefined || v === '') return availableParallelism();
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new UsageError(`serve: --workers must be a whole number from 1 to 256, got "${v}"`);
  return n;
}

type SetExit = (code: number) => void;

/** No default value: commander would print `(default: [])` for it, and a required option would never be missing. */
const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];
const OPS_URL = 'the ops server (default http://127.0.0.1:8181, env ZONEGATE_OPS_URL)';

function registerServe(cmd: Command): void {
  cmd
    .command('serve')
    .description('run the ext_authz gRPC server and the ops HTTP server (embedded default config without --config); reloads --config on SIGHUP and on change')
    .option('-c, --config <file>', 'YAML config file')
    .option('-w, --workers <n>', 'worker processes sharing the listeners (default: available cores, env ZONEGATE_WORKERS; 1: one process)')
    .option('--exit-with-parent', 'drain and exit, as on SIGTERM, when the process that started serve goes away (env ZONEGATE_EXIT_WITH_PARENT=1); for runners that do not forward signals, such as npm scripts')
    .action(async (opts: { config?: string; workers?: string; exitWithParent?: boolean }) => {
      const reload = opts.config ? { configFile: opts.config } : {};
      // a worker loads what its primary has already checked
      if (isWorker()) return runWorker(loadConfig(opts.config), reload);
      const workers = parseWorkers(opts.workers ?? process.env.ZONEGATE_WORKERS);
      // every check serve runs before binding a port, the same function as config validate
      const loaded = await validateConfig(opts.config, process.env, { workers });
      if (workers === 1) await startZonegate(loaded, { handleSignals: true, ...reload });
      else await runPrimary(loaded, workers);
      // the parent's going is handled as the SIGTERM it would have sent: the same drain, one process or many
      if (opts.exitWithParent || process.env.ZONEGATE_EXIT_WITH_PARENT === '1') watchParent(() => process.kill(process.pid, 'SIGTERM'));
    });
}

function registerDemo(cmd: Command): void {
  cmd
    .command('demo')
    .description('two trust zones (Istio- and Consul-named) federated over loopback: scripted cross-zone calls, a table of verdicts, then keeps serving (what npm start runs)')
    .option('--port-base <n>', 'zone A on n, n+1, n+2 (gRPC, ops, bundle endpoint), zone B on n+3…n+5; 0 for free ports (env ZONEGATE_DEMO_PORT_BASE)')
    .action(async (opts: { portBase?: string }) => {
      // loaded on demand: the demo's certificate tooling is not needed by any other command
      const { runDemoCommand } = await import('./demo.js');
      await runDemoCommand(opts, print);
    });
}

/** check (offline), explain and status (against a running server's ops port). */
function registerDecide(cmd: Command, setExit: SetExit): void {
  cmd
    .command('check')
    .description('decide one CheckRequest (proto3 JSON, as Envoy sends it) and print the CheckResponse')
    .option('-c, --config <file>', 'YAML config file (embedded default without it)')
    .requiredOption('-r, --request <file>', 'CheckRequest JSON file, or - for standard input')
    .option('--explain', 'add the steps: what each phase saw and decided')
    .action(async (opts: { config?: string; request: string; explain?: boolean }) => setExit(await runCheck(opts, print)));

  cmd
    .command('explain')
    .description("ask a running server to decide one CheckRequest with its live bundles and show each phase's steps (needs server.ops.explain: true; loopback only)")
    .requiredOption('-r, --request <file>', 'CheckRequest JSON file, or - for standard input')
    .option('--ops <url>', OPS_URL)
    .option('--json', 'print the JSON the server sent instead of a table')
    .action(async (o: OpsCliOptions & { request: string }) => setExit(await runExplain(o, print)));

  cmd
    .command('status')
    .description("a running server's trust domains (bundle generation, last and next refresh, staleness), config origin and reload state (exit 1 when not ready)")
    .option('--ops <url>', OPS_URL)
    .option('--json', 'print the JSON the server sent instead of a table')
    .action(async (o: OpsCliOptions) => setExit(await runStatus(o, print)));
}

function registerSvid(cmd: Command, setExit: SetExit): void {
  cmd
    .command('svid')
    .description('X509-SVID tools')
    .command('verify')
    .description('verify an X509-SVID (leaf and optional intermediates) against per-trust-domain bundles')
    .argument('<cert>', 'PEM or DER file: the leaf first, then intermediates')
    .requiredOption('-b, --bundle <td=file>', 'a trust domain and its bundle (SPIFFE bundle JSON or PEM); repeatable', collect)
    .option('--at <time>', 'verify as of this RFC 3339 time instead of now')
    .option('--skew <seconds>', 'clock skew tolerated on validity windows', '0')
    .action((cert: string, opts: { bundle: string[]; at?: string; skew?: string }) => setExit(runSvidVerify(cert, opts, print)));
}

function registerBundle(cmd: Command, setExit: SetExit): void {
  const bundle = cmd.command('bundle').description('trust bundle tools');
  bundle
    .command('fetch')
    .description('fetch a SPIFFE bundle endpoint once and print the bundle (SPIFFE bundle JSON)')
    .argument('<url>')
    .requiredOption('--trust-domain <td>', 'the trust domain whose bundle the endpoint serves')
    .requiredOption('--profile <profile>', 'https_web or https_spiffe')
    .option('--ca <file>', 'https_web: trust this CA instead of the system roots')
    .option('--endpoint-spiffe-id <id>', 'https_spiffe: the SPIFFE ID the endpoint must present')
    .option('--bootstrap <file>', "https_spiffe: a bundle of the endpoint's trust domain to trust for this fetch")
    .option('--timeout <seconds>', 'give up after this long', '10')
    .action(async (url: string, o: FetchOptions) => setExit(await runBundleFetch(url, o, print)));
  bundle
    .command('show')
    .description('list the authorities of a bundle file (SPIFFE bundle JSON, PEM or DER)')
    .argument('<file>')
    .option('--json', 'print JSON instead of a table')
    .option('--trust-domain <td>', 'the trust domain the bundle belongs to (for messages)')
    .action((file: string, o: { json?: boolean; trustDomain?: string }) => setExit(runBundleShow(file, o, print)));
}

function registerToken(cmd: Command, setExit: SetExit): void {
  const token = cmd.command('token').description('common identity tokens');
  token
    .command('mint')
    .description('sign a common identity with an X509-SVID and its key')
    .requiredOption('--key <file>', 'private key of the SVID (PEM or DER)')
    .requiredOption('--cert <file>', 'the SVID: leaf first, then intermediates')
    .requiredOption('--sub <subject>', 'the actor')
    .requiredOption('--aud <audience>', 'the destination (spiffe://<td> or a SPIFFE ID); repeatable', collect)
    .option('--ttl <duration>', 'lifetime, e.g. 60s or 5m', '60s')
    .option('--max-lifetime <duration>', "the longest lifetime the verifiers accept (commonIdentity.maxLifetimeSeconds, token verify's --max-lifetime): a longer --ttl is refused", '10m')
    .option('--act-from <token>', "the caller's token: its signer and hops become this token's act chain")
    .action((o: MintCliOptions) => setExit(runTokenMint(o, print)));
  token
    .command('verify')
    .description('verify a common identity against per-trust-domain bundles, as the ingress does')
    .argument('<token>', 'the token, or - for standard input')
    .requiredOption('-b, --bundle <td=file>', 'a trust domain and its bundle; repeatable', collect)
    .requiredOption('--audience <aud>', 'an accepted audience; repeatable', collect)
    .option('--peer <spiffe-id>', 'the mTLS peer: iss must equal it')
    .option('--peer-cert <file>', "the peer's certificate: its SPIFFE ID is the peer, its thumbprint checks cnf")
    .option('--max-lifetime <duration>', 'longest lifetime accepted', '10m')
    .option('--skew <duration>', 'clock skew tolerated', '30s')
    .action((t: string, o: VerifyCliOptions) => setExit(runTokenVerify(t, o, print)));
}

function registerUser(cmd: Command): void {
  cmd
    .command('user')
    .description('user store tools (Basic credentials at egress)')
    .command('hash')
    .description('read a password on standard input and print its salted scrypt hash for the user store')
    .action(() => {
      const password = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
      if (password === '') throw new UsageError('user hash: the password on standard input is empty');
      print(hashPassword(password));
    });
}

function registerPolicy(cmd: Command, setExit: SetExit): void {
  const policy = cmd.command('policy').description('policy tools (docs/policy.md)');
  policy
    .command('lint')
    .description('report unreachable and shadowed rules of a config or policy file (exit 1 on findings)')
    .argument('<file>')
    .action((file: string) => setExit(runPolicyLint(file, print)));
  policy
    .command('import')
    .description('print the zonegate policy equivalent to Istio AuthorizationPolicy or Consul service intentions')
    .argument('<source>', 'istio or consul')
    .argument('<file>', 'the documents (YAML or JSON; - for standard input)')
    .option('--destination <name>', 'scope every rule to this context_extensions destination')
    .option('--zone <zone>', 'match only callers of this zone (repeat for several); required when the source names namespaces or services', (z: string, prev: string[] = []) => [...prev, z])
    .option('--root-namespace <ns>', "istio: the mesh's root namespace", 'istio-system')
    .action((source: string, file: string, o: ImportCliOptions) =>
      setExit(runPolicyImport(source, file, o, print, (s) => process.stderr.write(`${s}\n`))),
    );
}

function registerConfig(cmd: Command): void {
  const config = cmd.command('config').description('configuration tools');
  config
    .command('validate')
    .description('run every check serve runs before it binds a port (schema, files, trust domains, cross-references); errors name the file, line and key path')
    .argument('<file>')
    .option('-w, --workers <n>', 'also check what serve --workers N needs (a shared re-issue key)')
    .option('--no-files', 'leave out the files the config names: for a config written for another machine (a ConfigMap checked in CI)')
    .action(async (file: string, o: { workers?: string; files: boolean }) => {
      const loaded = await validateConfig(file, process.env, { files: o.files, ...(o.workers === undefined ? {} : { workers: parseWorkers(o.workers) }) });
      for (const w of loaded.warnings) process.stderr.write(`warning: ${w}\n`);
      print(`${file}: valid`);
    });
}

/** The command tree, in the order `zonegate --help` lists it; `setExit` receives each command's exit code. */
function program(setExit: SetExit): Command {
  const cmd = new Command('zonegate')
    .description('Envoy external authorization for cross-mesh SPIFFE trust')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerServe(cmd);
  registerDemo(cmd);
  registerDecide(cmd, setExit);
  registerSvid(cmd, setExit);
  registerBundle(cmd, setExit);
  registerToken(cmd, setExit);
  registerUser(cmd);
  registerPolicy(cmd, setExit);
  registerConfig(cmd);
  return cmd;
}

/** Runs the CLI with process.argv-style arguments. Sets process.exitCode. */
export async function main(argv: string[]): Promise<void> {
  let exit = 0;
  try {
    await program((c) => (exit = c)).parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; every other commander error is a usage error
      exit = err.exitCode === 0 ? 0 : 2;
    } else if (err instanceof ConfigError || err instanceof UsageError || err instanceof ZonegateError) {
      process.stderr.write(`${err.message}\n`);
      exit = 2;
    } else throw err;
  }
  process.exitCode = exit;
}
