/**
 * The floor: a bare @grpc/grpc-js server with zonegate's own protos (same proto-loader options)
 * that decodes each CheckRequest and answers a fixed OK CheckResponse. Nothing zonegate does can
 * be cheaper than this on the same stack. Prints its port, then serves until killed.
 */
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../src/envoy/proto.js';

const OK = { status: { code: 0 }, ok_response: {} };
// zonegate's own server options (src/envoy/server.ts), so the floor is the same grpc-js setup
const server = new grpc.Server({ 'grpc.max_concurrent_streams': 1000, 'grpc.keepalive_permit_without_calls': 1, 'grpc.enable_channelz': 0 });
server.addService(loadProtos().authService, {
  Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, OK),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${port}\n`);
});
