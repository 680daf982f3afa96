/**
 * The node:http2 transport (`server.grpc.transport: http2`): Authorization/Check and
 * grpc.health.v1.Health (Check, Watch) served on node:http2 directly, without grpc-js's per-call
 * machinery (interceptor chain, metadata objects, stream decoder, call and listener objects). The
 * request is decoded by decode.ts, decided by the shared checker (service.ts) and answered with
 * response.ts's bytes, as on the grpc-js server (server.ts), whose behaviour this one keeps:
 *
 * - a `grpc-timeout` sets the deadline: a call still unanswered then is DEADLINE_EXCEEDED; one
 *   whose deadline passed before its turn is shed (ERR_DEADLINE_EXCEEDED, not decided); a request
 *   message not all in within 10 s is DEADLINE_EXCEEDED too, deadline or not (grpc-js waits);
 * - a message over server.grpc.maxMessageBytes is RESOURCE_EXHAUSTED as soon as its length prefix
 *   says so; past server.grpc.maxInFlight checks, UNAVAILABLE (ERR_OVERLOADED);
 * - TLS, mTLS (with allowedClients) and a Unix socket, as configured; at most 1000 concurrent
 *   streams per connection; PINGs are answered and none are sent (grpc-js's default);
 * - shutdown sends GOAWAY, lets open calls finish within the grace period, then closes the rest;
 * - errors are trailers-only responses; an unknown method is UNIMPLEMENTED; a content-type that
 *   is not application/grpc is HTTP 415; gzip and deflate messages are decompressed (bounded by
 *   maxMessageBytes), any other encoding is UNIMPLEMENTED.
 *
 * Protocol violations grpc-js answers with odd codes are INTERNAL here, with a message saying
 * what was wrong: no message or a truncated one before the end of the stream (grpc-js:
 * UNIMPLEMENTED), a second message on a unary call (UNIMPLEMENTED), a compressed flag on an
 * identity message (grpc-js decodes it as is).
 */
import cluster from 'node:cluster';
import { rmSync } from 'node:fs';
import http2, { constants, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream, type ServerStreamResponseOptions } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { gunzip, inflate } from 'node:zlib';
import type { Config } from '../config/schema.js';
import { REQUEST_TIMEOUT_MS } from '../net/listen.js';
import { REASONS } from '../errors.js';
import { startTlsListeners, type AllowlistedTls } from './client-identity.js';
import { decodeCheckRequest } from './decode.js';
import { healthStatus, watchHealth } from './health.js';
import { loadProtos } from './proto.js';
import type { GrpcServer } from './server.js';
import { checker, type CheckDeps, type CheckReplies } from './service.js';

/** gRPC status codes used here. */
const S = { OK: 0, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14 } as const;

const CHECK = '/envoy.service.auth.v3.Authorization/Check';
const HEALTH_CHECK = '/grpc.health.v1.Health/Check';
const HEALTH_WATCH = '/grpc.health.v1.Health/Watch';
const enum Kind {
  Check,
  HealthCheck,
  HealthWatch,
}
const KINDS = new Map<unknown, Kind>([
  [CHECK, Kind.Check],
  [HEALTH_CHECK, Kind.HealthCheck],
  [HEALTH_WATCH, Kind.HealthWatch],
]);

const ACCEPT_ENCODING = 'identity,deflate,gzip';
/**
 * Response headers and trailers: only what the protocol needs. grpc-encoding (identity) and
 * grpc-accept-encoding are optional; the latter is sent where it matters, with an UNIMPLEMENTED
 * encoding. Every header is work for both ends on every call.
 */
const OK_HEADERS: OutgoingHttpHeaders = { ':status': 200, 'content-type': 'application/grpc+proto' };
const OK_TRAILERS: OutgoingHttpHeaders = { 'grpc-status': '0' };
/** No Date header: nothing in gRPC reads it, and it is a header per response. */
const WAIT_FOR_TRAILERS = { waitForTrailers: true, sendDate: false } as ServerStreamResponseOptions;
const END_STREAM = { endStream: true, sendDate: false } as ServerStreamResponseOptions;
/**
 * The bytes that requests still arriving may hold, all calls together (at least 4 ×
 * maxMessageBytes): past it a request that needs more is RESOURCE_EXHAUSTED. Honest traffic holds
 * a few KB per call for a moment; without a bound, 1000 streams per connection each sending most
 * of a maximal message and never finishing would hold 1000 × maxMessageBytes per connection.
 */
