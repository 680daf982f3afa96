/**
 * Sends the demo's CheckRequests to a running zonegate over gRPC, as Envoy would: the proto3 JSON
 * is encoded with the descriptors the package ships and the answer decoded with its protos.
 */
import * as grpc from '@grpc/grpc-js';
import type { JsonValue } from '@bufbuild/protobuf';
import { checkMethod, loadProtos } from '../envoy/proto.js';
import { checkRequestJsonToBinary } from '../envoy/json.js';

/** What the demo reads from a CheckResponse. */
export interface Verdict {
  readonly allowed: boolean;
  /** The reason code of a deny (status.message); the gRPC error of a call that failed. */
  readonly reason?: string;
  /** The rule that decided, from dynamic_metadata. */
  readonly rule?: string;
  /** Headers set for the upstream (allowed). */
  readonly headers: readonly (readonly [string, string])[];
  /** Headers removed before the upstream (allowed). */
  readonly removed: readonly string[];
  /** The call itself failed: zonegate could not decide (never an allow). */
  readonly error?: boolean;
  /** Behind Envoy: the HTTP status the client got. */
  readonly status?: number;
  /** Behind Envoy: the connection was refused before anyone was asked (TLS without a client certificate). */
  readonly refused?: boolean;
}

interface Response {
  status?: { code?: number; message?: string };
  ok_response?: { headers?: { header?: { key: string; value: string } }[]; headers_to_remove?: string[] };
  dynamic_metadata?: { fields?: Record<string, { stringValue?: string }> };
}

export interface CheckClient {
  check(request: JsonValue): Promise<Verdict>;
  close(): void;
}

/** A client of the Authorization service at `address:port`. */
export function checkClient(address: string, port: number): CheckClient {
  const Client = grpc.makeGenericClientConstructor(loadProtos().authService, 'Authorization');
  const client = new Client(`${address}:${port}`, grpc.credentials.createInsecure());
  const method = checkMethod();
  return {
    check: (request) =>
      new Promise((resolve) => {
        const bytes = Buffer.from(checkRequestJsonToBinary(request));
        const deadline = Date.now() + 10_000;
        client.makeUnaryRequest(method.path, (b: Buffer) => b, method.responseDeserialize, bytes, new grpc.Metadata(), { deadline }, (err, res) => {
          if (err) {
            resolve({ allowed: false, error: true, reason: `gRPC ${grpc.status[err.code] ?? err.code}: ${err.details}`, headers: [], removed: [] });
            return;
          }
          const r = res as Response;
          const rule = r.dynamic_metadata?.fields?.rule?.stringValue;
          const allowed = (r.status?.code ?? 0) === 0;
          resolve({
            allowed,
            ...(allowed ? {} : { reason: r.status?.message ?? '' }),
            ...(rule ? { rule } : {}),
            headers: (r.ok_response?.headers ?? []).flatMap((h) => (h.header ? [[h.header.key, h.header.value] as const] : [])),
            removed: r.ok_response?.headers_to_remove ?? [],
          });
        });
      }),
    close: () => client.close(),
  };
}
