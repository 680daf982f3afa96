/**
 * proto3 JSON ⇄ protobuf binary for CheckRequest and CheckResponse, through the descriptor set
 * in proto/zonegate.binpb (written by `npm run proto:sync`). Used by `zonegate check` and POST
 * /explain, so they go through the very codecs and adapter the gRPC server uses: JSON → binary →
 * the server's decoder (decode.ts) → pipeline → the server's writer (response.ts) → the bytes
 * the server would send → JSON.
 */
import { createFileRegistry, fromBinary, fromJson, toBinary, toJson, type JsonValue } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROTO_DIR } from '../paths.js';

let registry: ReturnType<typeof createFileRegistry> | undefined;

function reg() {
  registry ??= createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(join(PROTO_DIR, 'zonegate.binpb'))));
  return registry;
}

function schema(name: string) {
  const s = reg().getMessage(name);
  if (!s) throw new Error(`proto: ${name} is not in proto/zonegate.binpb`);
  return s;
}

/** Parses a CheckRequest in proto3 JSON (unknown fields rejected) into its binary encoding. */
export function checkRequestJsonToBinary(json: JsonValue): Uint8Array {
  const s = schema('envoy.service.auth.v3.CheckRequest');
  return toBinary(s, fromJson(s, json, { registry: reg() }));
}

/** Renders a binary CheckResponse as proto3 JSON (lowerCamelCase names, as Envoy logs them). */
export function checkResponseBinaryToJson(bytes: Uint8Array): JsonValue {
  const s = schema('envoy.service.auth.v3.CheckResponse');
  return toJson(s, fromBinary(s, bytes), { registry: reg() });
}
