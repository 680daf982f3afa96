/**
 * grpc.health.v1.Health: Check and Watch. NOT_SERVING until configuration and trust material are
 * loaded, and again while draining. The empty service name and the Authorization service name
 * both report the process state.
 */
import * as grpc from '@grpc/grpc-js';
import type { Readiness, ServingStatus } from '../readiness.js';

export const AUTH_SERVICE_NAME = 'envoy.service.auth.v3.Authorization';
const KNOWN = new Set(['', AUTH_SERVICE_NAME]);

/** Health/Check's answer for `service`: the process state, or undefined for a service zonegate does not know (NOT_FOUND). */
export function healthStatus(readiness: Readiness, service: string): ServingStatus | undefined {
  return KNOWN.has(service) ? readiness.current : undefined;
}

/**
 * Health/Watch: sends the current status for `service` now and every change after it; a service
 * zonegate does not know is SERVICE_UNKNOWN once, and the stream stays open, per the protocol.
 * Returns the unsubscribe to call when the stream ends.
 */
export function watchHealth(readiness: Readiness, service: string, send: (status: ServingStatus | 'SERVICE_UNKNOWN') => void): () => void {
  const known = KNOWN.has(service);
  send(known ? readiness.current : 'SERVICE_UNKNOWN');
  if (!known) return () => undefined;
  return readiness.watch(send);
}

/** Implements the Health service over a Readiness (grpc-js). */
export function healthHandlers(readiness: Readiness): grpc.UntypedServiceImplementation {
  return {
    Check(call: grpc.ServerUnaryCall<{ service?: string }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const service = call.request?.service ?? '';
      const status = healthStatus(readiness, service);
      if (status === undefined) {
        callback({ code: grpc.status.NOT_FOUND, details: `health: unknown service "${service}"` });
        return;
      }
      callback(null, { status });
    },
    Watch(call: grpc.ServerWritableStream<{ service?: string }, unknown>) {
      const stop = watchHealth(readiness, call.request?.service ?? '', (status) => call.write({ status }));
      call.on('cancelled', stop);
      call.on('close', stop);
    },
  };
}
