/**
 * Loads the vendored Envoy and gRPC health protos for grpc-js. Only src/envoy/ knows these
 * shapes; the rest of zonegate works on the plain types in src/request/types.ts.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR } from '../paths.js';

/**
 * keepCase: field names as in the .proto files (snake_case). longs as strings, enums as names,
 * no defaults filled in (so an unset field stays absent and `append` stays distinguishable).
 */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export interface LoadedProtos {
  authService: grpc.ServiceDefinition;
  healthService: grpc.ServiceDefinition;
}

let cached: LoadedProtos | undefined;

/** Loads (once per process) the Authorization and Health service definitions. */
export function loadProtos(): LoadedProtos {
  if (cached) return cached;
  const def = protoLoader.loadSync(
    ['envoy/service/auth/v3/external_auth.proto', 'grpc/health/v1/health.proto'],
    LOADER_OPTIONS,
  );
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  cached = {
    authService: pkg.envoy.service.auth.v3.Authorization.service,
    healthService: pkg.grpc.health.v1.Health.service,
  };
  return cached;
}

/** The method definition of Authorization/Check: its serializer and deserializer are the wire codec. */
export function checkMethod(): grpc.MethodDefinition<unknown, unknown> {
  const m = loadProtos().authService.Check;
  if (!m) throw new Error('proto: envoy.service.auth.v3.Authorization has no Check method');
  return m as grpc.MethodDefinition<unknown, unknown>;
}
