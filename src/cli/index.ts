/**
 * The `zonegate` command line. Exit codes: 0 success / allowed / valid, 1 denied / invalid,
 * 2 usage or configuration error.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig } from '../config/load.js';
import { startZonegate } from '../main.js';
import { runCheck } from './check.js';
import { runSvidVerify } from './svid.js';
import { UsageError } from './errors.js';
import { ZonegateError } from '../errors.js';
import { VERSION } from '../version.js';

const print = (s: string) => process.stdout.write(`${s}\n`);

function program(setExit: (code: number) => void): Command {
  const cmd = new Command('zonegate')
    .description('Envoy external authorization for cross-mesh SPIFFE trust')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  cmd
    .command('serve')
    .description('run the ext_authz gRPC server and the ops HTTP server (embedded default config without --config)')
    .option('-c, --config <file>', 'YAML config file')
    .action(async (opts: { config?: string }) => {
      const loaded = loadConfig(opts.config);
      await startZonegate(loaded, { handleSignals: true });
    });

  cmd
    .command('check')
    .description('decide one CheckRequest (proto3 JSON, as Envoy sends it) and print the CheckResponse')
    .option('-c, --config <file>', 'YAML config file (embedded default without it)')
    .requiredOption('-r, --request <file>', 'CheckRequest JSON file, or - for standard input')
    .option('--explain', 'add the steps: what each phase saw and decided')
    .action(async (opts: { config?: string; request: string; explain?: boolean }) => setExit(await runCheck(opts, print)));

  const collect = (v: string, prev: string[]) => [...prev, v];
  cmd
    .command('svid')
    .description('X509-SVID tools')
    .command('verify')
    .description('verify an X509-SVID (leaf and optional intermediates) against per-trust-domain bundles')
    .argument('<cert>', 'PEM or DER file: the leaf first, then intermediates')
    .option('-b, --bundle <td=file>', 'a trust domain and its bundle (SPIFFE bundle JSON or PEM); repeatable', collect, [])
    .option('--at <time>', 'verify as of this RFC 3339 time instead of now')
    .option('--skew <seconds>', 'clock skew tolerated on validity windows', '0')
    .action((cert: string, opts: { bundle: string[]; at?: string; skew?: string }) => setExit(runSvidVerify(cert, opts, print)));

  const config = cmd.command('config').description('configuration tools');
  config
    .command('validate')
    .description('validate a config file; errors name the key path and line')
    .argument('<file>')
    .action((file: string) => {
      const loaded = loadConfig(file);
      for (const w of loaded.warnings) process.stderr.write(`warning: ${w}\n`);
      print(`${file}: valid`);
    });
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
