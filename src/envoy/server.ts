/**
 * The gRPC server: Authorization and Health on TCP and, optionally, a Unix domain socket, with
 * optional TLS or mTLS on the listener and bounded message sizes. This file is the grpc-js server
 * (`server.grpc.transport: grpc-js`, the default); h2.ts serves the same on node:http2. With mTLS and
 * `tls.allowedClients`, zonegate terminates TLS itself (client-identity.ts) and hands only the
 * connections of allowed client identities to gRPC.
 */
import * as grpc from '@grpc/grpc-js';
import cluster from 'node:cluster';
import { readFileSync, rmSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { startAllowlistedTls, type AllowlistedTls } from './client-identity.js';
import { loadProtos } from './proto.js';
import { checkHandlers, type CheckDeps } from './service.js';
import { healthHandlers } from './health.js';
import { decodeCheckRequest } from './decode.js';
import { startH2Server } from './h2.js';

/**
 * The Authorization service with zonegate's own codecs: the CheckRequest decoder (decode.ts)
 * instead of protobufjs, and the CheckResponse bytes the handler writes (response.ts) sent as
 * they are. The handler never answers with anything else; a value that is not bytes fails the
 * call (grpc-js: INTERNAL) rather than being encoded by a second writer.
 */
function withFastCodec(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const check = service.Check as grpc.MethodDefinition<unknown, unknown> | undefined;
  if (!check) return service;
  return {
    ...service,
    Check: {
      ...check,
      requestDeserialize: decodeCheckRequest,
      responseSerialize: (v: unknown) => {
        if (!Buffer.isBuffer(v)) throw new TypeError('Check: the handler answered without CheckResponse bytes');
        return v;
      },
    },
  };
}

export interface GrpcServer {
  /** The TCP port actually bound (useful when the config says 0). */
  readonly port: number;
  readonly unixSocket?: string;
  /** Stops accepting calls, waits up to `graceMs` for in-flight calls, then closes the rest. */
  shutdown(graceMs: number): Promise<void>;
}

function credentials(cfg: Config['server']['grpc']): grpc.ServerCredentials {
  if (!cfg.tls) return grpc.ServerCredentials.createInsecure();
  const ca = cfg.tls.clientCa ? readFileSync(cfg.tls.clientCa) : null;
  return grpc.ServerCredentials.createSsl(
    ca,
    [{ cert_chain: readFileSync(cfg.tls.cert), private_key: readFileSync(cfg.tls.key) }],
    ca !== null,
  );
}

function bind(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))),
  );
}

const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/** Starts the gRPC server as configured: grpc-js, or with `transport: http2` zonegate's own (h2.ts). */
export async function startGrpcServer(cfg: Config['server']['grpc'], deps: CheckDeps): Promise<GrpcServer> {
  if (cfg.transport === 'http2') return startH2Server(cfg, deps);
  const { authService, healthService } = loadProtos();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': cfg.maxMessageBytes,
    'grpc.max_send_message_length': cfg.maxMessageBytes,
    'grpc.max_concurrent_streams': 1000,
    'grpc.keepalive_permit_without_calls': 1,
    // channelz tracks every call for a debugging service zonegate does not serve: 2% of a hot
    // check's CPU for nothing (bench/floor.ts runs with the same options)
    'grpc.enable_channelz': 0,
  });
  server.addService(withFastCodec(authService), checkHandlers({ ...deps, maxInFlight: cfg.maxInFlight }));
  server.addService(healthService, healthHandlers(deps.readiness));

  // a stale socket from a previous run (under serve --workers the primary removed it, once)
  if (cfg.unixSocket && !cluster.isWorker) rmSync(cfg.unixSocket, { force: true });
  let port: number;
  let own: AllowlistedTls | undefined;
  const allowed = cfg.tls?.allowedClients;
  if (cfg.tls?.clientCa && allowed) {
    own = await startAllowlistedTls(server, { ...cfg.tls, clientCa: cfg.tls.clientCa, allowedClients: allowed }, cfg.address, cfg.port, cfg.unixSocket, deps.log);
    port = own.port;
  } else {
    port = await bind(server, hostPort(cfg.address, cfg.port), credentials(cfg));
    if (cfg.unixSocket) await bind(server, `unix:${cfg.unixSocket}`, credentials(cfg));
  }

  return {
    port,
    ...(cfg.unixSocket ? { unixSocket: cfg.unixSocket } : {}),
    shutdown: (graceMs) =>
      new Promise<void>((resolve) => {
        own?.close(graceMs);
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
