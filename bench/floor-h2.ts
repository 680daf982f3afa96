/**
 * The runtime's floor for a Check: a bare node:http2 server that reads each request and answers
 * a fixed OK CheckResponse (status, ok_response) with status OK in trailers, decoding nothing. No
 * gRPC server on Node can be cheaper per call. Prints its port, then serves until killed.
 */
import http2 from 'node:http2';

const OK = Buffer.from([0, 0, 0, 0, 6, 0x0a, 0x02, 0x08, 0x00, 0x1a, 0x00]); // { status: { code: 0 }, ok_response: {} }
const HEADERS = { ':status': 200, 'content-type': 'application/grpc+proto' };
const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on('stream', (stream) => {
  stream.on('error', () => undefined);
  stream.on('data', () => undefined);
  stream.on('end', () => {
    stream.respond(HEADERS, { waitForTrailers: true, sendDate: false } as http2.ServerStreamResponseOptions);
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(OK);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
