/** Starts a real zonegate (gRPC + ops servers on loopback, free ports) for integration tests. */
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { loadProtos, checkMethod } from '../../src/envoy/proto.js';
import { createLogger } from '../../src/log.js';
import { startZonegate, type Zonegate } from '../../src/main.js';
import { EXAMPLES_DIR } from '../../src/paths.js';

export interface Started {
  readonly zg: Zonegate;
  readonly target: string;
  /** Every log line written, parsed. */
  readonly logs: Record<string, unknown>[];
  readonly client: grpc.Client;
  check(request: unknown, metadata?: grpc.Metadata): Promise<CheckResult>;
  /** Sends an already-encoded CheckRequest (to test bytes no well-behaved encoder writes). */
  checkBytes(request: Buffer): Promise<CheckResult>;
  close(): Promise<void>;
}

export type CheckResult =
  | { ok: true; response: Record<string, unknown> }
  | { ok: false; error: grpc.ServiceError };

/** A config object with its listeners moved to loopback on free ports; `baseDir` resolves relative paths. */
export async function startWith(config: Record<string, unknown>, baseDir = EXAMPLES_DIR): Promise<Started> {
  const server = (config.server ?? {}) as Record<string, Record<string, unknown>>;
  const full = {
    ...config,
    server: {
      ...server,
      // Loopback and free ports always: a config copied from examples/ names fixed public ports.
      grpc: { ...(server.grpc ?? {}), address: '127.0.0.1', port: 0 },
      ops: { ...(server.ops ?? {}), address: '127.0.0.1', port: 0 },
      shutdownGraceSeconds: server.shutdownGraceSeconds ?? 5,
    },
    log: { level: 'info' },
  };
  const loaded = parseConfig(stringify(full), 'test-config', baseDir);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const zg = await startZonegate(loaded, { log: createLogger('info', sink) });
  const target = `127.0.0.1:${zg.grpc.port}`;
  const Client = grpc.makeGenericClientConstructor(loadProtos().authService, 'Authorization');
  const client = new Client(target, grpc.credentials.createInsecure());
  const method = checkMethod();
  return {
    zg,
    target,
    logs,
    client,
    check: (request, metadata = new grpc.Metadata()) =>
      new Promise((resolve) =>
        client.makeUnaryRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          request,
          metadata,
          (err, response) =>
            resolve(err ? { ok: false, error: err } : { ok: true, response: response as Record<string, unknown> }),
        ),
      ),
    checkBytes: (request) =>
      new Promise((resolve) =>
        client.makeUnaryRequest(
          method.path,
          (b: Buffer) => b,
          method.responseDeserialize,
          request,
          new grpc.Metadata(),
          (err, response) =>
            resolve(err ? { ok: false, error: err } : { ok: true, response: response as Record<string, unknown> }),
        ),
      ),
    close: async () => {
      client.close();
      await zg.stop();
    },
  };
}

/** The example SVID `name` (examples/certs/NAME.svid.pem) URL-encoded, as Envoy forwards it. */
export function exampleCert(name: string): string {
  return encodeURIComponent(readFileSync(join(EXAMPLES_DIR, 'certs', `${name}.svid.pem`), 'utf8'));
}

/** A minimal valid CheckRequest (keepCase plain object) with the given parts. */
export function checkRequest(opts: {
  principal?: string;
  certificate?: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  context?: Record<string, string>;
}): Record<string, unknown> {
  return {
    attributes: {
      source: {
        principal: opts.principal ?? '',
        certificate: opts.certificate ?? '',
        address: { socket_address: { address: '127.0.0.9', port_value: 40000 } },
      },
      request: {
        http: {
          id: 'req-1',
          method: opts.method ?? 'GET',
          path: opts.path ?? '/api/items',
          host: 'api.test',
          headers: opts.headers ?? {},
        },
      },
      context_extensions: opts.context ?? {},
    },
  };
}

/**
 * A grpc-js client for a zonegate listening on loopback `port`; `check` resolves to the
 * CheckResponse status code, or the gRPC error code. Options go to the channel.
 */
export function checkClient(port: number, options: grpc.ChannelOptions = {}) {
  const Client = grpc.makeGenericClientConstructor(loadProtos().authService, 'Authorization');
  const c = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options);
  const m = checkMethod();
  const check = (req: unknown) =>
    new Promise<{ code: number } | { error: number }>((resolve) =>
      c.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, new grpc.Metadata(), (e, r) =>
        resolve(e ? { error: e.code } : { code: (r as { status: { code: number } }).status.code }),
      ),
    );
  return { c, check };
}