const HELD_BYTES = 64 * 1024 * 1024;
/** A setTimeout longer than this fires at once: such a deadline (> 24 days) is kept, without a timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * How long a call's request message may take to arrive, whatever its deadline (a call without
 * grpc-timeout has none): the bytes it holds count toward HELD_BYTES, shared by every call, so a
 * client that sends most of its messages and never the rest would otherwise refuse everyone
 * else's calls for as long as it keeps its streams open. Envoy sends a Check in one go.
 */
const REQUEST_MS = REQUEST_TIMEOUT_MS;
const TIMEOUT_UNITS_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** One call: its stream, what it asked for, and the request message as it arrives. */
class Call {
  /** Answered (or reset): nothing more is sent. */
  done = false;
  /** Response headers sent (a Watch): a status now goes in trailers. */
  headersSent = false;
  timer: NodeJS.Timeout | undefined;
  /** Ends the call when its request message has not all arrived within REQUEST_MS (see there). */
  requestTimer: NodeJS.Timeout | undefined;
  /**
   * The request's bytes so far (`have` of them): the first chunk as it came (most requests arrive
   * in one), else a buffer of our own that the chunks are copied into. Keeping chunks instead would
   * keep Node's per-chunk objects: a message sent in 1-byte DATA frames then costs 100× its size.
   */
  body: Buffer | undefined;
  owned = false;
  have = 0;
  /** 5 + the message length, once the prefix is in; -1 before. */
  need = -1;
  /** A Watch's unsubscribe. */
  stop: (() => void) | undefined;
  constructor(
    readonly stream: ServerHttp2Stream,
    readonly kind: Kind,
    readonly deadline: number,
    readonly encoding: string | undefined,
    readonly budget: Budget,
  ) {}
}

/** The bytes requests still arriving hold, all calls of one server together, and their bound (HELD_BYTES). */
interface Budget {
  held: number;
  readonly max: number;
}

/** Lets go of a call's request bytes (it completed, failed or went away). */
function drop(call: Call): void {
  if (call.body === undefined) return;
  call.budget.held -= call.have;
  call.body = undefined;
}

/** `grpc-timeout` (1–8 digits and a unit) in ms; undefined when malformed. */
export function timeoutMs(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  return m ? Number(m[1]) * TIMEOUT_UNITS_MS[m[2]!]! : undefined;
}

