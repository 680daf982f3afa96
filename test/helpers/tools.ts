/**
 * External tools the tests drive. Under CI=true a missing tool fails its test (it is installed by
 * .ci/run); elsewhere the test is skipped with a message saying what is missing.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/paths.js';

export const IN_CI = process.env.CI === 'true';

export interface Tool {
  readonly available: boolean;
  readonly why: string;
}

/** Checks that `cmd args…` runs and exits 0. */
export function probe(name: string, cmd: string, args: string[]): Tool {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  const available = r.status === 0;
  return { available, why: available ? '' : `${name} is not available (${r.error?.message ?? r.stderr.trim().split('\n').pop()})` };
}

/** Python with grpcio and grpc_tools: Debian's python3-grpcio and python3-grpc-tools. */
export const PYTHON = '/usr/bin/python3';
export const pythonGrpc = (): Tool => probe('python3-grpcio/python3-grpc-tools', PYTHON, ['-c', 'import grpc, grpc_tools.protoc']);

/** The one certificate script: the example material (--flat) and the two-zone material of envoy/ (needs openssl). */
export const MAKE_CERTS = join(PACKAGE_ROOT, 'examples', 'make-certs.sh');

/** Runs examples/make-certs.sh with `args` (options, then the directory); throws with its output when it fails. */
export function makeCerts(...args: string[]): void {
  const r = spawnSync(MAKE_CERTS, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`make-certs.sh ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
}

/**
 * Returns whether to run a suite needing `tool`; in CI a missing tool throws, so the suite fails.
 */
export function requireTool(tool: Tool): boolean {
  if (tool.available) return true;
  if (IN_CI) throw new Error(`CI=true and ${tool.why}: .ci/run must install it`);
  console.warn(`skipping: ${tool.why}`);
  return false;
}
