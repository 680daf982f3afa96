/**
 * grpc.health.v1.Health: Check and Watch. NOT_SERVING until configuration and trust material are
 * loaded, and again while draining. The empty service name and the Authorization service name
 * both report the process state.
 */
import * as grpc from '@grpc/grpc-js';
import type { Readiness, ServingStatus } from '../readiness.js';

export const AUTH_SERVICE_NAME = 'envoy.service.auth.v3.Authorization';
const KNOWN = new Set(['', AUTH_SERVICE_NAME]);

/** Implements the Health service over a Readiness. */
export function healthHandlers(readiness: Readiness): grpc.UntypedServiceImplementation {
  return {
    Check(call: grpc.ServerUnaryCall<{ service?: string }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const service = call.request?.service ?? '';
      if (!KNOWN.has(service)) {
        callback({ code: grpc.status.NOT_FOUND, details: `health: unknown service "${service}"` });
        return;
      }
      callback(null, { status: readiness.current });
    },
    Watch(call: grpc.ServerWritableStream<{ service?: string }, unknown>) {
      const service = call.request?.service ?? '';
      const known = KNOWN.has(service);
      const send = (status: string) => call.write({ status });
      send(known ? readiness.current : 'SERVICE_UNKNOWN');
      if (!known) return; // stays open, per the protocol, reporting SERVICE_UNKNOWN
      const onChange = (s: ServingStatus) => send(s);
      readiness.on('change', onChange);
      call.on('cancelled', () => readiness.off('change', onChange));
      call.on('close', () => readiness.off('change', onChange));
    },
  };
}