/** The length-prefixed gRPC message of `bytes` (uncompressed). */
function frame(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

const open = (call: Call) => !call.done && !call.stream.destroyed;

function settle(call: Call): void {
  call.done = true;
  if (call.timer) clearTimeout(call.timer);
  call.timer = undefined;
  arrived(call);
}

/** The request message is in (or the call is over): no more waiting for it. */
function arrived(call: Call): void {
  if (call.requestTimer) clearTimeout(call.requestTimer);
  call.requestTimer = undefined;
}

/**
 * Ends the call with a status: in trailers after a Watch's headers, else trailers-only. A client
 * still sending (an oversized message answered from its prefix) may finish; the rest is read and
 * dropped, as grpc-js does. The stream is not reset (RFC 9113 §8.1 would allow NO_ERROR): a reset
 * reaching a Node client while data of its own is still queued can abort it in node_http2's
 * memory accounting (nodejs/node#38964; seen here on Node 20), and grpc-js clients are Node clients.
 */
function status(call: Call, code: number, message: string, extra?: OutgoingHttpHeaders): void {
  drop(call);
  if (!open(call)) return;
  settle(call);
  const stream = call.stream;
  const trailers: OutgoingHttpHeaders = { 'grpc-status': String(code), 'grpc-message': encodeURI(message), ...extra };
  try {
    if (call.headersSent) {
      stream.once('wantTrailers', () => stream.sendTrailers(trailers));
      stream.end();
    } else {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto', ...trailers }, END_STREAM);
    }
  } catch {
    // the stream closed under us (a reset from the client): nothing to answer
  }
}

/** A unary call's one response message, then status OK in trailers. */
function reply(call: Call, message: Uint8Array): void {
  if (!open(call)) return;
  settle(call);
  const stream = call.stream;
  try {
    stream.respond(OK_HEADERS, WAIT_FOR_TRAILERS);
    stream.on('wantTrailers', sendOkTrailers); // emitted once; a shared listener, no wrapper per call
    stream.end(frame(message));
  } catch {
    // reset by the client
  }
}

/** The checker's answers on this transport. */
const REPLIES: CheckReplies<Call> = {
  verdict: reply,
  error: (call, code, message) => status(call, REASONS[code].grpc, `${code}: ${message}`, { 'x-zonegate-reason': code }),
};

function expire(call: Call): void {
  call.timer = undefined;
  status(call, S.DEADLINE_EXCEEDED, 'Deadline exceeded');
}

function stalled(call: Call): void {
  call.requestTimer = undefined;
  status(call, S.DEADLINE_EXCEEDED, `the request message did not arrive within ${REQUEST_MS / 1000} s`);
}

/**
 * Starts the node:http2 gRPC server as configured (server.ts chooses it for `transport: http2`).
 * Long because its stream, session and drain handlers share this server's state (bytes held by
 * calls still arriving, open sessions, the draining flag) as closures; the next split gives that
 * state a class of its own.
 */
export async function startH2Server(cfg: Config['server']['grpc'], deps: CheckDeps): Promise<GrpcServer> {
  const max = cfg.maxMessageBytes;
  const check = checker({ ...deps, maxInFlight: cfg.maxInFlight }, REPLIES);
  const health = loadProtos().healthService;
  const healthIn = health.Check!.requestDeserialize as (b: Buffer) => { service?: string };
  const healthOut = health.Check!.responseSerialize as (v: { status: string }) => Buffer;
  const sessions = new Set<ServerHttp2Session>();
  const watches = new Set<Call>();
  let closing = false;

  /** The request message, uncompressed, for the call's method. */
  const deliver = (call: Call, message: Buffer) => {
    if (!open(call)) return;
    if (call.kind === Kind.Check) {
      let request: unknown;
      try {
        request = decodeCheckRequest(message);
      } catch (err) {
        status(call, S.INTERNAL, (err as Error).message);
        return;
      }
      check(request, call.deadline, call);
      return;
    }
    let service: string;
    try {
      service = healthIn(message).service ?? '';
    } catch {
      status(call, S.INTERNAL, 'HealthCheckRequest: malformed');
      return;
    }
    if (call.kind === Kind.HealthCheck) {
      const st = healthStatus(deps.readiness, service);
      if (st === undefined) status(call, S.NOT_FOUND, `health: unknown service "${service}"`);
      else reply(call, healthOut({ status: st }));
      return;
    }
    // Watch: headers now, a message per change, open until the client goes or the server stops
    try {
      call.stream.respond(OK_HEADERS, WAIT_FOR_TRAILERS);
    } catch {
      return;
    }
    call.headersSent = true;
    watches.add(call);
    call.stop = watchHealth(deps.readiness, service, (st) => {
      if (open(call)) call.stream.write(frame(healthOut({ status: st })));
    });
  };

  /** The whole request is in: its one message, decompressed when it says so. */
  const complete = (call: Call, body: Buffer) => {
    const flag = body[0];
    const message = body.subarray(5);
    if (flag === 0) return deliver(call, message);
    if (flag !== 1) return status(call, S.INTERNAL, `invalid compressed flag ${flag}`);
    const enc = call.encoding;
    if (enc === 'gzip' || enc === 'deflate') {
      (enc === 'gzip' ? gunzip : inflate)(message, { maxOutputLength: max }, (err, out) => {
        if (!err) deliver(call, out);
        else if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') status(call, S.RESOURCE_EXHAUSTED, `Received message that decompresses to a size larger than ${max}`);
        else status(call, S.INTERNAL, 'Failed to decompress message');
      });
      return;
    }
    if (enc === undefined || enc === 'identity') return status(call, S.INTERNAL, 'compressed flag set on a message without grpc-encoding');
    status(call, S.UNIMPLEMENTED, `Received message compressed with unsupported encoding "${enc}"`, { 'grpc-accept-encoding': ACCEPT_ENCODING });
  };

  const budget: Budget = { held: 0, max: Math.max(HELD_BYTES, 4 * max) };

  function onData(this: ServerHttp2Stream, chunk: Buffer): void {
    const call = (this as Streamed)[CALL];
    if (call.done) return;
    const at = call.have;
    const have = at + chunk.length;
    if (call.need >= 0 && have > call.need) return status(call, S.INTERNAL, 'a second request message on a unary call');
    if (budget.held + chunk.length > budget.max) return status(call, S.RESOURCE_EXHAUSTED, `requests still arriving hold more than ${budget.max} bytes`);
    budget.held += chunk.length;
    if (at === 0) call.body = chunk;
    else {
      let buf = call.body!;
      if (!call.owned || have > buf.length) {
        // grown by doubling, never past the message's size (maxMessageBytes + 5 until the prefix is in)
        const limit = call.need >= 0 ? call.need : max + 5;
        const next = Buffer.allocUnsafe(Math.max(have, Math.min(limit, Math.max(4096, 2 * (call.owned ? buf.length : at)))));
        buf.copy(next, 0, 0, at);
        call.body = buf = next;
        call.owned = true;
      }
      chunk.copy(buf, at);
    }
    call.have = have;
    if (call.need < 0 && have >= 5) {
      const len = call.body!.readUInt32BE(1);
      if (len > max) return status(call, S.RESOURCE_EXHAUSTED, `Received message larger than max (${len} vs ${max})`);
      call.need = 5 + len;
      if (have > call.need) status(call, S.INTERNAL, 'a second request message on a unary call');
    }
  }

  function onEnd(this: ServerHttp2Stream): void {
    const call = (this as Streamed)[CALL];
    if (call.done) return;
    arrived(call);
    if (call.need < 0 || call.have < call.need) return status(call, S.INTERNAL, call.have === 0 ? 'no request message' : 'the request message was cut short');
    const body = call.owned ? call.body!.subarray(0, call.have) : call.body!;
    drop(call);
    complete(call, body);
  }

  /** The stream is gone (answered, or reset by the client): its bytes, its timer, a Watch's subscription. */
  function onClose(this: ServerHttp2Stream): void {
    const call = (this as Streamed)[CALL];
    settle(call);
    drop(call);
    if (call.stop) {
      call.stop();
      watches.delete(call);
    }
  }

  const onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', ignore);
    const type = headers['content-type'];
    if (typeof type !== 'string' || !type.startsWith('application/grpc')) {
      if (!stream.destroyed) stream.respond({ ':status': constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE }, END_STREAM);
      return;
    }
    const path = headers[':path'];
    const kind = KINDS.get(path);
    const timeout = headers['grpc-timeout'];
    const ms = timeout === undefined ? Infinity : timeoutMs(String(timeout));
    const call = new Call(stream, kind ?? Kind.Check, ms === undefined ? Infinity : Date.now() + ms, headers['grpc-encoding'] as string | undefined, budget);
    (stream as Streamed)[CALL] = call;
    stream.on('close', onClose);
    if (kind === undefined) return status(call, S.UNIMPLEMENTED, `The server does not implement the method ${path}`);
    if (ms === undefined) return status(call, S.INTERNAL, `Invalid grpc-timeout value "${timeout}"`);
    if (ms <= MAX_TIMER_MS) call.timer = setTimeout(expire, ms, call);
    if (ms > REQUEST_MS) call.requestTimer = setTimeout(stalled, REQUEST_MS, call);
    stream.on('data', onData);
    stream.on('end', onEnd);
  };

  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  h2.on('stream', onStream);
  h2.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.on('error', ignore);
    session.once('close', () => sessions.delete(session));
    if (closing) session.close();
  });
  h2.on('sessionError', ignore);
  const accept = (socket: Socket) => {
    if (closing) socket.destroy();
    else h2.emit('connection', socket);
  };

  // a stale socket from a previous run (under serve --workers the primary removed it, once)
  if (cfg.unixSocket && !cluster.isWorker) rmSync(cfg.unixSocket, { force: true });
  let listening: AllowlistedTls;
  if (cfg.tls) listening = await startTlsListeners(accept, cfg.tls, cfg.address, cfg.port, cfg.unixSocket, deps.log);
  else listening = await plainListeners(accept, cfg.address, cfg.port, cfg.unixSocket);

  let shut: Promise<void> | undefined;
  const shutdown = (graceMs: number) =>
    (shut ??= new Promise<void>((resolve) => {
      closing = true;
      listening.close(graceMs);
      for (const call of watches) status(call, S.UNAVAILABLE, 'server shutting down');
      const left = new Set(sessions);
      if (left.size === 0) return resolve();
      const timer = setTimeout(() => {
        for (const s of left) s.destroy(undefined, constants.NGHTTP2_CANCEL);
        resolve();
      }, graceMs);
      timer.unref();
      for (const s of left)
        s.close(() => {
          left.delete(s);
          if (left.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        });
    }));

  return { port: listening.port, ...(cfg.unixSocket ? { unixSocket: cfg.unixSocket } : {}), shutdown };
}

const CALL = Symbol('call');
type Streamed = ServerHttp2Stream & { [CALL]: Call };
const ignore = () => undefined;

/** Plaintext listeners on address:port and the Unix socket, handing each connection to `accept`. */
async function plainListeners(accept: (socket: Socket) => void, address: string, port: number, unixSocket: string | undefined): Promise<AllowlistedTls> {
  const servers: NetServer[] = [];
  const listen = (on: (s: NetServer, done: () => void) => void) =>
    new Promise<NetServer>((resolve, reject) => {
      const s = createNetServer(accept);
      servers.push(s);
      s.once('error', reject);
      on(s, () => resolve(s));
    });
  try {
    const tcp = await listen((s, done) => s.listen(port, address, done));
    if (unixSocket) await listen((s, done) => s.listen(unixSocket, done));
    return { port: (tcp.address() as AddressInfo).port, close: () => servers.forEach((s) => s.close()) };
  } catch (err) {
    servers.forEach((s) => s.close());
    throw err;
  }
}
