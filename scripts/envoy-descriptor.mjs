#!/usr/bin/env node
// Builds a protobuf descriptor set of Envoy's bootstrap API and of every extension the shipped
// Envoy configs use, from the upstream data-plane-api tree that the npm package
// @grpc/grpc-js-xds ships under deps/, so that the tests can parse each config strictly as
// envoy.config.bootstrap.v3.Bootstrap (unknown fields rejected, every typed_config resolved).
//
//   node scripts/envoy-descriptor.mjs OUT.binpb
//
// The validate/validate.proto bundled beside the envoy protos is older than they are: it lacks
// StringRules.ignore_empty (field 26 upstream in protoc-gen-validate), which
// envoy/config/core/v3/protocol.proto already uses, so protoc semantics refuse the tree. The
// build input gets that one field added, exactly as upstream declares it; nothing else changes.
// When a newer grpc-js-xds ships a validate.proto that has it, the patch is skipped.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const xds = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(xds, 'deps', d));

/** The bootstrap and every extension a shipped config names in a typed_config. */
export const ENTRIES = [
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  // file-based SDS: a secret file is a DiscoveryResponse whose resources are tls.v3.Secret
  'envoy/service/discovery/v3/discovery.proto',
];

/** Adds StringRules.ignore_empty when the bundled validate.proto lacks it; returns the text. */
export function patchValidate(text) {
  const m = /^message StringRules \{\r?\n[\s\S]*?^\}\r?$/m.exec(text);
  if (!m) throw new Error('envoy-descriptor: validate.proto has no StringRules');
  if (/\bignore_empty\s*=/.test(m[0])) return text;
  if (!/optional bool strict = 25\b/.test(m[0])) throw new Error('envoy-descriptor: validate.proto StringRules is not the shape this patch expects');
  const close = m.index + m[0].lastIndexOf('}');
  return `${text.slice(0, close)}  optional bool ignore_empty = 26;\n${text.slice(close)}`;
}

function locate(file) {
  for (const dir of includeDirs) if (existsSync(join(dir, file))) return join(dir, file);
  return undefined;
}

/** Copies the import closure of ENTRIES into dir (validate.proto patched); returns the count. */
export function collect(dir) {
  const seen = new Set();
  const queue = [...ENTRIES];
  while (queue.length > 0) {
    const file = queue.shift();
    if (seen.has(file) || file.startsWith('google/protobuf/')) continue;
    const path = locate(file);
    if (!path) throw new Error(`envoy-descriptor: import "${file}" not found in the envoy-api tree`);
    seen.add(file);
    let text = readFileSync(path, 'utf8');
    if (file === 'validate/validate.proto') text = patchValidate(text);
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), text);
    for (const m of text.matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)";/gm)) queue.push(m[1]);
  }
  return seen.size;
}

/** Writes the descriptor set (with imports and source info stripped) to out. */
export function build(out) {
  const work = mkdtempSync(join(tmpdir(), 'zg-envoy-protos-'));
  try {
    const count = collect(work);
    execFileSync(join(root, 'node_modules/.bin/buf'), ['build', work, '--exclude-source-info', '-o', resolve(out)], { cwd: work, stdio: 'pipe' });
    return count;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node scripts/envoy-descriptor.mjs OUT.binpb');
    process.exit(2);
  }
  const count = build(out);
  console.log(`envoy-descriptor: ${count} files → ${out}`);
}
